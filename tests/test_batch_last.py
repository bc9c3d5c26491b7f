"""The columns' faster layouts: batch-last (nn.backends.batch_last) and one block per example
(nn.backends.numpy_backend.columns_per_example), against the reference im2col and col2im, and the
convolutions that use them against the definitions and finite differences."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nn import backends
from nn.backends import batch_last
from nn.backends.im2col import col2im, output_shape
from nn.errors import ShapeError
from nn.gradcheck import check_layer
from nn.layers import (Conv1D, Conv2D, Conv3D, ConvTranspose1D, ConvTranspose2D,
                       ConvTranspose3D)
from nn.layers.reference import reference_conv, reference_conv_transpose, reference_im2col

from helpers import TOL

pytest.importorskip("numba")

# (x shape, kernel, stride, padding, dilation): odd sizes, strides, paddings, dilations and
# overlapping windows, in 1, 2 and 3 dimensions
GEOMETRIES = {
    "1d-k5-p2": ((9, 3, 11), (5,), (1,), (2,), (1,)),
    "1d-k3-s2-d2": ((8, 2, 13), (3,), (2,), (0,), (2,)),
    "2d-k3-p1": ((10, 3, 7, 9), (3, 3), (1, 1), (1, 1), (1, 1)),
    "2d-k4-s2-p1": ((8, 2, 9, 8), (4, 4), (2, 2), (1, 1), (1, 1)),
    "2d-k3x2-s1x2-p2x1-d2x1": ((11, 2, 8, 7), (3, 2), (1, 2), (2, 1), (2, 1)),
    "2d-k1": ((8, 4, 5, 3), (1, 1), (1, 1), (0, 0), (1, 1)),
    "3d-k3-p1-s2x1x1": ((8, 2, 5, 6, 4), (3, 3, 3), (2, 1, 1), (1, 1, 1), (1, 1, 1)),
    "3d-k2x1x3-d1x1x2": ((9, 1, 4, 3, 7), (2, 1, 3), (1, 1, 1), (0, 1, 0), (1, 1, 2)),
}
each_geometry = pytest.mark.parametrize("x_shape, kernel, stride, padding, dilation",
                                        GEOMETRIES.values(), ids=GEOMETRIES.keys())


def kernels():
    return backends.current().numba_kernels()


def batch_first(cols, n):
    """Batch-last columns ``(C*K, L*n)`` in im2col's order ``(C*K, n*L)``."""
    return cols.reshape(cols.shape[0], -1, n).swapaxes(1, 2).reshape(cols.shape[0], -1)


@each_geometry
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_is_the_reference_columns_reordered(fp64, dtype, x_shape, kernel, stride,
                                                   padding, dilation):
    x = np.random.default_rng(0).standard_normal(x_shape).astype(dtype)
    cols = batch_last.im2col(kernels(), x, kernel, stride, padding, dilation)
    assert cols.dtype == dtype and cols.flags.c_contiguous
    np.testing.assert_array_equal(batch_first(cols, x_shape[0]),
                                  reference_im2col(x, kernel, stride, padding, dilation))


@each_geometry
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_columns_per_example_are_the_reference_columns_in_blocks(fp64, dtype, x_shape, kernel,
                                                                 stride, padding, dilation):
    """``columns_per_example``: example n's ``(C*K, L)`` block, contiguous."""
    from nn.backends.numpy_backend import columns_per_example
    x = np.random.default_rng(13).standard_normal(x_shape).astype(dtype)
    n = x_shape[0]
    blocks = columns_per_example(kernels(), x, kernel, stride, padding, dilation)
    expected = reference_im2col(x, kernel, stride, padding, dilation)     # (C*K, n*L)
    assert blocks.dtype == dtype and blocks.flags.c_contiguous
    np.testing.assert_array_equal(blocks,
                                  expected.reshape(expected.shape[0], n, -1).swapaxes(0, 1))


