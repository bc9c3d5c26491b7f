"""The autoencoder practical: encoder and decoder shapes, the halves sharing the trained
layers, the reconstruction error against its formula, the polar grid of the latent plane,
and a short seeded training on the bundled Fashion-MNIST sample."""
from __future__ import annotations

import numpy as np
import pytest

from nn import Network, backends
from nn.data import load_fashion_mnist
from nn.layers import (AvgPool2D, Conv2D, ConvTranspose2D, Dense, Identity, Layer, MaxPool2D,
                       Sigmoid)
from nn.losses import MSE
from nn.optim import Adam

PRACTICAL = "autoencoder"
SEED = 0


def output_shape(layers, input_shape):
    shape = tuple(input_shape)
    for layer in layers:
        shape = tuple(layer.output_shape(shape))
    return shape


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


# -- encoder and decoder -------------------------------------------------------------------
@pytest.mark.student("encoder")
def test_encoder_maps_images_to_two_latent_values(module):
    layers = module.encoder()
    assert isinstance(layers, list) and layers, "encoder() returns a list of layers"
    assert all(isinstance(layer, Layer) for layer in layers), f"not all nn layers: {layers}"
    assert output_shape(layers, (1, 28, 28)) == (2,)
    z = Network(layers).predict(images((4, 1, 28, 28)))
    assert z.shape == (4, 2)
    assert np.all(np.isfinite(z))
    assert not np.allclose(z[0], z[1]), "different images, different codes"
    assert any(isinstance(layer, (MaxPool2D, AvgPool2D))
               or (isinstance(layer, Conv2D) and max(layer.stride) > 1) for layer in layers), \
        "the encoder must shrink the image: a convolution of stride 2 or a pooling"
    assert isinstance(layers[-1], Dense), \
        "the last layer is the Dense to the latent values, with no activation after it"


@pytest.mark.student("decoder")
def test_decoder_maps_latent_codes_to_images(module):
    layers = module.decoder()
    assert isinstance(layers, list) and layers, "decoder() returns a list of layers"
    assert all(isinstance(layer, Layer) for layer in layers), f"not all nn layers: {layers}"
    assert output_shape(layers, (2,)) == (1, 28, 28)
    z = np.random.default_rng(1).normal(0, 3, (5, 2)).astype(np.float32)
    out = Network(layers).predict(z)
    assert out.shape == (5, 1, 28, 28)
    assert np.all((out >= 0) & (out <= 1)), "the pixels must lie in [0, 1] (a final Sigmoid)"
    assert isinstance(layers[-1], Sigmoid)
    assert any(isinstance(layer, ConvTranspose2D) for layer in layers), \
        "the decoder enlarges the feature maps with transposed convolutions"
    assert not np.allclose(out[0], out[1]), "different codes, different images"


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


# -- reconstruction_error ------------------------------------------------------------------
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


# -- polar_grid ----------------------------------------------------------------------------
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


# -- training on the sample ----------------------------------------------------------------
_trained: dict = {}


def trained_on_sample(module):
    """An autoencoder trained 2 epochs on the 2 000 bundled training images; returns the test
    images' reconstruction errors, the error of the mean training image, their codes and
    labels."""
    if id(module) not in _trained:
        x, _ = load_fashion_mnist("train", source="sample")
        x_test, y_test = load_fashion_mnist("test", source="sample")
        with backends.using("numpy", "fp32", seed=SEED):
            net, encode, _ = module.autoencoder()
            net.fit(x, x, epochs=2, batch_size=64, optimizer=Adam(3e-3), seed=SEED,
                    progress=False)
            errors = np.asarray(module.reconstruction_error(net, x_test))
            z = encode.predict(x_test)
        baseline = float(np.mean((x_test - x.mean(axis=0)) ** 2))
        _trained[id(module)] = errors, baseline, z, y_test
    return _trained[id(module)]


@pytest.mark.student("decoder")
def test_the_autoencoder_learns_to_reconstruct(module, report):
    errors, baseline, _, _ = trained_on_sample(module)
    error = float(errors.mean())
    report(reconstruction_error=error, limit=0.06)
    assert error < 0.06, f"test reconstruction error {error:.4f} >= 0.06"
    assert error < 0.7 * baseline, (f"test reconstruction error {error:.4f}: not much better "
                                    f"than the mean image's {baseline:.4f}")


@pytest.mark.student("encoder")
def test_the_latent_plane_groups_the_classes(module, report):
    """Never shown the labels, the encoder still puts images of a class near each other: the
    5 nearest codes of a test image mostly carry its label."""
    _, _, z, y = trained_on_sample(module)
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1)[:, :5]
    votes = np.array([np.bincount(y[row], minlength=10).argmax() for row in neighbours])
    acc = float(np.mean(votes == y))
    report(accuracy=acc, threshold=0.4)
    assert acc >= 0.4, f"5-nearest-neighbour accuracy in the latent plane {acc:.1%} < 40 % " \
        "(10 % by chance)"
