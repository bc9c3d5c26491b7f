"""Convolutions: im2col/col2im, Conv1D/2D/3D and ConvTranspose1D/2D/3D.

The fast code (im2col + one matrix product) is compared with the naive definitions kept at
the top of this file: explicit Python loops over output positions and kernel taps, written
once for any number of spatial axes. Gradients are checked in float64 with a random upstream
gradient (:func:`nn.gradcheck.check_layer`); a layer passes below a relative error of 1e-6.
"""
from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

import nn
from nn import backends
from nn.backends.im2col import batch_chunks, output_size, transposed_size
from nn.layers import (Conv1D, Conv2D, Conv3D, ConvTranspose1D, ConvTranspose2D, ConvTranspose3D,
                       Dense, Flatten, LeakyReLU, MaxPool2D)
from nn.losses import SoftmaxCrossEntropy
from nn.optim import SGD

from nn.layers.reference import (reference_conv, reference_conv_transpose, reference_im2col,
                                 reference_output_size)

from helpers import (assert_leaves_x_and_dy_alone, assert_passes, assert_rejects_wrong_dy,
                     assert_round_trips, host)

CONV = {1: Conv1D, 2: Conv2D, 3: Conv3D}
CONV_T = {1: ConvTranspose1D, 2: ConvTranspose2D, 3: ConvTranspose3D}
ALL = (slice(None), slice(None))   # every example and every channel


# -- helpers --------------------------------------------------------------------------------------


def params_host(layer):
    W = host(layer.params["W"]).astype(np.float64)
    b = host(layer.params["b"]).astype(np.float64) if "b" in layer.params else None
    return W, b


def randomize_bias(layer, rng):
    """Biases start at zero, which would hide a bias added in the wrong place: draw them."""
    if "b" in layer.params:
        layer.params["b"] = backends.current().param(rng.standard_normal(layer.out_channels))


def rel_close(a, b, rtol=1e-12):
    """Equal up to float64 rounding: |a - b| <= rtol * (|b| + max(1, max |b|)) element-wise."""
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max())))


@pytest.fixture
def one_example_per_chunk(small_workspace):
    """A 1-byte im2col workspace: every convolution processes its batch one example at a time."""
    return small_workspace


# -- output-size arithmetic -----------------------------------------------------------------------
def count_windows(size, kernel, stride, padding, dilation):
    """Brute force: the start positions of a dilated window that fit in the padded axis."""
    span = dilation * (kernel - 1) + 1
    return sum(1 for start in range(0, size + 2 * padding, stride)
               if start + span <= size + 2 * padding)


def test_output_size_matches_pytorch_formula_and_counting():
    rng = np.random.default_rng(0)
    for _ in range(500):
        size, kernel, stride, dilation = (int(v) for v in rng.integers(1, 9, 4))
        padding = int(rng.integers(0, 4))
        geometry = (size, kernel, stride, padding, dilation)
        n = output_size(*geometry)
        count = count_windows(*geometry)
        if count >= 1:
            assert n == count == reference_output_size(*geometry), geometry
        else:
            assert n < 1, geometry   # "a value < 1 when the window does not fit"


def test_output_size_hand_values():
    assert output_size(28, 5, 1, 2, 1) == 28        # LeNet's "same" 5x5 convolution
    assert output_size(28, 2, 2) == 14              # 2x2 max-pool
    assert output_size(7, 3, 2, 1) == 4             # floor((7 + 2 - 3) / 2) + 1
    assert output_size(10, 3, 1, 0, 2) == 6        # dilated span 5
    assert output_size(4, 5) < 1


def test_transposed_size_inverts_output_size():
    rng = np.random.default_rng(1)
    for _ in range(300):
        kernel, stride, dilation = (int(v) for v in rng.integers(1, 6, 3))
        padding = int(rng.integers(0, 3))
        # a size where the window fits: at least the dilated span minus the padding
        size = max(1, dilation * (kernel - 1) + 1 - 2 * padding) + int(rng.integers(0, 12))
        n = output_size(size, kernel, stride, padding, dilation)
        assert n >= 1
        # the one output_padding < stride that gives back the original size...
        op = (size + 2 * padding - dilation * (kernel - 1) - 1) % stride
        assert transposed_size(n, kernel, stride, padding, dilation, op) == size
        # ...and every output_padding < stride lands on a size the convolution maps to n
        for op in range(stride):
            t = transposed_size(n, kernel, stride, padding, dilation, op)
            if t >= 1:
                assert output_size(t, kernel, stride, padding, dilation) == n


