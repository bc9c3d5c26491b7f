"""Denoising diffusion (DDPM, Ho et al. 2020) and its fewer-step sampler (DDIM, Song et al. 2021).

The forward process adds Gaussian noise in ``T`` small steps, with variances ``beta_t``::

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t)

and, because Gaussians compose, any step can be drawn from the clean image directly::

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t)),     abar_t = prod_{s<=t} (1 - beta_s)

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) e,          e ~ N(0, 1)

A network ``e_theta(x_t, t)`` learns to predict the noise ``e`` (mean squared error: the
slides' "a DDPM can be built from any denoising network architecture"). Generation runs the
process backwards from pure noise. Given ``x_0``, the previous step is Gaussian too (Bayes on
Gaussians), the *posterior*::

    q(x_{t-1} | x_t, x_0) = N(mu_t, beta~_t)
    mu_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
    beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)

and replacing ``x_0`` by its estimate from the predicted noise,
``x0_hat = (x_t - sqrt(1 - abar_t) e_theta) / sqrt(abar_t)``, gives the DDPM reverse step::

    x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) e_theta) + sigma_t z

DDIM takes the same trained network and jumps from ``t`` to any earlier ``s``::

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma²) e_theta + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)

deterministic for ``eta = 0``, DDPM's step for ``eta = 1`` and ``s = t - 1``.

Steps are numbered ``t = 0 .. T-1`` (0 is the first noising step; ``abar`` before it is 1).
Arrays are those of the current backend; the schedule itself is a small host array.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import backends
from .errors import ConfigError, DataError


class NoiseSchedule:
    """The ``beta_t`` of a diffusion process and everything derived from them.

    Attributes (host float64 arrays of length ``T``): ``betas``, ``alphas = 1 - betas``,
    ``alpha_bar`` (cumulative product), ``alpha_bar_prev`` (shifted, starting at 1).

    Build one with :meth:`linear` (Ho et al.: 1e-4 to 0.02 over 1000 steps) or :meth:`cosine`
    (Nichol & Dhariwal 2021, the course's notebooks: ``abar_t`` follows a squared cosine, so
    the image is destroyed more evenly over the steps).
    """

    def __init__(self, betas):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size < 1 or not np.all((betas > 0) & (betas < 1)):
            raise ConfigError("NoiseSchedule: betas must be a non-empty 1-D sequence of values in "
                              "(0, 1)")
        self.betas = betas
        self.alphas = 1 - betas
        self.alpha_bar = np.cumprod(self.alphas)
        self.alpha_bar_prev = np.concatenate([[1.0], self.alpha_bar[:-1]])

    @property
    def T(self) -> int:
        return len(self.betas)

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float | None = None,
               beta_end: float | None = None):
        """``beta_t`` in a straight line from ``beta_start`` to ``beta_end``.

        The defaults are Ho et al.'s 1e-4 and 0.02 for ``T = 1000``, scaled by ``1000 / T``
        for other ``T`` (as Nichol & Dhariwal do), so that the last step is noise either way.
        """
        _check_T(T)
        scale = 1000 / T
        beta_start = 1e-4 * scale if beta_start is None else beta_start
        beta_end = min(0.02 * scale, 0.999) if beta_end is None else beta_end
        return cls(np.linspace(beta_start, beta_end, T))

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999):
        """``abar_t = f(t + 1) / f(0)``, ``f(t) = cos²((t/T + s) / (1 + s) pi/2)``; the betas
        follow from ``beta_t = 1 - abar_t / abar_{t-1}``, clipped at ``max_beta``."""
        _check_T(T)
        steps = np.arange(T + 1, dtype=np.float64) / T
        f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]
        return cls(np.clip(1 - abar[1:] / abar[:-1], 1e-8, max_beta))

    def __repr__(self):
        return (f"NoiseSchedule(T={self.T}, beta from {self.betas[0]:.3g} to "
                f"{self.betas[-1]:.3g}, abar_T = {self.alpha_bar[-1]:.3g})")

    # -- helpers ------------------------------------------------------------------------------
    def _at(self, values, t, x):
        """``values[t]`` shaped to broadcast against ``x (N, ...)``, on ``x``'s backend."""
        B = backends.current()
        t = np.asarray(backends.to_host(t) if not isinstance(t, numbers.Integral) else t)
        if t.dtype.kind not in "iu" or (t < 0).any() or (t >= self.T).any():
            raise DataError(f"diffusion step t must be integers in [0, {self.T}), got {t!r}")
        v = values[t].astype(np.float64)
        if v.ndim:
            v = v.reshape((-1,) + (1,) * (x.ndim - 1))
        return B.xp.asarray(v, dtype=x.dtype)

    # -- the forward process --------------------------------------------------------------------
    def q_sample(self, x0, t, noise):
        """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise`` (``t`` an int or one per example)."""
        return self._at(np.sqrt(self.alpha_bar), t, x0) * x0 + \
            self._at(np.sqrt(1 - self.alpha_bar), t, x0) * noise

    def posterior(self, x0, xt, t):
        """Mean and variance of ``q(x_{t-1} | x_t, x_0)`` (module docstring)."""
        a, abar, abar_prev = self.alphas, self.alpha_bar, self.alpha_bar_prev
        c0 = np.sqrt(abar_prev) * self.betas / (1 - abar)
        ct = np.sqrt(a) * (1 - abar_prev) / (1 - abar)
        mean = self._at(c0, t, xt) * x0 + self._at(ct, t, xt) * xt
        variance = self._at(self.betas * (1 - abar_prev) / (1 - abar), t, xt)
        return mean, variance

    def predict_x0(self, xt, t, noise):
        """``x0_hat = (x_t - sqrt(1 - abar_t) noise) / sqrt(abar_t)``."""
        return (xt - self._at(np.sqrt(1 - self.alpha_bar), t, xt) * noise) / \
            self._at(np.sqrt(self.alpha_bar), t, xt)

    # -- the reverse process ----------------------------------------------------------------------
    def ddpm_step(self, xt, t: int, noise_pred, z=None, variance: str = "posterior",
                  clip_x0=None):
        """``x_{t-1}`` from ``x_t`` and the predicted noise (one DDPM step; no noise at t = 0).

        ``variance``: ``"posterior"`` (``beta~_t``) or ``"beta"`` (``beta_t``, Ho et al.'s other
        choice). ``z`` is the fresh Gaussian noise (drawn from the backend's generator if None).
        ``clip_x0=(low, high)``: the estimate ``x0_hat`` is clipped to the data's range and the
        posterior mean taken from it (what lets the late, large betas of a cosine schedule
        work: unclipped, an error of the network is multiplied by ``1/sqrt(abar_t)``).
        """
        if variance not in ("posterior", "beta"):
            raise ConfigError(f"ddpm_step: variance must be 'posterior' or 'beta', got {variance!r}")
        B = backends.current()
        if clip_x0 is None:
            coef = self.betas[t] / math.sqrt(1 - self.alpha_bar[t])
            mean = (xt - coef * noise_pred) / math.sqrt(self.alphas[t])
        else:
            x0 = B.xp.clip(self.predict_x0(xt, t, noise_pred), *_range(clip_x0))
            mean, _ = self.posterior(x0, xt, t)
        if t == 0:
            return mean
        var = (self.betas[t] * (1 - self.alpha_bar_prev[t]) / (1 - self.alpha_bar[t])
               if variance == "posterior" else self.betas[t])
        if z is None:
            z = B.rng.standard_normal(xt.shape, dtype=B.xp.float32).astype(xt.dtype)
        return mean + math.sqrt(var) * z

    def ddim_step(self, xt, t: int, s: int, noise_pred, eta: float = 0.0, z=None, clip_x0=None):
        """``x_s`` (``s < t``, ``s = -1`` for the clean image) from ``x_t`` in one DDIM jump.

        ``clip_x0=(low, high)`` clips ``x0_hat`` and recomputes the noise from it.
        """
        if not -1 <= s < t:
            raise ConfigError(f"ddim_step: need -1 <= s < t, got s={s}, t={t}")
        B = backends.current()
        abar_t = self.alpha_bar[t]
        abar_s = 1.0 if s < 0 else self.alpha_bar[s]
        x0 = (xt - math.sqrt(1 - abar_t) * noise_pred) / math.sqrt(abar_t)
        if clip_x0 is not None:
            x0 = B.xp.clip(x0, *_range(clip_x0))
            noise_pred = (xt - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)
        sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t)) * math.sqrt(1 - abar_t / abar_s)
        out = math.sqrt(abar_s) * x0 + math.sqrt(max(1 - abar_s - sigma**2, 0.0)) * noise_pred
        if sigma > 0:
            if z is None:
                z = B.rng.standard_normal(xt.shape, dtype=B.xp.float32).astype(xt.dtype)
            out = out + sigma * z
        return out

    def timesteps(self, steps: int | None = None) -> list:
        """The steps a sampler visits, from ``T - 1`` down to 0: all of them, or ``steps``
        evenly spaced ones (DDIM)."""
        if steps is None:
            return list(range(self.T - 1, -1, -1))
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.T:
            raise ConfigError(f"steps must be an int in [1, {self.T}], got {steps!r}")
        return sorted({int(round(v)) for v in np.linspace(0, self.T - 1, steps)}, reverse=True)

    def sample(self, predict_noise, shape, steps: int | None = None, eta: float = 0.0,
               seed: int | None = None, clip_x0=None):
        """Generate ``shape`` samples from pure noise.

        ``predict_noise(x_t, t)`` returns the network's noise estimate (``t`` an int).
        ``steps=None`` runs the full DDPM chain (``T`` steps); a number runs DDIM over that
        many evenly spaced steps (``eta = 0``: deterministic). ``clip_x0=(low, high)`` clips
        each step's estimate of the clean image (e.g. ``(-1, 1)`` for images scaled there).
        Returns a backend array.
        """
        B = backends.current()
        if seed is not None:
            B.seed(seed)
        x = B.rng.standard_normal(tuple(shape), dtype=B.xp.float32).astype(B.dtype)
        if steps is None:
            for t in self.timesteps():
                x = self.ddpm_step(x, t, predict_noise(x, t), clip_x0=clip_x0)
            return x
        ts = self.timesteps(steps)
        for t, s in zip(ts, ts[1:] + [-1]):
            x = self.ddim_step(x, t, s, predict_noise(x, t), eta, clip_x0=clip_x0)
        return x


def _range(clip_x0):
    try:
        low, high = (float(v) for v in clip_x0)
    except (TypeError, ValueError):
        raise ConfigError(f"clip_x0 must be a pair (low, high), got {clip_x0!r}") from None
    if not low < high:
        raise ConfigError(f"clip_x0 must have low < high, got {clip_x0!r}")
    return low, high


def _check_T(T):
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ConfigError(f"the number of diffusion steps T must be an int >= 1, got {T!r}")


__all__ = ["NoiseSchedule"]
