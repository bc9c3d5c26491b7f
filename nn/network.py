"""A sequence of layers with a loss: forward, backward, prediction, evaluation, summary.

Training lives in :mod:`nn.training` (the step, the epoch loop, loss scaling) and files in
:mod:`nn.io`; ``fit``, ``save``, ``load`` and ``load_weights`` below are thin calls to them.
"""
from __future__ import annotations

import numpy as np

from . import backends, io, training
from . import losses as _losses
from .checks import as_array, check_batch, check_finite
from .errors import ConfigError, StateError
from .layers.base import Layer, forward_through, named_layers
from .metrics import confusion_matrix
from .training import NonFiniteLossError


class Summary(str):
    """The text of :meth:`Network.summary`; shown as text (not a quoted string) in notebooks."""

    def __repr__(self):
        return str(self)


class Network:
    """Layers applied in order, and the loss that trains them.

    >>> from nn import Network, layers, losses
    >>> net = Network([layers.Dense(4, 8, init="he"), layers.ReLU(), layers.Dense(8, 3)],
    ...               losses.SoftmaxCrossEntropy())

    A ``Network`` holds the layers it is given, as they are: it never changes their weights
    (choose the initialisation where a layer is built, e.g. ``init="he"`` before a ReLU).
    """

    def __init__(self, layers, loss=None):
        layers = [layers] if isinstance(layers, Layer) else list(layers)
        if not layers:
            raise ConfigError("Network: give at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"Network: item {i} is a {type(layer).__name__}, not an nn "
                                  "layer (did you pass the class instead of an instance, e.g. "
                                  "ReLU instead of ReLU()?)")
        if loss is not None and not isinstance(loss, _losses.Loss):
            raise ConfigError(f"Network: loss must be an nn.losses loss (e.g. MSE()), got "
                              f"{type(loss).__name__}")
        self.layers = layers
        self.loss = loss
        #: the dynamic loss scale of "mixed" training, kept from one fit to the next
        self.loss_scaler = None
        #: the moving average of the weights, when ``fit(..., ema=decay)`` keeps one
        self.ema = None
        self._backend_key = (backends.current().name, backends.current().precision)

    # -- structure --------------------------------------------------------------------------
    def named_parameters(self, trainable_only: bool = False):
        """``(key, layer, name)`` for every parameter; ``key`` is its name in a saved file."""
        out = []
        for i, top in enumerate(self.layers):
            for prefix, layer in named_layers(top, f"{i}."):
                if trainable_only and not layer.trainable:
                    continue
                out.extend((prefix + name, layer, name) for name in layer.params)
        return out

    def parameters(self):
        """``(layer, name)`` of the trainable parameters: what an optimizer's ``step`` takes."""
        return [(layer, name) for _, layer, name in self.named_parameters(trainable_only=True)]

    def n_params(self, trainable: bool | None = None) -> int:
        return sum(layer.n_params(trainable) for layer in self.layers)

    def to_backend(self):
        """Move all parameters and buffers to the current backend (forward and fit do it when
        the backend changed since)."""
        B = backends.current()
        for layer in self.layers:
            layer.to_backend()
        self._backend_key = (B.name, B.precision)
        return self

    def to_current_backend(self):
        """The current backend, after moving the network there if it changed; returns it."""
        B = backends.current()
        if (B.name, B.precision) != self._backend_key:
            self.to_backend()
        return B

    # -- forward and backward ------------------------------------------------------------------
    def forward(self, x, train: bool = False):
        """Output of the last layer for the batch ``x`` (moved to the device, activation dtype)."""
        B = self.to_current_backend()
        return forward_through(self.layers, B.asarray(x), train, "the network")

    __call__ = forward

    def backward(self, dy, input_grad: bool = True):
        """Backpropagate ``dy = dL/d(output)`` through all layers; returns ``dL/d(input)``.

        With ``input_grad=False`` (what training uses: it needs only the parameters'
        gradients) the first layer may skip ``dL/d(input)`` and ``None`` is returned; for a
        first convolution that saves a matrix product and a col2im.
        """
        for layer in reversed(self.layers[1:]):
            dy = layer.backward(dy)
        first = self.layers[0]
        if not input_grad and first.skips_input_grad:
            first.backward(dy, input_grad=False)
            return None
        dx = first.backward(dy)
        return dx if input_grad else None

    # -- training (nn.training) and files (nn.io) ------------------------------------------------
    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, optimizer=None, valid=None,
            seed: int | None = None, augment=None, shuffle: bool = True, progress: bool = True,
            callback=None, ema: float | None = None) -> dict:
        """Train with mini-batch gradient descent; returns the history of each epoch (a dict
        of lists: ``train_loss``, ``lr``, and when they apply ``train_accuracy``,
        ``valid_loss``, ``valid_accuracy``, ``loss_scale``, ``skipped_steps``).

        ``x, y``: inputs and targets (class ids, one-hot rows, or what the loss takes);
        ``batch_size >= N`` is full-batch gradient descent, 1 the online rule; ``optimizer``
        defaults to ``SGD(0.01)``; ``valid=(x, y)`` is evaluated after every epoch; ``seed``
        fixes the shuffling and dropout; ``augment(x, y) -> (x, y)`` runs on every batch;
        ``callback(epoch, history)`` after every epoch; ``ema=0.999`` keeps a moving average of
        the weights (:meth:`ema_weights`). Every parameter is described in
        :func:`nn.training.fit`, and the step in :class:`nn.training.Trainer`.
        """
        return training.fit(self, x, y, epochs, batch_size, optimizer, valid, seed, augment,
                            shuffle, progress, callback, ema)

    def ema_weights(self):
        """``with net.ema_weights(): net.predict(x)``: the averaged weights of
        ``fit(..., ema=...)`` in place for the block, the trained ones back after it."""
        if self.ema is None:
            raise StateError("this network keeps no moving average of its weights: train it "
                             "with fit(..., ema=0.999) first")
        return self.ema.swapped()

    def save(self, path):
        """Write architecture (JSON) and weights to one ``.npz`` file, atomically (:mod:`nn.io`)."""
        self.to_current_backend()
        return io.save(self, path)

    @classmethod
    def load(cls, path) -> "Network":
        """Rebuild a network written by :meth:`save`; the file is checked before anything is
        built (:func:`nn.io.read`), and no pickle is ever loaded."""
        return cls(*io.read(path))

    def load_weights(self, path, n_layers: int | None = None) -> "Network":
        """Copy the weights (and buffers) of the first ``n_layers`` top-level layers of a saved
        model into this network (all when None), checking kinds and shapes; returns self.

        Transfer learning: ``classifier.save("enc.npz")``, then
        ``autoencoder.load_weights("enc.npz", n_layers=6)`` to start from its encoder.
        """
        self.to_current_backend()
        io.load_weights(self.layers, path, n_layers)
        return self

    # -- inference ---------------------------------------------------------------------------
    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Network outputs for ``x`` as a host NumPy array (``train=False``, in batches)."""
        B = self.to_current_backend()
        x = check_finite(check_batch(as_array(x, "x", "predict"), "x", "predict"), "x", "predict")
        outs = [B.to_host(self.forward(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs)

    def predict_mc(self, x, samples: int = 30, seed: int | None = None, batch_size: int = 256):
        """Monte Carlo dropout: ``(mean, std)`` over ``samples`` forward passes with dropout
        active and every other layer in inference mode (BatchNorm uses its running statistics).

        The spread of the outputs estimates the model's uncertainty (Gal & Ghahramani, 2016);
        without dropout every pass is the same and ``std`` is zero.
        """
        from .layers.dropout import Dropout
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"predict_mc: samples must be an int >= 1, got {samples!r}")
        B = self.to_current_backend()
        if seed is not None:
            B.seed(seed)
        x = check_finite(check_batch(as_array(x, "x", "predict_mc"), "x", "predict_mc"), "x",
                         "predict_mc")
        dropouts = [layer for top in self.layers for _, layer in named_layers(top)
                    if isinstance(layer, Dropout)]
        runs = []
        for _ in range(samples):
            for layer in dropouts:
                layer.always_on = True
            try:
                runs.append(self.predict(x, batch_size))
            finally:
                for layer in dropouts:
                    layer.always_on = False
        runs = np.stack(runs)
        return runs.mean(axis=0), runs.std(axis=0)

    def evaluate(self, x, y, batch_size: int = 256) -> dict:
        """``{"loss", "accuracy", "confusion"}`` on ``(x, y)``.

        ``accuracy`` and ``confusion`` (rows = target, columns = prediction; print it with
        :func:`nn.metrics.print_confusion`) are None when ``y`` holds no class labels.
        """
        if self.loss is None:
            raise ConfigError("evaluate: this Network has no loss; build it as "
                              "Network(layers, loss)")
        x, y = training.check_data("evaluate", x, y, self.loss)
        result = training.evaluate(self, x, y, batch_size)
        out = {"loss": result["loss"], "accuracy": result["accuracy"], "confusion": None}
        if result["predicted"] is not None:
            targets, predicted, width = result["targets"], result["predicted"], result["width"]
            n_classes = max(width if width > 1 else 2, int(targets.max()) + 1,
                            int(predicted.max()) + 1)
            out["confusion"] = confusion_matrix(targets, predicted, n_classes)
        return out

    # -- description -----------------------------------------------------------------------------
    def summary(self, input_shape=None) -> Summary:
        """A table of layers, output shapes (without the batch axis) and parameter counts.

        ``input_shape`` (without the batch axis) is needed when the first layer does not fix
        it (a Dense first layer does). Shape mismatches between layers raise ``ShapeError``.
        """
        if input_shape is None:
            input_shape = self.layers[0].input_shape()
        rows = [("#", "layer", "output shape", "parameters")]
        _summary_rows(rows, self.layers, None if input_shape is None else tuple(input_shape))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        fmt = "{:<%d}  {:<%d}  {:<%d}  {:>%d}" % tuple(widths)
        rule = "-" * (sum(widths) + 6)
        lines = [fmt.format(*rows[0]), rule, *(fmt.format(*r) for r in rows[1:]), rule]
        B = backends.current()
        frozen = self.n_params(trainable=False)
        counts = f"parameters: {self.n_params():,}" + (
            f" ({self.n_params(trainable=True):,} trainable, {frozen:,} frozen)" if frozen else "")
        n_buffers = sum(int(np.prod(s)) for top in self.layers for _, layer in named_layers(top)
                        for s in layer.buffer_shapes().values())
        if n_buffers:
            counts += f"   buffers (not trained): {n_buffers:,}"
        shown = "? (pass input_shape=...)" if input_shape is None else tuple(input_shape)
        lines.append(f"input shape: {shown}   {counts}   loss: {self.loss!r}"
                     f"   backend: {B.name}/{B.precision}")
        return Summary("\n".join(lines))

    def __repr__(self):
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"Network({inner}\n  loss={self.loss!r}\n)"


def _summary_rows(rows, layers, shape, prefix="", indent=""):
    """Append a row per layer; a block (Residual, Concat) gets a row, then its layers indented."""
    for i, layer in enumerate(layers):
        inner_shape = shape
        if shape is not None:
            try:
                shape = layer.output_shape(shape)
            except ValueError as exc:
                raise type(exc)(f"layer {prefix}{i} of the network: {exc}") from exc
        inner = layer.sublayers()
        name = type(layer).__name__ if inner else repr(layer)
        if not layer.trainable:
            name += " (frozen)"
        rows.append((f"{prefix}{i}", indent + name, "?" if shape is None else str(shape),
                     f"{layer.n_params():,}"))
        if inner:
            _summary_rows(rows, inner, inner_shape, f"{prefix}{i}.", indent + "  ")


__all__ = ["Network", "NonFiniteLossError", "Summary"]