def test_batch_chunks_cover_the_batch_within_the_budget():
    assert batch_chunks(5, 100, 250) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert batch_chunks(5, 100, 10**9) == [slice(0, 5)]
    assert batch_chunks(3, 100, 1) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # at least one each
    for n in range(1, 12):
        for budget in (1, 150, 333, 10**6):
            chunks = batch_chunks(n, 100, budget)
            covered = [i for c in chunks for i in range(n)[c]]
            assert covered == list(range(n))
            assert all(c.stop - c.start <= max(1, budget // 100) for c in chunks)


# -- im2col and col2im ----------------------------------------------------------------------------
# id -> (x_shape, kernel, stride, padding, dilation)
GEOMETRIES = {
    "1d": ((2, 3, 9), (3,), (1,), (0,), (1,)),
    "1d-s2-p2-d2": ((2, 2, 10), (3,), (2,), (2,), (2,)),
    "2d-overlap-p1": ((2, 2, 6, 7), (3, 3), (1, 1), (1, 1), (1, 1)),
    "2d-2x3-s2x1-p0x2-d2x1": ((1, 3, 7, 5), (2, 3), (2, 1), (0, 2), (2, 1)),
    "2d-stride-beyond-kernel": ((2, 1, 8, 7), (2, 2), (3, 3), (1, 0), (1, 1)),
    "3d-2x3x2-s1x2x1-p1x0x1-d1x1x2": ((2, 2, 4, 5, 3), (2, 3, 2), (1, 2, 1), (1, 0, 1), (1, 1, 2)),
}
each_geometry = pytest.mark.parametrize("x_shape, kernel, stride, padding, dilation",
                                        GEOMETRIES.values(), ids=GEOMETRIES.keys())


@pytest.fixture(params=[True, False], ids=["numba-kernels", "numpy-slices"])
def both_paths(request):
    """The NumPy backend's numba col2im, and the strided-slice version it replaces (the
    fixtures that follow keep the option: ``using`` keeps the options of the backend it
    replaces)."""
    with backends.using(numba=request.param):
        yield request.param


@each_geometry
def test_im2col_layout_matches_the_naive_columns(both_paths, fp64, x_shape, kernel, stride, padding, dilation):
    B = fp64
    x = np.random.default_rng(0).standard_normal(x_shape)
    cols = host(B.im2col(B.asarray(x), kernel, stride, padding, dilation))
    np.testing.assert_array_equal(cols, reference_im2col(x, kernel, stride, padding, dilation))


@each_geometry
def test_col2im_is_the_adjoint_of_im2col(both_paths, fp64, x_shape, kernel, stride, padding, dilation):
    """<im2col(x), c> = <x, col2im(c)> for random x and c: col2im is im2col's transpose."""
    B = fp64
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    cols = host(B.im2col(B.asarray(x), kernel, stride, padding, dilation))
    c = rng.standard_normal(cols.shape)
    back = host(B.col2im(B.asarray(c), x_shape, kernel, stride, padding, dilation))
    assert back.shape == x_shape
    lhs, rhs = np.sum(cols * c), np.sum(x * back)
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(cols * c).sum())


@each_geometry
def test_col2im_sums_overlapping_windows(both_paths, fp64, x_shape, kernel, stride, padding, dilation):
    """col2im of all-ones columns counts, per input position, the windows that cover it."""
    B = fp64
    cols = host(B.im2col(B.asarray(np.ones(x_shape)), kernel, stride, padding, dilation))
    counts = host(B.col2im(B.asarray(np.ones(cols.shape)), x_shape, kernel, stride, padding,
                           dilation))
    # the same count, from the naive columns of an array of position labels
    labels = np.arange(math.prod(x_shape), dtype=np.float64).reshape(x_shape) + 1
    hits = np.bincount(reference_im2col(labels, kernel, stride, padding, dilation).ravel()
                       .astype(np.int64), minlength=labels.size + 1)[1:]
    np.testing.assert_array_equal(counts, hits.reshape(x_shape))


# -- forward against the naive loops --------------------------------------------------------------
# id -> (ndim, in_channels, out_channels, input shape, keyword arguments)
CONV_CASES = {
    "1d-k3": (1, 2, 3, (2, 2, 9), dict(kernel_size=3)),
    "1d-k3-s2-p1-d2": (1, 3, 2, (3, 3, 11), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    "1d-k1-batch1": (1, 1, 4, (1, 1, 5), dict(kernel_size=1)),
    "1d-k4-s3-nobias": (1, 2, 2, (2, 2, 13), dict(kernel_size=4, stride=3, bias=False)),
    "2d-3x3-p1": (2, 2, 3, (2, 2, 5, 5), dict(kernel_size=3, padding=1)),
    "2d-3x2-s2x1-p1x0-d1x2": (2, 2, 3, (2, 2, 7, 6),
                              dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
                                   dilation=(1, 2))),
    "2d-2x3-s1x2-batch1": (2, 1, 2, (1, 1, 5, 7), dict(kernel_size=(2, 3), stride=(1, 2))),
    "2d-2x2-s3-p2": (2, 2, 2, (2, 2, 6, 5), dict(kernel_size=2, stride=3, padding=2)),
    "3d-2-s2": (3, 2, 2, (2, 2, 4, 5, 3), dict(kernel_size=2, stride=2)),
    "3d-1x2x3-s1x1x2-p1x0x1-d1x2x1": (3, 1, 2, (1, 1, 3, 4, 5),
                                      dict(kernel_size=(1, 2, 3), stride=(1, 1, 2),
                                           padding=(1, 0, 1), dilation=(1, 2, 1))),
}
each_conv = pytest.mark.parametrize("ndim, c_in, c_out, shape, kwargs", CONV_CASES.values(),
                                    ids=CONV_CASES.keys())

# id -> (ndim, in_channels, out_channels, input shape, keyword arguments)
CONV_T_CASES = {
    "1d-k3": (1, 2, 3, (2, 2, 5), dict(kernel_size=3)),
    "1d-k3-s3-p1-op2-d2": (1, 2, 3, (3, 2, 4),
                           dict(kernel_size=3, stride=3, padding=1, output_padding=2, dilation=2)),
    "2d-3x2-s2-p1-op1": (2, 2, 3, (2, 2, 4, 3),
                         dict(kernel_size=(3, 2), stride=2, padding=1, output_padding=1)),
    "2d-2x3-s1x2-op0x1-batch1-nobias": (2, 1, 2, (1, 1, 3, 4),
                                        dict(kernel_size=(2, 3), stride=(1, 2),
                                             output_padding=(0, 1), bias=False)),
    "2d-2x2-s2-unet-upsampling": (2, 3, 2, (2, 3, 3, 2), dict(kernel_size=2, stride=2)),
    "3d-2-s2-p0x1x0-op1x0x1": (3, 2, 1, (2, 2, 2, 3, 2),
                               dict(kernel_size=2, stride=2, padding=(0, 1, 0),
                                    output_padding=(1, 0, 1))),
    "3d-2x1x2-d2x1x1": (3, 1, 2, (1, 1, 2, 2, 3), dict(kernel_size=(2, 1, 2), dilation=(2, 1, 1))),
}
each_conv_t = pytest.mark.parametrize("ndim, c_in, c_out, shape, kwargs", CONV_T_CASES.values(),
                                      ids=CONV_T_CASES.keys())


def case_geometry(kwargs, ndim, transposed=False):
    """The per-axis tuples of a case's keyword arguments (defaults filled in)."""
    def axes(name, default):
        v = kwargs.get(name, default)
        return (v,) * ndim if isinstance(v, int) else tuple(v)
    g = [axes("kernel_size", None), axes("stride", 1), axes("padding", 0), axes("dilation", 1)]
    if transposed:
        g.append(axes("output_padding", 0))
    return g


@each_conv
def test_conv_forward_matches_naive_loops(fp64, ndim, c_in, c_out, shape, kwargs):
    B = fp64
    rng = np.random.default_rng(2)
    layer = CONV[ndim](c_in, c_out, **kwargs)
    randomize_bias(layer, rng)
    x = rng.standard_normal(shape)
    y = host(layer.forward(B.asarray(x)))
    _, stride, padding, dilation = case_geometry(kwargs, ndim)
    expected = reference_conv(x, *params_host(layer), stride, padding, dilation)
    assert y.shape == expected.shape
    rel_close(y, expected)


@each_conv_t
def test_conv_transpose_forward_matches_naive_scatter(fp64, ndim, c_in, c_out, shape, kwargs):
    B = fp64
    rng = np.random.default_rng(3)
    layer = CONV_T[ndim](c_in, c_out, **kwargs)
    randomize_bias(layer, rng)
    x = rng.standard_normal(shape)
    y = host(layer.forward(B.asarray(x)))
    _, stride, padding, dilation, output_padding = case_geometry(kwargs, ndim, transposed=True)
    expected = reference_conv_transpose(x, *params_host(layer), stride, padding, dilation,
                                        output_padding)
    assert y.shape == expected.shape
    rel_close(y, expected)


def test_conv2d_hand_computed(fp64):
    """A 1-channel 3x3 image, a 2x2 kernel: every number below was worked out on paper."""
    B = fp64
    layer = Conv2D(1, 1, 2)
    layer.params["W"] = B.param(np.array([[[[1.0, 2.0], [0.0, -1.0]]]]))
    layer.params["b"] = B.param(np.array([0.5]))
    x = np.arange(9.0).reshape(1, 1, 3, 3)        # [[0 1 2] [3 4 5] [6 7 8]]
    # window [[0 1] [3 4]]: 0*1 + 1*2 + 3*0 - 4*1 = -2       + 0.5 = -1.5
    # window [[1 2] [4 5]]: 1*1 + 2*2 + 4*0 - 5*1 =  0       + 0.5 =  0.5
    # window [[3 4] [6 7]]: 3*1 + 4*2 + 6*0 - 7*1 =  4       + 0.5 =  4.5
    # window [[4 5] [7 8]]: 4*1 + 5*2 + 7*0 - 8*1 =  6       + 0.5 =  6.5
    y = host(layer.forward(B.asarray(x)))
    np.testing.assert_array_equal(y, [[[[-1.5, 0.5], [4.5, 6.5]]]])


# -- the transposed convolution is the convolution run backwards ----------------------------------
# id -> (x_shape, out_channels, kernel, stride, padding, dilation)
ADJOINT_CASES = {
    "1d-s2": ((2, 2, 9), 3, (3,), (2,), (1,), (1,)),
    "1d-s3-d2": ((1, 3, 14), 2, (3,), (3,), (0,), (2,)),
    "2d-s2-p1": ((2, 2, 7, 6), 3, (3, 3), (2, 2), (1, 1), (1, 1)),
    "2d-3x2-s3x2-d1x2": ((2, 1, 8, 9), 2, (3, 2), (3, 2), (1, 0), (1, 2)),
    "3d-s2": ((1, 2, 5, 4, 5), 2, (2, 3, 2), (2, 1, 2), (0, 1, 1), (1, 1, 1)),
}


@pytest.mark.parametrize("x_shape, c_out, kernel, stride, padding, dilation",
                         ADJOINT_CASES.values(), ids=ADJOINT_CASES.keys())
def test_conv_transpose_is_the_input_gradient_of_conv(fp64, x_shape, c_out, kernel, stride,
                                                      padding, dilation):
    """ConvTranspose(O -> C).forward(dy) = Conv(C -> O).backward(dy) with the same W, and
    ConvTranspose's input gradient is Conv's forward (without bias)."""
    B = fp64
    rng = np.random.default_rng(4)
    ndim, c_in = len(kernel), x_shape[1]
    conv = CONV[ndim](c_in, c_out, kernel, stride, padding, dilation, bias=False)
    x = B.asarray(rng.standard_normal(x_shape))
    y = conv.forward(x)
    dy = B.asarray(rng.standard_normal(tuple(y.shape)))
    dx = host(conv.backward(dy))
    # the output_padding that makes the transposed convolution give back x's exact size
    output_padding = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, k, s, p, d in
                           zip(x_shape[2:], kernel, stride, padding, dilation))
    conv_t = CONV_T[ndim](c_out, c_in, kernel, stride, padding, output_padding, bias=False,
                          dilation=dilation)
    conv_t.params["W"] = conv.params["W"]          # (O, C, *K) is (C_in, C_out, *K) for it
    y_t = host(conv_t.forward(dy))
    assert y_t.shape == x_shape
    rel_close(y_t, dx)
    # and backwards: the transposed convolution's input gradient is the convolution
    g = rng.standard_normal(x_shape)
    rel_close(host(conv_t.backward(B.asarray(g))), host(conv.forward(B.asarray(g))))


