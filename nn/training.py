"""Training: one step of gradient descent, the epoch loop around it, and loss scaling.

The step, what every training loop repeats (:meth:`Trainer.step`)::

    out = net.forward(x, train=True)                 # predictions
    L = loss(out, y)                                  # one number for the batch
    net.backward(dL/dout)                             # every layer's dL/dW, from the last one
    optimizer.step(parameters)                        # W <- W - lr dL/dW (or Adam, ...)

Under ``"mixed"`` precision the gradient is multiplied by a loss scale ``S`` before the
backward pass and divided by it again in the optimizer (:class:`LossScaler`); in ``fp32`` and
``fp64`` the scale is 1 and nothing is checked (:class:`NoLossScaling`), so the step reads
the same in every precision.

:func:`fit` runs the epochs: it shuffles, cuts batches, applies augmentation, moves each batch
to the device once, calls the step, and records the history. The loss and the number of
correct predictions are summed on the device (:class:`EpochMeter`) and read back once per
epoch, so a step never waits for a GPU. ``Network.fit`` is this function.

This module takes the network as an argument and never imports :mod:`nn.network`.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import numpy as np

from . import backends
from .checks import as_array, check_batch, check_finite, is_device_array
from .errors import ConfigError, NNError, ShapeError
from .optim import SGD, Optimizer

#: history entries shown on the progress bar
POSTFIX = ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy")


class NonFiniteLossError(NNError, FloatingPointError):
    """The training loss became NaN or inf."""


class TrainingWarning(UserWarning):
    """Training ran but learnt nothing useful (a loss that never fell, gradients all zero)."""


class StopTraining(Exception):
    """Raise it from a ``fit`` callback to end training after this epoch; ``fit`` returns the
    history so far."""


# -- loss scaling -------------------------------------------------------------------------------
_STATE = {"scale": np.float32, "clean_steps": np.int64, "skipped": np.int64,
          "overflows_at_min_scale": np.int64}


class NoLossScaling:
    """``fp32`` and ``fp64``: the loss is not scaled (scale 1) and gradients are not checked."""

    def scale_array(self):
        return 1.0

    def found_overflow(self, grads):
        return None

    def after_step(self, overflow) -> None:
        pass

    def quiet(self):
        return contextlib.nullcontext()


class LossScaler:
    """Dynamic loss scaling for ``"mixed"`` precision, decided on the device.

    Gradients of a float16 network are often smaller than float16's smallest subnormal
    (about 6e-8) and flush to zero. Multiplying the loss by a large scale ``S`` multiplies
    every gradient by ``S`` (backprop is linear in the upstream gradient), lifting them into
    float16's range; the optimizer divides by ``S`` again, in float32, before the update.
    Too large an ``S`` overflows to inf instead. The dynamic rule (Micikevicius et al., 2018):

    * start at ``S = 2**15``;
    * a step whose gradients hold an inf or a NaN is **skipped** and ``S`` is **halved**;
    * after **2000** clean steps in a row ``S`` is **doubled**.

    The scale, the count of clean steps and the count of skipped steps are 0-d arrays on the
    backend's device, updated with ``where``: a training step never waits for the GPU to say
    whether it overflowed, and the optimizer skips an overflowed step by masking its writes.
    Reading :attr:`scale` or :attr:`skipped` on a GPU waits for the device; ``fit`` does it
    once per epoch.

    Parameters
    ----------
    init_scale : float
        Starting scale, 2**15.
    growth_factor, backoff_factor : float
        Multiply the scale by these after ``growth_interval`` clean steps / after an overflow.
    growth_interval : int
        Number of consecutive clean steps before the scale grows (2000).
    min_scale : float
        The scale never falls below this (1.0): an overflow at scale 1 is a real overflow,
        counted in ``overflows_at_min_scale`` (``fit`` then stops with an error).
    """

    def __init__(self, init_scale=2.0**15, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, min_scale=1.0):
        values = (init_scale, growth_factor, backoff_factor, growth_interval, min_scale)
        if (not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values)
                or init_scale <= 0 or growth_factor <= 1 or not 0 < backoff_factor < 1
                or growth_interval < 1 or min_scale <= 0):
            raise ConfigError(
                "LossScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, "
                f"growth_interval >= 1 and min_scale > 0, got {init_scale}, {growth_factor}, "
                f"{backoff_factor}, {growth_interval}, {min_scale}")
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)
        # host values until the first use; then 0-d arrays on the device of the backend in use
        self._state = {"scale": float(init_scale), "clean_steps": 0, "skipped": 0,
                       "overflows_at_min_scale": 0}
        self._xp = None

    def _device_state(self) -> dict:
        """The state as 0-d arrays of the current backend (moved there on first use)."""
        B = backends.current()
        if self._xp is not B.xp:
            # first use, or the backend changed (e.g. NumPy -> CuPy): one move, not per step
            self._state = {name: B.asarray(np.asarray(self._read(name)), dtype=dtype)
                           for name, dtype in _STATE.items()}
            self._xp = B.xp
        return self._state

    def _read(self, name):
        value = self._state[name]
        return value if isinstance(value, (int, float)) else value.item()

    # -- what a training step uses (device arrays, no synchronisation) ------------------------
    def scale_array(self):
        """The current scale ``S`` as a 0-d float32 array on the device."""
        return self._device_state()["scale"]

    def found_overflow(self, grads):
        """0-d bool device array: True when a gradient holds an inf or a NaN."""
        return ~backends.current().all_finite(grads)

    def update(self, grads_finite):
        """Record one step from its flag ``grads_finite`` (bool or 0-d bool array); returns
        it, the flag "apply this step".

        False (an inf or a NaN among the gradients): the step was skipped, the scale is
        halved (not below ``min_scale``) and ``skipped`` grows by one. True: one more clean
        step; after ``growth_interval`` of them the scale doubles. Computed with ``where``:
        nothing is read back to the host.
        """
        B = backends.current()
        xp = B.xp
        state = self._device_state()
        finite = B.asarray(grads_finite, dtype=bool)
        overflow = ~finite
        scale = state["scale"]
        clean = xp.where(finite, state["clean_steps"] + 1, 0)
        grow = clean >= self.growth_interval
        grown = xp.where(grow, scale * np.float32(self.growth_factor), scale)
        backed_off = xp.maximum(scale * np.float32(self.backoff_factor),
                                np.float32(self.min_scale))
        state["overflows_at_min_scale"] = (state["overflows_at_min_scale"]
                                           + (overflow & (scale <= self.min_scale)))
        state["scale"] = xp.where(finite, grown, backed_off).astype(np.float32)
        state["clean_steps"] = xp.where(grow, 0, clean).astype(np.int64)
        state["skipped"] = state["skipped"] + overflow
        return finite

    def after_step(self, overflow) -> None:
        """What the training step calls with :meth:`found_overflow`'s flag."""
        self.update(~overflow)

    def quiet(self):
        """float16 overflow is expected under "mixed": the scaler detects it, NumPy need not warn."""
        return backends.current().errstate(over="ignore", invalid="ignore")

    def device_counters(self) -> list:
        """``[scale, skipped, overflows_at_min_scale]`` as 0-d device arrays."""
        state = self._device_state()
        return [state["scale"], state["skipped"], state["overflows_at_min_scale"]]

    # -- what a person reads (a synchronisation on a GPU) ---------------------------------------
    @property
    def scale(self) -> float:
        """The current loss scale (reading it waits for the device on a GPU)."""
        return float(self._read("scale"))

    @property
    def skipped(self) -> int:
        """Steps skipped so far because their gradients overflowed."""
        return int(self._read("skipped"))

    @property
    def clean_steps(self) -> int:
        """Clean steps since the last overflow or growth of the scale."""
        return int(self._read("clean_steps"))

    @property
    def overflows_at_min_scale(self) -> int:
        """Overflows that happened with the scale already at ``min_scale``."""
        return int(self._read("overflows_at_min_scale"))

    def __repr__(self):
        return f"LossScaler(scale={self.scale:g}, skipped={self.skipped})"


