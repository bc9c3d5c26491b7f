"""Losses: ``forward(pred, target) -> float`` (mean over the batch), ``backward() -> dpred``.

They compute in the backend's accumulation dtype (float32 under ``"mixed"``) and return the
gradient in that dtype; the training step scales it (``"mixed"``) and casts it for the layers.

A subclass writes :meth:`Loss.forward_device`, which returns the mean loss as a 0-d array
left where the predictions are; ``forward`` is that value as a Python ``float``. On a GPU,
making a ``float`` waits for the device, so ``Network.fit`` sums ``forward_device`` values on
the device and reads the sum once per epoch. (A subclass that only writes ``forward`` also
works; fit then reads its loss once per batch.)

A loss also says how to read its targets: :meth:`Loss.check_targets` refuses targets it
cannot learn from (NaN, class ids that are not integers, probabilities outside [0, 1]) and
:meth:`Loss.target_kind` tells ``fit`` and ``evaluate`` whether they hold class labels, and
how (class ids, one-hot rows, 0/1 columns), so that an accuracy can be reported.
"""
from __future__ import annotations

import numpy as np

from . import backends
from . import functional as F
from .checks import as_array, check_finite, is_device_array
from .errors import BackwardBeforeForwardError, ConfigError, DataError, ShapeError
from .registry import Registry

LOSSES = Registry("loss")


