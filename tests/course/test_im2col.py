"""The im2col practical: output size, im2col and col2im equal to nn's (the same layout) over
shapes with non-square kernels, odd sizes, strides 1 to 3, padding 0 to 2 and overlapping
windows, and the adjoint identity <im2col(x), c> = <x, col2im(c)> in float64."""
from __future__ import annotations

import numpy as np
import pytest

from nn.backends import im2col as lib

PRACTICAL = "im2col"

# (N, C, H, W), (kh, kw), stride, padding
CASES = [
    ((1, 1, 4, 4), (2, 2), 1, 0),
    ((2, 3, 7, 7), (3, 3), 1, 1),       # overlapping windows, "same" padding
    ((3, 2, 9, 8), (3, 5), 2, 1),       # non-square kernel, odd sizes
    ((2, 1, 11, 6), (4, 2), 3, 2),      # stride 3, even kernel, padding 2
    ((1, 4, 5, 9), (5, 1), 1, 2),
    ((2, 2, 10, 10), (3, 3), 2, 0),     # stride 2 < kernel: overlapping, the last row unused
    ((4, 1, 6, 6), (2, 2), 2, 0),       # windows side by side (as in a 2x2 pooling)
    ((1, 3, 3, 4), (3, 4), 1, 0),       # one window: the whole image
    ((2, 2, 8, 5), (1, 1), 3, 1),
]
IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}" for c in CASES]


def lib_geometry(case):
    _, (kh, kw), stride, padding = case
    return (kh, kw), (stride, stride), (padding, padding), (1, 1)


@pytest.mark.student("conv_output_size")
def test_conv_output_size(module):
    for size in (1, 4, 7, 10, 28):
        for kernel in (1, 2, 3, 5):
            for stride in (1, 2, 3):
                for padding in (0, 1, 2):
                    expected = lib.output_size(size, kernel, stride, padding, 1)
                    got = module.conv_output_size(size, kernel, stride, padding)
                    assert got == expected, (f"size {size}, kernel {kernel}, stride {stride}, "
                                             f"padding {padding}: {got}, expected {expected}")


@pytest.mark.student("conv_output_size")
@pytest.mark.parametrize("args, expected", [
    ((28, 5, 1, 2), 28),        # LeNet's first convolution keeps the size
    ((14, 5, 1, 0), 10),        # the slide: Size_output = Size_input - Size_kernel + 1
    ((28, 2, 2, 0), 14),        # a 2x2 pooling halves
    ((7, 3, 3, 1), 3),          # stride 3: the last padded pixel is in no window
    ((5, 1, 4, 0), 2),          # stride larger than the kernel: pixels skipped
    ((4, 4, 1, 0), 1),          # one window: the whole axis
    ((3, 5, 1, 0), -1),         # the window does not fit
])
def test_conv_output_size_examples(module, args, expected):
    got = module.conv_output_size(*args)
    assert got == expected, f"conv_output_size{args} = {got}, expected {expected}"
    assert isinstance(got, (int, np.integer)), f"an int, not {type(got).__name__}"


@pytest.mark.student("im2col")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_im2col_equals_nn(module, case):
    shape, (kh, kw), stride, padding = case
    x = np.random.default_rng(sum(shape)).standard_normal(shape)
    before = x.copy()
    cols = np.asarray(module.im2col(x, kh, kw, stride=stride, padding=padding))
    expected = lib.im2col(np, x, *lib_geometry(case))
    assert cols.shape == expected.shape, f"cols of shape {cols.shape}, expected {expected.shape} = (C*kh*kw, N*OH*OW)"
    np.testing.assert_array_equal(cols, expected, err_msg="values or layout differ from nn's im2col")
    np.testing.assert_array_equal(x, before, err_msg="im2col must not modify x")


@pytest.mark.student("im2col")
def test_im2col_keeps_the_dtype(module):
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32)
    cols = module.im2col(x, 3, 2, stride=1, padding=1)
    assert cols.dtype == np.float32, f"float32 images give float32 columns, got {cols.dtype}"


@pytest.mark.student("col2im")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_col2im_equals_nn(module, case):
    shape = case[0]
    rows, columns = lib.im2col(np, np.zeros(shape), *lib_geometry(case)).shape
    c = np.random.default_rng(7 + sum(shape)).standard_normal((rows, columns))
    before = c.copy()
    (kh, kw), stride, padding = case[1], case[2], case[3]
    x = np.asarray(module.col2im(c, shape, kh, kw, stride=stride, padding=padding))
    expected = lib.col2im(np, c, shape, *lib_geometry(case))
    assert x.shape == shape, f"col2im gave shape {x.shape}, expected x_shape {shape}"
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-12,
                               err_msg="col2im differs from nn's: are overlapping contributions "
                                       "added (+=), and the padding cropped?")
    np.testing.assert_array_equal(c, before, err_msg="col2im must not modify cols")


@pytest.mark.student("col2im")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_adjoint_identity(module, case, report):
    """<im2col(x), c> = <x, col2im(c)> for random x and c, in float64."""
    shape, (kh, kw), stride, padding = case
    rng = np.random.default_rng(100 + sum(shape))
    x = rng.standard_normal(shape)
    cols = np.asarray(module.im2col(x, kh, kw, stride=stride, padding=padding))
    c = rng.standard_normal(cols.shape)
    back = np.asarray(module.col2im(c, shape, kh, kw, stride=stride, padding=padding))
    left, right = float(np.sum(cols * c)), float(np.sum(x * back))
    err = abs(left - right) / max(1e-8, abs(left) + abs(right))
    report(rel_error=err, limit=1e-12)
    assert err < 1e-12, f"<im2col(x), c> = {left:.15g} but <x, col2im(c)> = {right:.15g}"


@pytest.mark.student("col2im")
def test_col2im_counts_the_windows_covering_each_pixel(module):
    """col2im(im2col(ones)): 3x3 windows, stride 1, no padding, on a 5x5 image."""
    ones = np.ones((1, 1, 5, 5))
    count = np.asarray(module.col2im(module.im2col(ones, 3, 3), ones.shape, 3, 3))[0, 0]
    edge = np.array([1, 2, 3, 2, 1])
    np.testing.assert_array_equal(count, np.outer(edge, edge))


# -- conv2d_im2col ---------------------------------------------------------------------------
@pytest.mark.student("conv2d_im2col")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_im2col_equals_the_loops(module, case):
    shape, (kh, kw), stride, padding = case
    rng = np.random.default_rng(200 + sum(shape))
    x, O = rng.standard_normal(shape), 3
    W, b = rng.standard_normal((O, shape[1], kh, kw)), rng.standard_normal(O)
    y = np.asarray(module.conv2d_im2col(x, W, b, stride=stride, padding=padding))
    expected = module.conv_loops(x, W, b, stride=stride, padding=padding)
    assert y.shape == expected.shape, f"y of shape {y.shape}, expected (N, O, OH, OW) = {expected.shape}"
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.student("conv2d_im2col")
def test_conv2d_im2col_equals_nn_conv2d_on_one_image(module):
    """A batch of one, stride 2, a non-square kernel: the same as nn's layer."""
    import nn
    from nn.layers import Conv2D

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 9, 7))
    with nn.backends.using("numpy", "fp64"):
        conv = Conv2D(2, 4, (3, 2), stride=2, padding=1)
        conv.params["b"] = rng.standard_normal(4)
        expected = conv.forward(x)
        W, b = conv.params["W"], conv.params["b"]
    y = np.asarray(module.conv2d_im2col(x, W, b, stride=2, padding=1))
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