# -- weight averaging ----------------------------------------------------------------------------
class EMA:
    """Exponential moving average of a network's weights (Polyak averaging).

    After every training step::

        W_avg = d W_avg + (1 - d) W,        d = min(decay, (1 + n) / (10 + n))

    with ``n`` the number of updates so far (a warm-up, so that a short run is not dominated by
    the initial weights). The averaged weights are smoother than the last ones: generative
    models (the diffusion practical) sample from them. ``fit(..., ema=0.999)`` keeps one in
    ``net.ema``; ``with net.ema_weights(): ...`` runs a block with the averages in place.
    """

    def __init__(self, net, decay: float = 0.999):
        if not (isinstance(decay, numbers.Real) and not isinstance(decay, bool) and 0 < decay < 1):
            raise ConfigError(f"EMA: decay must be a number in (0, 1), e.g. 0.999, got {decay!r}")
        self.decay = float(decay)
        self.net = net
        self.updates = 0
        self.average = {key: layer.params[name].copy()
                        for key, layer, name in net.named_parameters()}

    def update(self) -> None:
        """One step of the average, on the device (no read back)."""
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, layer, name in self.net.named_parameters():
            avg = self.average[key]
            if avg.shape != layer.params[name].shape or not isinstance(
                    avg, type(layer.params[name])):       # moved to another backend since
                avg = self.average[key] = layer.params[name].copy()
            avg *= d
            avg += (1 - d) * layer.params[name].astype(avg.dtype, copy=False)
        self.updates += 1

    @contextlib.contextmanager
    def swapped(self):
        """The averaged weights in the network for the duration of the block, then the
        trained ones back (exactly)."""
        trained = {}
        for key, layer, name in self.net.named_parameters():
            trained[key] = layer.params[name]
            layer.params[name] = self.average[key].astype(trained[key].dtype)
        try:
            yield self.net
        finally:
            for key, layer, name in self.net.named_parameters():
                layer.params[name] = trained[key]