@each_geometry
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_col2im_is_the_reference_col2im_plus_bias(fp64, dtype, with_bias, x_shape, kernel,
                                                  stride, padding, dilation):
    """Same sums in the same order as the reference (taps in C order): equal bit for bit."""
    rng = np.random.default_rng(1)
    n, C = x_shape[:2]
    L = math.prod(output_shape(x_shape[2:], kernel, stride, padding, dilation))
    cols = rng.standard_normal((C * math.prod(kernel), L * n)).astype(dtype)
    bias = rng.standard_normal(C).astype(dtype) if with_bias else None
    out = np.full(x_shape, np.nan, dtype=dtype)           # written whole: no NaN may be left
    batch_last.col2im(kernels(), cols, out, kernel, stride, padding, dilation, bias=bias)
    expected = col2im(np, batch_first(cols, n), x_shape, kernel, stride, padding, dilation)
    if with_bias:
        expected += bias.reshape((C,) + (1,) * (len(x_shape) - 2))
    np.testing.assert_array_equal(out, expected)


@each_geometry
def test_col2im_is_the_adjoint_of_im2col(fp64, x_shape, kernel, stride, padding, dilation):
    """<im2col(x), c> = <x, col2im(c)> for random x and c."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    cols = batch_last.im2col(kernels(), x, kernel, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    back = batch_last.col2im(kernels(), c, np.empty(x_shape), kernel, stride, padding, dilation)
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 17, 8), (5, 40, 19), (2, 3, 4, 5, 16)])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_from_batch_last_transposes_and_adds_the_bias(fp32, shape, with_bias):
    """Blocks of 16 positions: lengths below, at and past a block, and several spatial axes."""
    rng = np.random.default_rng(3)
    n, O, spatial = shape[0], shape[1], shape[2:]
    L = math.prod(spatial)
    Y = rng.standard_normal((O, L * n)).astype(np.float32)
    bias = rng.standard_normal(O).astype(np.float32) if with_bias else None
    out = np.full(shape, np.nan, dtype=np.float32)
    batch_last.from_batch_last(kernels(), Y, bias, out)
    expected = Y.reshape(O, L, n).transpose(2, 0, 1).reshape(shape)
    if with_bias:
        expected = expected + bias.reshape((O,) + (1,) * len(spatial))
    np.testing.assert_array_equal(out, expected)


def test_to_batch_last_is_the_batch_moved_innermost():
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    got = batch_last.to_batch_last(a)
    assert got.shape == (3, 40) and got.flags.c_contiguous
    np.testing.assert_array_equal(got.reshape(3, 4, 5, 2), a.transpose(1, 2, 3, 0))


def test_non_contiguous_outputs_and_wrong_buffers_are_refused(fp32):
    k = kernels()
    cols = np.zeros((3 * 4, 9 * 8), dtype=np.float32)
    out = np.zeros((8, 3, 6, 6), dtype=np.float32)[:, :, ::2, ::2]        # a strided view
    with pytest.raises(ValueError, match="contiguous"):
        batch_last.col2im(k, cols, out, (2, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="contiguous"):
        batch_last.from_batch_last(k, np.zeros((3, 72), np.float32), None, out)
    x = np.zeros((8, 3, 4, 4), dtype=np.float32)
    with pytest.raises(ShapeError, match="out must be"):
        batch_last.im2col(k, x, (2, 2), (1, 1), (0, 0), (1, 1),
                          out=np.zeros((12, 71), dtype=np.float32))


# -- when the layers use it ----------------------------------------------------------------------
def test_where_it_applies(fp32):
    k = kernels()
    x = np.zeros((16, 6, 14, 14), dtype=np.float32)
    assert batch_last.im2col_applies(k, x, (10, 10), 150, 16)
    assert not batch_last.im2col_applies(None, x, (10, 10), 150, 16)            # no numba
    assert not batch_last.im2col_applies(k, x[:15], (10, 10), 150, 16)         # batch < 16
    assert batch_last.col2im_applies(k, x[:8], (10, 10), 150, 16)              # col2im: 8
    assert not batch_last.col2im_applies(k, x[:7], (10, 10), 150, 16)
    assert batch_last.im2col_applies(k, x, (10, 28), 150, 16)                  # rows of 28
    assert not batch_last.im2col_applies(k, x, (10, 29), 150, 16)              # long rows
    assert not batch_last.col2im_applies(k, x, (10, 29), 150, 16)
    assert not batch_last.im2col_applies(k, x, (10, 10), 27, 16)               # 27 < 2 * 16
    assert not batch_last.col2im_applies(k, x.astype(np.float16), (10, 10), 150, 16)  # mixed


def test_products_per_example_are_kept_to_16_mib(fp32):
    from nn.layers.conv import per_example_products
    f32 = np.dtype(np.float32)
    assert per_example_products(64, 512, 128, 512, f32)                 # 16 MiB exactly
    assert not per_example_products(65, 512, 128, 512, f32)
    assert not per_example_products(64, 512, 128, 511, f32)             # under 512 positions
    assert per_example_products(8, 27, 8, 32768, f32)                   # 32 chunks each
    assert not per_example_products(8 * 32, 512, 128, 8192 + 1024, f32)


@pytest.mark.parametrize("precision", ["fp32", "fp64"])
def test_conv_chooses_the_layout_by_geometry(precision):
    backends.use("numpy", precision, seed=0)
    rng = np.random.default_rng(4)
    cases = [(Conv2D(6, 16, 5), (16, 6, 14, 14), "batch_last"),      # LeNet-like: short rows
             (Conv2D(6, 16, 5), (15, 6, 14, 14), "rows"),            # a batch under 16
             (Conv2D(3, 64, 3, padding=1), (16, 3, 12, 12), "rows"),  # C*K = 27 < 2 * 64
             (Conv1D(4, 8, 5), (16, 4, 40), "rows"),                  # rows of 36 values
             (Conv2D(2, 6, 5, padding=2), (4, 2, 28, 28), "per_example"),  # 784 positions
             (Conv2D(1, 6, 5, padding=2), (4, 1, 28, 28), "direct"),      # one input channel
             (Conv1D(2, 3, 5), (3, 2, 9000), "per_example")]          # and in chunks
    for layer, shape, expected in cases:
        layer.forward(rng.standard_normal(shape), train=True)
        assert layer.layout == expected, (layer, shape)
    backends.use("numpy", "mixed", seed=0)
    layer = Conv2D(6, 16, 5)
    layer.forward(rng.standard_normal((16, 6, 14, 14)), train=True)
    assert layer.layout == "rows"                             # float16 keeps the reference


# -- the layers through it, against the definitions ----------------------------------------------
# (layer, input shape): batch-last forward and backward for the convolutions (batch >= 16,
# short rows, C*K >= 2 O), and for the transposed ones (O*K >= 2 C)
LAYERS = {
    "conv1d-k5-p2": (lambda: Conv1D(3, 2, 5, padding=2), (16, 3, 9)),
    "conv2d-k3-s2-p1": (lambda: Conv2D(2, 3, 3, stride=2, padding=1), (17, 2, 7, 6)),
    "conv2d-k3x2-d2x1": (lambda: Conv2D(2, 2, (3, 2), dilation=(2, 1), padding=(1, 0)),
                         (16, 2, 6, 5)),
    "conv3d-k2-p1": (lambda: Conv3D(2, 3, 2, padding=(1, 0, 1)), (16, 2, 3, 4, 3)),
    "conv-transpose1d-k3-s2-op1": (lambda: ConvTranspose1D(2, 3, 3, stride=2, output_padding=1),
                                   (16, 2, 5)),
    "conv-transpose2d-k4-s2-p1": (lambda: ConvTranspose2D(3, 2, 4, stride=2, padding=1),
                                  (16, 3, 3, 4)),
    "conv-transpose2d-k3x2-d2": (lambda: ConvTranspose2D(2, 3, (3, 2), dilation=2),
                                 (18, 2, 3, 3)),
    "conv-transpose3d-k2-s2": (lambda: ConvTranspose3D(1, 2, 2, stride=2, padding=(0, 1, 0)),
                               (16, 1, 2, 3, 2)),
}
each_layer = pytest.mark.parametrize("make, shape", LAYERS.values(), ids=LAYERS.keys())


def assert_batch_last_ran(layer):
    """The layer's last forward (and its backward) went through the batch-last columns."""
    if isinstance(layer, (Conv1D, Conv2D, Conv3D)):
        assert layer.layout == "batch_last"
    else:
        assert layer.X_last                       # kept for the batch-last backward


