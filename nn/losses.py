"""Losses: ``forward(pred, target) -> float`` (mean over the batch), ``backward() -> dpred``.

They compute in the backend's accumulation dtype (float32 under ``"mixed"``) and return the
gradient in that dtype; :class:`nn.Network` scales it (``"mixed"``) and casts it for the layers.

A subclass writes :meth:`Loss.forward_device`, which returns the mean loss as a 0-d array
left where the predictions are; ``forward`` is that value as a Python ``float``. On a GPU,
making a ``float`` waits for the device, so ``Network.fit`` sums ``forward_device`` values on
the device and reads the sum once per epoch. (A subclass that only writes ``forward`` also
works; fit then reads its loss once per batch.)
"""
from __future__ import annotations

from . import backends
from .registry import Registry

LOSSES = Registry("loss")


class Loss:
    """Base class; subclasses are registered by name so a saved Network can name its loss."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LOSSES.add(cls)

    def forward(self, pred, target) -> float:
        """Mean loss over the batch, as a Python float; keeps what ``backward`` needs."""
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
    if target.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1:
        # one output per example: the targets are its values (0/1 labels for a binary
        # classifier), not class ids to one-hot encode over a single class
        target = target.reshape(-1, 1)
    elif target.ndim == 1 and target.dtype.kind in "iu" and pred.ndim == 2:
        if target.shape[0] != pred.shape[0]:
            raise ValueError(f"{owner}: {pred.shape[0]} predictions but {target.shape[0]} targets")
        n_classes = pred.shape[1]
        # checked where it is free; on a GPU it would wait for the device at every batch
        if B.on_host and target.size and (target.min() < 0 or target.max() >= n_classes):
            raise ValueError(f"{owner}: class ids must lie in [0, {n_classes}) for predictions "
                             f"of shape {tuple(pred.shape)}, got ids from {target.min()} to "
                             f"{target.max()}")
        onehot = xp.zeros(pred.shape, dtype=B.acc_dtype)
        onehot[xp.arange(target.shape[0]), target] = 1
        return onehot
    if target.shape != pred.shape:
        raise ValueError(f"{owner}: predictions have shape {tuple(pred.shape)} but targets have "
                         f"shape {tuple(target.shape)}; give targets of the same shape (or class "
                         "ids of shape (N,))")
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
    ``log softmax(z) = z - max z - log sum exp(z - max z)`` without overflow.
    Logits ``(N, C)``; targets class ids ``(N,)`` or one-hot / probabilities ``(N, C)``.
    """

    def forward_device(self, pred, target):
        B = backends.current()
        xp = B.xp
        if pred.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: expected logits of shape (N, C), got "
                             f"{tuple(pred.shape)}")
        t = _targets("SoftmaxCrossEntropy", pred, target, B)
        z = pred.astype(B.acc_dtype, copy=False)
        z = z - z.max(axis=1, keepdims=True)
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        self.probs = e / s
        self.t = t
        self.n = pred.shape[0]
        log_probs = z - xp.log(s)
        return -(t * log_probs).sum() / self.n

    def backward(self):
        return (self.probs - self.t) / self.n


class BinaryCrossEntropy(Loss):
    """``L = -sum_k [t_k log p_k + (1 - t_k) log(1 - p_k)]`` per example, batch mean.

    With ``from_logits=False`` (default) ``pred`` holds probabilities (after a Sigmoid) and
    ``dL/dp = (p - t) / (p (1 - p)) / N``, with ``p`` kept in ``[eps, 1 - eps]``.
    With ``from_logits=True`` ``pred`` holds logits ``z`` and the sigmoid is fused:
    ``L = sum [max(z, 0) - t z + log(1 + exp(-|z|))]``, ``dL/dz = (sigmoid(z) - t) / N``.
    """

    def __init__(self, from_logits: bool = False, eps: float = 1e-7):
        self.from_logits = bool(from_logits)
        self.eps = float(eps)

    def forward_device(self, pred, target):
        B = backends.current()
        xp = B.xp
        t = _targets("BinaryCrossEntropy", pred, target, B)
        self.t = t
        self.n = pred.shape[0]
        x = pred.astype(B.acc_dtype, copy=False)
        if self.from_logits:
            self.p = 0.5 * (1 + xp.tanh(0.5 * x))
            loss = (xp.maximum(x, 0) - t * x + xp.log1p(xp.exp(-xp.abs(x)))).sum()
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


__all__ = ["Loss", "MSE", "SoftmaxCrossEntropy", "BinaryCrossEntropy"]
