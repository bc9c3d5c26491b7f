"""Weight initialisation schemes, chosen by name when a layer is built.

==========  ================================================  ===============================
name        distribution                                      fits
==========  ================================================  ===============================
"xavier"    U(-a, a), a = sqrt(6 / (fan_in + fan_out))        sigmoid, tanh, softmax, linear
            (the default; "auto" is an older name for it)
"he"        N(0, s²), s = sqrt(2 / ((1 + alpha²) fan_in))     a layer followed by ReLU
                                                              (alpha = 0) or LeakyReLU(alpha)
"uniform"   U(-0.01, 0.01)                                    the course's perceptron and MLP
"zeros"     all zeros                                         tests, biases
==========  ================================================  ===============================

The choice is made once, where the layer is built: ``Dense(784, 128, init="he")`` before a
ReLU. A :class:`nn.Network` never changes the weights it is given. Biases start at zero.

Why the scale matters: each layer multiplies the variance of its input by about
``fan_in * var(W)``; Xavier keeps it near 1 for symmetric activations, He doubles it to make
up for the half of the values a ReLU sets to zero. Too small and the signal (and the gradient)
dies away layer after layer; too large and it explodes.

Weights are drawn on the host with ``backends.current().host_rng`` so that one seed gives
the same network on every backend.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backends
from ..errors import ConfigError
from .base import init_deferred

SCHEMES = ("xavier", "he", "uniform", "zeros", "auto")


def check_scheme(scheme, owner: str) -> str:
    if scheme not in SCHEMES:
        raise ConfigError(f"{owner}: unknown init {scheme!r}: choose one of "
                          f"{', '.join(map(repr, SCHEMES[:-1]))}")
    return scheme


def draw(scheme: str, shape, fan_in: int, fan_out: int, rng, alpha: float = 0.0) -> np.ndarray:
    """A float64 host array of ``shape`` drawn by ``scheme`` (see the module table)."""
    check_scheme(scheme, "init")
    if scheme in ("auto", "xavier"):
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape)
    if scheme == "he":
        return rng.normal(0.0, math.sqrt(2.0 / ((1.0 + alpha**2) * fan_in)), size=shape)
    if scheme == "uniform":
        return rng.uniform(-0.01, 0.01, size=shape)
    return np.zeros(shape)


def weight_and_bias(scheme: str, W_shape, fan_in: int, fan_out: int, n_bias: int | None,
                    alpha: float = 0.0) -> dict:
    """``{"W": drawn by scheme, "b": zeros (n_bias,)}`` on the current backend (no ``"b"`` when
    ``n_bias`` is None); ``{}`` while :func:`nn.layers.base.deferred_init` is active."""
    if init_deferred():
        return {}
    B = backends.current()
    params = {"W": B.param(draw(scheme, W_shape, fan_in, fan_out, B.host_rng, alpha))}
    if n_bias is not None:
        params["b"] = B.xp.zeros(n_bias, dtype=B.param_dtype)
    return params
