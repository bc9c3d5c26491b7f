"""The denoiser practical: Gaussian noise (statistics, clipping, the generator), the PSNR
(known values, a perfect copy), the U-Net (shape, its Concat skip, a float64 gradient check
of the whole network, and a short seeded training by the test's own loop that must raise
the PSNR) and the training function (a fresh noise for every batch, seen by a recording
layer; the PSNR it reaches with a U-Net of the test's own). Each student function is
graded on its own: the tests use their own noise, PSNR and training where they need one."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from nn import Network, backends
from nn.data import load_fashion_mnist
from nn.gradcheck import numerical_gradient, rel_error
from nn.layers import (AvgPool2D, Concat, Conv2D, ConvTranspose2D, Identity, MaxPool2D, ReLU,
                       Sigmoid)
from nn.layers.base import named_layers
from nn.losses import MSE
from nn.optim import Adam, LinearDecayLR

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


# -- psnr ----------------------------------------------------------------------------------
@pytest.mark.student("psnr")
@pytest.mark.parametrize("shape", [(4, 1, 6, 6), (1, 1, 28, 28), (3, 3, 5, 7)])
def test_psnr_of_known_errors(module, report, shape):
    """Image n is off by ``d_n`` everywhere: MSE ``d_n²``, PSNR ``-20 log10(d_n)``."""
    rng = np.random.default_rng(10)
    reference = rng.uniform(0.2, 0.8, size=shape)
    offsets = np.array([0.1, 0.01, 0.05, 0.2][:shape[0]])
    x = reference + offsets.reshape(-1, *[1] * (len(shape) - 1)) * rng.choice([-1, 1], shape)
    kept = x.copy()
    got = np.asarray(module.psnr(x, reference))
    assert got.shape == (shape[0],), f"one PSNR per image: shape {got.shape}"
    expected = -20 * np.log10(offsets)           # 20, 40, 26.0, 14.0 dB
    err = float(np.max(np.abs(got - expected) / expected))
    report(rel_error=err, limit=1e-9)
    assert err < 1e-9, f"PSNR {got}, expected {expected} dB"
    np.testing.assert_array_equal(x, kept, err_msg="x must not be modified")


@pytest.mark.student("psnr")
def test_psnr_of_a_perfect_copy_is_infinite(module):
    x = np.random.default_rng(11).uniform(size=(3, 1, 4, 4)).astype(np.float32)
    y = x.copy()
    y[1] = np.clip(y[1] + 0.1, 0, 1)               # only image 1 differs
    got = np.asarray(module.psnr(y, x), dtype=np.float64)
    assert np.isinf(got[0]) and got[0] > 0 and np.isinf(got[2]), \
        f"identical images: PSNR +inf, got {got}"
    assert np.isfinite(got[1]) and got[1] > 19, f"image 1: PSNR {got[1]}"


# -- the test's own noise, PSNR and training --------------------------------------------------
SIGMA = 0.3


def noisy_copy(x, rng):
    return np.clip(x + SIGMA * rng.standard_normal(x.shape), 0, 1).astype(x.dtype)


def psnr_gain(net, x_test):
    """Mean PSNR of the denoised minus that of the noisy test images (fixed noise), in dB."""
    noisy = noisy_copy(x_test, np.random.default_rng(SEED + 2))

    def mean_psnr(a):
        mse = ((np.asarray(a, np.float64) - x_test) ** 2).reshape(len(a), -1).mean(axis=1)
        return float(np.mean(10 * np.log10(1 / mse)))

    return mean_psnr(noisy), mean_psnr(net.predict(noisy))


@functools.lru_cache(maxsize=None)
def denoising_sample():
    """1 000 training and 500 test images of the bundled Fashion-MNIST sample."""
    x, _ = load_fashion_mnist("train", source="sample")
    x_test, _ = load_fashion_mnist("test", source="sample")
    x = x[np.random.default_rng(SEED).permutation(len(x))[:1000]]
    x_test = x_test[np.random.default_rng(SEED + 1).permutation(len(x_test))[:500]]
    return x, x_test


def reference_unet(c=8):
    """A U-Net of the test's own, to test the training function alone."""
    return Network([Conv2D(1, c, 3, padding=1, init="he"), ReLU(),
                    Concat([MaxPool2D(2), Conv2D(c, 2 * c, 3, padding=1, init="he"), ReLU(),
                            ConvTranspose2D(2 * c, c, 2, stride=2, init="he"), ReLU()]),
                    Conv2D(2 * c, c, 3, padding=1, init="he"), ReLU(),
                    Conv2D(c, 1, 1), Sigmoid()], MSE())


