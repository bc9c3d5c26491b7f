"""The denoiser practical: Gaussian noise (statistics, clipping, the generator), the U-Net
(shape, its Concat skip, a float64 gradient check of the whole network) and a short seeded
training on the bundled Fashion-MNIST sample that must raise the PSNR."""
from __future__ import annotations

import numpy as np
import pytest

from nn import Network, backends
from nn.data import load_fashion_mnist
from nn.gradcheck import numerical_gradient, rel_error
from nn.layers import AvgPool2D, Concat, Conv2D, ConvTranspose2D, MaxPool2D
from nn.layers.base import named_layers
from nn.losses import MSE

from helpers import distinct_values

PRACTICAL = "denoiser"
SEED = 0


# -- add_noise -----------------------------------------------------------------------------
@pytest.mark.student("add_noise")
@pytest.mark.parametrize("sigma", [0.05, 0.1])
def test_add_noise_is_gaussian_of_standard_deviation_sigma(module, sigma):
    x = np.full((100, 1, 20, 20), 0.5, dtype=np.float32)   # far from 0 and 1: no clipping
    out = np.asarray(module.add_noise(x, sigma, np.random.default_rng(1)))
    np.testing.assert_array_equal(x, 0.5, err_msg="x must not be modified")
    assert out.shape == x.shape
    assert out.dtype == x.dtype, f"dtype {out.dtype}, expected that of x, {x.dtype}"
    noise = out.astype(np.float64) - 0.5
    assert abs(noise.mean()) < 0.01 * sigma * 5, f"noise mean {noise.mean():.4f}, expected 0"
    assert abs(noise.std() / sigma - 1) < 0.02, f"noise std {noise.std():.4f}, expected {sigma}"
    # a new draw for every pixel of every image, not one noise image shared by all
    per_pixel = noise.reshape(100, -1).std(axis=0)
    assert abs(per_pixel.mean() / sigma - 1) < 0.05, "each image needs its own noise"
    assert abs(np.corrcoef(noise[:, 0, :, :-1].ravel(), noise[:, 0, :, 1:].ravel())[0, 1]) < 0.05, \
        "neighbouring pixels must get independent noise"


@pytest.mark.student("add_noise")
def test_add_noise_clips_to_the_range_of_the_pixels(module):
    x = np.zeros((2, 1, 50, 50))
    x[1] = 1.0
    out = np.asarray(module.add_noise(x, 0.5, np.random.default_rng(2)))
    assert out.min() >= 0.0 and out.max() <= 1.0, "clip the result to [0, 1]"
    # black pixels pushed below 0 stay black: about half of them; as many white ones at 1
    at_zero, at_one = np.mean(out[0] == 0.0), np.mean(out[1] == 1.0)
    assert 0.45 < at_zero < 0.55 and 0.45 < at_one < 0.55, \
        f"{at_zero:.0%} of the black and {at_one:.0%} of the white pixels clipped, expected ~50 %"
    inside = out[0][out[0] > 0]
    assert abs(inside.mean() - 0.5 * np.sqrt(2 / np.pi)) < 0.03, \
        "the noise kept inside [0, 1] is unchanged (mean of |N(0, 0.5)|)"


@pytest.mark.student("add_noise")
def test_add_noise_draws_from_rng(module):
    x = np.random.default_rng(3).uniform(size=(4, 1, 6, 6)).astype(np.float32)
    first = module.add_noise(x, 0.2, np.random.default_rng(4))
    np.testing.assert_array_equal(first, module.add_noise(x, 0.2, np.random.default_rng(4)))
    rng = np.random.default_rng(4)
    module.add_noise(x, 0.2, rng)
    assert not np.array_equal(module.add_noise(x, 0.2, rng), first), \
        "every call must draw new noise from rng"
    np.testing.assert_array_equal(module.add_noise(x, 0.0, np.random.default_rng(5)), x)


# -- unet ----------------------------------------------------------------------------------
@pytest.mark.student("unet")
@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (3, 1, 8, 12)])
def test_unet_output_has_the_shape_of_its_input(module, shape):
    net = module.unet()
    assert isinstance(net, Network) and isinstance(net.loss, MSE)
    x = np.random.default_rng(6).uniform(size=shape).astype(np.float32)
    out = net.predict(x)
    assert out.shape == shape
    assert np.all((out >= 0) & (out <= 1)), "pixels in [0, 1] (a final Sigmoid)"
    assert not np.allclose(out[0], out[1]), "different images, different outputs"


