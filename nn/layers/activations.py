"""Element-wise activations and the softmax.

Each keeps what its derivative needs: the output ``y`` when the derivative is a function of
``y`` (sigmoid, tanh, softmax), the input ``x`` otherwise (ReLU, LeakyReLU).

Several formulas are computed in place (``out=``, ``+=``) on one new array rather than as a
single expression: each intermediate of an expression is a fresh array, and on large batches
allocating and first touching that memory costs more than the arithmetic itself.
"""
from __future__ import annotations

from .. import backends
from .base import Layer


class Identity(Layer):
    """``y = x``; a placeholder (e.g. a linear output layer)."""

    def forward(self, x, train=False):
        self.shape = x.shape
        return x

    def backward(self, dy):
        self._check_dy(dy, self.shape)
        return dy


class Step(Layer):
    """The perceptron's binary neuron: ``y = 1 if x > threshold else 0``.

    Its derivative is zero wherever it exists, so it cannot be trained by backpropagation;
    the perceptron learns with its own rule, ``w -= lr * (y - t) * x``.
    """

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = float(threshold)

    def forward(self, x, train=False):
        return (x > self.threshold).astype(x.dtype)

    def backward(self, dy):
        raise RuntimeError(
            "Step has no usable gradient (it is zero almost everywhere): train a perceptron with "
            "its learning rule, or use Sigmoid(beta) for a network trained by backpropagation")

    def config(self):
        return {"threshold": self.threshold}


class Sigmoid(Layer):
    """The logistic function with the course's slope ``beta``.

    ``y = 1 / (1 + exp(-beta x))``; derivative ``dy/dx = beta y (1 - y)``.
    """

    def __init__(self, beta: float = 1.0):
        super().__init__()
        if not beta > 0:
            raise ValueError(f"Sigmoid: beta must be > 0, got {beta!r}")
        self.beta = float(beta)

    def forward(self, x, train=False):
        B = backends.current()
        xp = B.xp
        y = xp.multiply(x, -self.beta)        # -beta x
        # for x << 0, exp(-beta x) overflows to inf and y = 1 / inf = 0: the right limit
        with B.errstate(over="ignore"):
            xp.exp(y, out=y)                   # exp(-beta x)
        y += 1
        self.y = xp.reciprocal(y, out=y)       # 1 / (1 + exp(-beta x))
        return self.y

    def backward(self, dy):
        self._check_dy(dy, self.y.shape)
        dx = 1 - self.y                        # dx = dy * beta * y * (1 - y)
        dx *= self.y
        dx *= dy
        dx *= self.beta
        return dx

    def config(self):
        return {"beta": self.beta}


class Tanh(Layer):
    """``y = tanh(x)``; derivative ``1 - y²``."""

    def forward(self, x, train=False):
        self.y = backends.current().xp.tanh(x)
        return self.y

    def backward(self, dy):
        self._check_dy(dy, self.y.shape)
        dx = self.y * self.y                   # dx = dy * (1 - y²)
        backends.current().xp.subtract(1, dx, out=dx)
        dx *= dy
        return dx


class ReLU(Layer):
    """``y = max(x, 0)``; derivative 1 where ``x > 0``, else 0 (0 at the kink itself)."""

    def forward(self, x, train=False):
        self.positive = x > 0
        return x * self.positive

    def backward(self, dy):
        self._check_dy(dy, self.positive.shape)
        return dy * self.positive


class LeakyReLU(Layer):
    """``y = x if x > 0 else alpha x``; derivative 1 or ``alpha``.

    With ``0 <= alpha < 1`` this is ``y = max(x, alpha x)``: two passes over memory, where
    ``where(x > 0, x, alpha x)`` takes several times longer.
    """

    def __init__(self, alpha: float = 0.1):
        super().__init__()
        if not 0 <= alpha < 1:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x, train=False):
        xp = backends.current().xp
        self.x = x
        y = xp.multiply(x, x.dtype.type(self.alpha))
        return xp.maximum(x, y, out=y)

    def backward(self, dy):
        self._check_dy(dy, self.x.shape)
        dx = (self.x > 0).astype(dy.dtype)     # dy/dx = alpha + (1 - alpha) [x > 0]
        dx *= dy.dtype.type(1 - self.alpha)
        dx += dy.dtype.type(self.alpha)
        dx *= dy
        return dx

    def config(self):
        return {"alpha": self.alpha}


class Softmax(Layer):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis`` (1, the class/channel axis).

    Backward (the Jacobian is ``diag(y) - y yᵀ``)::

        dx = y * (dy - sum_j dy_j y_j)

    For classification, prefer :class:`nn.losses.SoftmaxCrossEntropy` on the logits: the
    fused gradient ``softmax - target`` is cheaper and more accurate.
    """

    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = int(axis)

    def forward(self, x, train=False):
        B = backends.current()
        if x.ndim < 2:
            raise self._bad_shape("(N, C, ...)", x.shape)
        z = (x - x.max(axis=self.axis, keepdims=True)).astype(B.acc_dtype, copy=False)
        e = B.xp.exp(z)
        self.y = (e / e.sum(axis=self.axis, keepdims=True)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, self.y.shape)
        y = self.y.astype(B.acc_dtype, copy=False)
        dot = (dy * y).sum(axis=self.axis, keepdims=True, dtype=B.acc_dtype)
        return (y * (dy - dot)).astype(dy.dtype, copy=False)

    def config(self):
        return {"axis": self.axis}

    def __repr__(self):
        return "Softmax()" if self.axis == 1 else f"Softmax(axis={self.axis})"