# -- gradient checks ------------------------------------------------------------------------------
@each_conv
def test_conv_gradient(fp64, ndim, c_in, c_out, shape, kwargs):
    layer = CONV[ndim](c_in, c_out, **kwargs)
    errors = assert_passes(layer, shape, seed=ndim)
    assert ("b" in errors) == kwargs.get("bias", True)


@each_conv_t
def test_conv_transpose_gradient(fp64, ndim, c_in, c_out, shape, kwargs):
    layer = CONV_T[ndim](c_in, c_out, **kwargs)
    errors = assert_passes(layer, shape, seed=ndim)
    assert ("b" in errors) == kwargs.get("bias", True)


CHUNKED_CASES = {
    "conv1d": (lambda: Conv1D(2, 2, 3, stride=2, padding=1), (3, 2, 7)),
    "conv2d": (lambda: Conv2D(2, 2, (3, 2), padding=(1, 0), dilation=(1, 2)), (3, 2, 4, 5)),
    "conv3d": (lambda: Conv3D(2, 2, 2, padding=(0, 1, 0)), (2, 2, 3, 2, 3)),
    "conv-transpose1d": (lambda: ConvTranspose1D(2, 2, 3, stride=2, output_padding=1),
                         (3, 2, 4)),
    "conv-transpose2d": (lambda: ConvTranspose2D(2, 1, (2, 3), stride=(2, 1), padding=(0, 1)),
                         (3, 2, 3, 3)),
    "conv-transpose3d": (lambda: ConvTranspose3D(1, 2, 2, stride=2), (2, 1, 2, 2, 2)),
}


