"""The pieces of the generative chapter: the reparameterisation and the Gaussian KL term
(gradient-checked in float64), the moving average of the weights, the diffusion schedule
(its identities against closed forms) and the Fréchet distance."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nn
from nn import Network, backends
from nn.diffusion import NoiseSchedule
from nn.errors import ConfigError, DataError, ShapeError, StateError
from nn.gradcheck import check_loss
from nn.layers import Dense, Reparameterize, Tanh
from nn.losses import MSE, GaussianKL
from nn.metrics import frechet_distance
from nn.optim import SGD

from helpers import assert_passes, host


# -- reparameterisation and KL ---------------------------------------------------------------------
@pytest.mark.parametrize("n, d", [(1, 1), (4, 2), (3, 5)])
def test_reparameterize_gradient(fp64, n, d):
    assert_passes(Reparameterize(d), (n, 2 * d), train=True, seed=n + d)


def test_reparameterize_at_inference_is_the_mean_and_passes_only_dmu(fp64):
    layer = Reparameterize(2)
    x = fp64.asarray(np.array([[1.0, -2.0, 0.5, 0.3]]))
    np.testing.assert_array_equal(host(layer.forward(x)), [[1.0, -2.0]])
    np.testing.assert_array_equal(host(layer.backward(fp64.asarray(np.ones((1, 2))))),
                                  [[1.0, 1.0, 0.0, 0.0]])
    assert_passes(Reparameterize(2), (3, 4), train=False)


def test_reparameterize_samples_have_the_encoded_mean_and_spread(fp64):
    fp64.seed(0)
    mu, log_var = 1.5, math.log(0.25)
    x = fp64.asarray(np.tile([[mu, log_var]], (20000, 1)))
    z = host(Reparameterize(1).forward(x, train=True))
    assert abs(z.mean() - mu) < 0.02 and abs(z.std() - 0.5) < 0.02


@pytest.mark.parametrize("weight", [1.0, 0.3])
@pytest.mark.parametrize("shape", [(1, 2), (5, 4), (3, 10)])
def test_gaussian_kl_gradient(fp64, shape, weight):
    assert check_loss(GaussianKL(weight), shape, None, seed=shape[0]) < 1e-6


def test_gaussian_kl_closed_form():
    mu = np.array([[0.5, -1.0], [0.0, 0.0]])
    var = np.array([[2.0, 0.5], [1.0, 1.0]])
    pred = np.concatenate([mu, np.log(var)], axis=1)
    expected = np.mean(0.5 * (mu**2 + var - np.log(var) - 1).sum(axis=1))
    with backends.using("numpy", "fp64"):
        assert GaussianKL().forward(pred) == pytest.approx(expected, rel=1e-12)
        # the standard normal itself is at distance zero
        assert GaussianKL().forward(np.zeros((3, 4))) == 0.0


def test_gaussian_kl_refuses_an_odd_width():
    with pytest.raises(ShapeError, match=r"\(N, 2D\)"):
        GaussianKL().forward(np.zeros((2, 3)))


# -- moving average ----------------------------------------------------------------------------------
def test_ema_follows_its_formula_and_swaps_exactly(fp64):
    net = Network([Dense(3, 2)], MSE())
    x, y = np.random.default_rng(0).normal(size=(8, 3)), np.zeros((8, 2))
    start = host(net.layers[0].params["W"]).copy()
    history = []
    ema = nn.training.EMA(net, decay=0.9)

    def record(epoch, h):
        history.append(host(net.layers[0].params["W"]).copy())

    # one step per epoch so that the callback sees every weight the average saw
    for _ in range(4):
        net.fit(x, y, epochs=1, batch_size=8, optimizer=SGD(0.1), progress=False, callback=record)
        ema.update()
    avg = start.copy()
    for n, W in enumerate(history):
        d = min(0.9, (1 + n) / (10 + n))
        avg = d * avg + (1 - d) * W
    np.testing.assert_allclose(host(ema.average["0.W"]), avg, rtol=1e-12)
    trained = host(net.layers[0].params["W"]).copy()
    with ema.swapped():
        np.testing.assert_allclose(host(net.layers[0].params["W"]), avg, rtol=1e-12)
    np.testing.assert_array_equal(host(net.layers[0].params["W"]), trained)


def test_fit_keeps_an_average_and_ema_weights_uses_it():
    net = Network([Dense(3, 8), Tanh(), Dense(8, 1)], MSE())
    x = np.random.default_rng(1).normal(size=(32, 3))
    y = x[:, :1] * 2
    with pytest.raises(StateError, match="ema=0.999"):
        net.ema_weights()
    net.fit(x, y, epochs=5, batch_size=8, optimizer=SGD(0.05), ema=0.99, progress=False)
    assert net.ema.updates == 20
    plain = net.predict(x)
    with net.ema_weights():
        averaged = net.predict(x)
    assert not np.allclose(plain, averaged)
    np.testing.assert_array_equal(net.predict(x), plain)
    with pytest.raises(ConfigError, match="decay"):
        net.fit(x, y, epochs=1, ema=1.5, progress=False)


# -- diffusion ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: NoiseSchedule.linear(50),
                                  lambda: NoiseSchedule.cosine(50)], ids=["linear", "cosine"])
def test_schedule_identities(make):
    s = make()
    np.testing.assert_allclose(s.alpha_bar, np.cumprod(1 - s.betas), rtol=1e-14)
    np.testing.assert_allclose(s.alpha_bar_prev[1:], s.alpha_bar[:-1])
    assert s.alpha_bar_prev[0] == 1.0
    assert np.all(np.diff(s.alpha_bar) < 0) and 0 < s.alpha_bar[-1] < 0.1


def test_cosine_schedule_follows_the_squared_cosine():
    s = NoiseSchedule.cosine(100, s=0.008)
    t = np.arange(1, 101) / 100
    f = np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    np.testing.assert_allclose(s.alpha_bar[:-1], f[:-1], rtol=1e-10)   # the last beta is clipped


def test_q_sample_has_the_closed_form_mean_and_variance(fp64):
    s = NoiseSchedule.linear(100)
    rng = np.random.default_rng(2)
    x0 = fp64.asarray(np.full((40000, 1), 2.0))
    noise = fp64.asarray(rng.standard_normal((40000, 1)))
    xt = host(s.q_sample(x0, 60, noise))
    assert abs(xt.mean() - 2.0 * math.sqrt(s.alpha_bar[60])) < 0.02
    assert abs(xt.var() - (1 - s.alpha_bar[60])) < 0.02
    # one t per example
    t = np.array([0, 99])
    both = host(s.q_sample(fp64.asarray(np.ones((2, 3))), t, fp64.asarray(np.zeros((2, 3)))))
    np.testing.assert_allclose(both[:, 0], np.sqrt(s.alpha_bar[t]))


def test_posterior_is_bayes_on_gaussians(fp64):
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0): the product of two Gaussian
    densities in x_{t-1}, whose mean and variance are computed here by completing the square."""
    s = NoiseSchedule.cosine(30)
    x0, xt = 0.7, -0.4
    for t in (1, 10, 29):
        a, abar_prev = s.alphas[t], s.alpha_bar_prev[t]
        # q(x_t | x_{t-1}) as a density in x_{t-1}: precision a / beta, mean x_t / sqrt(a)
        p1, m1 = a / s.betas[t], xt / math.sqrt(a)
        p2, m2 = 1 / (1 - abar_prev), math.sqrt(abar_prev) * x0
        var = 1 / (p1 + p2)
        mean = var * (p1 * m1 + p2 * m2)
        got_mean, got_var = s.posterior(fp64.asarray(np.array([[x0]])),
                                        fp64.asarray(np.array([[xt]])), t)
        assert float(got_mean[0, 0]) == pytest.approx(mean, rel=1e-10)
        assert float(got_var.reshape(-1)[0]) == pytest.approx(var, rel=1e-10)


