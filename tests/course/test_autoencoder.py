"""The autoencoder practical.

The two halves are the student's design: they are tested by what they compute (shapes at
the ends, a batch of one, a linear latent layer, pixels in [0, 1], a size budget) and by
what they reach after a short seeded training that the test runs itself; the training
function is tested on an autoencoder of the test's own; the exploration is graded by how
well the classes separate in its latent plane. Everything trains on the bundled
Fashion-MNIST sample (2 000 training and 1 000 test images), in seconds.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from nn import Network, backends
from nn.data import load_fashion_mnist
from nn.layers import (Conv2D, ConvTranspose2D, Dense, Flatten, Identity, Layer, LeakyReLU,
                       Sigmoid, Unflatten)
from nn.losses import MSE
from nn.optim import Adam

PRACTICAL = "autoencoder"
SEED = 0
LATENT = 2
MAX_PARAMS = 300_000


def output_shapes(layers, input_shape):
    """The shape after every layer (without the batch axis)."""
    shapes, shape = [], tuple(input_shape)
    for layer in layers:
        shape = tuple(layer.output_shape(shape))
        shapes.append(shape)
    return shapes


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def check_layer_list(layers, what):
    assert isinstance(layers, list) and layers, f"{what}() returns a list of layers"
    assert all(isinstance(layer, Layer) for layer in layers), f"not all nn layers: {layers}"
    n = Network(layers).n_params()
    assert n <= MAX_PARAMS, f"{what}: {n} parameters, more than the budget of {MAX_PARAMS}"


@functools.lru_cache(maxsize=None)
def sample():
    """The bundled Fashion-MNIST sample: (x_train, y_train, x_test, y_test)."""
    x, y = load_fashion_mnist("train", source="sample")
    x_test, y_test = load_fashion_mnist("test", source="sample")
    return x, y, x_test, y_test


def mean_image_error():
    """The reconstruction error of the "autoencoder" that always answers the mean image."""
    x, _, x_test, _ = sample()
    return float(np.mean((x_test - x.mean(axis=0)) ** 2))


def knn_accuracy(z, y, k=5):
    """The test's own 5-nearest-neighbour accuracy in the latent space (ties: smallest
    label), so that grading does not depend on the practical's copy."""
    z = np.asarray(z, dtype=np.float64)
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1, kind="stable")[:, :k]
    votes = np.array([np.bincount(y[row], minlength=10).argmax() for row in neighbours])
    return float(np.mean(votes == y))


def reference_halves():
    """A small autoencoder of the test's own, to test the training function alone."""
    enc = [Conv2D(1, 8, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),
           Conv2D(8, 16, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1), Flatten(),
           Dense(16 * 7 * 7, 32, init="he"), LeakyReLU(0.1), Dense(32, LATENT)]
    dec = [Dense(LATENT, 32, init="he"), LeakyReLU(0.1),
           Dense(32, 16 * 7 * 7, init="he"), LeakyReLU(0.1), Unflatten((16, 7, 7)),
           ConvTranspose2D(16, 8, 4, stride=2, padding=1, init="he"), LeakyReLU(0.1),
           ConvTranspose2D(8, 1, 4, stride=2, padding=1), Sigmoid()]
    return enc, dec


def plain_training(enc, dec, epochs):
    """The test's own training (Adam, fixed rate): images are their own targets."""
    x = sample()[0]
    net = Network(enc + dec, MSE())
    net.fit(x, x, epochs=epochs, batch_size=64, optimizer=Adam(3e-3), seed=SEED,
            progress=False)
    return net


def measured(net, encode):
    """Test reconstruction error per pixel and 5-NN accuracy of the test images' codes."""
    _, _, x_test, y_test = sample()
    error = float(np.mean((net.predict(x_test) - x_test) ** 2))
    return error, knn_accuracy(encode.predict(x_test), y_test)


# -- encoder ---------------------------------------------------------------------------------
@pytest.mark.student("encoder")
@pytest.mark.parametrize("n", [1, 5])
def test_encoder_maps_images_to_latent_codes(module, n):
    layers = module.encoder()
    check_layer_list(layers, "encoder")
    shapes = output_shapes(layers, (1, 28, 28))
    assert shapes[-1] == (LATENT,), f"the encoder ends with {shapes[-1]}, expected ({LATENT},)"
    assert any(len(s) == 3 and max(s[1:]) <= 14 for s in shapes), \
        f"the encoder must shrink the feature maps (strided convolutions or pooling): {shapes}"
    z = Network(layers).predict(images((n, 1, 28, 28)))
    assert z.shape == (n, LATENT)
    assert np.all(np.isfinite(z))
    if n > 1:
        assert not np.allclose(z[0], z[1]), "different images, different codes"


@pytest.mark.student("encoder")
def test_the_latent_layer_has_no_activation(module):
    """A latent value may be any real number: the last weighted layer is followed by no
    activation, so scaling its weights and bias by 3 scales the codes by 3."""
    layers = module.encoder()
    x = images((4, 1, 28, 28), seed=1)
    z = Network(layers).predict(x)
    last = [layer for layer in layers if layer.params][-1]
    for name in last.params:
        last.params[name] = last.params[name] * 3
    np.testing.assert_allclose(Network(layers).predict(x), 3 * z, rtol=1e-4, atol=1e-5,
                               err_msg="the codes are not linear in the last layer: remove "
                                       "the activation after it")