@pytest.mark.parametrize("make, shape", CHUNKED_CASES.values(), ids=CHUNKED_CASES.keys())
def test_gradient_of_a_chunked_batch(fp64, one_example_per_chunk, make, shape):
    layer = make()
    assert_passes(layer, shape, seed=5)
    assert len(layer.chunks) == shape[0]   # the path checked was the chunked one


# -- chunking gives the same numbers as one matrix product ----------------------------------------
def _run(layer, x, dy):
    y = host(layer.forward(x))
    dx = host(layer.backward(dy))
    return y, dx, {k: host(g).copy() for k, g in layer.grads.items()}


@pytest.mark.parametrize("make, shape, columns_per_example", [
    (lambda: Conv2D(2, 3, 3, padding=1), (5, 2, 4, 4), 2 * 9 * 16),
    (lambda: Conv1D(3, 2, 3, stride=2, dilation=2), (5, 3, 11), 3 * 3 * 4),
    (lambda: Conv3D(2, 2, 2), (5, 2, 3, 3, 3), 2 * 8 * 8),
    (lambda: ConvTranspose2D(2, 3, 2, stride=2, output_padding=1), (5, 2, 3, 2), 3 * 4 * 6),
    (lambda: ConvTranspose1D(2, 2, 3, padding=1), (5, 2, 6), 2 * 3 * 6),
    (lambda: ConvTranspose3D(1, 1, (1, 2, 2), stride=(1, 2, 1)), (5, 1, 2, 2, 2), 1 * 4 * 8),
], ids=["conv2d", "conv1d", "conv3d", "conv-transpose2d", "conv-transpose1d", "conv-transpose3d"])
def test_chunked_batch_equals_one_chunk(fp64, monkeypatch, make, shape, columns_per_example):
    """Two examples per chunk (5 = 2 + 2 + 1) give the results of the whole batch at once."""
    B = fp64
    rng = np.random.default_rng(6)
    layer = make()
    randomize_bias(layer, rng)
    x = B.asarray(rng.standard_normal(shape))
    y_shape = (shape[0], *layer.output_shape(shape[1:]))
    dy = B.asarray(rng.standard_normal(y_shape))
    y1, dx1, grads1 = _run(layer, x, dy)
    assert len(layer.chunks) == 1

    # the im2col columns of one example take columns_per_example float64 values
    with backends.using(workspace_bytes=2 * columns_per_example * 8):
        y2, dx2, grads2 = _run(layer, x, dy)
    assert [c.stop - c.start for c in layer.chunks] == [2, 2, 1]
    rel_close(y2, y1)
    rel_close(dx2, dx1)
    assert grads2.keys() == grads1.keys() == {"W", "b"}
    for name in grads1:
        rel_close(grads2[name], grads1[name])


# -- the column buffer kept from one step to the next --------------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(2, 3, 3, stride=2, padding=1), (3, 2, 7, 5)),
    (lambda: Conv1D(3, 2, 3, dilation=2), (4, 3, 9)),
    (lambda: Conv3D(2, 2, 2, padding=1), (2, 2, 3, 4, 3)),
], ids=["conv2d", "conv1d", "conv3d"])
def test_the_next_step_overwrites_the_kept_columns_and_computes_the_same(fp64, make, shape):
    """A second step writes its columns into the first one's array, and its results are those
    of a layer that never ran; a new batch size or backend dtype gets a new array."""
    B = fp64
    rng = np.random.default_rng(8)
    layer, fresh = make(), make()
    randomize_bias(layer, rng)
    fresh.params = {k: v.copy() for k, v in layer.params.items()}
    y_shape = (shape[0], *layer.output_shape(shape[1:]))
    _run(layer, B.asarray(rng.standard_normal(shape)), B.asarray(rng.standard_normal(y_shape)))
    kept = layer.cols
    x, dy = B.asarray(rng.standard_normal(shape)), B.asarray(rng.standard_normal(y_shape))
    results = _run(layer, x, dy)
    assert B.xp.shares_memory(layer.cols, kept)
    expected = _run(fresh, x, dy)
    for got, want in zip(results[:2], expected[:2]):
        np.testing.assert_array_equal(got, want)
    for name in expected[2]:
        np.testing.assert_array_equal(results[2][name], expected[2][name])
    layer.forward(B.asarray(rng.standard_normal((shape[0] + 1, *shape[1:]))))
    assert not B.xp.shares_memory(layer.cols, kept)
    assert layer.cols.shape[1] == (shape[0] + 1) * kept.shape[1] // shape[0]
    with backends.using(precision="fp32"):
        layer.to_backend()
        kept = layer.cols
        layer.forward(backends.current().asarray(rng.standard_normal(shape)))
        assert layer.cols.dtype == np.float32


@pytest.mark.parametrize("change", ["shape", "dtype", "not-contiguous"])
def test_im2col_refuses_a_wrong_columns_buffer(fp64, change):
    B = fp64
    x = B.asarray(np.random.default_rng(0).standard_normal((2, 3, 5, 4)))
    good = B.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))
    out = {"shape": B.xp.empty((good.shape[0], good.shape[1] + 1)),
           "dtype": B.xp.empty(good.shape, dtype=np.float32),
           "not-contiguous": B.xp.empty(good.shape[::-1]).T}[change]
    with pytest.raises(nn.errors.ShapeError, match="out must be a C-contiguous"):
        B.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), out=out)
    again = B.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), out=B.xp.empty_like(good))
    np.testing.assert_array_equal(host(again), host(good))


# -- input_grad=False -----------------------------------------------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(2, 3, 3, stride=2, padding=1), (3, 2, 5, 5)),
    (lambda: Conv1D(2, 2, 3), (2, 2, 6)),
    (lambda: ConvTranspose2D(2, 3, 3, stride=2), (3, 2, 3, 3)),
], ids=["conv2d", "conv1d", "conv-transpose2d"])
@pytest.mark.parametrize("chunked", [False, True], ids=["one-chunk", "chunked"])
def test_input_grad_false_returns_none_with_the_same_parameter_gradients(
        fp64, monkeypatch, make, shape, chunked):
    B = fp64
    rng = np.random.default_rng(7)
    layer = make()
    x = B.asarray(rng.standard_normal(shape))
    with backends.using(workspace_bytes=1 if chunked else 2**28):
        dy = B.asarray(rng.standard_normal(tuple(layer.forward(x).shape)))
    assert (len(layer.chunks) > 1) == chunked
    dx = layer.backward(dy)
    assert dx is not None and dx.shape == x.shape
    full = {k: host(g).copy() for k, g in layer.grads.items()}
    layer.grads = {}
    assert layer.backward(dy, input_grad=False) is None
    assert layer.grads.keys() == full.keys() == {"W", "b"}
    for name, g in full.items():
        np.testing.assert_array_equal(host(layer.grads[name]), g)