# -- the step -----------------------------------------------------------------------------------
class Trainer:
    """One network, its loss, an optimizer and a loss-scaling rule: what a step needs.

    ``Trainer(net, optimizer).step(x, y)`` is one step of gradient descent on a batch (already
    on the device); :func:`fit` makes one and calls ``step`` for every batch.
    """

    def __init__(self, net, optimizer=None, scaler=None):
        if net.loss is None:
            raise ConfigError("training needs a loss: build the network as Network(layers, loss)")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise ConfigError(f"optimizer must be an nn.optim optimizer (e.g. SGD(0.1)), got "
                              f"{type(optimizer).__name__}")
        self.B = backends.current()
        self.net, self.loss = net, net.loss
        self.optimizer = SGD(0.01) if optimizer is None else optimizer
        self.params = net.parameters()                   # (layer, name) of trainable layers
        self.scaler = scaler if scaler is not None else NoLossScaling()

    def grads(self):
        return [layer.grads[name] for layer, name in self.params]

    def step(self, x, y):
        """Forward, loss, backward, update on one batch; returns (loss as a 0-d array, output)."""
        with self.scaler.quiet():
            out = self.net.forward(x, train=True)
            value = self.loss.forward_device(out, y)
            S = self.scaler.scale_array()                    # 1 unless "mixed"
            self.net.backward(self.B.cast(self.loss.backward() * S), input_grad=False)
            overflow = self.scaler.found_overflow(self.grads())   # None unless "mixed"
            self.optimizer.step(self.params, grad_scale=S, found_inf=overflow)
            self.scaler.after_step(overflow)
        return value, out


