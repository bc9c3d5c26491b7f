"""Weight initialisation schemes, chosen by name.

==========  ================================================  ===============================
name        distribution                                      fits
==========  ================================================  ===============================
"xavier"    U(-a, a), a = sqrt(6 / (fan_in + fan_out))        sigmoid, tanh, softmax, linear
"he"        N(0, s²), s = sqrt(2 / ((1 + alpha²) fan_in))     ReLU, LeakyReLU(alpha)
"uniform"   U(-0.01, 0.01)                                    the course's perceptron and MLP
"zeros"     all zeros                                         tests, biases
"auto"      "xavier"; a :class:`nn.Network` redraws it with   the default
            "he" when the next layer is ReLU/LeakyReLU
==========  ================================================  ===============================

Weights are drawn on the host with ``backends.current().host_rng`` so that one seed gives
the same network on every backend.
"""
from __future__ import annotations

import math

import numpy as np

SCHEMES = ("auto", "xavier", "he", "uniform", "zeros")


def draw(scheme: str, shape, fan_in: int, fan_out: int, rng, alpha: float = 0.0) -> np.ndarray:
    """A float64 host array of ``shape`` drawn by ``scheme`` (see the module table)."""
    if scheme in ("auto", "xavier"):
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape)
    if scheme == "he":
        return rng.normal(0.0, math.sqrt(2.0 / ((1.0 + alpha**2) * fan_in)), size=shape)
    if scheme == "uniform":
        return rng.uniform(-0.01, 0.01, size=shape)
    if scheme == "zeros":
        return np.zeros(shape)
    raise ValueError(f"unknown init {scheme!r}: choose one of {', '.join(map(repr, SCHEMES))}")