@pytest.mark.student("unet")
def test_the_unet_removes_noise(module, report):
    """The student's U-Net, trained 2 epochs by the test's own loop (Adam, fresh noise)."""
    x, x_test = denoising_sample()
    with backends.using("numpy", "fp32", seed=SEED):
        net = module.unet()
        rng = np.random.default_rng(SEED)
        net.fit(x, x, epochs=2, batch_size=32, optimizer=Adam(LinearDecayLR(1e-2, 5e-4, 2)),
                seed=SEED, augment=lambda xb, yb: (noisy_copy(xb, rng), yb), progress=False)
        before, after = psnr_gain(net, x_test)
    report(psnr_gain=after - before, threshold=4.0)
    assert after - before > 4.0, (f"PSNR {before:.1f} dB for the noisy images, {after:.1f} dB "
                                  "denoised: the gain should exceed 4 dB (the course's "
                                  "design: +5.7 dB)")


# -- train_denoiser ----------------------------------------------------------------------------
@pytest.mark.student("train_denoiser")
def test_train_denoiser_raises_the_psnr(module, report):
    x, x_test = denoising_sample()
    with backends.using("numpy", "fp32", seed=SEED):
        net = reference_unet()
        module.train_denoiser(net, x, SIGMA, 2, seed=SEED, progress=False)
        before, after = psnr_gain(net, x_test)
    report(psnr_gain=after - before, threshold=4.0)
    assert after - before > 4.0, (f"PSNR {before:.1f} dB for the noisy images, {after:.1f} dB "
                                  "after 2 epochs on 1 000 images: the gain should exceed "
                                  "4 dB (the solution: +5.7 dB)")


def recording_network(seen):
    """Identity, then a 1x1 convolution; the identity keeps a copy of every training input."""
    spy = Identity()
    forward = spy.forward

    def record(x, train=False):
        if train:
            seen.append(np.array(backends.current().to_host(x), dtype=np.float64))
        return forward(x, train)

    spy.forward = record
    return Network([spy, Conv2D(1, 1, 1)], MSE())


@pytest.mark.student("train_denoiser")
def test_train_denoiser_draws_a_new_noise_for_every_batch(module):
    """Three grey images, fewer than a batch, 4 epochs: every input the network is trained on
    is a noisy copy (standard deviation sigma, in [0, 1]), never the same one twice."""
    x = np.full((3, 1, 12, 12), 0.5, dtype=np.float32)
    seen = []
    with backends.using("numpy", "fp32", seed=SEED):
        module.train_denoiser(recording_network(seen), x, 0.1, 4, seed=SEED, progress=False)
    np.testing.assert_array_equal(x, 0.5, err_msg="x must not be modified")
    assert len(seen) >= 4, f"{len(seen)} training batches seen in 4 epochs"
    batches = np.concatenate([b.reshape(-1, 12 * 12) for b in seen])
    assert len(batches) == 12, f"{len(batches)} images went through training, expected 4 x 3"
    assert batches.min() >= 0 and batches.max() <= 1, "noisy inputs stay in [0, 1]"
    std = float((batches - 0.5).std())
    assert abs(std / 0.1 - 1) < 0.15, f"input noise of standard deviation {std:.3f}, expected 0.1"
    distinct = len({row.tobytes() for row in batches})
    assert distinct == len(batches), "a new noise for every image of every batch"