def test_network_backward_without_input_grad_leaves_the_layers_unchanged(fp64):
    B = fp64
    conv = Conv2D(1, 2, 3)
    net = nn.Network([conv, Flatten(), Dense(2 * 3 * 3, 2)], SoftmaxCrossEntropy())
    before = dict(vars(conv))
    out = net.forward(B.asarray(np.ones((2, 1, 5, 5))))
    assert net.backward(B.asarray(np.ones(tuple(out.shape))), input_grad=False) is None
    assert {k for k in vars(conv)} >= set(before) and "input_grad" not in vars(conv)
    assert net.backward(B.asarray(np.ones(tuple(out.shape)))).shape == (2, 1, 5, 5)


# -- forward never modifies x, backward never modifies dy -----------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: Conv1D(2, 3, 3, stride=2, padding=1), (3, 2, 7)),
    (lambda: Conv2D(2, 3, (3, 2), padding=1, dilation=(2, 1)), (3, 2, 5, 6)),
    (lambda: Conv3D(1, 2, 2, stride=(1, 2, 1)), (3, 1, 3, 4, 3)),
    (lambda: ConvTranspose1D(2, 3, 3, stride=2, output_padding=1), (3, 2, 4)),
    (lambda: ConvTranspose2D(2, 1, 2, stride=2, padding=1), (3, 2, 3, 3)),
    (lambda: ConvTranspose3D(1, 2, 2, stride=2), (3, 1, 2, 2, 2)),
], ids=["conv1d", "conv2d", "conv3d", "conv-transpose1d", "conv-transpose2d",
        "conv-transpose3d"])
@pytest.mark.parametrize("chunked", [False, True], ids=["one-chunk", "chunked"])
def test_layers_never_modify_x_or_dy(fp32, monkeypatch, make, shape, chunked):
    B = fp32
    with backends.using(workspace_bytes=1 if chunked else 2**28):
        layer = assert_leaves_x_and_dy_alone(B, make(), shape)
    assert (len(layer.chunks) > 1) == chunked


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape, expected", [
    (Conv2D(3, 4, 3), (2, 3, 8), "(N, 3, H, W)"),                 # a spectrum into a 2D conv
    (Conv2D(3, 4, 3), (2, 5, 8, 8), "(N, 3, H, W)"),              # wrong channel count
    (Conv2D(3, 4, 3), (3, 8, 8), "(N, 3, H, W)"),                 # a single unbatched image
    (Conv1D(2, 4, 3), (2, 2, 8, 8), "(N, 2, L)"),
    (Conv1D(2, 4, 3), (2, 1, 8), "(N, 2, L)"),
    (Conv3D(1, 2, 2), (2, 1, 4, 4), "(N, 1, D, H, W)"),
    (ConvTranspose2D(4, 2, 2, stride=2), (2, 3, 4, 4), "(N, 4, H, W)"),
    (ConvTranspose1D(4, 2, 2), (2, 4, 4, 4), "(N, 4, L)"),
    (ConvTranspose3D(1, 2, 2), (1, 2, 2, 2, 2), "(N, 1, D, H, W)"),
], ids=["2d-given-3-axes", "2d-wrong-channels", "2d-no-batch", "1d-given-4-axes",
        "1d-wrong-channels", "3d-given-4-axes", "transpose2d-wrong-channels",
        "transpose1d-given-4-axes", "transpose3d-wrong-channels"])
def test_wrong_input_shape_names_layer_and_shapes(fp32, layer, shape, expected):
    with pytest.raises(ValueError) as info:
        layer.forward(fp32.asarray(np.zeros(shape)))
    message = str(info.value)
    assert repr(layer) in message
    assert expected in message
    assert str(shape) in message
    # output_shape (what Network.summary uses) refuses it the same way
    with pytest.raises(ValueError, match=re.escape(repr(layer))):
        layer.output_shape(shape[1:])


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(2, 3, 3, padding=1), (2, 2, 5, 4)),
    (lambda: Conv1D(2, 3, 3, stride=2), (2, 2, 9)),
    (lambda: ConvTranspose2D(2, 3, 2, stride=2), (2, 2, 3, 3)),
    (lambda: Conv3D(1, 1, 2), (2, 1, 3, 3, 3)),
], ids=["conv2d", "conv1d", "conv-transpose2d", "conv3d"])
@pytest.mark.parametrize("change", ["batch", "channels", "spatial"])
def test_backward_with_wrong_dy_shape_raises(fp32, make, shape, change):
    B = fp32
    layer = make()
    assert_rejects_wrong_dy(B, layer, B.asarray(np.ones(shape)), {"batch": 0, "channels": 1, "spatial": -1}[change])


@pytest.mark.parametrize("layer, shape", [
    (Conv2D(1, 1, 5), (1, 1, 3, 3)),
    (Conv2D(1, 1, 5, padding=1), (1, 1, 2, 8)),
    (Conv1D(1, 1, 3, dilation=3), (1, 1, 6)),
    (Conv3D(1, 1, (1, 1, 4)), (1, 1, 2, 2, 3)),
], ids=["5x5-on-3x3", "padded-height-too-small", "dilated-span-7-on-6", "3d-last-axis"])
def test_kernel_larger_than_the_padded_input_raises(fp32, layer, shape):
    with pytest.raises(ValueError, match=r"kernel spans .* padded input") as info:
        layer.forward(fp32.asarray(np.zeros(shape)))
    assert repr(layer) in str(info.value)
    with pytest.raises(ValueError, match=r"kernel spans .* padded input"):
        layer.output_shape(shape[1:])


def test_transposed_output_that_padding_empties_raises(fp32):
    layer = ConvTranspose1D(1, 1, 1, padding=2)        # (1 - 1) + 1 - 4 = -3 samples
    with pytest.raises(ValueError, match="padding") as info:
        layer.forward(fp32.asarray(np.zeros((1, 1, 1))))
    assert repr(layer) in str(info.value)


