"""The reparameterisation of a variational autoencoder: a random sample with a gradient.

A VAE's encoder does not output a code ``z`` but a Gaussian over codes: its mean ``mu`` and
its log-variance ``log sigma²``. Sampling ``z ~ N(mu, sigma²)`` has no gradient with respect
to ``mu`` and ``sigma``; written as a shift and a scale of fixed noise it has one
(Kingma & Welling, 2014)::

    z = mu + sigma * e,        sigma = exp(log sigma² / 2),        e ~ N(0, 1) drawn once

so ``dz/dmu = 1`` and ``dz/d(log sigma²) = e * sigma / 2``: the noise is an input, not a
parameter, and backpropagation goes through the shift and the scale.
"""
from __future__ import annotations

from .. import backends
from .base import Layer, positive_int


class Reparameterize(Layer):
    """``(N, 2D)`` = ``[mu, log sigma²]`` -> ``z (N, D)``, ``z = mu + exp(log sigma² / 2) e``.

    With ``train=True`` a new ``e ~ N(0, 1)`` is drawn from the backend's generator at each
    forward; with ``train=False`` the layer returns ``mu`` (the most likely code), so
    ``predict`` is deterministic.

    Backward, for ``dz = dL/dz``::

        dmu = dz            d(log sigma²) = dz * e * sigma / 2

    The Kullback-Leibler term of the VAE's loss is :class:`nn.losses.GaussianKL`, applied to
    this layer's input.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = positive_int(latent_dim, "latent_dim", "Reparameterize")

    def forward(self, x, train=False):
        B = backends.current()
        D = self.latent_dim
        if x.ndim != 2 or x.shape[1] != 2 * D:
            raise self._bad_shape(f"(N, {2 * D}) = [mu, log sigma²]", x.shape)
        mu, log_var = x[:, :D], x[:, D:]
        self.n = x.shape[0]
        if not train:
            self.e = None
            return mu.copy()
        self.e = B.rng.standard_normal(mu.shape, dtype=B.xp.float32).astype(x.dtype)
        self.sigma = B.xp.exp(0.5 * log_var)
        return mu + self.sigma * self.e

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, (self.n, self.latent_dim))
        dx = B.xp.empty((self.n, 2 * self.latent_dim), dtype=dy.dtype)
        dx[:, :self.latent_dim] = dy                                   # dmu = dz
        if self.e is None:
            dx[:, self.latent_dim:] = 0                                # train=False: z = mu
        else:
            dx[:, self.latent_dim:] = dy * self.e * self.sigma * 0.5   # d(log sigma²)
        return dx

    def output_shape(self, input_shape):
        if tuple(input_shape) != (2 * self.latent_dim,):
            raise self._bad_shape(f"(N, {2 * self.latent_dim})", ("N", *input_shape))
        return (self.latent_dim,)

    def config(self):
        return {"latent_dim": self.latent_dim}