@pytest.mark.student("encoder")
def test_the_halves_share_the_layers_of_the_autoencoder(module):
    net, encode, decode = module.autoencoder()
    assert isinstance(net.loss, MSE)
    assert all(a is b for a, b in zip(net.layers, encode.layers + decode.layers))
    assert len(net.layers) == len(encode.layers) + len(decode.layers)
    x = images((8, 1, 28, 28), seed=2)
    net.fit(x, x, epochs=1, batch_size=4, optimizer=Adam(1e-2), seed=SEED, progress=False)
    # trained through net, the halves see the new weights
    np.testing.assert_allclose(decode.predict(encode.predict(x)), net.predict(x), rtol=1e-5,
                               atol=1e-6)


# -- decoder ---------------------------------------------------------------------------------
@pytest.mark.student("decoder")
@pytest.mark.parametrize("n", [1, 5])
def test_decoder_maps_latent_codes_to_images(module, n):
    layers = module.decoder()
    check_layer_list(layers, "decoder")
    shapes = output_shapes(layers, (LATENT,))
    assert shapes[-1] == (1, 28, 28), f"the decoder ends with {shapes[-1]}, expected (1, 28, 28)"
    assert any(len(s) == 3 and max(s[1:]) < 28 for s in shapes), \
        f"the decoder must enlarge small feature maps (transposed convolutions): {shapes}"
    # codes far out too (the latent values are unbounded): pixels stay in [0, 1]
    z = np.random.default_rng(1).normal(0, 30, (n, LATENT)).astype(np.float32)
    out = Network(layers).predict(z)
    assert out.shape == (n, 1, 28, 28)
    assert np.all((out >= 0) & (out <= 1)), \
        "the pixels must lie in [0, 1]: an output activation that covers that range"
    if n > 1:
        assert not np.allclose(out[0], out[1]), "different codes, different images"


# -- the two halves trained (by the test's own loop) -----------------------------------------
@functools.lru_cache(maxsize=None)
def trained_student_halves(module):
    """The student's encoder and decoder, trained 2 epochs by the test: (error, knn)."""
    with backends.using("numpy", "fp32", seed=SEED):
        enc, dec = module.encoder(), module.decoder()
        net = plain_training(enc, dec, epochs=2)
        return measured(net, Network(enc))


@pytest.mark.student("decoder")
def test_the_autoencoder_learns_to_reconstruct(module, report):
    error, _ = trained_student_halves(module)
    baseline = mean_image_error()
    report(reconstruction_error=error, limit=0.06)
    assert error < 0.06, f"test reconstruction error {error:.4f} >= 0.06 after 2 epochs " \
        f"(the mean image's is {baseline:.4f}; the course's design reaches ~0.047)"
    assert error < 0.7 * baseline


@pytest.mark.student("encoder")
def test_the_latent_plane_groups_the_classes(module, report):
    """Never shown the labels, the encoder still puts images of a class near each other: the
    5 nearest codes of a test image mostly carry its label."""
    _, acc = trained_student_halves(module)
    report(accuracy=acc, threshold=0.4)
    assert acc >= 0.4, f"5-nearest-neighbour accuracy in the latent plane {acc:.1%} < 40 % " \
        "(10 % by chance; the course's design reaches ~50 % after 2 epochs)"


# -- train_autoencoder -------------------------------------------------------------------------
@pytest.mark.student("train_autoencoder")
def test_train_autoencoder_reaches_a_low_reconstruction_error(module, report):
    x = sample()[0]
    with backends.using("numpy", "fp32", seed=SEED):
        enc, dec = reference_halves()
        net = Network(enc + dec, MSE())
        module.train_autoencoder(net, x, 3, seed=SEED, progress=False)
        error, _ = measured(net, Network(enc))
    report(reconstruction_error=error, limit=0.055)
    assert error < 0.055, (f"test reconstruction error {error:.4f} after 3 epochs, expected "
                           f"< 0.055 (mean image: {mean_image_error():.4f}; the solution "
                           "reaches 0.045)")


@pytest.mark.student("train_autoencoder")
def test_train_autoencoder_memorises_a_few_images(module, report):
    """Fewer images than a batch: 100 epochs must nearly learn them by heart; the history has
    one entry per epoch, with the validation loss when images are given for it."""
    x, _, x_test, _ = sample()
    few = x[:6]
    with backends.using("numpy", "fp32", seed=SEED):
        enc, dec = reference_halves()
        net = Network(enc + dec, MSE())
        before = float(np.mean((net.predict(few) - few) ** 2))
        history = module.train_autoencoder(net, few, 100, valid=x_test[:5], seed=SEED,
                                           progress=False)
        after = float(np.mean((net.predict(few) - few) ** 2))
    assert len(history["train_loss"]) == 100
    assert len(history.get("valid_loss", [])) == 100, \
        "with valid images, the history has the validation loss of every epoch"
    report(reconstruction_error=after, limit=before / 4)
    assert after < before / 4, f"error on the 6 training images {before:.4f} -> {after:.4f}"