class Loss:
    """Base class; subclasses are registered by name so a saved Network can name its loss."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LOSSES.add(cls)

    def forward(self, pred, target) -> float:
        """Mean loss over the batch, as a Python float; keeps what ``backward`` needs.

        The targets are checked first (on the host, where it is free): NaN, inf and values
        the loss cannot learn from raise :class:`~nn.errors.DataError`.
        """
        if not is_device_array(target) and isinstance(target, (np.ndarray, list, tuple)):
            target = np.asarray(target) if isinstance(target, (list, tuple)) else target
            if target.dtype != object:
                self.check_targets(target, type(self).__name__)
        return float(self.forward_device(pred, target))

    def forward_device(self, pred, target):
        """Mean loss over the batch as a 0-d array on the backend's device (no host sync)."""
        if type(self).forward is Loss.forward:
            raise NotImplementedError(f"{type(self).__name__} must define forward_device "
                                      "(or forward)")
        return self.forward(pred, target)

    def backward(self):
        raise NotImplementedError

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def __getattr__(self, name):
        # only reached when normal lookup fails: backward() reading what forward() keeps
        raise BackwardBeforeForwardError(
            f"{type(self).__name__} has no attribute {name!r}; if backward() asked for it, call "
            "forward(pred, target) first: backward differentiates the last forward")

    # -- targets ------------------------------------------------------------------------------
    def check_targets(self, target, owner: str) -> None:
        """Raise :class:`~nn.errors.DataError` when ``target`` (host array) is not a valid target.

        The base rule: real numbers, no NaN or inf. ``fit`` calls it once on all targets.
        """
        as_array(target, "the targets", owner)
        check_finite(target, "the targets", owner)

    def target_kind(self, y):
        """How ``y`` holds class labels: ``"ids"`` ``(N,)`` ints, ``"onehot"`` ``(N, C)`` rows,
        ``"binary"`` 0/1 values ``(N,)`` or ``(N, 1)``, or None (not class labels)."""
        y = backends.to_host(y) if is_device_array(y) else np.asarray(y)
        if y.dtype == object:
            return None
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

    @staticmethod
    def classes(kind: str, y):
        """Class ids ``(N,)`` from targets ``y`` of the given :meth:`target_kind` (any backend)."""
        if kind == "ids":
            return y.astype(np.int64, copy=False)
        if kind == "onehot":
            return y.argmax(axis=1)
        return y.reshape(len(y)).astype(np.int64)

    def predict_classes(self, pred):
        """Class ids from network outputs: argmax, or ``pred > 0.5`` for a single output."""
        if pred.ndim == 2 and pred.shape[1] == 1:
            return (pred[:, 0] > 0.5).astype("int64")
        return pred.argmax(axis=1)

    def config(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


to_dict, from_dict = LOSSES.to_dict, LOSSES.from_dict


def _targets(owner, pred, target, B):
    """``target`` as a float array shaped like ``pred``; class ids become one-hot rows."""
    xp = B.xp
    if pred.ndim == 0:
        raise ShapeError(f"{owner}: predictions must have a batch axis, got a scalar")
    target = B.asarray(target) if not isinstance(target, xp.ndarray) else target
    if target.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1:
        # one output per example: the targets are its values (0/1 labels for a binary
        # classifier), not class ids to one-hot encode over a single class
        target = target.reshape(-1, 1)
    elif target.ndim == 1 and target.dtype.kind in "iu" and pred.ndim == 2:
        if target.shape[0] != pred.shape[0]:
            raise ShapeError(f"{owner}: {pred.shape[0]} predictions but {target.shape[0]} targets")
        n_classes = pred.shape[1]
        # checked where it is free; on a GPU it would wait for the device at every batch
        if B.on_host and target.size and (target.min() < 0 or target.max() >= n_classes):
            raise DataError(f"{owner}: class ids must lie in [0, {n_classes}) for predictions "
                            f"of shape {tuple(pred.shape)}, got ids from {target.min()} to "
                            f"{target.max()}")
        onehot = xp.zeros(pred.shape, dtype=B.acc_dtype)
        onehot[xp.arange(target.shape[0]), target] = 1
        return onehot
    if target.shape != pred.shape:
        ids = (" or integer class ids of shape (N,)" if pred.ndim == 2 and pred.shape[1] > 1
               else "")
        raise ShapeError(f"{owner}: predictions have shape {tuple(pred.shape)} but targets have "
                         f"shape {tuple(target.shape)}; give targets of the same shape{ids}")
    return target.astype(B.acc_dtype, copy=False)


class MSE(Loss):
    """The course's quadratic error, ``E = 1/2 sum_k (a_k - t_k)²`` per example, batch mean.

    ``dE/da = (a - t) / N``. Targets: same shape as the predictions, or class ids ``(N,)``
    (turned into one-hot rows).
    """

    def forward_device(self, pred, target):
        B = backends.current()
        t = _targets("MSE", pred, target, B)
        self.diff = pred.astype(B.acc_dtype, copy=False) - t
        self.n = pred.shape[0]
        return 0.5 * (self.diff * self.diff).sum() / self.n

    def backward(self):
        return self.diff / self.n


class SoftmaxCrossEntropy(Loss):
    """Softmax over the logits fused with the cross-entropy, ``L = -sum_k t_k log softmax(z)_k``.

    Fusing gives the short, stable gradient ``dL/dz = (softmax(z) - t) / N`` and computes
    ``log softmax(z) = z - max z - log sum exp(z - max z)`` without overflow
    (:func:`nn.functional.log_softmax`). Logits ``(N, C)``; targets integer class ids
    ``(N,)`` or one-hot / probability rows ``(N, C)``.
    """

    def check_targets(self, target, owner):
        super().check_targets(target, owner)
        if target.ndim == 1 and target.dtype.kind == "f":
            example = target[:3].tolist()
            raise DataError(f"{owner}: class ids must be integers, got {target.dtype} values "
                            f"(e.g. {example}); convert them with y.astype(int), or give one-hot "
                            "rows of shape (N, C)")
        if target.ndim == 2 and target.dtype.kind == "f" and (target < 0).any():
            raise DataError(f"{owner}: target rows must be one-hot or probabilities (>= 0), got "
                            f"a negative value {float(target.min())}")

    def forward_device(self, pred, target):
        B = backends.current()
        if pred.ndim != 2:
            raise ShapeError(f"SoftmaxCrossEntropy: expected logits of shape (N, C), got "
                             f"{tuple(pred.shape)}")
        self.t = _targets("SoftmaxCrossEntropy", pred, target, B)
        z = pred.astype(B.acc_dtype, copy=False)
        self.n = pred.shape[0]
        log_probs = F.log_softmax(z)
        self.probs = B.xp.exp(log_probs)
        return -(self.t * log_probs).sum() / self.n

    def backward(self):
        return (self.probs - self.t) / self.n


class BinaryCrossEntropy(Loss):
    """``L = -sum_k [t_k log p_k + (1 - t_k) log(1 - p_k)]`` per example, batch mean.

    With ``from_logits=False`` (default) ``pred`` holds probabilities (after a Sigmoid) and
    ``dL/dp = (p - t) / (p (1 - p)) / N``, with ``p`` kept in ``[eps, 1 - eps]``.
    With ``from_logits=True`` ``pred`` holds logits ``z`` and the sigmoid is fused
    (:func:`nn.functional.bce_with_logits`): ``dL/dz = (sigmoid(z) - t) / N``.
    Targets are probabilities in [0, 1] (labels 0 and 1, or soft labels such as vote fractions).
    """

    def __init__(self, from_logits: bool = False, eps: float = 1e-7):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ConfigError(f"BinaryCrossEntropy: from_logits must be True or False, got "
                              f"{from_logits!r}")
        if not (isinstance(eps, (int, float)) and 0 < eps < 0.5):
            raise ConfigError(f"BinaryCrossEntropy: eps must be a number in (0, 0.5), got {eps!r}")
        self.from_logits = bool(from_logits)
        self.eps = float(eps)

    def check_targets(self, target, owner):
        super().check_targets(target, owner)
        if target.size and (target.min() < 0 or target.max() > 1):
            raise DataError(f"{owner}: binary cross-entropy targets are probabilities in [0, 1], "
                            f"got values from {float(target.min())} to {float(target.max())}; "
                            "use 0/1 labels or fractions")

    def forward_device(self, pred, target):
        B = backends.current()
        xp = B.xp
        self.t = t = _targets("BinaryCrossEntropy", pred, target, B)
        self.n = pred.shape[0]
        x = pred.astype(B.acc_dtype, copy=False)
        if self.from_logits:
            self.p = F.sigmoid(x)
            loss = F.bce_with_logits(x, t).sum()
        else:
            self.p = xp.clip(x, self.eps, 1 - self.eps)
            loss = -(t * xp.log(self.p) + (1 - t) * xp.log1p(-self.p)).sum()
        return loss / self.n

    def backward(self):
        if self.from_logits:
            return (self.p - self.t) / self.n
        return (self.p - self.t) / (self.p * (1 - self.p)) / self.n

    def predict_classes(self, pred):
        if self.from_logits and pred.ndim == 2 and pred.shape[1] == 1:
            return (pred[:, 0] > 0).astype("int64")
        return super().predict_classes(pred)

    def config(self):
        return {"from_logits": self.from_logits, "eps": self.eps}


class GaussianKL(Loss):
    """Kullback-Leibler divergence of ``N(mu, sigma²)`` from ``N(0, 1)``: a VAE's prior term.

    ``pred`` is the encoder's output ``(N, 2D)`` = ``[mu, log sigma²]`` (what
    :class:`nn.layers.Reparameterize` takes); there is no target. Per example::

        KL = 1/2 sum_d (mu_d² + sigma_d² - log sigma_d² - 1)

    (zero exactly when ``mu = 0`` and ``sigma = 1``), times ``weight`` (the beta of a beta-VAE),
    batch mean. Gradient::

        dKL/dmu = weight mu / N          dKL/d(log sigma²) = weight (sigma² - 1) / (2N)
    """

    def __init__(self, weight: float = 1.0):
        if not (isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0):
            raise ConfigError(f"GaussianKL: weight must be a number >= 0, got {weight!r}")
        self.weight = float(weight)

    def forward(self, pred, target=None) -> float:
        return float(self.forward_device(pred, target))

    def forward_device(self, pred, target=None):
        B = backends.current()
        if pred.ndim != 2 or pred.shape[1] % 2:
            raise ShapeError(f"GaussianKL: expected the encoder's output (N, 2D) = [mu, log "
                             f"sigma²], got shape {tuple(pred.shape)}")
        z = pred.astype(B.acc_dtype, copy=False)
        D = z.shape[1] // 2
        self.mu, self.log_var = z[:, :D], z[:, D:]
        self.var = B.xp.exp(self.log_var)
        self.n = z.shape[0]
        kl = 0.5 * (self.mu * self.mu + self.var - self.log_var - 1).sum()
        return self.weight * kl / self.n

    def backward(self):
        B = backends.current()
        grad = B.xp.empty((self.n, 2 * self.mu.shape[1]), dtype=self.mu.dtype)
        D = self.mu.shape[1]
        grad[:, :D] = self.mu
        grad[:, D:] = 0.5 * (self.var - 1)
        grad *= self.weight / self.n
        return grad

    def config(self):
        return {"weight": self.weight}


__all__ = ["Loss", "MSE", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "GaussianKL"]