class EpochMeter:
    """Sums of one epoch, kept on the device: the loss (times the batch size), the number of
    correct predictions, the examples seen; read back with one transfer by :meth:`read`."""

    def __init__(self, B, scaler):
        self.B = B
        self.loss_sum = B.asarray(0.0, dtype=np.float64)
        self.correct = B.asarray(0, dtype=np.int64)
        self.n = 0
        self.scaler = scaler if isinstance(scaler, LossScaler) else None
        self.before = self.scaler.device_counters() if self.scaler else None

    def add(self, value, n, correct=None):
        self.loss_sum += value * n
        self.n += n
        if correct is not None:
            self.correct += correct

    def read(self, extra=()) -> dict:
        """Everything summed, as host floats, in one device-to-host transfer."""
        B = self.B
        values = [self.loss_sum, self.correct, *extra]
        if self.scaler is not None:
            scale, skipped, at_min = self.scaler.device_counters()
            values += [scale, skipped - self.before[1], at_min - self.before[2]]
        host = B.to_host(B.xp.stack([B.xp.asarray(v).astype(np.float64) for v in values]))
        out = {"loss": float(host[0]) / self.n, "accuracy": float(host[1]) / self.n,
               "extra": host[2:2 + len(extra)]}
        if self.scaler is not None:
            out["loss_scale"], out["skipped"], out["at_min"] = host[-3:]
        return out


# -- the loop -----------------------------------------------------------------------------------
def fit(net, x, y, epochs: int = 1, batch_size: int = 32, optimizer=None, valid=None,
        seed: int | None = None, augment=None, shuffle: bool = True, progress: bool = True,
        callback=None, ema: float | None = None) -> dict:
    """Train ``net`` with mini-batch gradient descent; returns the history of each epoch.

    Parameters
    ----------
    net : nn.Network
        With a loss.
    x, y : arrays
        Inputs ``(N, ...)`` and targets: class ids ``(N,)``, one-hot rows ``(N, C)`` or any
        array the loss accepts (one dict of boxes per image for a detection loss). Lists are
        converted; NaN, inf, strings and ragged lists are refused with the index of the
        first bad value.
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
        ``callback(epoch, history)`` after every epoch (e.g. print a confusion matrix); it
        may raise :class:`StopTraining` to end training there. It may not switch the backend.
    ema : float, optional
        Keep an exponential moving average of the weights with this decay in ``net.ema``.

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

    Warns (:class:`TrainingWarning`) when the training loss never fell below its first value
    or every gradient was exactly zero at the end of every epoch.

    Notes
    -----
    Each batch is moved to the device once; the loss, the number of correct predictions and
    the loss scaler's counters are summed there and brought back together, in one transfer,
    at the end of the epoch: a training step never waits for a GPU. On NumPy, where reading
    a value is free, a NaN loss stops training at the batch where it appears; on a GPU it is
    reported at the end of that epoch.
    """
    loss = net.loss
    if loss is None:
        raise ConfigError("fit: this Network has no loss; build it as Network(layers, loss)")
    x, y = check_data("fit", x, y, loss)
    if valid is not None:
        if not (isinstance(valid, (tuple, list)) and len(valid) == 2):
            raise ConfigError("fit: valid must be a pair (x_valid, y_valid)")
        valid = check_data("fit (valid)", *valid, loss)
    epochs = _count(epochs, "epochs", 0)
    batch_size = _count(batch_size, "batch_size", 1)
    if callback is not None and not callable(callback):
        raise ConfigError(f"fit: callback must be a function callback(epoch, history), got "
                          f"{type(callback).__name__}")
    if augment is not None and not callable(augment):
        raise ConfigError(f"fit: augment must be a function augment(x, y) -> (x, y) (e.g. "
                          f"nn.data.Augment), got {type(augment).__name__}")
    B = net.to_current_backend()
    if seed is not None:
        B.seed(seed)
    order_rng = np.random.default_rng(seed)
    if B.mixed:
        net.loss_scaler = net.loss_scaler or LossScaler()
    trainer = Trainer(net, optimizer, net.loss_scaler if B.mixed else None)
    if ema is not None and (net.ema is None or net.ema.decay != ema):
        net.ema = EMA(net, ema)
    kind = loss.target_kind(y)
    history = _empty_history(kind, valid, B.mixed)
    zero_gradients = []          # per epoch: was every gradient of its last step exactly 0?

    from tqdm.auto import tqdm

    n = len(x)
    bar = tqdm(total=epochs * math.ceil(n / batch_size), unit="batch") if progress else None
    try:
        with backends.locked("during Network.fit (a callback?)"):
            for epoch in range(epochs):
                trainer.optimizer.start_epoch(epoch)
                if bar is not None:
                    bar.set_description(f"epoch {epoch + 1}/{epochs}")
                meter = EpochMeter(B, trainer.scaler)
                order = order_rng.permutation(n) if shuffle else None
                for b, start in enumerate(range(0, n, batch_size)):
                    idx = (slice(start, start + batch_size) if order is None
                           else order[start:start + batch_size])
                    xb, yb = x[idx], y[idx]
                    if augment is not None:
                        xb, yb = augment(xb, yb)
                    # the batch goes to the device once; nothing comes back until the epoch ends
                    xb, yb = B.asarray(xb), device_targets(B, yb)
                    value, out = trainer.step(xb, yb)
                    if ema is not None:
                        net.ema.update()
                    if B.on_host and not math.isfinite(value):   # free on the host: stop early
                        _diverged(B, value, epoch, b)
                    correct = None
                    if kind is not None:
                        correct = (loss.predict_classes(out) == loss.classes(kind, yb)).sum()
                    meter.add(value, len(xb), correct)
                    if bar is not None:
                        bar.update()
                # the epoch's one device-to-host transfer (plus "are all gradients zero?")
                sums = meter.read([_largest_gradient(B, trainer.grads())])
                _record(history, sums, trainer, kind, epoch, B)
                zero_gradients.append(bool(sums["extra"][0] == 0))
                if valid is not None:
                    result = evaluate(net, *valid, batch_size=batch_size, kind=kind)
                    history["valid_loss"].append(result["loss"])
                    if kind is not None:
                        history["valid_accuracy"].append(result["accuracy"])
                if bar is not None:
                    bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()
                                     if k in POSTFIX}, refresh=False)
                if callback is not None:
                    try:
                        callback(epoch, history)
                    except StopTraining:
                        break
    finally:
        if bar is not None:
            bar.close()
    _warn_if_nothing_learnt(history, zero_gradients)
    return history


