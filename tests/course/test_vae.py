"""The variational autoencoder practical.

The reparameterisation and the KL term are checked in float64 against the test's own
formulas, against nn's library versions (``nn.layers.Reparameterize``,
``nn.losses.GaussianKL``) and by finite differences; the training step on tiny dense
networks, by replaying its noise and comparing the update of plain SGD with the gradient of
the loss taken by finite differences; then by a short training of the practical's VAE on
the bundled sample (seconds).
"""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network
from nn.data import load_fashion_mnist
from nn.functional import bce_with_logits
from nn.layers import Dense, Reparameterize
from nn.losses import BinaryCrossEntropy, GaussianKL
from nn.optim import SGD

PRACTICAL = "vae"
SEED = 0


def rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def encoder_output(n, d, seed=0):
    """``[mu, log sigma²]`` away from anything special, and a noise."""
    rng = np.random.default_rng(seed)
    h = np.concatenate([rng.normal(size=(n, d)), rng.uniform(-1.5, 1.0, size=(n, d))], axis=1)
    return h, rng.standard_normal((n, d))


def numerical_gradient(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def kl_formula(h):
    d = h.shape[1] // 2
    mu, lv = h[:, :d], h[:, d:]
    return 0.5 * np.sum(mu**2 + np.exp(lv) - lv - 1) / len(h)


# -- reparameterize -------------------------------------------------------------------------
@pytest.mark.student("reparameterize")
@pytest.mark.parametrize("n, d", [(5, 3), (1, 1)])
def test_reparameterize_draws_from_the_gaussian(module, report, n, d):
    h, e = encoder_output(n, d)
    z = np.asarray(module.reparameterize(h, e))
    expected = h[:, :d] + np.exp(h[:, d:] / 2) * e
    err = rel_error(z, expected)
    report(rel_error=err, limit=1e-12, case=f"N={n}, D={d}")
    assert z.shape == (n, d), f"z has shape {z.shape}, expected {(n, d)}"
    assert err < 1e-12, "z is not mu + sigma e (sigma = exp(log sigma² / 2))"


@pytest.mark.student("reparameterize")
def test_reparameterize_at_the_prior_is_the_noise(module, report):
    """mu = 0 and log sigma² = 0: the code is the noise itself."""
    e = np.random.default_rng(3).standard_normal((4, 2))
    z = np.asarray(module.reparameterize(np.zeros((4, 4)), e))
    err = rel_error(z, e)
    report(rel_error=err, limit=1e-12, case="mu = 0, sigma = 1")
    assert err < 1e-12


@pytest.mark.student("reparameterize")
def test_reparameterize_matches_nn_layer(module, report):
    """Same noise as nn.layers.Reparameterize drew: same codes."""
    with nn.backends.using("numpy", "fp64", seed=SEED):
        h, _ = encoder_output(6, 2, seed=4)
        layer = Reparameterize(2)
        z = layer.forward(h, train=True)
        err = rel_error(module.reparameterize(h, layer.e), z)
    report(rel_error=err, limit=1e-12)
    assert err < 1e-12


# -- reparameterize_backward ---------------------------------------------------------------
@pytest.mark.student("reparameterize_backward")
@pytest.mark.parametrize("n, d", [(5, 3), (1, 1), (4, 2)])
def test_reparameterize_backward_by_finite_differences(module, report, n, d):
    h, e = encoder_output(n, d, seed=n + d)
    dz = np.random.default_rng(7).standard_normal((n, d))

    def loss(hh):
        return float(np.sum(dz * (hh[:, :d] + np.exp(hh[:, d:] / 2) * e)))

    dh = np.asarray(module.reparameterize_backward(dz, h, e))
    assert dh.shape == (n, 2 * d), f"dh has shape {dh.shape}, expected {(n, 2 * d)}"
    err = rel_error(dh, numerical_gradient(loss, h))
    report(rel_error=err, limit=1e-6, case=f"N={n}, D={d}")
    assert err < 1e-6, ("dL/dh differs from finite differences: "
                        f"dL/dmu error {rel_error(dh[:, :d], numerical_gradient(loss, h)[:, :d]):.2g}, "
                        f"dL/dlog sigma² error "
                        f"{rel_error(dh[:, d:], numerical_gradient(loss, h)[:, d:]):.2g}")


@pytest.mark.student("reparameterize_backward")
def test_reparameterize_backward_matches_nn_layer(module, report):
    with nn.backends.using("numpy", "fp64", seed=SEED):
        h, _ = encoder_output(3, 4, seed=9)
        layer = Reparameterize(4)
        layer.forward(h, train=True)
        dz = np.random.default_rng(1).standard_normal((3, 4))
        expected = layer.backward(dz)
        err = rel_error(module.reparameterize_backward(dz, h, layer.e), expected)
    report(rel_error=err, limit=1e-12)
    assert err < 1e-12


# -- kl_divergence --------------------------------------------------------------------------
@pytest.mark.student("kl_divergence")
@pytest.mark.parametrize("n, d", [(6, 2), (1, 3)])
def test_kl_divergence_matches_formula_and_nn(module, report, n, d):
    h, _ = encoder_output(n, d, seed=11)
    kl = float(module.kl_divergence(h))
    with nn.backends.using("numpy", "fp64"):
        library = GaussianKL().forward(h)
    err = max(rel_error(kl, kl_formula(h)), rel_error(kl, library))
    report(rel_error=err, limit=1e-12, case=f"N={n}, D={d}")
    assert err < 1e-12, f"KL = {kl}, expected {kl_formula(h)} (summed over D, mean over N)"


@pytest.mark.student("kl_divergence")
def test_kl_divergence_is_zero_at_the_prior(module, report):
    kl = float(module.kl_divergence(np.zeros((3, 4))))
    report(abs_error=abs(kl), limit=1e-12, case="mu = 0, sigma = 1")
    assert abs(kl) < 1e-12
    assert module.kl_divergence(np.array([[2.0, 0.0]])) > 0


# -- kl_gradient ----------------------------------------------------------------------------
@pytest.mark.student("kl_gradient")
@pytest.mark.parametrize("n, d", [(6, 2), (1, 1)])
def test_kl_gradient_by_finite_differences_and_nn(module, report, n, d):
    h, _ = encoder_output(n, d, seed=13)
    grad = np.asarray(module.kl_gradient(h))
    assert grad.shape == h.shape
    with nn.backends.using("numpy", "fp64"):
        kl = GaussianKL()
        kl.forward(h)
        library = kl.backward()
    err = max(rel_error(grad, numerical_gradient(kl_formula, h)), rel_error(grad, library))
    report(rel_error=err, limit=1e-6, case=f"N={n}, D={d}")
    assert err < 1e-6, "the gradient of the KL term (with its batch mean) is wrong"


@pytest.mark.student("kl_gradient")
def test_kl_gradient_vanishes_at_the_prior(module, report):
    grad = np.asarray(module.kl_gradient(np.zeros((2, 6))))
    report(abs_error=np.abs(grad).max(), limit=1e-12, case="mu = 0, sigma = 1")
    assert np.abs(grad).max() < 1e-12


# -- vae_step -------------------------------------------------------------------------------
def tiny_vae(n_in=6, latent=2):
    encoder = Network([Dense(n_in, 2 * latent)])
    decoder = Network([Dense(latent, n_in)], BinaryCrossEntropy(from_logits=True))
    return encoder, decoder


def flat(net):
    return np.concatenate([np.asarray(layer.params[name]).ravel()
                           for layer, name in net.parameters()])


def vae_loss(theta, x, e, beta, n_in, latent):
    """The test's own VAE loss of the two dense layers, parameters in one vector."""
    k = 0
    W1 = theta[k:k + n_in * 2 * latent].reshape(n_in, 2 * latent)
    k += W1.size
    b1 = theta[k:k + 2 * latent]
    k += b1.size
    W2 = theta[k:k + latent * n_in].reshape(latent, n_in)
    k += W2.size
    b2 = theta[k:k + n_in]
    h = x @ W1 + b1
    z = h[:, :latent] + np.exp(h[:, latent:] / 2) * e
    rec = bce_with_logits(z @ W2 + b2, x).sum() / len(x)
    return rec, kl_formula(h), rec + beta * kl_formula(h)


@pytest.mark.student("vae_step")
@pytest.mark.parametrize("n, beta", [(5, 1.0), (1, 1.0), (4, 0.0), (3, 2.5)])
def test_vae_step_is_one_gradient_step_of_the_loss(module, report, n, beta):
    n_in, latent, lr = 6, 2, 0.1
    x = np.random.default_rng(n).uniform(0.05, 0.95, size=(n, n_in))
    with nn.backends.using("numpy", "fp64", seed=SEED):
        encoder, decoder = tiny_vae(n_in, latent)
        theta = np.concatenate([flat(encoder), flat(decoder)])
        rec, kl = module.vae_step(encoder, decoder, x, SGD(lr), np.random.default_rng(42), beta)
        after = np.concatenate([flat(encoder), flat(decoder)])
    e = np.random.default_rng(42).standard_normal((n, latent))     # the step's noise, replayed
    rec0, kl0, _ = vae_loss(theta, x, e, beta, n_in, latent)
    grad = numerical_gradient(lambda t: vae_loss(t, x, e, beta, n_in, latent)[2], theta)
    err = rel_error((theta - after) / lr, grad)
    report(rel_error=err, limit=1e-6, case=f"N={n}, beta={beta}")
    assert abs(float(rec) - rec0) < 1e-9 * max(1, abs(rec0)), \
        f"reconstruction term {float(rec)}, expected {rec0}"
    assert abs(float(kl) - kl0) < 1e-9 * max(1, abs(kl0)), f"KL term {float(kl)}, expected {kl0}"
    assert err < 1e-6, ("the update is not one step down the gradient of reconstruction + "
                        "beta KL (both networks, noise drawn once from rng)")


@pytest.mark.student("vae_step")
def test_vae_step_trains_the_practicals_vae(module, report):
    """Two short epochs of the practical's VAE on 512 bundled images: the reconstruction
    term falls (measured: 542 then 437 per image) and the codes carry information (KL
    about 4, above 1)."""
    x = load_fashion_mnist("train", source="sample")[0][:512]
    nn.backends.use(seed=SEED)
    encoder, decoder = module.vae()
    history = module.train_vae(encoder, decoder, x, 2, seed=SEED, progress=False)
    rec, kl = history["reconstruction"], history["kl"]
    report(reconstruction=rec[-1], limit=0.95 * rec[0])
    assert rec[-1] < 0.95 * rec[0], f"reconstruction per epoch {rec}: it should fall"
    assert kl[-1] > 1, f"KL per epoch {kl}: the codes carry nothing"


# -- interpolate ----------------------------------------------------------------------------
@pytest.mark.student("interpolate")
@pytest.mark.parametrize("n, d", [(10, 2), (2, 3), (5, 1)])
def test_interpolate_walks_straight_and_evenly(module, report, n, d):
    rng = np.random.default_rng(d)
    a, b = rng.normal(size=d), rng.normal(size=d)
    codes = np.asarray(module.interpolate(a, b, n), dtype=np.float64)
    expected = a + np.linspace(0, 1, n)[:, None] * (b - a)
    err = rel_error(codes, expected)
    report(rel_error=err, limit=1e-12, case=f"n={n}, D={d}")
    assert codes.shape == (n, d)
    assert err < 1e-12, "the codes must go from z_a to z_b (both included) in equal steps"