# -- reconstruction_error ----------------------------------------------------------------------
def constant_net(value, channels=1):
    """A network whose output is ``value`` everywhere, whatever its input."""
    conv = Conv2D(channels, channels, 1)
    conv.params["W"][...] = 0
    conv.params["b"][...] = value
    return Network([conv])


@pytest.mark.student("reconstruction_error")
@pytest.mark.parametrize("shape", [(7, 1, 9, 6), (3, 3, 4, 5), (1, 1, 28, 28)])
def test_reconstruction_error_is_the_mean_squared_error_of_each_image(module, report, shape):
    x = images(shape, seed=3)
    errors = np.asarray(module.reconstruction_error(constant_net(0.25, shape[1]), x))
    expected = ((0.25 - x.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    assert errors.shape == (shape[0],), f"one error per image: shape {errors.shape}"
    err = float(np.max(np.abs(errors - expected) / expected))
    report(rel_error=err, limit=1e-5)
    assert err < 1e-5, f"relative error {err:.2e}"


@pytest.mark.student("reconstruction_error")
def test_reconstruction_error_uses_the_network(module):
    x = images((6, 2, 5, 5), seed=4)
    np.testing.assert_array_equal(module.reconstruction_error(Network([Identity()]), x), 0.0)
    conv = Conv2D(2, 2, 3, padding=1)
    net = Network([conv, Sigmoid()])
    expected = ((net.predict(x) - x) ** 2).reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(module.reconstruction_error(net, x), expected, rtol=1e-5)


# -- polar_grid --------------------------------------------------------------------------------
@pytest.mark.student("polar_grid")
@pytest.mark.parametrize("radii, n_angles", [([0.5, 1.0, 2.5], 8), ([3.0], 5), ([0.0, 1.0], 3),
                                             ([2.0, 1.0], 1)])
def test_polar_grid(module, radii, n_angles):
    points = np.asarray(module.polar_grid(radii, n_angles), dtype=np.float64)
    assert points.shape == (len(radii) * n_angles, 2)
    by_circle = points.reshape(len(radii), n_angles, 2)
    np.testing.assert_allclose(np.hypot(by_circle[..., 0], by_circle[..., 1]),
                               np.repeat(np.array(radii)[:, None], n_angles, axis=1),
                               atol=1e-12, err_msg="row i * n_angles + j lies at radius r_i")
    theta = 2 * np.pi * np.arange(n_angles) / n_angles
    for r, circle in zip(radii, by_circle):
        np.testing.assert_allclose(circle, r * np.stack([np.cos(theta), np.sin(theta)], axis=1),
                                   atol=1e-12, err_msg="angles 2 pi j / n_angles, j = 0, 1, ...")


# -- the exploration: separated_autoencoder ----------------------------------------------------
EXPLORE_EPOCHS = 5


@functools.lru_cache(maxsize=None)
def plain_reference():
    """The plain autoencoder (the test's design and training) with the exploration's budget:
    measured 0.038 and 55 % 5-NN accuracy."""
    with backends.using("numpy", "fp32", seed=SEED):
        enc, dec = reference_halves()
        return measured(plain_training(enc, dec, EXPLORE_EPOCHS), Network(enc))


@pytest.mark.student("separated_autoencoder")
def test_separated_autoencoder_separates_the_classes(module, report):
    x, y, _, _ = sample()
    with backends.using("numpy", "fp32", seed=SEED):
        net, encode, _ = module.separated_autoencoder(x, y, EXPLORE_EPOCHS, seed=SEED)
        error, acc = measured(net, encode)
    plain_error, plain_acc = plain_reference()
    target = plain_acc + 0.10
    report(accuracy=acc, threshold=target)
    assert acc >= target, (f"5-NN accuracy of the test codes {acc:.1%}: not 10 points above the "
                           f"plain autoencoder's {plain_acc:.1%} (a classifier-pretrained "
                           "encoder reaches ~72 %)")
    limit = 0.75 * mean_image_error()
    assert error < limit, (f"reconstruction error {error:.4f} >= {limit:.4f}: it must still "
                           f"rebuild the images (the plain autoencoder's: {plain_error:.4f})")


@pytest.mark.student("separated_autoencoder")
def test_separated_autoencoder_returns_the_three_networks(module):
    """The contract of autoencoder(), on a tiny budget and a batch of one image."""
    x, y, x_test, _ = sample()
    with backends.using("numpy", "fp32", seed=SEED):
        net, encode, decode = module.separated_autoencoder(x[::10], y[::10], 1, seed=SEED)
        one = x_test[:1]
        z = encode.predict(one)
        assert z.shape == (1, LATENT)
        out = decode.predict(z)
        assert out.shape == (1, 1, 28, 28)
        np.testing.assert_allclose(net.predict(one), out, rtol=1e-5, atol=1e-6,
                                   err_msg="net must be encode followed by decode")