@pytest.mark.parametrize("make", [
    lambda: Conv2D(1, 2, 0),
    lambda: Conv2D(1, 2, (3, 0)),
    lambda: Conv2D(1, 2, 3, padding=-1),
    lambda: Conv2D(1, 2, (3, 3, 3)),
    lambda: Conv1D(1, 2, (3, 3)),
    lambda: Conv3D(1, 2, (2, 2)),
    lambda: Conv2D(1, 2, 3, stride=0),
    lambda: Conv2D(1, 2, 3, dilation=0),
    lambda: Conv2D(1, 2, 2.5),
    lambda: Conv2D(1, 2, True),
    lambda: Conv2D(0, 2, 3),
    lambda: Conv2D(1, -2, 3),
    lambda: Conv2D(1, 2, 3, init="glorot"),
    lambda: ConvTranspose2D(1, 2, 3, stride=2, output_padding=2),
    lambda: ConvTranspose2D(1, 2, 3, stride=(2, 3), output_padding=(1, 3)),
    lambda: ConvTranspose1D(1, 2, 3, output_padding=1),
    lambda: ConvTranspose1D(1, 2, 3, output_padding=-1),
    lambda: ConvTranspose3D(1, 2, 3, padding=(1, 1)),
], ids=["kernel-0", "kernel-0-on-one-axis", "negative-padding", "tuple-too-long",
        "1d-given-2-values", "3d-given-2-values", "stride-0", "dilation-0", "float-kernel",
        "bool-kernel", "in-channels-0", "negative-out-channels", "unknown-init",
        "output-padding-equals-stride", "output-padding-beyond-stride-on-one-axis",
        "output-padding-without-stride", "negative-output-padding",
        "transpose3d-short-padding"])
def test_bad_configuration_raises_naming_the_layer(make):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).split(":")[0] in {"Conv1D", "Conv2D", "Conv3D", "ConvTranspose1D",
                                             "ConvTranspose2D", "ConvTranspose3D"}


# -- output_shape agrees with forward -------------------------------------------------------------
def _random_axis(rng, transposed):
    k, s, d = (int(v) for v in rng.integers(1, 4, 3))
    p = int(rng.integers(0, 3))
    span = d * (k - 1) + 1
    n = int(rng.integers(max(1, span - 2 * p), span - 2 * p + 7)) if not transposed \
        else int(rng.integers(1, 5))
    op = int(rng.integers(0, s)) if transposed else 0
    return n, k, s, p, d, op


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transpose"])
def test_output_shape_matches_forward_on_random_geometries(fp32, ndim, transposed):
    rng = np.random.default_rng(10 * ndim + transposed)
    for _ in range(15):
        n, k, s, p, d, op = zip(*(_random_axis(rng, transposed) for _ in range(ndim)))
        c_in, c_out = (int(v) for v in rng.integers(1, 3, 2))
        input_shape = (c_in, *n)
        if transposed:
            layer = CONV_T[ndim](c_in, c_out, k, s, p, output_padding=op, dilation=d)
            expected = [(a - 1) * b - 2 * c + e * (f - 1) + 1 + g
                        for a, f, b, c, e, g in zip(n, k, s, p, d, op)]
        else:
            layer = CONV[ndim](c_in, c_out, k, s, p, d)
            expected = [reference_output_size(*g) for g in zip(n, k, s, p, d)]
        if min(expected) < 1:
            with pytest.raises(ValueError):
                layer.output_shape(input_shape)
            continue
        y = layer.forward(fp32.asarray(np.zeros((2, *input_shape))))
        assert layer.output_shape(input_shape) == tuple(y.shape[1:]) == (c_out, *expected), \
            repr(layer)


# -- precision ------------------------------------------------------------------------------------
def _conv2d_against_fp64(B, seed):
    """A Conv2D's y, dx, grads under ``B`` and the float64 naive values from the same weights."""
    rng = np.random.default_rng(seed)
    layer = Conv2D(3, 4, 3, stride=(1, 2), padding=1)
    randomize_bias(layer, rng)
    x = rng.standard_normal((2, 3, 6, 7))
    xb = B.asarray(x)
    y = layer.forward(xb)
    dy = rng.standard_normal(tuple(y.shape))
    dx = layer.backward(B.asarray(dy))
    W, b = params_host(layer)
    # the exact float64 answer for the input as this precision stored it
    x64 = host(xb).astype(np.float64)
    expected_y = reference_conv(x64, W, b, (1, 2), (1, 1), (1, 1))
    with backends.using(precision="fp64"):
        exact = Conv2D(3, 4, 3, stride=(1, 2), padding=1)
        exact.params = {"W": backends.current().param(W), "b": backends.current().param(b)}
        exact.forward(backends.current().asarray(x64))
        expected_dx = host(exact.backward(backends.current().asarray(dy)))
        expected_grads = {k: host(g) for k, g in exact.grads.items()}
    return layer, (y, dx), (expected_y, expected_dx, expected_grads)


def test_conv2d_fp32_close_to_fp64(fp32):
    layer, (y, dx), (ey, edx, egrads) = _conv2d_against_fp64(fp32, 11)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(host(y), ey, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(dx), edx, rtol=1e-5, atol=1e-5)
    for name in ("W", "b"):
        assert layer.grads[name].dtype == np.float32
        np.testing.assert_allclose(host(layer.grads[name]), egrads[name], rtol=1e-5, atol=1e-5)


