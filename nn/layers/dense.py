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
        Weight initialisation, one of :data:`nn.layers.init.SCHEMES` ("auto": Xavier, or He
        when a Network sees a ReLU after this layer; "uniform": the course's U(-0.01, 0.01)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "auto"):
        super().__init__()
        in_features = positive_int(in_features, "in_features", "Dense")
        out_features = positive_int(out_features, "out_features", "Dense")
        if init not in initializers.SCHEMES:
            raise ValueError(f"Dense: unknown init {init!r}: choose one of {initializers.SCHEMES}")
        self.in_features, self.out_features = in_features, out_features
        self.bias, self.init = bool(bias), init
        self.reset_parameters()

    def reset_parameters(self, scheme: str | None = None, alpha: float = 0.0):
        """Draw fresh weights (``scheme`` overrides ``self.init`` once) and zero the bias."""
        B = backends.current()
        shape = (self.in_features, self.out_features)
        W = initializers.draw(scheme or self.init, shape, self.in_features, self.out_features,
                              B.host_rng, alpha)
        self.params = {"W": B.param(W)}
        if self.bias:
            self.params["b"] = B.xp.zeros(self.out_features, dtype=B.param_dtype)
        self.grads = {}

    def forward(self, x, train=False):
        B = backends.current()
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._bad_shape(f"(N, {self.in_features})", x.shape)
        self.x = B.asarray(x)
        self.W = B.cast(self.params["W"])  # the float16 copy under "mixed", else W itself
        y = B.matmul(self.x, self.W)
        if self.bias:
            y += B.cast(self.params["b"])
        return y

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, (self.x.shape[0], self.out_features))
        self.grads["W"] = B.matmul(self.x.T, dy).astype(B.param_dtype, copy=False)
        if self.bias:
            # db = dy summed over the batch, written as the dW formula for a constant input of
            # ones (the course's bias input): one BLAS call, where NumPy's dy.sum(axis=0) on a
            # narrow (N, out) array is several times slower
            ones = B.xp.ones(dy.shape[0], dtype=dy.dtype)
            self.grads["b"] = B.matmul(ones, dy).astype(B.param_dtype, copy=False)
        return B.matmul(dy, self.W.T) if self.input_grad else None

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
