"""The filters practical: cross-correlation against a loop over every output pixel (shapes,
odd sizes, non-square kernels, stride, padding), the flip of the true convolution, the
Gaussian kernel, and the properties of the classic kernels."""
from __future__ import annotations

import numpy as np
import pytest

PRACTICAL = "filters"

# (H, W), (kh, kw), stride, padding
CASES = [
    ((7, 7), (3, 3), 1, 0),
    ((8, 5), (3, 3), 1, 1),
    ((9, 11), (5, 5), 1, 2),
    ((6, 9), (2, 3), 1, 0),          # non-square, even kernel height
    ((10, 7), (3, 1), 2, 1),
    ((11, 13), (4, 3), 3, 2),        # stride 3: windows do not cover the last rows
    ((5, 5), (5, 5), 1, 0),          # kernel as large as the image: one output pixel
    ((4, 6), (5, 7), 1, 2),          # kernel larger than the image, fits thanks to padding
    ((12, 9), (3, 5), 2, 0),
]


def naive_correlate(image, kernel, stride, padding):
    """The definition, one output pixel at a time, in float64."""
    image = np.pad(np.asarray(image, dtype=np.float64), padding)
    kh, kw = kernel.shape
    OH = (image.shape[0] - kh) // stride + 1
    OW = (image.shape[1] - kw) // stride + 1
    y = np.zeros((OH, OW))
    for i in range(OH):
        for j in range(OW):
            for a in range(kh):
                for b in range(kw):
                    y[i, j] += kernel[a, b] * image[stride * i + a, stride * j + b]
    return y


def naive_convolve(image, kernel, stride, padding):
    """``y[i, j] = sum k[a, b] x[p_i - a, p_j - b]``, with ``p`` the window's last pixel."""
    image = np.pad(np.asarray(image, dtype=np.float64), padding)
    kh, kw = kernel.shape
    OH = (image.shape[0] - kh) // stride + 1
    OW = (image.shape[1] - kw) // stride + 1
    y = np.zeros((OH, OW))
    for i in range(OH):
        for j in range(OW):
            for a in range(kh):
                for b in range(kw):
                    y[i, j] += kernel[a, b] * image[stride * i + kh - 1 - a, stride * j + kw - 1 - b]
    return y


def random_problem(case, seed):
    (H, W), (kh, kw), _, _ = case
    rng = np.random.default_rng(seed)
    return rng.standard_normal((H, W)), rng.standard_normal((kh, kw))


# -- correlate2d ---------------------------------------------------------------------------------
@pytest.mark.student("correlate2d")
@pytest.mark.parametrize("case", CASES, ids=str)
def test_correlate2d_matches_the_definition(module, case):
    image, kernel = random_problem(case, seed=sum(case[0]) + sum(case[1]))
    stride, padding = case[2], case[3]
    before = image.copy(), kernel.copy()
    y = np.asarray(module.correlate2d(image, kernel, stride=stride, padding=padding))
    ref = naive_correlate(image, kernel, stride, padding)
    assert y.shape == ref.shape, (f"output shape {y.shape}, expected {ref.shape}: "
                                  "OH = (H + 2 padding - kh) // stride + 1")
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(image, before[0], err_msg="the image must not be modified")
    np.testing.assert_array_equal(kernel, before[1], err_msg="the kernel must not be modified")


@pytest.mark.student("correlate2d")
def test_correlate2d_of_a_uint8_photo_does_not_overflow(module):
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (9, 8), dtype=np.uint8)
    kernel = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)
    y = np.asarray(module.correlate2d(photo, kernel, padding=1))
    assert y.dtype.kind == "f", f"the output must be float, got {y.dtype}"
    np.testing.assert_allclose(y, naive_correlate(photo, kernel, 1, 1), rtol=1e-12)
    assert y.min() < 0 and y.max() > 255, "sharpening a photo overshoots [0, 255]"


@pytest.mark.student("correlate2d")
def test_correlate2d_same_padding_keeps_the_size(module):
    image = np.random.default_rng(2).uniform(size=(13, 10))
    for size in (1, 3, 5, 7):
        y = module.correlate2d(image, np.ones((size, size)) / size**2, padding=size // 2)
        assert np.shape(y) == image.shape, f"{size}x{size} kernel, padding {size // 2}"
    identity = np.zeros((3, 3))
    identity[1, 1] = 1.0
    np.testing.assert_allclose(module.correlate2d(image, identity, padding=1), image, rtol=1e-12)


# -- convolve2d ----------------------------------------------------------------------------------
@pytest.mark.student("convolve2d")
@pytest.mark.parametrize("case", CASES[:6], ids=str)
def test_convolve2d_matches_the_definition(module, case):
    image, kernel = random_problem(case, seed=100 + sum(case[0]))
    stride, padding = case[2], case[3]
    y = np.asarray(module.convolve2d(image, kernel, stride=stride, padding=padding))
    ref = naive_convolve(image, kernel, stride, padding)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.student("convolve2d")
def test_convolve2d_draws_the_kernel_at_an_impulse_and_commutes(module):
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 3))
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1.0
    np.testing.assert_allclose(module.convolve2d(impulse, kernel, padding=1)[1:4, 1:4], kernel,
                               rtol=1e-12, err_msg="an impulse convolved with k gives k itself")
    # "full" convolution (padding = size - 1) is commutative; correlation is not
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    np.testing.assert_allclose(module.convolve2d(a, b, padding=2), module.convolve2d(b, a, padding=3),
                               rtol=1e-10, atol=1e-12, err_msg="full convolution commutes: a * b = b * a")