def test_conv2d_mixed_is_float16_and_close_to_fp64(mixed):
    layer, (y, dx), (ey, edx, egrads) = _conv2d_against_fp64(mixed, 12)
    assert y.dtype == np.float16 and dx.dtype == np.float16
    assert layer.params["W"].dtype == layer.params["b"].dtype == np.float32   # master weights
    assert layer.grads["W"].dtype == layer.grads["b"].dtype == np.float32
    # float16 keeps 11 significant bits (relative step 2**-11 ~ 5e-4); values here are O(1)
    # and sums have at most 27 or 42 terms, so 1e-2 is a few float16 steps, not a loose bound
    y64 = host(y).astype(np.float64)
    np.testing.assert_allclose(y64, ey, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(host(dx).astype(np.float64), edx, rtol=1e-2, atol=1e-2)
    for name in ("W", "b"):
        np.testing.assert_allclose(host(layer.grads[name]), egrads[name], rtol=1e-2, atol=3e-2)
    # and it really is float16 arithmetic: somewhere it differs from float64 by > 1e-6
    assert np.abs(y64 - ey).max() > 1e-6


# -- against PyTorch, when it is installed --------------------------------------------------------
TORCH_CONV = {
    "conv1d-k3-s2-p1-d2": (1, False, (2, 3, 11), 2, dict(kernel_size=3, stride=2, padding=1,
                                                         dilation=2)),
    "conv2d-3x2-s2x1-p1x0-d1x2": (2, False, (2, 2, 7, 6), 3,
                                  dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
                                       dilation=(1, 2))),
    "conv3d-2-p1": (3, False, (1, 2, 3, 4, 3), 2, dict(kernel_size=2, padding=1)),
    "transpose1d-k3-s2-p1-op1": (1, True, (2, 2, 5), 3,
                                 dict(kernel_size=3, stride=2, padding=1, output_padding=1)),
    "transpose2d-3x2-s2x3-p1x0-op1x2-d2x1": (2, True, (2, 2, 3, 4), 2,
                                             dict(kernel_size=(3, 2), stride=(2, 3),
                                                  padding=(1, 0), output_padding=(1, 2),
                                                  dilation=(2, 1))),
    "transpose3d-2-s2-op1": (3, True, (1, 2, 2, 3, 2), 2,
                             dict(kernel_size=2, stride=2, output_padding=1)),
}


@pytest.mark.parametrize("ndim, transposed, shape, c_out, kwargs", TORCH_CONV.values(),
                         ids=TORCH_CONV.keys())
def test_matches_pytorch(fp64, ndim, transposed, shape, c_out, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    B = fp64
    rng = np.random.default_rng(13)
    layer = (CONV_T if transposed else CONV)[ndim](shape[1], c_out, **kwargs)
    randomize_bias(layer, rng)
    x = rng.standard_normal(shape)
    y = host(layer.forward(B.asarray(x)))
    dy = rng.standard_normal(y.shape)
    dx = host(layer.backward(B.asarray(dy)))

    W, b = params_host(layer)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    fn = getattr(F, f"conv_transpose{ndim}d" if transposed else f"conv{ndim}d")
    ty = fn(tx, tW, tb, **{k: v for k, v in kwargs.items() if k != "kernel_size"})
    ty.backward(torch.tensor(dy))
    rel_close(y, ty.detach().numpy())
    rel_close(dx, tx.grad.numpy())
    rel_close(host(layer.grads["W"]), tW.grad.numpy())
    rel_close(host(layer.grads["b"]), tb.grad.numpy())


def test_output_sizes_match_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(14)
    for _ in range(60):
        size, k, s, d = (int(v) for v in rng.integers(1, 6, 4))
        p = int(rng.integers(0, 3))
        n = output_size(size, k, s, p, d)
        x, w = torch.zeros(1, 1, size), torch.zeros(1, 1, k)
        if n >= 1:
            assert F.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1] == n
        op = int(rng.integers(0, s))
        t = transposed_size(size, k, s, p, d, op)
        if t >= 1:
            assert F.conv_transpose1d(x, w, stride=s, padding=p, output_padding=op,
                                      dilation=d).shape[-1] == t


# -- repr, config, round trip ---------------------------------------------------------------------
def test_repr():
    assert repr(Conv2D(1, 6, 5, padding=2)) == "Conv2D(1->6, kernel=5, stride=1, pad=2)"
    assert repr(Conv2D(3, 8, (3, 1), stride=(2, 1), bias=False)) == \
        "Conv2D(3->8, kernel=3x1, stride=2x1, pad=0, bias=False)"
    assert "dilation=2" in repr(Conv1D(1, 1, 3, dilation=2))
    assert "output_padding=1" in repr(ConvTranspose2D(4, 2, 3, stride=2, output_padding=1))


@pytest.mark.parametrize("layer", [
    Conv1D(2, 3, 5, stride=2, padding=1, dilation=2, bias=False),
    Conv2D(1, 6, (5, 3), padding=(2, 1), init="he"),
    Conv3D(2, 2, 2, stride=(1, 2, 2)),
    ConvTranspose1D(3, 2, 4, stride=2, padding=1, output_padding=1),
    ConvTranspose2D(4, 2, 3, stride=(2, 3), output_padding=(1, 2), dilation=(1, 2), bias=False),
    ConvTranspose3D(1, 2, 2, stride=2),
], ids=repr)
def test_to_dict_from_dict_round_trip(layer):
    assert_round_trips(layer)


def test_weight_layouts_follow_pytorch():
    assert Conv2D(3, 8, (5, 4)).params["W"].shape == (8, 3, 5, 4)
    assert ConvTranspose2D(3, 8, (5, 4)).params["W"].shape == (3, 8, 5, 4)
    assert Conv3D(2, 4, (1, 2, 3)).params["b"].shape == (4,)


# -- in a network ---------------------------------------------------------------------------------
def bars(n, seed):
    """8x8 images holding a horizontal (class 0) or a vertical (class 1) bar, plus noise."""
    rng = np.random.default_rng(seed)
    x = 0.2 * rng.standard_normal((n, 1, 8, 8))
    y = rng.integers(0, 2, n)
    where = rng.integers(0, 8, n)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, where[i], :] += 1.0
        else:
            x[i, 0, :, where[i]] += 1.0
    return x.astype(np.float32), y


def small_cnn():
    return nn.Network([Conv2D(1, 4, 3, padding=1), LeakyReLU(0.1), MaxPool2D(2), Flatten(),
                       Dense(4 * 4 * 4, 2)], SoftmaxCrossEntropy())


def test_small_cnn_learns_bars(fp32):
    x, y = bars(96, seed=0)
    net = small_cnn()
    before = net.evaluate(x, y)
    history = net.fit(x, y, epochs=12, batch_size=16, optimizer=SGD(0.05, momentum=0.9),
                      seed=0, progress=False)
    after = net.evaluate(x, y)
    assert len(history["train_loss"]) == 12
    assert after["loss"] < 0.2 * before["loss"]
    assert after["accuracy"] >= 0.95
    x_test, y_test = bars(64, seed=1)
    assert net.evaluate(x_test, y_test)["accuracy"] >= 0.9