def _count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"fit: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _empty_history(kind, valid, mixed) -> dict:
    history = {"train_loss": [], "lr": []}
    if kind is not None:
        history["train_accuracy"] = []
    if valid is not None:
        history["valid_loss"] = []
        if kind is not None:
            history["valid_accuracy"] = []
    if mixed:
        history["loss_scale"], history["skipped_steps"] = [], []
    return history


def _record(history, sums, trainer, kind, epoch, B):
    """Append one epoch's sums to the history; stop on a diverged run."""
    if "at_min" in sums and sums["at_min"] > 0:
        raise NonFiniteLossError(
            f"the gradients overflow float16 even with the loss scale at its minimum "
            f"({trainer.scaler.min_scale:g}) in epoch {epoch + 1}: they are genuinely larger "
            "than 65504; normalise the inputs, lower the learning rate, or train in 'fp32'")
    if not math.isfinite(sums["loss"]):
        _diverged(B, sums["loss"], epoch, None)
    history["train_loss"].append(sums["loss"])
    history["lr"].append(trainer.optimizer.lr)
    if kind is not None:
        history["train_accuracy"].append(sums["accuracy"])
    if "loss_scale" in sums:
        history["loss_scale"].append(float(sums["loss_scale"]))
        history["skipped_steps"].append(int(sums["skipped"]))


def _largest_gradient(B, grads):
    """0-d device array: the largest |gradient| of the last step (0 means nothing can learn)."""
    if not grads:
        return B.asarray(1.0)
    return B.xp.stack([B.xp.abs(g).max().astype(np.float64) for g in grads]).max()


def _warn_if_nothing_learnt(history, zero) -> None:
    losses = history["train_loss"]
    if zero and all(zero):
        warnings.warn("every gradient was exactly zero at the end of every epoch: the units are "
                      "saturated (sigmoids stuck at 0 or 1, usually after too large a learning "
                      "rate) or dead (ReLUs that never fire); lower the learning rate, normalise "
                      "the inputs, or use another initialisation", TrainingWarning, stacklevel=4)
    elif len(losses) >= 3 and min(losses[1:]) >= losses[0]:
        warnings.warn(f"the training loss never fell below its first value ({losses[0]:.4g}) in "
                      f"{len(losses)} epochs: the learning rate may be too large (the steps "
                      "overshoot) or far too small; try a value 10 times smaller, then larger, and "
                      "check that the inputs are normalised", TrainingWarning, stacklevel=4)