# -- gaussian_kernel ------------------------------------------------------------------------------
@pytest.mark.student("gaussian_kernel")
@pytest.mark.parametrize("size, sigma", [(3, 0.8), (5, 1.0), (7, 2.5), (4, 1.2), (1, 1.0)])
def test_gaussian_kernel(module, size, sigma):
    k = np.asarray(module.gaussian_kernel(size, sigma), dtype=np.float64)
    assert k.shape == (size, size)
    np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-12, err_msg="the weights must sum to 1")
    np.testing.assert_allclose(k, k.T, rtol=1e-12)
    np.testing.assert_allclose(k, k[::-1, ::-1], rtol=1e-12, err_msg="symmetric about its centre")
    row = k.sum(axis=1)
    np.testing.assert_allclose(k, np.outer(row, row), rtol=1e-10,
                               err_msg="a 2D Gaussian is the product of two 1D Gaussians")
    if size >= 3:
        c = (size - 1) / 2
        d = np.arange(size) - c
        ratio = np.exp(-(d[0] ** 2 - d[size // 2] ** 2) / (2 * sigma**2))
        np.testing.assert_allclose(row[0] / row[size // 2], ratio, rtol=1e-10,
                                   err_msg="weights fall as exp(-d^2 / (2 sigma^2)) with the "
                                           "distance d to the centre (size - 1) / 2")


# -- classic_kernels -------------------------------------------------------------------------------
NAMES = ("sharpen", "gaussian blur", "edge detector", "axis elevation", "sobel x", "emboss")
# the matrices of the slides' "Filter effect examples" (000_b388954048d25251.txt)
SLIDES = {
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "gaussian blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "edge detector": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "axis elevation": np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
}


def ramp(axis, shape=(9, 10)):
    """An image getting brighter by 1 per pixel along ``axis`` (0: down, 1: right)."""
    return np.indices(shape, dtype=np.float64)[axis] + 3.0


def kernel(module, name):
    kernels = module.classic_kernels()
    assert name in kernels, f"classic_kernels() has no {name!r}: keys {sorted(kernels)}"
    k = np.asarray(kernels[name], dtype=np.float64)
    assert k.shape == (3, 3), f"{name}: shape {k.shape}, expected (3, 3)"
    return k


@pytest.mark.student("classic_kernels")
@pytest.mark.parametrize("name", sorted(SLIDES))
def test_classic_kernels_are_the_slides_matrices(module, name):
    np.testing.assert_allclose(kernel(module, name), SLIDES[name], rtol=1e-12, atol=1e-12,
                               err_msg=f"{name}: not the slides' matrix (Filter effect examples)")


@pytest.mark.student("classic_kernels")
def test_classic_kernels_on_flat_images(module):
    """Sum 1 keeps a flat image, sum 0 sends it to 0."""
    flat = np.full((8, 8), 0.7)
    for name, total in (("sharpen", 1), ("gaussian blur", 1), ("emboss", 1), ("edge detector", 0),
                        ("axis elevation", 0), ("sobel x", 0)):
        k = kernel(module, name)
        np.testing.assert_allclose(k.sum(), total, atol=1e-12, err_msg=f"{name}: sum of the weights")
        y = naive_correlate(flat, k, 1, 0)
        np.testing.assert_allclose(y, 0.7 * total, atol=1e-12, err_msg=f"{name} on a flat image")


@pytest.mark.student("classic_kernels")
def test_edge_detector_ignores_ramps_and_sees_a_point(module):
    edge = kernel(module, "edge detector")
    for axis in (0, 1):
        np.testing.assert_allclose(naive_correlate(ramp(axis), edge, 1, 0), 0, atol=1e-12,
                                   err_msg="the edge detector is 0 on a linear ramp")
    point = np.zeros((5, 5))
    point[2, 2] = 1.0
    y = naive_correlate(point, edge, 1, 1)
    assert y[2, 2] == 8 and np.all(y[1:4, 1:4][np.arange(9).reshape(3, 3) != 4] == -1), \
        "a lone bright pixel: 8 at its place, -1 around it"


@pytest.mark.student("classic_kernels")
def test_derivative_kernels_on_ramps(module):
    """Axis elevation is a vertical derivative, Sobel x a horizontal one (under correlate2d)."""
    elevation, sobel = kernel(module, "axis elevation"), kernel(module, "sobel x")
    down = naive_correlate(ramp(0), elevation, 1, 0)
    np.testing.assert_allclose(down, 6.0, rtol=1e-12,
                               err_msg="axis elevation: +3 x (row below - row above) on a ramp")
    np.testing.assert_allclose(naive_correlate(ramp(1), elevation, 1, 0), 0, atol=1e-12,
                               err_msg="axis elevation does not see changes from left to right")
    right = naive_correlate(ramp(1), sobel, 1, 0)
    assert np.all(right > 0), "sobel x responds > 0 where the image gets brighter to the right"
    np.testing.assert_allclose(right, right.flat[0], rtol=1e-12)
    np.testing.assert_allclose(naive_correlate(ramp(0), sobel, 1, 0), 0, atol=1e-12,
                               err_msg="sobel x does not see changes from top to bottom")


@pytest.mark.student("classic_kernels")
def test_emboss_is_an_image_plus_an_antisymmetric_relief(module):
    k = kernel(module, "emboss")
    relief = k.copy()
    relief[1, 1] -= 1.0
    np.testing.assert_allclose(relief, -relief[::-1, ::-1], atol=1e-12,
                               err_msg="emboss = identity + a kernel that turns into its opposite "
                                       "when rotated by 180 degrees (a derivative along an axis)")
    assert np.abs(relief).sum() > 0
    assert relief[0, 0] < 0 < relief[2, 2], "the relief rises towards the bottom-right corner"