def test_summary_lists_conv_layers_with_their_output_shapes(fp32):
    net = nn.Network([Conv2D(1, 4, 3, padding=1), LeakyReLU(0.1), MaxPool2D(2),
                      Conv2D(4, 6, (3, 2), stride=(1, 2)), ConvTranspose2D(6, 2, 2, stride=2),
                      Flatten(), Dense(2 * 4 * 4, 2)], SoftmaxCrossEntropy())
    text = net.summary(input_shape=(1, 8, 8))
    rows = {line.split()[0]: line for line in text.splitlines() if line.split()
            and line.split()[0].isdigit()}
    # 8x8 -> same -> pool 4x4 -> (4 - 3 + 1, (4 - 2) // 2 + 1) = 2x2 -> transpose x2 = 4x4
    expected = {"0": (net.layers[0], "(4, 8, 8)", 1 * 4 * 9 + 4),
                "2": (net.layers[2], "(4, 4, 4)", 0),
                "3": (net.layers[3], "(6, 2, 2)", 4 * 6 * 6 + 6),
                "4": (net.layers[4], "(2, 4, 4)", 6 * 2 * 4 + 2),
                "5": (net.layers[5], "(32,)", 0)}
    for index, (layer, shape, n_params) in expected.items():
        row = rows[index]
        assert repr(layer) in row
        assert shape in row
        assert row.split()[-1] == f"{n_params:,}"


# -- the CPU's per-example products (nn.layers.conv.product_batch_first, weight_product) --------
def reference_weight_grad(x, dy, kernel, stride, padding):
    """``dW[o, c, k] = sum_{n, i} dy[n, o, i] x_padded[n, c, i * stride + k]`` (no dilation)."""
    x_padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out = dy.shape[2:]
    dW = np.zeros((dy.shape[1], x.shape[1], *kernel))
    for k in itertools.product(*map(range, kernel)):
        taps = tuple(slice(kk, kk + s * (n - 1) + 1, s) for kk, s, n in zip(k, stride, out))
        dW[ALL + k] = np.tensordot(dy, x_padded[ALL + taps], axes=([0, *range(2, dy.ndim)],
                                                                   [0, *range(2, dy.ndim)]))
    return dW


@pytest.mark.parametrize("precision, tol", [("fp64", 1e-11), ("fp32", 2e-5)])
@pytest.mark.parametrize("ndim, in_shape, out_channels, kernel, stride, padding, workspace", [
    (1, (4, 3, 701), 5, 7, 1, 2, None),          # 699 positions per example
    (2, (3, 2, 24, 30), 4, 3, 1, 1, None),       # 720
    (2, (5, 3, 50, 47), 6, 5, 2, 1, None),       # 24 x 23 = 552, stride 2
    (2, (5, 3, 50, 47), 6, 5, 2, 1, 60_000),     # in chunks of one example
    (3, (2, 2, 8, 8, 9), 3, 3, 1, 1, None),      # 576 (2 channels: im2col, not Winograd)
    (2, (2, 1, 100, 100), 2, 3, 1, 1, None),     # 10000 positions: one product again
], ids=["1d", "2d", "2d-stride", "2d-chunks", "3d", "2d-past-the-bound"])
def test_per_example_products_match_the_definitions(precision, tol, ndim, in_shape,
                                                    out_channels, kernel, stride, padding,
                                                    workspace):
    """Forward and weight gradient with 512 to 8192 output positions per example, where the
    CPU makes one product per example, against the loops of the definitions; the weight
    gradient is the same with and without the input gradient."""
    from nn.layers import conv as conv_module
    backends.use("numpy", precision, seed=0, workspace_bytes=workspace)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(in_shape)
    layer = CONV[ndim](in_shape[1], out_channels, kernel, stride=stride, padding=padding)
    layer.params["b"][...] = rng.standard_normal(out_channels)     # not the initial zeros
    y = layer.forward(x, train=True)
    positions = math.prod(y.shape[2:])
    assert positions >= conv_module.PER_EXAMPLE_MIN_POSITIONS
    W, b = params_host(layer)
    geometry = [(g,) * ndim for g in (stride, padding, 1)]
    expected = reference_conv(x, W, b, *geometry)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(host(y), expected, rtol=tol, atol=tol * scale)
    dy = rng.standard_normal(y.shape)
    expected_dW = reference_weight_grad(x, dy, (kernel,) * ndim, (stride,) * ndim,
                                        (padding,) * ndim)
    for input_grad in (True, False):
        layer.backward(dy, input_grad=input_grad)
        np.testing.assert_allclose(host(layer.grads["W"]), expected_dW, rtol=tol,
                                   atol=tol * np.abs(expected_dW).max())
        np.testing.assert_allclose(host(layer.grads["b"]), dy.sum(axis=(0, *range(2, dy.ndim))),
                                   rtol=tol, atol=tol * positions)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("stride", ["ones", "last-2", "first-2"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_im2col_in_two_stages_equals_one_stage_and_the_definition(ndim, stride, dilation,
                                                                    monkeypatch):
    """Short output rows are copied in two stages (every tap along the last axis first);
    the columns are the same values as one stage's and the definition's, for every kernel
    shape up to 3 (widths of 1 included), with and without padding."""
    from nn.backends import im2col as module
    strides = {"ones": (1,) * ndim, "last-2": (1,) * (ndim - 1) + (2,),
               "first-2": (2,) + (1,) * (ndim - 1)}[stride]
    rng = np.random.default_rng(9)
    for kernel in itertools.product((1, 2, 3), repeat=ndim):
        for padding in ((0,) * ndim, (1,) * ndim):
            x = rng.standard_normal((2, 3) + tuple(int(n) for n in rng.integers(6, 10, ndim)))
            geometry = (kernel, strides, padding, (dilation,) * ndim)
            monkeypatch.setattr(module, "TWO_STAGE_MAX_WIDTH", 24)
            two = module.im2col(np, x, *geometry)
            monkeypatch.setattr(module, "TWO_STAGE_MAX_WIDTH", 0)
            one = module.im2col(np, x, *geometry)
            np.testing.assert_array_equal(two, one)
            np.testing.assert_array_equal(two, reference_im2col(x, *geometry))
