"""Element-wise activations and the softmax.

Each keeps what its derivative needs: the output ``y`` when the derivative is a function of
``y`` (sigmoid, tanh, softmax), the input ``x`` otherwise (ReLU, LeakyReLU). The formulas
shared with the losses (sigmoid, softmax) live in :mod:`nn.functional`.

Speed note: several formulas below are computed in place (``out=``, ``*=``) on one new array
rather than as one expression. Each intermediate of an expression is a fresh array, and on
large batches allocating and first touching that memory costs more than the arithmetic. The
plain formula is always written beside it.
"""
from __future__ import annotations

from .. import backends
from .. import functional as F
from ..errors import ConfigError, StateError
from .base import Layer, real_number


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
        self.threshold = real_number(threshold, "threshold", "Step")

    def forward(self, x, train=False):
        return (x > self.threshold).astype(x.dtype)

    def backward(self, dy):
        raise StateError(
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
        self.beta = real_number(beta, "beta", "Sigmoid", low=0, low_open=True)

    def forward(self, x, train=False):
        self.y = F.sigmoid(x, self.beta)
        return self.y

    def backward(self, dy):
        self._check_dy(dy, self.y.shape)
        return F.sigmoid_grad(self.y, dy, self.beta)       # dy * beta y (1 - y)

    def config(self):
        return {"beta": self.beta}


class Tanh(Layer):
    """``y = tanh(x)``; derivative ``1 - y²``."""

    def forward(self, x, train=False):
        self.y = backends.current().xp.tanh(x)
        return self.y

    def backward(self, dy):
        self._check_dy(dy, self.y.shape)
        xp = backends.current().xp
        dx = self.y * self.y                   # dx = dy * (1 - y²), in place on y²
        xp.subtract(1, dx, out=dx)
        dx *= dy
        return dx


class ReLU(Layer):
    """``y = max(x, 0)``; derivative 1 where ``x > 0``, else 0 (0 at the kink itself).

    Computed as ``y = x * (x > 0)``, keeping the mask ``x > 0`` for ``dx = dy * (x > 0)``. On
    the CPU both are one numba pass (:meth:`nn.backends.base.Backend.relu`), where NumPy
    makes three (the mask, its cast to float, the product): twice as fast on large batches.
    """

    def forward(self, x, train=False):
        y, self.positive = backends.current().relu(x)       # x * (x > 0), and x > 0
        return y

    def backward(self, dy):
        self._check_dy(dy, self.positive.shape)
        return backends.current().times_mask(dy, self.positive)     # dy * (x > 0)


class LeakyReLU(Layer):
    """``y = x if x > 0 else alpha x``; derivative 1 or ``alpha``.

    With ``0 <= alpha < 1`` this is ``y = max(x, alpha x)``: two passes over memory, where
    ``where(x > 0, x, alpha x)`` takes several times longer.
    """

    def __init__(self, alpha: float = 0.1):
        super().__init__()
        self.alpha = real_number(alpha, "alpha", "LeakyReLU", low=0, high=1, high_open=True)

    #: forward and backward as one GPU kernel each (see Backend.elementwise): the formulas
    #: below launch two and three to five kernels. ``x > alpha x`` is ``x > 0`` for
    #: ``0 <= alpha < 1``, written so that no constant needs a float16 literal.
    _FORWARD = ("T x, T alpha", "T y", "const T ax = alpha * x;  y = x > ax ? x : ax;")
    _BACKWARD = ("T x, T dy, T alpha", "T dx", "dx = x > alpha * x ? dy : (T)(alpha * dy);")

    def forward(self, x, train=False):
        B = backends.current()
        xp = B.xp
        self.x = x
        kernel = B.elementwise(*self._FORWARD, "nn_leaky_relu")
        if kernel is not None:
            return kernel(x, self.alpha)
        kernels = self._cpu_kernels(x)
        if kernels is not None:           # the same formula in one pass (numba)
            x = self.x = xp.ascontiguousarray(x)
            y = xp.empty_like(x)
            kernels.leaky_relu(x.reshape(-1), self._alpha(x), y.reshape(-1))
            return y
        return B.in_float32(self._forward, x)

    def _forward(self, x):
        y = backends.current().xp.multiply(x, self._alpha(x))
        return backends.current().xp.maximum(x, y, out=y)         # max(x, alpha x)

    def backward(self, dy):
        self._check_dy(dy, self.x.shape)
        B = backends.current()
        kernel = B.elementwise(*self._BACKWARD, "nn_leaky_relu_backward")
        if kernel is not None:
            return kernel(self.x, dy, self.alpha)
        kernels = self._cpu_kernels(dy)
        if kernels is not None and dy.dtype == self.x.dtype:
            dy = B.xp.ascontiguousarray(dy)
            dx = B.xp.empty_like(dy)
            kernels.leaky_relu_backward(self.x.reshape(-1), dy.reshape(-1), self._alpha(dy),
                                        dx.reshape(-1))
            return dx
        return B.in_float32(self._backward, self.x, dy)

    @staticmethod
    def _cpu_kernels(a):
        """The numba kernels (:mod:`nn.backends.cpu_kernels`) when they take ``a``, else None.

        Speed: on the LeNet-like step's first LeakyReLU (64 x 6 x 28 x 28, float32) the
        formulas below took 0.063 ms forward and 0.118 backward, the kernels 0.031 and 0.046
        (2-core VM, the layer alone).
        """
        kernels = backends.current().numba_kernels()
        return kernels if kernels is not None and a.dtype in kernels.DTYPES else None

    def _backward(self, x, dy):
        alpha = self._alpha(dy)
        if dy.dtype.itemsize < 4:
            # float16 arithmetic (NumPy without the numba kernels) is slow: one product
            # only, dx = dy where x > 0, alpha dy elsewhere
            return backends.current().xp.where(x > 0, dy, dy * alpha)
        # dx = dy * (alpha + (1 - alpha) [x > 0]): four in-place passes on the mask, several
        # times faster in NumPy than where() or a masked copy (exact: the factor is 1 or alpha)
        dx = (x > 0).astype(dy.dtype)
        dx *= 1 - alpha
        dx += alpha
        dx *= dy
        return dx

    def _alpha(self, a):
        """``alpha`` as the activation dtype holds it (float16 under "mixed"), typed as ``a``."""
        return a.dtype.type(backends.current().dtype.type(self.alpha))

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
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ConfigError(f"Softmax: axis must be an int other than 0 (axis 0 is the batch), "
                              f"got {axis!r}")
        self.axis = axis

    def forward(self, x, train=False):
        B = backends.current()
        if not -x.ndim < self.axis < x.ndim or self.axis % x.ndim == 0:
            raise self._bad_shape(f"(N, C, ...) with an axis {self.axis} that is not the batch",
                                  x.shape)
        # computed in the accumulation dtype: float16 sums of exponentials lose digits
        y = F.softmax(x.astype(B.acc_dtype, copy=False), self.axis)
        self.y = y.astype(x.dtype, copy=False)
        return self.y

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, self.y.shape)
        y = self.y.astype(B.acc_dtype, copy=False)
        dx = F.softmax_grad(y, dy.astype(B.acc_dtype, copy=False), self.axis)
        return dx.astype(dy.dtype, copy=False)

    def config(self):
        return {"axis": self.axis}

    def __repr__(self):
        return "Softmax()" if self.axis == 1 else f"Softmax(axis={self.axis})"
