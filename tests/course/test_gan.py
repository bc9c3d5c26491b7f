"""The GAN practical.

The alternating step is checked in float64 on tiny dense networks: with plain SGD, the
discriminator's update must be the gradient (by finite differences) of its loss on the real
and the generated images, and the generator's, the gradient of its non-saturating loss
through the *updated* discriminator; the two losses it returns must be the test's. Then a
few steps of the practical's DCGAN on the bundled sample.
"""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network
from nn.data import load_fashion_mnist
from nn.functional import bce_with_logits
from nn.layers import Dense, LeakyReLU, Tanh
from nn.losses import BinaryCrossEntropy
from nn.optim import SGD

PRACTICAL = "gan"
SEED = 0
N_IN, N_HIDDEN_G, N_HIDDEN_D, N_OUT = 3, 5, 6, 4


def rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def numerical_gradient(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in range(x.size):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def tiny_gan():
    gen = Network([Dense(N_IN, N_HIDDEN_G), Tanh(), Dense(N_HIDDEN_G, N_OUT)])
    disc = Network([Dense(N_OUT, N_HIDDEN_D, init="he"), LeakyReLU(0.2), Dense(N_HIDDEN_D, 1)],
                   BinaryCrossEntropy(from_logits=True))
    return gen, disc


def flat(net):
    return np.concatenate([np.asarray(layer.params[name]).ravel()
                           for layer, name in net.parameters()])


def unpack(theta, sizes):
    out, k = [], 0
    for shape in sizes:
        size = int(np.prod(shape))
        out.append(theta[k:k + size].reshape(shape))
        k += size
    return out


def g_forward(theta, z):
    W1, b1, W2, b2 = unpack(theta, [(N_IN, N_HIDDEN_G), (N_HIDDEN_G,), (N_HIDDEN_G, N_OUT),
                                    (N_OUT,)])
    return np.tanh(z @ W1 + b1) @ W2 + b2


def d_forward(theta, x):
    W1, b1, W2, b2 = unpack(theta, [(N_OUT, N_HIDDEN_D), (N_HIDDEN_D,), (N_HIDDEN_D, 1),
                                    (1,)])
    a = x @ W1 + b1
    return np.where(a > 0, a, 0.2 * a) @ W2 + b2


def d_loss(theta_d, theta_g, x_real, z):
    n = len(x_real)
    real = bce_with_logits(d_forward(theta_d, x_real), np.ones((n, 1))).sum() / n
    fake = bce_with_logits(d_forward(theta_d, g_forward(theta_g, z)), np.zeros((n, 1))).sum() / n
    return real + fake


def g_loss(theta_g, theta_d, z):
    n = len(z)
    return bce_with_logits(d_forward(theta_d, g_forward(theta_g, z)), np.ones((n, 1))).sum() / n


def run_step(module, n, seed, lr_d=0.1, lr_g=0.05):
    rng = np.random.default_rng(seed)
    x_real, z = rng.normal(size=(n, N_OUT)), rng.normal(size=(n, N_IN))
    with nn.backends.using("numpy", "fp64", seed=seed):
        gen, disc = tiny_gan()
        g0, d0 = flat(gen), flat(disc)
        losses = module.gan_step(gen, disc, x_real.copy(), z.copy(), SGD(lr_d), SGD(lr_g))
        g1, d1 = flat(gen), flat(disc)
    return x_real, z, g0, d0, g1, d1, losses, lr_d, lr_g


@pytest.mark.student("gan_step")
@pytest.mark.parametrize("n", [4, 1, 7])
def test_discriminator_update_is_the_gradient_of_its_loss(module, report, n):
    x_real, z, g0, d0, g1, d1, (dl, _), lr_d, _ = run_step(module, n, seed=n)
    grad = numerical_gradient(lambda t: d_loss(t, g0, x_real, z), d0)
    err = rel_error((d0 - d1) / lr_d, grad)
    report(rel_error=err, limit=1e-6, case=f"N={n}")
    expected = d_loss(d0, g0, x_real, z)
    assert abs(float(dl) - expected) < 1e-9, \
        f"d_loss {float(dl)}, expected {expected}: BCE(real, 1) + BCE(fake, 0), each a batch mean"
    assert err < 1e-6, ("the discriminator's update is not one SGD step on "
                        "BCE(D(x_real), 1) + BCE(D(G(z)), 0), each a batch mean (only once)")


@pytest.mark.student("gan_step")
@pytest.mark.parametrize("n", [4, 1, 7])
def test_generator_update_goes_through_the_updated_discriminator(module, report, n):
    x_real, z, g0, d0, g1, d1, (_, gl), _, lr_g = run_step(module, n, seed=10 + n)
    grad = numerical_gradient(lambda t: g_loss(t, d1, z), g0)
    err = rel_error((g0 - g1) / lr_g, grad)
    report(rel_error=err, limit=1e-6, case=f"N={n}")
    expected = g_loss(g0, d1, z)
    assert abs(float(gl) - expected) < 1e-9, \
        f"g_loss {float(gl)}, expected {expected}: BCE(D(G(z)), 1) with the updated D"
    assert err < 1e-6, ("the generator's update is not one SGD step on BCE(D(G(z)), 1) "
                        "through the discriminator after its own step")


@pytest.mark.student("gan_step")
def test_gan_step_trains_the_practicals_dcgan(module, report):
    """Ten steps of the practical's DCGAN on bundled images (seeded): the discriminator
    learns to tell them apart (its loss falls from 2 log 2 = 1.39, the loss of guessing;
    measured: about 0.24 over the last three steps) and both losses stay finite."""
    x = 2 * load_fashion_mnist("train", source="sample")[0][:640] - 1
    nn.backends.use(seed=SEED)
    gen, disc = module.generator(), module.discriminator()
    history = module.train_gan(gen, disc, x, 1, batch_size=64, seed=SEED, progress=False)
    d = float(np.mean(history["d_loss"][-3:]))
    report(d_loss=d, limit=0.9)
    assert np.all(np.isfinite(history["d_loss"])) and np.all(np.isfinite(history["g_loss"]))
    assert d < 0.9, f"discriminator loss {d:.3f} after 10 steps: it does not learn"
