"""Layers that only change the shape."""
from __future__ import annotations

import math

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
