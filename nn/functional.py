"""The formulas layers, losses and YOLO share, written once, with their derivatives.

Each function takes arrays of the current backend (NumPy or CuPy) and returns a new array;
nothing is modified in place. Where a derivative is simpler in terms of the output (sigmoid,
softmax), the ``*_grad`` function takes the output.

==================================  =========================================================
function                            formula (course notation)
==================================  =========================================================
``sigmoid(x, beta)``                ``y = 1 / (1 + exp(-beta x))``
``sigmoid_grad(y, dy, beta)``       ``dx = dy * beta y (1 - y)``
``softmax(z, axis)``                ``y_k = exp(z_k) / sum_j exp(z_j)``
``softmax_grad(y, dy, axis)``       ``dx = y * (dy - sum_j dy_j y_j)``  (Jacobian diag(y) - y yᵀ)
``log_softmax(z, axis)``            ``z_k - log sum_j exp(z_j)``
``cross_entropy(z, t, axis)``       ``-sum_k t_k log softmax(z)_k``, per example; d/dz = softmax(z) - t
``bce_with_logits(z, t)``           ``-[t log s + (1 - t) log(1 - s)]``, ``s = sigmoid(z)``, per element;
                                    d/dz = s - t
==================================  =========================================================

Numerics: ``softmax`` and ``log_softmax`` subtract the maximum first (``exp`` cannot
overflow); ``bce_with_logits`` uses ``max(z, 0) - t z + log(1 + exp(-|z|))``, the same value
without ``log(0)``. For ``x << 0``, ``exp(-beta x)`` overflows to inf in ``sigmoid`` and
``1 / inf = 0`` is the right limit; the overflow warning is silenced for that reason.
"""
from __future__ import annotations

from . import backends


def _xp():
    return backends.current().xp


def sigmoid(x, beta: float = 1.0):
    """``1 / (1 + exp(-beta x))``, the logistic function with the course's slope ``beta``.

    Computed in four passes over one new array (``-beta x``, ``exp``, ``+ 1``, reciprocal)
    rather than as one expression, whose every intermediate would be a fresh array.
    """
    B = backends.current()
    xp = B.xp
    y = xp.multiply(x, x.dtype.type(-beta))
    with B.errstate(over="ignore"):
        xp.exp(y, out=y)
    y += 1
    return xp.reciprocal(y, out=y)


def sigmoid_grad(y, dy, beta: float = 1.0):
    """``dy * beta y (1 - y)``: the sigmoid's backward, from its output ``y``."""
    xp = _xp()
    dx = xp.subtract(1, y, dtype=y.dtype)
    dx *= y
    dx *= dy
    dx *= dx.dtype.type(beta)
    return dx


def softmax(z, axis: int = 1):
    """``exp(z) / sum exp(z)`` along ``axis``, computed as ``exp(z - max z)`` (no overflow)."""
    xp = _xp()
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def softmax_grad(y, dy, axis: int = 1):
    """``y * (dy - sum_j dy_j y_j)``: the softmax's backward, from its output ``y``."""
    dot = (dy * y).sum(axis=axis, keepdims=True)
    return y * (dy - dot)


def log_softmax(z, axis: int = 1):
    """``z - max z - log sum exp(z - max z)`` along ``axis``: ``log softmax(z)`` without overflow."""
    xp = _xp()
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(z, t, axis: int = 1):
    """``-sum_k t_k log softmax(z)_k`` along ``axis``, one value per example.

    ``t`` holds one-hot rows or probabilities, shaped like ``z``. The gradient with respect
    to the logits is ``softmax(z) - t`` (for rows of ``t`` that sum to 1).
    """
    return -(t * log_softmax(z, axis)).sum(axis=axis)


def bce_with_logits(z, t):
    """Binary cross-entropy of ``sigmoid(z)`` against ``t``, element-wise, from the logits.

    ``max(z, 0) - t z + log(1 + exp(-|z|))`` equals ``-[t log s + (1 - t) log(1 - s)]``
    with ``s = sigmoid(z)``, without ``log(0)`` for large ``|z|``; the gradient with respect
    to ``z`` is ``s - t``.
    """
    xp = _xp()
    return xp.maximum(z, 0) - t * z + xp.log1p(xp.exp(-xp.abs(z)))


__all__ = ["sigmoid", "sigmoid_grad", "softmax", "softmax_grad", "log_softmax",
           "cross_entropy", "bce_with_logits"]