def randomize(layer, rng):
    for name, p in layer.params.items():
        p[...] = rng.standard_normal(p.shape)


@each_layer
def test_layer_forward_matches_the_definition(fp64, make, shape):
    rng = np.random.default_rng(5)
    layer = make()
    randomize(layer, rng)
    x = rng.standard_normal(shape)
    y = layer.forward(x, train=True)
    assert_batch_last_ran(layer)
    g = [layer.stride, layer.padding, layer.dilation]
    if hasattr(layer, "output_padding"):
        expected = reference_conv_transpose(x, layer.params["W"], layer.params["b"], *g,
                                            layer.output_padding)
    else:
        expected = reference_conv(x, layer.params["W"], layer.params["b"], *g)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@each_layer
def test_layer_gradients_pass_the_finite_difference_check(fp64, make, shape):
    layer = make()
    randomize(layer, np.random.default_rng(6))
    errors = check_layer(layer, shape, seed=7, train=True)
    assert_batch_last_ran(layer)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


@each_layer
def test_layer_matches_the_reference_path_in_float32(fp32, make, shape, monkeypatch):
    """The batch-last path against the same layer with it turned off: the same products,
    only the columns' order differs."""
    rng = np.random.default_rng(8)
    layer = make()
    randomize(layer, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    results = []
    for on in (True, False):
        monkeypatch.setattr(batch_last, "MIN_EXAMPLES", 8 if on else 10**9)
        y = layer.forward(x, train=True)
        dy = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy)
        results.append((y, dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
        if on:
            assert_batch_last_ran(layer)
    for new, old in zip(*results):
        np.testing.assert_allclose(new, old, rtol=2e-6, atol=2e-6 * np.abs(old).max())


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(2, 3, 3, padding=1), (32, 2, 5, 4)),
    (lambda: ConvTranspose2D(3, 2, 4, stride=2, padding=1), (32, 3, 3, 4)),
], ids=["conv", "conv-transpose"])
def test_a_chunked_batch_equals_one_chunk(fp64, make, shape):
    """Two chunks of 16 examples (each batch-last) give the one-chunk results."""
    rng = np.random.default_rng(10)
    layer = make()
    randomize(layer, rng)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal((shape[0], *layer.output_shape(shape[1:])))
    one = run(layer, x, dy)
    assert len(layer.chunks) == 1
    # im2col's columns per example: C*K per output position, or O*K per input position
    positions = math.prod(layer.output_shape(shape[1:])[1:] if layer.W2.shape[0] != shape[1]
                          else shape[2:])
    with backends.using(workspace_bytes=16 * layer.W2.shape[1] * positions * 8):
        two = run(layer, x, dy)
        assert len(layer.chunks) == 2
        assert_batch_last_ran(layer)
    for a, b in zip(one, two):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.abs(a).max())