def test_ddpm_step_with_the_true_noise_is_the_posterior_mean(fp64):
    s = NoiseSchedule.linear(40)
    rng = np.random.default_rng(3)
    x0 = fp64.asarray(rng.standard_normal((4, 3)))
    e = fp64.asarray(rng.standard_normal((4, 3)))
    for t in (5, 39):
        xt = s.q_sample(x0, t, e)
        mean, var = s.posterior(x0, xt, t)
        step = s.ddpm_step(xt, t, e, z=fp64.asarray(np.zeros((4, 3))))
        np.testing.assert_allclose(host(step), host(mean), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(host(s.predict_x0(xt, t, e)), host(x0), rtol=1e-10)
    # at t = 0 the step returns the mean without noise
    x1 = s.q_sample(x0, 0, e)
    np.testing.assert_allclose(host(s.ddpm_step(x1, 0, e)), host(x0), rtol=1e-8)


def test_ddim_with_eta_1_is_the_ddpm_step_and_with_eta_0_is_deterministic(fp64):
    s = NoiseSchedule.linear(20)
    rng = np.random.default_rng(4)
    xt, e, z = (fp64.asarray(rng.standard_normal((2, 5))) for _ in range(3))
    np.testing.assert_allclose(host(s.ddim_step(xt, 7, 6, e, eta=1.0, z=z)),
                               host(s.ddpm_step(xt, 7, e, z=z)), rtol=1e-10)
    np.testing.assert_array_equal(host(s.ddim_step(xt, 7, 3, e)), host(s.ddim_step(xt, 7, 3, e)))
    # a jump to the clean image with the true noise recovers x0 exactly
    x0 = fp64.asarray(rng.standard_normal((2, 5)))
    np.testing.assert_allclose(host(s.ddim_step(s.q_sample(x0, 15, e), 15, -1, e)), host(x0),
                               rtol=1e-10, atol=1e-12)


def test_sample_runs_the_chain_with_a_perfect_denoiser(fp64):
    """Data all equal to c: the ideal noise predictor is (x_t - sqrt(abar) c) / sqrt(1 - abar);
    both samplers must then land on c."""
    s = NoiseSchedule.cosine(50)
    c = 0.6

    def predict(x, t):
        return (x - math.sqrt(s.alpha_bar[t]) * c) / math.sqrt(1 - s.alpha_bar[t])

    for steps in (None, 10):
        out = host(s.sample(predict, (3, 2), steps=steps, seed=0))
        np.testing.assert_allclose(out, c, atol=1e-6)
    assert s.timesteps(5) == [49, 37, 24, 12, 0]


def test_clip_x0_takes_the_posterior_mean_of_the_clipped_estimate(fp64):
    s = NoiseSchedule.cosine(30)
    rng = np.random.default_rng(7)
    xt, e = fp64.asarray(rng.standard_normal((3, 4)) * 2), fp64.asarray(rng.standard_normal((3, 4)))
    t = 25
    x0 = np.clip(host(s.predict_x0(xt, t, e)), -1, 1)
    mean, _ = s.posterior(fp64.asarray(x0), xt, t)
    got = s.ddpm_step(xt, t, e, z=fp64.asarray(np.zeros((3, 4))), clip_x0=(-1, 1))
    np.testing.assert_allclose(host(got), host(mean), rtol=1e-12)
    # a DDIM jump to the clean image lands inside the range
    assert np.abs(host(s.ddim_step(xt, t, -1, e, clip_x0=(-1, 1)))).max() <= 1 + 1e-12
    # without clipping both forms of the DDPM mean agree
    unclipped_x0 = s.predict_x0(xt, t, e)
    m, _ = s.posterior(unclipped_x0, xt, t)
    np.testing.assert_allclose(host(s.ddpm_step(xt, t, e, z=fp64.asarray(np.zeros((3, 4))))),
                               host(m), rtol=1e-10)
    with pytest.raises(ConfigError, match="clip_x0"):
        s.ddpm_step(xt, t, e, clip_x0=(1, -1))


@pytest.mark.parametrize("call, match", [
    (lambda s: s.q_sample(np.zeros((2, 1)), 10, np.zeros((2, 1))), r"\[0, 10\)"),
    (lambda s: s.q_sample(np.zeros((2, 1)), np.array([0.5, 1.0]), np.zeros((2, 1))), "integers"),
    (lambda s: s.timesteps(0), "steps must be"),
    (lambda s: s.ddim_step(np.zeros(1), 3, 5, np.zeros(1)), "s < t"),
], ids=["t-too-large", "t-float", "steps", "ddim-order"])
def test_schedule_errors(call, match):
    with pytest.raises((ConfigError, DataError), match=match):
        call(NoiseSchedule.linear(10))


# -- the Fréchet distance -------------------------------------------------------------------------------
def test_frechet_distance_of_one_dimensional_gaussians():
    """For 1-D Gaussians the distance is (m1 - m2)² + (s1 - s2)²."""
    rng = np.random.default_rng(5)
    a = rng.normal(1.0, 2.0, size=(200000, 1))
    b = rng.normal(-0.5, 0.5, size=(200000, 1))
    assert frechet_distance(a, b) == pytest.approx(1.5**2 + 1.5**2, rel=0.01)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_the_matrix_formula():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3))
    b = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 3)) + 1
    Sa, Sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, V = np.linalg.eig(Sa @ Sb)                       # Tr sqrt(Sa Sb) from its eigenvalues
    expected = (((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(Sa) + np.trace(Sb)
                - 2 * np.sqrt(w.real.clip(0)).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
