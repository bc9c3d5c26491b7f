"""A sequence of layers with a loss: training, prediction, evaluation, saving."""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from . import backends
from . import losses as _losses
from .backends import LossScaler
from .layers import LeakyReLU, ReLU
from .layers.base import Layer, forward_through, from_dict, named_layers, to_dict
from .metrics import confusion_matrix
from .optim import SGD

FORMAT = "nn-model"
FORMAT_VERSION = 1
ARCH_KEY = "__architecture__"
POSTFIX = ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf."""


class Summary(str):
    """The text of :meth:`Network.summary`; shown as text (not a quoted string) in notebooks."""

    def __repr__(self):
        return str(self)


class Network:
    """Layers applied in order, and the loss that trains them.

    >>> from nn import Network, layers, losses
    >>> net = Network([layers.Dense(4, 8), layers.Sigmoid(), layers.Dense(8, 3)],
    ...               losses.SoftmaxCrossEntropy())

    ``Dense`` and convolution layers with ``init="auto"`` (the default) that are followed by
    a ReLU or LeakyReLU (also inside ``Residual``/``Concat`` blocks) get He weights here; the
    others keep Xavier weights.
    """

    def __init__(self, layers, loss=None):
        layers = list(layers)
        if not layers:
            raise ValueError("Network: give at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Network: item {i} is a {type(layer).__name__}, not an nn layer "
                                "(did you pass the class instead of an instance, e.g. ReLU "
                                "instead of ReLU()?)")
        if loss is not None and not isinstance(loss, _losses.Loss):
            raise TypeError(f"Network: loss must be an nn.losses loss, got {type(loss).__name__}")
        self.layers = layers
        self.loss = loss
        self.loss_scaler: LossScaler | None = None
        self._backend_key = (backends.current().name, backends.current().precision)
        _he_before_relu(layers)

    # -- structure --------------------------------------------------------------------------
    def named_parameters(self):
        """``(key, layer, name)`` for every parameter; ``key`` is its name in a saved file."""
        out = []
        for i, top in enumerate(self.layers):
            for prefix, layer in named_layers(top, f"{i}."):
                out.extend((prefix + name, layer, name) for name in layer.params)
        return out

    def parameters(self):
        """``(layer, name)`` pairs, what an optimizer's ``step`` takes."""
        return [(layer, name) for _, layer, name in self.named_parameters()]

    def n_params(self) -> int:
        return sum(layer.n_params() for layer in self.layers)

    def to_backend(self):
        """Move all parameters to the current backend (done by forward/fit when it changed)."""
        B = backends.current()
        for layer in self.layers:
            layer.to_backend()
        self._backend_key = (B.name, B.precision)
        return self

    def _current_backend(self):
        B = backends.current()
        if (B.name, B.precision) != self._backend_key:
            self.to_backend()
        return B

    # -- forward and backward ------------------------------------------------------------------
    def forward(self, x, train: bool = False):
        """Output of the last layer for the batch ``x`` (moved to the device, activation dtype)."""
        B = self._current_backend()
        return forward_through(self.layers, B.asarray(x), train, "the network")

    __call__ = forward

    def backward(self, dy, input_grad: bool = True):
        """Backpropagate ``dy = dL/d(output)`` through all layers; returns ``dL/d(input)``.

        With ``input_grad=False`` (what ``fit`` uses: training needs only the parameters'
        gradients) the first layer may skip ``dL/d(input)`` and ``None`` is returned; for a
        first convolution that saves a matrix product and a col2im.
        """
        first = self.layers[0]
        first.input_grad = input_grad
        try:
            for layer in reversed(self.layers):
                dy = layer.backward(dy)
        finally:
            first.input_grad = True
        return dy if input_grad else None

    # -- training --------------------------------------------------------------------------------
    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, optimizer=None, valid=None,
            seed: int | None = None, augment=None, shuffle: bool = True, progress: bool = True,
            callback=None) -> dict:
        """Train with mini-batch gradient descent; returns the history of each epoch.

        Parameters
        ----------
        x, y : arrays
            Inputs ``(N, ...)`` and targets: class ids ``(N,)``, one-hot rows ``(N, C)`` or
            any array the loss accepts.
        epochs, batch_size : int
            ``batch_size >= N`` gives full-batch gradient descent, 1 the online rule.
        optimizer : nn.optim optimizer
            Default ``SGD(lr=0.01)``. Its state (momentum) persists across calls of ``fit``.
        valid : (x_valid, y_valid), optional
            Evaluated (``train=False``) after every epoch.
        seed : int, optional
            Seeds the shuffling and the backend's generator (dropout): equal seeds, equal runs.
        augment : callable, optional
            ``augment(x_batch, y_batch) -> (x_batch, y_batch)`` on host arrays, each batch.
        shuffle, progress : bool
            Shuffle every epoch; show a tqdm progress bar.
        callback : callable, optional
            ``callback(epoch, history)`` after every epoch (e.g. print a confusion matrix).

        Returns
        -------
        dict of lists, one entry per epoch: ``train_loss`` (mean over the epoch's batches,
        dropout on), ``lr``, and when they apply ``train_accuracy``, ``valid_loss``,
        ``valid_accuracy``, and under ``"mixed"`` ``loss_scale`` and ``skipped_steps``.

        Raises
        ------
        NonFiniteLossError
            When the loss becomes NaN or inf (the run diverged), or under ``"mixed"`` when
            gradients overflow with the loss scale already at its minimum.

        Notes
        -----
        Each batch is moved to the device once; the loss, the number of correct predictions
        and the loss scaler's counters are summed there and brought back together, in one
        transfer, at the end of the epoch. A training step therefore never waits for a GPU.
        On NumPy, where reading a value is free, a NaN loss stops training at the batch where
        it appears; on a GPU it is reported at the end of that epoch.
        """
        loss = self._require_loss("fit")
        x, y = _check_data("fit", x, y)
        if valid is not None:
            if not (isinstance(valid, (tuple, list)) and len(valid) == 2):
                raise ValueError("fit: valid must be a pair (x_valid, y_valid)")
            valid = _check_data("fit (valid)", *valid)
        if isinstance(epochs, bool) or not (isinstance(epochs, int) and epochs >= 0):
            raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        if isinstance(batch_size, bool) or not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"fit: batch_size must be an int >= 1, got {batch_size!r}")
        B = self._current_backend()
        if seed is not None:
            B.seed(seed)
        order_rng = np.random.default_rng(seed)
        optimizer = SGD(0.01) if optimizer is None else optimizer
        params = self.parameters()
        scaler = None
        if B.mixed:
            scaler = self.loss_scaler = self.loss_scaler or LossScaler()
        kind = _target_kind(y)

        history = {"train_loss": [], "lr": []}
        if kind is not None:
            history["train_accuracy"] = []
        if valid is not None:
            history["valid_loss"] = []
            if kind is not None:
                history["valid_accuracy"] = []
        if scaler is not None:
            history["loss_scale"], history["skipped_steps"] = [], []

        from tqdm.auto import tqdm

        n = len(x)
        n_batches = math.ceil(n / batch_size)
        bar = tqdm(total=epochs * n_batches, unit="batch") if progress else None
        try:
            for epoch in range(epochs):
                optimizer.start_epoch(epoch)
                if bar is not None:
                    bar.set_description(f"epoch {epoch + 1}/{epochs}")
                order = order_rng.permutation(n) if shuffle else None
                # summed on the device and read back once, at the end of the epoch
                loss_sum = B.asarray(0.0, dtype=np.float64)
                n_correct = B.asarray(0, dtype=np.int64)
                counters_before = scaler.device_counters() if scaler else None
                for b, start in enumerate(range(0, n, batch_size)):
                    idx = slice(start, start + batch_size) if order is None else \
                        order[start:start + batch_size]
                    xb, yb = x[idx], y[idx]
                    if augment is not None:
                        xb, yb = augment(xb, yb)
                    # the batch goes to the device once; nothing comes back until the epoch ends
                    xb, yb = B.asarray(xb), _device_targets(B, yb)
                    value, out = self._train_step(B, xb, yb, optimizer, params, scaler)
                    if B.on_host and not math.isfinite(value):   # free on the host: stop early
                        self._diverged(B, value, epoch, b)
                    loss_sum += value * len(xb)
                    if kind is not None:
                        n_correct += (loss.predict_classes(out) == _device_classes(kind, yb)).sum()
                    if bar is not None:
                        bar.update()
                metrics = [loss_sum, n_correct]
                if scaler is not None:
                    scale, skipped, at_min = scaler.device_counters()
                    metrics += [scale, skipped - counters_before[1], at_min - counters_before[2]]
                # the epoch's one device-to-host transfer
                metrics = B.to_host(B.xp.stack([m.astype(np.float64) for m in metrics]))
                if scaler is not None and metrics[4] > 0:
                    raise NonFiniteLossError(
                        f"the gradients overflow float16 even with the loss scale at its minimum "
                        f"({scaler.min_scale:g}) in epoch {epoch + 1}: they are genuinely larger "
                        "than 65504; normalise the inputs, lower the learning rate, or train in "
                        "'fp32'")
                train_loss = float(metrics[0]) / n
                if not math.isfinite(train_loss):
                    self._diverged(B, train_loss, epoch, None)
                history["train_loss"].append(train_loss)
                history["lr"].append(optimizer.lr)
                if kind is not None:
                    history["train_accuracy"].append(float(metrics[1]) / n)
                if valid is not None:
                    v_loss, v_pred, _ = self._evaluate(*valid, batch_size, kind)
                    history["valid_loss"].append(v_loss)
                    if kind is not None:
                        v_acc = float(np.mean(v_pred == _classes(kind, valid[1])))
                        history["valid_accuracy"].append(v_acc)
                if scaler is not None:
                    history["loss_scale"].append(float(metrics[2]))
                    history["skipped_steps"].append(int(metrics[3]))
                if bar is not None:
                    bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()
                                     if k in POSTFIX}, refresh=False)
                if callback is not None:
                    callback(epoch, history)
        finally:
            if bar is not None:
                bar.close()
        return history

    def _train_step(self, B, xb, yb, optimizer, params, scaler):
        """One forward, backward and update on a batch already on the device.

        Returns the loss (a 0-d device array) and the network output. Nothing is read back
        to the host: under ``"mixed"`` the overflow flag, the loss scale and the decision to
        skip the update all stay on the device (:class:`nn.backends.LossScaler`).
        """
        # float16 overflow is expected under "mixed": loss scaling detects it and skips the step
        quiet = B.errstate(over="ignore", invalid="ignore") if B.mixed else contextlib.nullcontext()
        with quiet:
            out = self.forward(xb, train=True)
            value = self.loss.forward_device(out, yb)
            dout = self.loss.backward()
            if scaler is None:
                self.backward(B.cast(dout), input_grad=False)
                optimizer.step(params)
                return value, out
            scale = scaler.scale_array()
            self.backward(B.cast(dout * scale), input_grad=False)
            finite = B.all_finite([layer.grads[name] for layer, name in params])
            optimizer.step(params, grad_scale=scale, found_inf=~finite)
            scaler.update(finite)
        return value, out

    def _diverged(self, B, value, epoch, batch):
        where = f"epoch {epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
        hint = ("lower the learning rate, and check that the inputs hold no NaN/inf and are "
                "normalised")
        if B.mixed:
            hint = ("an activation probably overflowed float16 (max 65504) in the forward pass; "
                    "normalise the inputs, lower the learning rate, or train in 'fp32'")
        raise NonFiniteLossError(f"the loss became {value} at {where} ({B.precision}): "
                                 f"training diverged; {hint}")

    # -- inference ---------------------------------------------------------------------------
    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Network outputs for ``x`` as a host NumPy array (``train=False``, in batches)."""
        B = self._current_backend()
        x = x if hasattr(x, "__cuda_array_interface__") else np.asarray(x)
        if len(x) == 0:
            raise ValueError("predict: x holds no example")
        outs = [B.to_host(self.forward(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs)

    def evaluate(self, x, y, batch_size: int = 256) -> dict:
        """``{"loss", "accuracy", "confusion"}`` on ``(x, y)``.

        ``accuracy`` and ``confusion`` (rows = target, columns = prediction; print it with
        :func:`nn.metrics.print_confusion`) are None when ``y`` holds no class labels.
        """
        self._require_loss("evaluate")
        x, y = _check_data("evaluate", x, y)
        kind = _target_kind(y)
        mean_loss, predicted, width = self._evaluate(x, y, batch_size, kind)
        result = {"loss": mean_loss, "accuracy": None, "confusion": None}
        if kind is not None:
            targets = _classes(kind, y)
            n_classes = max(width if width > 1 else 2, int(targets.max()) + 1,
                            int(predicted.max()) + 1)
            result["confusion"] = confusion_matrix(targets, predicted, n_classes)
            result["accuracy"] = float(np.mean(predicted == targets))
        return result

    def _evaluate(self, x, y, batch_size, kind):
        """Mean loss, predicted class ids (host, or None) and output width over ``(x, y)``."""
        B = self._current_backend()
        total, predicted, width = B.asarray(0.0, dtype=np.float64), [], 1
        for i in range(0, len(x), batch_size):
            out = self.forward(x[i:i + batch_size])
            yb = y[i:i + batch_size]
            total += self.loss.forward_device(out, _device_targets(B, yb)) * len(yb)
            if kind is not None:
                predicted.append(self.loss.predict_classes(out))
                width = out.shape[1] if out.ndim == 2 else 1
        predicted = B.to_host(B.xp.concatenate(predicted)) if predicted else None
        return float(B.to_host(total)) / len(x), predicted, width

    def _require_loss(self, what):
        if self.loss is None:
            raise ValueError(f"{what}: this Network has no loss; build it as Network(layers, loss)")
        return self.loss

    # -- description -----------------------------------------------------------------------------
    def _output_shape(self, input_shape):
        shape = tuple(input_shape)
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ValueError as exc:
                raise ValueError(f"layer {i} of the network: {exc}") from exc
        return shape

    def summary(self, input_shape=None) -> Summary:
        """A table of layers, output shapes (without the batch axis) and parameter counts.

        ``input_shape`` (without the batch axis) is needed when the first layer does not fix
        it (a Dense first layer does). Shape mismatches between layers raise ``ValueError``.
        """
        if input_shape is None:
            input_shape = self.layers[0].input_shape()
        rows = [("#", "layer", "output shape", "parameters")]
        _summary_rows(rows, self.layers, None if input_shape is None else tuple(input_shape))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        fmt = "{:<%d}  {:<%d}  {:<%d}  {:>%d}" % tuple(widths)
        lines = [fmt.format(*rows[0]), "-" * (sum(widths) + 6)]
        lines += [fmt.format(*r) for r in rows[1:]]
        lines.append("-" * (sum(widths) + 6))
        B = backends.current()
        lines.append(f"input shape: {'? (pass input_shape=...)' if input_shape is None else tuple(input_shape)}"
                     f"   parameters: {self.n_params():,}   loss: {self.loss!r}"
                     f"   backend: {B.name}/{B.precision}")
        return Summary("\n".join(lines))

    def __repr__(self):
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"Network({inner}\n  loss={self.loss!r}\n)"

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write architecture (JSON) and weights to one ``.npz`` file, atomically.

        The file is a plain NumPy archive: ``__architecture__`` holds the JSON text and each
        parameter is stored under its key from :meth:`named_parameters` (e.g. ``"0.W"``).
        Nothing is pickled. ``.npz`` is appended when ``path`` has no suffix. Returns the path.
        """
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".npz")
        arch = {"format": FORMAT, "version": FORMAT_VERSION,
                "layers": [to_dict(layer) for layer in self.layers],
                "loss": None if self.loss is None else _losses.to_dict(self.loss)}
        B = self._current_backend()
        arrays = {key: B.to_host(layer.params[name]) for key, layer, name in self.named_parameters()}
        arrays[ARCH_KEY] = np.array(json.dumps(arch))
        path.parent.mkdir(parents=True, exist_ok=True)
        # a plain exclusive open, not tempfile.mkstemp: mkstemp makes the file private (mode
        # 0600), and os.replace would give the saved model those permissions
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        f = open(tmp, "xb")
        try:
            with f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> "Network":
        """Rebuild a network written by :meth:`save` (no pickle is ever loaded).

        Raises ``ValueError`` naming the problem when the file is not an nn model, or when an
        array is missing, unexpected, or of the wrong shape.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no model file at {path}")
        try:
            # our own file object: np.load(path) leaves its file open when the zip is corrupt
            with open(path, "rb") as f:
                archive = np.load(f, allow_pickle=False)
                if not isinstance(archive, np.lib.npyio.NpzFile):
                    raise ValueError("it holds a single array (.npy), not an .npz archive")
                with archive:
                    arrays = {key: archive[key] for key in archive.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path} is not a readable nn model file ({type(exc).__name__}: "
                             f"{exc}); it may be truncated or corrupt, save the network again") from exc
        if ARCH_KEY not in arrays:
            raise ValueError(f"{path} has no '{ARCH_KEY}' entry: it is a NumPy archive but not "
                             "one written by Network.save")
        try:
            arch = json.loads(str(arrays.pop(ARCH_KEY)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: the architecture record is not valid JSON ({exc})") from exc
        if not isinstance(arch, dict) or arch.get("format") != FORMAT:
            raise ValueError(f"{path}: the architecture record is not an {FORMAT} record")
        if arch.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path} was written by a newer nn (format version "
                             f"{arch['version']} > {FORMAT_VERSION}); update nn to read it")
        B = backends.current()
        try:
            # built under a throw-away generator: loading must not shift the user's seeded draws
            with backends.using(B.name, B.precision, seed=0):
                net = cls([from_dict(spec) for spec in arch["layers"]],
                          None if arch.get("loss") is None else _losses.from_dict(arch["loss"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: the architecture record cannot be rebuilt "
                             f"({type(exc).__name__}: {exc}); it is damaged or was written by "
                             "another version of nn") from exc
        for key, layer, name in net.named_parameters():
            if key not in arrays:
                raise ValueError(f"{path}: missing array '{key}' ({name} of {layer!r}); the file is "
                                 "incomplete or was saved from another architecture")
            value = arrays.pop(key)
            expected = tuple(layer.params[name].shape)
            if value.shape != expected:
                raise ValueError(f"{path}: array '{key}' ({name} of {layer!r}) has shape "
                                 f"{value.shape}, expected {expected}")
            if value.dtype.kind != "f":
                raise ValueError(f"{path}: array '{key}' ({name} of {layer!r}) has dtype "
                                 f"{value.dtype}, expected floating point")
            layer.params[name] = B.param(value)
        if arrays:
            raise ValueError(f"{path}: unexpected arrays {sorted(arrays)} that no layer of the "
                             "saved architecture uses; the file is inconsistent")
        return net


# -- targets ------------------------------------------------------------------------------------
def _summary_rows(rows, layers, shape, prefix="", indent=""):
    """Append a row per layer; a block (Residual, Concat) gets a row, then its layers indented."""
    for i, layer in enumerate(layers):
        inner_shape = shape
        if shape is not None:
            try:
                shape = layer.output_shape(shape)
            except ValueError as exc:
                raise ValueError(f"layer {prefix}{i} of the network: {exc}") from exc
        inner = layer.sublayers()
        name = type(layer).__name__ if inner else repr(layer)
        rows.append((f"{prefix}{i}", indent + name, "?" if shape is None else str(shape),
                     f"{layer.n_params():,}"))
        if inner:
            _summary_rows(rows, inner, inner_shape, f"{prefix}{i}.", indent + "  ")


def _he_before_relu(layers):
    """Redraw as He the ``init="auto"`` weights of layers followed by a ReLU, inside blocks too.

    Only the first network a layer joins decides: the layer is then marked, so that a later
    ``Network`` made from the same (perhaps trained) layers, e.g. the encoder half of an
    autoencoder, never redraws its weights.
    """
    for layer, following in zip(layers, [*layers[1:], None]):
        if getattr(layer, "init", None) != "auto" or getattr(layer, "auto_init_done", False):
            continue
        if isinstance(following, (ReLU, LeakyReLU)):
            layer.reset_parameters("he", alpha=getattr(following, "alpha", 0.0))
        layer.auto_init_done = True
    for layer in layers:
        if layer.sublayers():
            _he_before_relu(layer.sublayers())


def _check_data(where, x, y):
    """Host arrays (or device arrays, left alone) with as many targets as inputs."""
    x = x if hasattr(x, "__cuda_array_interface__") else np.asarray(x)
    y = y if hasattr(y, "__cuda_array_interface__") else np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{where}: x and y must be arrays with a batch axis, got shapes "
                         f"{x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{where}: x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{where}: no examples (x is empty)")
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and not np.isfinite(x).all():
        first = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{where}: x holds NaN or inf (first at index {tuple(int(i) for i in first)}); "
                         "remove or impute those values before training")
    return x, y


def _target_kind(y):
    """How to read class labels from targets: "ids", "onehot", "binary", or None (regression)."""
    y = y.get() if hasattr(y, "get") else y
    if y.ndim == 1 and y.dtype.kind in "iub":
        return "ids"
    if y.ndim == 2 and y.dtype.kind in "iubf":
        binary = bool(np.all((y == 0) | (y == 1)))
        if binary and y.shape[1] == 1:
            return "binary"
        if binary and np.all(y.sum(axis=1) == 1):
            return "onehot"
    if y.ndim == 1 and y.dtype.kind == "f" and np.all((y == 0) | (y == 1)):
        return "binary"
    return None


def _classes(kind, y):
    y = y.get() if hasattr(y, "get") else np.asarray(y)
    if kind == "ids":
        return y.astype(np.int64, copy=False)
    if kind == "onehot":
        return y.argmax(axis=1)
    return y.reshape(len(y)).astype(np.int64)


def _device_targets(B, y):
    """Targets on the device: class ids stay integers, float targets in the accumulation dtype.

    Targets that are not numbers (e.g. one dict of boxes per image, for a detection loss)
    stay on the host, as they are: the loss decides what to move.
    """
    if isinstance(y, np.ndarray) and y.dtype == object:
        return y
    kind = y.dtype.kind if hasattr(y, "dtype") else np.asarray(y).dtype.kind
    # float targets straight to the accumulation dtype: through float16 they could overflow
    return B.asarray(y) if kind in "iub" else B.asarray(y, dtype=B.acc_dtype)


def _device_classes(kind, y):
    """:func:`_classes` of targets already on the device (no transfer)."""
    if kind == "ids":
        return y
    if kind == "onehot":
        return y.argmax(axis=1)
    return y.reshape(len(y)).astype(np.int64)


__all__ = ["Network", "NonFiniteLossError", "Summary"]