def run(layer, x, dy):
    y = layer.forward(x, train=True)
    dx = layer.backward(dy)
    return y, dx, layer.grads["W"].copy(), layer.grads["b"].copy()


def test_backward_twice_gives_the_same_gradients(fp64):
    layer = ConvTranspose2D(3, 2, 4, stride=2, padding=1)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((16, 3, 3, 4))
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape)
    first = layer.backward(dy), layer.grads["W"].copy()
    second = layer.backward(dy), layer.grads["W"].copy()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("input_grad", [True, False])
def test_columns_written_a_few_examples_at_a_time_give_the_one_block_results(fp64, monkeypatch,
                                                                            input_grad):
    """One example per group (``GROUP_BYTES``): the same output, gradients and
    kept columns as one group, and the output of the definition."""
    from nn.layers import conv as conv_module
    rng = np.random.default_rng(14)
    layer = Conv2D(2, 3, 3, padding=1, stride=(1, 2))
    randomize(layer, rng)
    x = rng.standard_normal((5, 2, 24, 47))                    # 24 x 24 = 576 positions
    dy = rng.standard_normal((5, 3, 24, 24))
    results = []
    for group_bytes in (2**30, 1):
        monkeypatch.setattr(conv_module, "GROUP_BYTES", group_bytes)
        y = layer.forward(x, train=True)
        assert layer.layout == "per_example"
        assert len(layer.chunks) == (1 if group_bytes > 1 else 5)
        assert layer.cols.shape == (5, 2 * 9, 576)
        dx = layer.backward(dy, input_grad=input_grad)
        results.append((y, layer.cols.copy(), layer.grads["W"].copy(), dx))
    np.testing.assert_allclose(results[0][0], reference_conv(
        x, layer.params["W"], layer.params["b"], layer.stride, layer.padding, layer.dilation),
        rtol=1e-12, atol=1e-12)
    for one, groups in zip(*results):
        if one is None:
            assert groups is None
        else:
            np.testing.assert_array_equal(groups, one)