def _diverged(B, value, epoch, batch):
    where = f"epoch {epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
    hint = ("lower the learning rate, and check that the inputs hold no NaN/inf and are "
            "normalised")
    if B.mixed:
        hint = ("an activation probably overflowed float16 (max 65504) in the forward pass; "
                "normalise the inputs, lower the learning rate, or train in 'fp32'")
    raise NonFiniteLossError(f"the loss became {value} at {where} ({B.precision}): "
                             f"training diverged; {hint}")


# -- evaluation (the loss summed over batches, with train=False) ---------------------------------
def evaluate(net, x, y, batch_size: int = 256, kind="auto") -> dict:
    """``{"loss", "accuracy", "predicted", "width"}`` of ``net`` on data already checked.

    The loss is averaged over the examples; ``predicted`` (host class ids) and ``accuracy``
    are None when ``y`` holds no class labels.
    """
    B = net.to_current_backend()
    loss = net.loss
    if kind == "auto":
        kind = loss.target_kind(y)
    total, predicted, width = B.asarray(0.0, dtype=np.float64), [], 1
    for i in range(0, len(x), batch_size):
        out = net.forward(x[i:i + batch_size])
        yb = y[i:i + batch_size]
        total += loss.forward_device(out, device_targets(B, yb)) * len(yb)
        if kind is not None:
            predicted.append(loss.predict_classes(out))
            width = out.shape[1] if out.ndim == 2 else 1
    result = {"loss": float(B.to_host(total)) / len(x), "accuracy": None, "predicted": None,
              "width": width}
    if kind is not None:
        result["predicted"] = B.to_host(B.xp.concatenate(predicted))
        targets = backends.to_host(loss.classes(kind, y if is_device_array(y) else np.asarray(y)))
        result["accuracy"] = float(np.mean(result["predicted"] == targets))
        result["targets"] = targets
    return result


# -- data ---------------------------------------------------------------------------------------
def check_data(where, x, y, loss=None):
    """Inputs and targets as arrays with as many targets as inputs, numbers without NaN/inf.

    Host arrays and lists are checked here once, before any training step; device arrays are
    checked too (one transfer). Targets that are not numbers (one dict of boxes per image for
    a detection loss) are passed on as they are: the loss reads them.
    """
    x = as_array(x, "x", where)
    check_batch(x, "x", where)
    check_finite(x, "x", where, "remove or impute those values before training")
    if isinstance(y, (list, tuple)) and y and isinstance(y[0], dict):
        y = np.array(y, dtype=object)
    elif not (isinstance(y, np.ndarray) and y.dtype == object):
        y = as_array(y, "y", where)
        check_batch(y, "y", where)
        if loss is not None:
            loss.check_targets(y if not is_device_array(y) else backends.to_host(y), where)
    if len(x) != len(y):
        raise ShapeError(f"{where}: x has {len(x)} examples but y has {len(y)}")
    return x, y


def device_targets(B, y):
    """Targets on the device: class ids stay integers, float targets in the accumulation dtype.

    Targets that are not numbers (e.g. one dict of boxes per image, for a detection loss)
    stay on the host, as they are: the loss decides what to move.
    """
    if isinstance(y, np.ndarray) and y.dtype == object:
        return y
    # float targets straight to the accumulation dtype: through float16 they could overflow
    return B.asarray(y) if y.dtype.kind in "iub" else B.asarray(y, dtype=B.acc_dtype)


__all__ = ["fit", "evaluate", "Trainer", "EpochMeter", "EMA", "LossScaler", "NoLossScaling",
           "NonFiniteLossError", "TrainingWarning", "StopTraining", "check_data",
           "device_targets"]
