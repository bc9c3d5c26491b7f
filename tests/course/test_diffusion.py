"""The diffusion practical.

The noising against its closed form and ``nn.diffusion.NoiseSchedule.q_sample``; the
training batch by what it must hold (each image's step read back from its noise-level
channel, the noisy image rebuilt from the returned noise); the reverse step against
``NoiseSchedule.ddpm_step``, and the whole reverse chain with a perfect noise predictor,
which must land exactly on the one image it knows. All in float64, in well under a second
each.
"""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn.diffusion import NoiseSchedule

PRACTICAL = "diffusion"


def rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def images(n, seed=0, size=6):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 1, size, size))


# -- noise_images ---------------------------------------------------------------------------
@pytest.mark.student("noise_images")
@pytest.mark.parametrize("kind, per_image", [("cosine", True), ("linear", True),
                                             ("cosine", False)])
def test_noise_images_closed_form(module, report, kind, per_image):
    schedule = getattr(NoiseSchedule, kind)(50)
    x0 = images(5, seed=1)
    noise = np.random.default_rng(2).standard_normal(x0.shape)
    t = np.array([0, 7, 25, 48, 49]) if per_image else 17
    xt = np.asarray(module.noise_images(x0, t, noise, schedule.alpha_bar))
    abar = schedule.alpha_bar[t]
    abar = abar.reshape(-1, 1, 1, 1) if per_image else abar
    expected = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise
    with nn.backends.using("numpy", "fp64"):
        library = schedule.q_sample(x0, t, noise)
    err = max(rel_error(xt, expected), rel_error(xt, library))
    report(rel_error=err, limit=1e-12, case=f"{kind}, t {'per image' if per_image else '17'}")
    assert xt.shape == x0.shape
    assert err < 1e-12, "x_t is not sqrt(abar_t) x_0 + sqrt(1 - abar_t) e, abar_t of each image"


@pytest.mark.student("noise_images")
def test_noise_images_ends_clean_then_noise(module, report):
    """Batch of one: at the first step the image is nearly clean, at the last nearly noise."""
    schedule = NoiseSchedule.cosine(100)
    x0 = images(1, seed=3)
    noise = np.random.default_rng(4).standard_normal(x0.shape)
    first = np.asarray(module.noise_images(x0, np.array([0]), noise, schedule.alpha_bar))
    last = np.asarray(module.noise_images(x0, np.array([99]), noise, schedule.alpha_bar))
    err = max(np.abs(first - x0).max(), np.abs(last - noise).max())
    report(abs_error=err, limit=0.1, case="t = 0 and t = T - 1, N = 1")
    assert np.abs(first - x0).max() < 0.1, "at t = 0, x_t is almost x_0"
    assert np.abs(last - noise).max() < 0.1, "at t = T - 1, x_t is almost the noise"


# -- diffusion_batch ------------------------------------------------------------------------
def check_batch(module, report, n, seed, T=40):
    schedule = NoiseSchedule.cosine(T)
    x0 = images(n, seed=seed, size=5).astype(np.float32)
    inputs, noise = module.diffusion_batch(x0, np.random.default_rng(seed), schedule)
    inputs, noise = np.asarray(inputs), np.asarray(noise)
    assert inputs.shape == (n, 2, 5, 5), f"inputs {inputs.shape}, expected {(n, 2, 5, 5)}"
    assert noise.shape == x0.shape, f"targets {noise.shape}, expected {x0.shape}"
    assert inputs.dtype == x0.dtype and noise.dtype == x0.dtype, "keep x0's dtype"
    level = inputs[:, 1]
    assert np.all(level == level[:, :1, :1]), "the noise level fills the second channel"
    levels = np.sqrt(1 - schedule.alpha_bar)
    t = np.abs(level[:, 0, 0, None] - levels[None, :]).argmin(axis=1)   # each image's step
    assert np.allclose(level[:, 0, 0], levels[t], atol=1e-6), \
        "the second channel must be a noise level sqrt(1 - abar_t) of the schedule"
    abar = schedule.alpha_bar[t].reshape(-1, 1, 1, 1)
    expected = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise
    err = rel_error(inputs[:, :1], expected)
    report(rel_error=err, limit=1e-5, case=f"N={n}")
    assert err < 1e-5, "the first channel is not x_t of the returned noise at the step of the level"
    return t, noise


@pytest.mark.student("diffusion_batch")
def test_diffusion_batch_draws_steps_and_noise(module, report):
    t, noise = check_batch(module, report, 400, seed=0)
    assert len(np.unique(t)) > 30, f"{len(np.unique(t))} different steps among 400 images of " \
        "a 40-step schedule: draw one step per image among all T"
    assert t.min() < 3 and t.max() > 36, "the steps must cover [0, T)"
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1) < 0.02, \
        f"noise of mean {noise.mean():.3f} and std {noise.std():.3f}: expected N(0, 1)"


@pytest.mark.student("diffusion_batch")
def test_diffusion_batch_of_one(module, report):
    check_batch(module, report, 1, seed=5)


@pytest.mark.student("diffusion_batch")
def test_diffusion_batch_is_new_every_time(module, report):
    schedule = NoiseSchedule.cosine(40)
    x0 = images(8, seed=6).astype(np.float32)
    rng = np.random.default_rng(0)
    a = np.asarray(module.diffusion_batch(x0, rng, schedule)[1])
    b = np.asarray(module.diffusion_batch(x0, rng, schedule)[1])
    report(case="two calls, one generator")
    assert not np.allclose(a, b), "two batches from one generator must get different noises"


# -- reverse_step ---------------------------------------------------------------------------
@pytest.mark.student("reverse_step")
@pytest.mark.parametrize("kind", ["cosine", "linear"])
@pytest.mark.parametrize("t", [0, 1, 30, 59])
def test_reverse_step_matches_nn_diffusion(module, report, kind, t):
    schedule = getattr(NoiseSchedule, kind)(60)
    rng = np.random.default_rng(t)
    xt, eps, z = (rng.standard_normal((3, 1, 4, 4)) for _ in range(3))
    out = np.asarray(module.reverse_step(xt, t, eps, schedule, z))
    with nn.backends.using("numpy", "fp64"):
        expected = schedule.ddpm_step(xt, t, eps, z=z)
    err = rel_error(out, expected)
    report(rel_error=err, limit=1e-12, case=f"{kind}, t={t}")
    assert err < 1e-12, f"x_(t-1) differs from the DDPM step at t={t}" + \
        (" (no noise at t = 0)" if t == 0 else "")


@pytest.mark.student("reverse_step")
def test_reverse_chain_with_a_perfect_predictor_lands_on_the_image(module, report):
    """The data set is one image ``c``: the perfect noise predictor knows the noise exactly,
    ``e = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t)``, and the chain of your steps from pure
    noise must end on ``c`` (batch of one)."""
    schedule = NoiseSchedule.cosine(30)
    c = images(1, seed=7, size=3)
    rng = np.random.default_rng(8)
    x = rng.standard_normal(c.shape)
    for t in range(schedule.T - 1, -1, -1):
        abar = schedule.alpha_bar[t]
        eps = (x - np.sqrt(abar) * c) / np.sqrt(1 - abar)
        x = np.asarray(module.reverse_step(x, t, eps, schedule, rng.standard_normal(c.shape)))
    err = rel_error(x, c)
    report(rel_error=err, limit=1e-9, case="T = 30, one image")
    assert err < 1e-9, "the reverse chain does not end on the image"