def test_inference_keeps_no_columns_and_backward_after_it_makes_them_again(fp64):
    """``forward(train=False)`` writes the blocks per example through scratch only; a
    backward after it (allowed) makes the columns again and gives the training gradients."""
    rng = np.random.default_rng(15)
    layer = Conv2D(2, 3, 3, padding=1)
    randomize(layer, rng)
    x = rng.standard_normal((4, 2, 24, 25))
    dy = rng.standard_normal((4, 3, 24, 25))
    y_train = layer.forward(x, train=True)
    assert layer.layout == "per_example" and layer.cols is not None
    expected = layer.backward(dy), layer.grads["W"].copy()
    y = layer.forward(x, train=False)
    assert layer.cols is None
    np.testing.assert_array_equal(y, y_train)
    got = layer.backward(dy), layer.grads["W"].copy()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(3, 2, 3), (16, 3, 7, 8)),                          # batch-last
    (lambda: Conv2D(2, 3, 3, padding=1), (3, 2, 24, 25)),              # blocks per example
    (lambda: ConvTranspose2D(3, 2, 4, stride=2, padding=1), (16, 3, 3, 4)),
], ids=["batch-last", "per-example", "transposed"])
def test_the_new_layouts_leave_x_and_dy_alone(fp32, make, shape):
    layer = make()
    rng = np.random.default_rng(16)
    x = rng.standard_normal(shape).astype(np.float32)
    x_saved = x.copy()
    y = layer.forward(x, train=True)
    assert layer.__dict__.get("layout", "batch_last") in ("batch_last", "per_example")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy_saved = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(x, x_saved)
    np.testing.assert_array_equal(dy, dy_saved)


@pytest.mark.parametrize("group_bytes, groups", [(2**30, 1), (17 * 18 * 24 * 8, 3), (1, 40)],
                         ids=["one-group", "groups-of-17", "one-example-each"])
def test_batch_last_inference_in_groups_matches_training(fp64, monkeypatch, group_bytes, groups):
    """Inference writes the batch-last columns a group of examples at a time (``GROUP_BYTES``)
    into scratch and keeps none: the training output bit for bit; a backward after it makes
    the columns again, chunk by chunk, and gives the training gradients."""
    from nn.layers import conv as conv_module
    rng = np.random.default_rng(16)
    layer = Conv2D(2, 3, 3, padding=1)                          # C*K = 18 >= 2 * 3
    randomize(layer, rng)
    x = rng.standard_normal((40, 2, 6, 4))                      # 24 positions, rows of 4
    dy = rng.standard_normal((40, 3, 6, 4))
    y_train = layer.forward(x, train=True)
    assert layer.layout == "batch_last" and layer.cols is not None
    expected = layer.backward(dy), layer.grads["W"].copy(), layer.grads["b"].copy()
    monkeypatch.setattr(conv_module, "GROUP_BYTES", group_bytes)
    y = layer.forward(x, train=False)
    assert layer.layout == "batch_last" and layer.cols is None
    assert len(layer.chunks) == groups
    np.testing.assert_array_equal(y, y_train)
    got = layer.backward(dy), layer.grads["W"].copy(), layer.grads["b"].copy()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
