"""Layers that only change the shape."""
from __future__ import annotations

import math

from ..errors import ConfigError
from .base import Layer


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``, e.g. between convolutions and Dense."""

    def forward(self, x, train=False):
        if x.ndim < 2:
            raise self._bad_shape("(N, ...) with at least 2 axes", x.shape)
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        self._check_dy(dy, (self.shape[0], math.prod(self.shape[1:])))
        return dy.reshape(self.shape)

    def output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self._bad_shape("(N, ...) with at least 2 axes", ("N", *input_shape))
        return (math.prod(input_shape),)


class Unflatten(Layer):
    """``(N, d1 * d2 * ...) -> (N, d1, d2, ...)``, the inverse of :class:`Flatten`, e.g.
    between the Dense layers of a decoder and its transposed convolutions.

    Parameters
    ----------
    shape : tuple of int
        The shape of one example after the layer, e.g. ``(32, 7, 7)``; the input must have
        ``prod(shape)`` features.
    """

    def __init__(self, shape):
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                for d in shape):
            raise ConfigError(f"Unflatten: shape must be a tuple of positive ints, got {shape!r}")
        self.shape = shape

    def forward(self, x, train=False):
        if x.ndim != 2 or x.shape[1] != math.prod(self.shape):
            raise self._bad_shape(f"(N, {math.prod(self.shape)})", x.shape)
        self.n = x.shape[0]
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy):
        self._check_dy(dy, (self.n, *self.shape))
        return dy.reshape(self.n, -1)

    def output_shape(self, input_shape):
        if tuple(input_shape) != (math.prod(self.shape),):
            raise self._bad_shape(f"(N, {math.prod(self.shape)})", ("N", *input_shape))
        return self.shape

    def config(self):
        return {"shape": list(self.shape)}
