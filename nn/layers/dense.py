"""The fully connected layer."""
from __future__ import annotations

from .. import backends
from . import init as initializers
from .base import Layer, positive_int


class Dense(Layer):
    """Fully connected layer, ``y = x @ W + b``.

    Shapes: ``x (N, in_features)``, ``W (in_features, out_features)``, ``b (out_features,)``,
    ``y (N, out_features)`` — PyTorch's layout, transposed: a row of ``x`` is one example.

    Backward, for an upstream gradient ``dy = dL/dy``::

        dW = x.T @ dy        db = sum over the batch of dy        dx = dy @ W.T

    The course writes the bias as a weight on a constant input of -1; ``b`` here is that
    weight with the sign flipped, the same model.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Learn ``b`` (default) or fix it at zero.
    init : str
        Weight initialisation, one of :data:`nn.layers.init.SCHEMES`: ``"xavier"`` (the
        default), ``"he"`` before a ReLU, ``"uniform"`` the course's U(-0.01, 0.01).
    """

    skips_input_grad = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "xavier"):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features", "Dense")
        self.out_features = positive_int(out_features, "out_features", "Dense")
        self.bias = bool(bias)
        self.init = initializers.check_scheme(init, "Dense")
        self.reset_parameters()

    def param_shapes(self):
        shapes = {"W": (self.in_features, self.out_features)}
        if self.bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def reset_parameters(self, scheme: str | None = None, alpha: float = 0.0):
        """Draw fresh weights (``scheme`` overrides ``self.init`` once) and zero the bias."""
        self.params = initializers.weight_and_bias(
            scheme or self.init, (self.in_features, self.out_features), self.in_features,
            self.out_features, self.out_features if self.bias else None, alpha)
        self.grads = {}

    def forward(self, x, train=False):
        B = backends.current()
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._bad_shape(f"(N, {self.in_features})", x.shape)
        self.x = B.cast(x)
        self.W = self.weight("W")
        y = B.matmul(self.x, self.W)
        if self.bias:
            B.in_float32(B.xp.add, y, self.weight("b"), out=y)         # y += b
        return y

    def backward(self, dy, input_grad: bool = True):
        B = backends.current()
        self._check_dy(dy, (self.x.shape[0], self.out_features))
        if self.trainable:
            self.set_grad("W", B.matmul(self.x.T, dy))
            if self.bias:
                # db = dy summed over the batch, written as the dW formula for a constant input
                # of ones (the course's bias input): one BLAS call, where NumPy's
                # dy.sum(axis=0) on a narrow (N, out) array is several times slower
                ones = B.xp.ones(dy.shape[0], dtype=dy.dtype)
                self.set_grad("b", B.matmul(ones, dy))
        return B.matmul(dy, self.W.T) if input_grad else None

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise self._bad_shape(f"(N, {self.in_features})", ("N", *input_shape))
        return (self.out_features,)

    def input_shape(self):
        return (self.in_features,)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias, "init": self.init}

    def __repr__(self):
        return f"Dense({self.in_features}->{self.out_features}{'' if self.bias else ', bias=False'})"