@pytest.mark.student("unet")
def test_unet_has_a_concat_skip_around_a_down_and_up_block(module):
    net = module.unet(channels=4)
    blocks = [layer for top in net.layers for _, layer in named_layers(top)
              if isinstance(layer, Concat)]
    assert blocks, "the skip connection is a Concat layer"
    inner = [layer for block in blocks for _, layer in named_layers(block)]
    assert any(isinstance(layer, (MaxPool2D, AvgPool2D))
               or (isinstance(layer, Conv2D) and max(layer.stride) > 1) for layer in inner), \
        "inside the Concat, the image is made smaller (pooling or strided convolution)"
    assert any(isinstance(layer, ConvTranspose2D) for layer in inner), \
        "inside the Concat, a transposed convolution brings it back to the input's size"
    shape = (1, 12, 12)
    for layer in net.layers:
        out = layer.output_shape(shape)
        if isinstance(layer, Concat):
            assert out[0] > shape[0] and out[1:] == shape[1:], \
                f"{layer!r}: maps {shape} to {out}, expected more channels, same size"
        shape = out
    assert module.unet(channels=2).n_params() < net.n_params() < module.unet(8).n_params(), \
        "channels sets the width of the network"


def network_gradient_errors(net, x, seed=0):
    """Relative errors of ``net.backward`` against finite differences, in float64, for the
    input and every parameter, with a random upstream gradient."""
    with backends.using("numpy", "fp64", seed=seed) as B:
        net.to_backend()
        x = B.asarray(np.array(x, dtype=np.float64))
        y = net.forward(x)
        dy = np.random.default_rng(seed).standard_normal(y.shape)
        dx = net.backward(dy.copy())
        analytic = {key: layer.grads[name].copy() for key, layer, name in net.named_parameters()}

        def f(_):
            return float((net.forward(x) * dy).sum())

        errors = {"x": rel_error(dx, numerical_gradient(f, x))}
        for key, layer, name in net.named_parameters():
            errors[key] = rel_error(analytic[key], numerical_gradient(f, layer.params[name]))
    return errors


@pytest.mark.student("unet")
@pytest.mark.parametrize("shape", [(2, 1, 6, 8), (1, 1, 4, 10)])
def test_unet_gradient(module, report, shape):
    with backends.using("numpy", "fp64", seed=SEED):
        net = module.unet(channels=2)
        # non-zero biases, so that no ReLU input sits exactly at its kink
        rng = np.random.default_rng(7)
        for layer, name in net.parameters():
            if name == "b":
                layer.params[name] = rng.uniform(0.1, 0.3, layer.params[name].shape)
    errors = network_gradient_errors(net, distinct_values(shape, seed=8) + 0.5, seed=9)
    assert len(errors) == 1 + len(net.parameters()) > 5
    err = max(errors.values())
    report(rel_error=err, limit=1e-6)
    worst = max(errors, key=errors.get)
    assert err < 1e-6, f"relative error of the gradient of {worst}: {err:.2e}"


# -- training on the sample ----------------------------------------------------------------
SIGMA = 0.3
_trained: dict = {}


def trained_on_sample(module):
    """PSNR (dB) of 500 noisy test images and of the U-Net's output, after 2 epochs on 1 000
    bundled training images with fresh noise at every batch."""
    if id(module) not in _trained:
        x, _ = load_fashion_mnist("train", source="sample")
        x_test, _ = load_fashion_mnist("test", source="sample")
        x = x[np.random.default_rng(SEED).permutation(len(x))[:1000]]
        x_test = x_test[np.random.default_rng(SEED + 1).permutation(len(x_test))[:500]]
        with backends.using("numpy", "fp32", seed=SEED):
            net = module.unet()
            module.train_denoiser(net, x, SIGMA, epochs=2, batch_size=32, lr=1e-2, seed=SEED,
                                  progress=False)
            noisy = module.add_noise(x_test, SIGMA, np.random.default_rng(SEED + 2))
            denoised = net.predict(noisy)
        _trained[id(module)] = (module.psnr(noisy, x_test).mean(),
                                module.psnr(denoised, x_test).mean())
    return _trained[id(module)]


@pytest.mark.student("unet")
def test_the_unet_removes_noise(module, report):
    before, after = trained_on_sample(module)
    report(psnr_gain=after - before, threshold=4.0)
    assert after - before > 4.0, (f"PSNR {before:.1f} dB for the noisy images, {after:.1f} dB "
                                  "denoised: the gain should exceed 4 dB")
