"""Direct convolution of one input channel (nn.backends.direct): the generated kernels against
the definitions, the layers through them against finite differences and the im2col path, and
where the path applies."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import nn
from nn import backends
from nn.backends import direct
from nn.gradcheck import check_layer
from nn.layers import Conv1D, Conv2D, Conv3D, Dense, Flatten
from nn.layers.reference import reference_conv
from nn.losses import SoftmaxCrossEntropy

from helpers import TOL

pytest.importorskip("numba")

CONV = {1: Conv1D, 2: Conv2D, 3: Conv3D}
# id -> (input shape (N, 1, *S), out channels, kernel, padding, dilation): odd sizes, paddings
# (the dropped positions of each row), dilations, one tap, 1D/2D/3D
GEOMETRIES = {
    "1d-k7": ((3, 1, 40), 4, (7,), (0,), (1,)),
    "1d-k3-p4-d3": ((2, 1, 23), 3, (3,), (4,), (3,)),
    "1d-k1": ((2, 1, 9), 2, (1,), (0,), (1,)),
    "2d-k5-p2": ((3, 1, 13, 11), 5, (5, 5), (2, 2), (1, 1)),
    "2d-k3x2-p0x1-d2x1": ((2, 1, 9, 8), 3, (3, 2), (0, 1), (2, 1)),
    "2d-k3-p1-one-row": ((2, 1, 1, 7), 2, (1, 3), (0, 1), (1, 1)),
    "3d-k3-p1": ((2, 1, 5, 6, 7), 4, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    "3d-k2x1x3-p1x0x2-d1x1x2": ((3, 1, 4, 3, 6), 2, (2, 1, 3), (1, 0, 2), (1, 1, 2)),
}
each_geometry = pytest.mark.parametrize("x_shape, out_channels, kernel, padding, dilation",
                                        GEOMETRIES.values(), ids=GEOMETRIES.keys())


def make(x_shape, out_channels, kernel, padding, dilation, rng, bias=True):
    layer = CONV[len(kernel)](1, out_channels, kernel, padding=padding, dilation=dilation,
                              bias=bias)
    for name, p in layer.params.items():
        p[...] = rng.standard_normal(p.shape)
    return layer


def weight_grad_definition(x, dy, kernel, padding, dilation):
    """``dW[o, 0, *k] = sum_{n, p} dy[n, o, p] x_padded[n, 0, p + k * dilation]``."""
    pads = ((0, 0), (0, 0)) + tuple((p, p) for p in padding)
    xp = np.pad(x, pads)
    ndim = len(kernel)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    windows = sliding_window_view(xp, span, axis=tuple(range(2, 2 + ndim)))
    windows = windows[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)]
    letters = "dhw"[3 - ndim:]
    taps = "ijk"[3 - ndim:]
    return np.einsum(f"no{letters},nc{letters}{taps}->oc{taps}", dy, windows)


# -- the kernels ---------------------------------------------------------------------------------
@each_geometry
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_forward_matches_the_definition(dtype, with_bias, x_shape, out_channels, kernel,
                                        padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    W = rng.standard_normal((out_channels, 1, *kernel))
    b = rng.standard_normal(out_channels) if with_bias else None
    y = direct.forward(x.astype(dtype), W.astype(dtype), None if b is None else b.astype(dtype),
                       padding, dilation)
    expected = reference_conv(x, W, b, (1,) * len(kernel), padding, dilation)
    assert y.dtype == dtype and y.shape == expected.shape and y.flags.c_contiguous
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * np.abs(expected).max())


@each_geometry
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_grad_matches_the_definition(dtype, x_shape, out_channels, kernel, padding,
                                            dilation):
    """The rows' dropped positions must add nothing: ``dy`` is zero there."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    out = reference_conv(x, np.zeros((out_channels, 1, *kernel)), None, (1,) * len(kernel),
                         padding, dilation).shape
    dy = rng.standard_normal(out)
    dW = direct.weight_grad(x.astype(dtype), dy.astype(dtype), kernel, padding, dilation)
    expected = weight_grad_definition(x, dy, kernel, padding, dilation)
    assert dW.dtype == dtype and dW.shape == expected.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dW, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.parametrize("scratch_values", [1, 2 * 9, 3 * 9 + 5], ids=["one-row", "two-rows",
                                                                        "three-rows"])
def test_blocks_of_rows_give_the_whole_plane_results(monkeypatch, scratch_values):
    """The scratch holds a block of rows (here 1, 2 or 3 rows of 9, the last block shorter):
    the same numbers as one block for the whole plane."""
    rng = np.random.default_rng(2)
    x, W = rng.standard_normal((2, 1, 3, 7, 7)), rng.standard_normal((3, 1, 3, 3, 3))
    b = rng.standard_normal(3)
    geometry = (1, 1, 1), (1, 1, 1)
    y = direct.forward(x, W, b, *geometry)
    dy = rng.standard_normal(y.shape)
    dW = direct.weight_grad(x, dy, (3, 3, 3), *geometry)
    monkeypatch.setattr(direct, "SCRATCH_VALUES", scratch_values)
    np.testing.assert_allclose(direct.forward(x, W, b, *geometry), y, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(direct.weight_grad(x, dy, (3, 3, 3), *geometry), dW,
                               rtol=1e-13, atol=1e-13)


def test_kernel_source_is_written_to_the_cache_directory_or_compiled_in_memory(
        tmp_path, monkeypatch):
    """The generated source goes to ``$NN_CACHE_DIR/kernels`` (whole, once); where no
    directory is writable it is compiled in memory, with the same results."""
    source = direct.kernel_source(2)
    assert "w0 * v0[q] + w1 * v1[q]" in source and "a1 += d * v1[q]" in source
    compile(source, "generated", "exec")                    # valid Python
    rng = np.random.default_rng(3)
    x, W = rng.standard_normal((2, 1, 5, 6)), rng.standard_normal((2, 1, 1, 2))
    monkeypatch.setenv("NN_CACHE_DIR", str(tmp_path))
    direct._compiled.cache_clear()
    try:
        y = direct.forward(x, W, None, (0, 1), (1, 1))
        written = list((tmp_path / "kernels").glob("direct_2_*.py"))
        assert len(written) == 1 and written[0].read_text() == source
        assert not list((tmp_path / "kernels").glob("*.tmp"))
        direct._compiled.cache_clear()
        monkeypatch.setattr(direct, "_source_directory", lambda: None)
        np.testing.assert_array_equal(direct.forward(x, W, None, (0, 1), (1, 1)), y)
    finally:
        direct._compiled.cache_clear()
    np.testing.assert_allclose(y, reference_conv(x, W, None, (1, 1), (0, 1), (1, 1)),
                               rtol=1e-12, atol=1e-12)


def test_an_unwritable_cache_directory_falls_back_to_the_next(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("NN_CACHE_DIR", str(blocked))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert direct._source_directory() == tmp_path / "xdg" / "nn" / "kernels"


# -- the layers ----------------------------------------------------------------------------------
def test_where_it_applies(fp32):
    kernels = fp32.numba_kernels()
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    assert direct.applies(kernels, x, Conv2D(1, 4, 5, padding=2, dilation=2))
    assert not direct.applies(kernels, np.zeros((2, 2, 8, 8), np.float32), Conv2D(2, 4, 3))
    assert not direct.applies(kernels, x, Conv2D(1, 4, 3, stride=(1, 2)))
    assert not direct.applies(None, x, Conv2D(1, 4, 3))                   # numba off
    assert not direct.applies(kernels, x.astype(np.float16), Conv2D(1, 4, 3))
    cube = np.zeros((1, 1, 4, 4, 4), dtype=np.float32)
    assert direct.applies(kernels, cube, Conv3D(1, 2, 3))                # 27 taps
    assert not direct.applies(kernels, cube, Conv3D(1, 2, (3, 3, 4)))     # 36
    layer = Conv2D(1, 3, 3)
    layer.forward(x, train=True)
    assert layer.layout == "direct"
    with backends.using("numpy", "mixed", seed=0):
        layer = Conv2D(1, 3, 3)
        layer.forward(x, train=True)
        assert layer.layout != "direct"                # float16 keeps the reference path
    with backends.using("numpy", "fp32", seed=0, numba=False):
        layer = Conv2D(1, 3, 3)
        layer.forward(x, train=True)
        assert layer.layout == "rows"


@each_geometry
def test_layer_gradients_pass_the_finite_difference_check(fp64, x_shape, out_channels, kernel,
                                                          padding, dilation):
    """``dx`` (col2im) as well as ``dW`` (the kernel) and ``db``."""
    layer = make(x_shape, out_channels, kernel, padding, dilation, np.random.default_rng(4))
    errors = check_layer(layer, x_shape, seed=5, train=True)
    assert layer.layout == "direct"
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


@each_geometry
def test_layer_matches_the_im2col_path_in_float32(fp32, monkeypatch, x_shape, out_channels,
                                                  kernel, padding, dilation):
    rng = np.random.default_rng(6)
    layer = make(x_shape, out_channels, kernel, padding, dilation, rng)
    x = rng.standard_normal(x_shape).astype(np.float32)
    results = []
    for on in (True, False):
        monkeypatch.setattr(direct, "MAX_TAPS", 27 if on else 0)
        y = layer.forward(x, train=True)
        assert (layer.layout == "direct") == on
        dy = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy)
        results.append((y, dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    for new, old in zip(*results):
        assert new.dtype == np.float32
        np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-5 * np.abs(old).max())


def test_layer_leaves_x_and_dy_alone_and_backward_follows_inference(fp64):
    rng = np.random.default_rng(8)
    layer = make((3, 1, 9, 10), 4, (3, 3), (1, 1), (1, 1), rng)
    x = rng.standard_normal((3, 1, 9, 10))
    x_before = x.copy()
    y = layer.forward(x)                                   # train=False: nothing kept but x
    assert layer.layout == "direct" and layer.cols is None
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)
    np.testing.assert_allclose(layer.grads["W"], weight_grad_definition(
        x, dy, (3, 3), (1, 1), (1, 1)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert dx.shape == x.shape


def test_input_grad_chunked_by_the_workspace(fp64):
    """The input gradient (a layer after the first) goes through col2im chunk by chunk."""
    rng = np.random.default_rng(9)
    layer = make((5, 1, 7, 6), 2, (3, 3), (1, 1), (1, 1), rng)
    x = rng.standard_normal((5, 1, 7, 6))
    dy = rng.standard_normal(layer.forward(x, train=True).shape)
    with backends.using(workspace_bytes=2 * 9 * 42 * 8):   # two examples' columns per chunk
        chunked = layer.backward(dy)                       # (first: no whole result freed
        assert len(layer._chunks(x, 9 * 42)) == 3          # before it to reuse)
    whole = layer.backward(dy)
    np.testing.assert_allclose(chunked, whole, rtol=1e-14, atol=1e-14)


def test_network_first_layer_skips_the_input_gradient(fp64):
    rng = np.random.default_rng(10)
    conv = Conv2D(1, 3, 5, padding=2)
    net = nn.Network([conv, Flatten(), Dense(3 * 8 * 8, 4)], SoftmaxCrossEntropy())
    x = rng.standard_normal((4, 1, 8, 8))
    out = net.forward(x, train=True)
    dy = rng.standard_normal(out.shape)
    assert conv.layout == "direct"
    assert net.backward(dy, input_grad=False) is None
    dW = conv.grads["W"].copy()
    assert net.backward(dy).shape == x.shape
    np.testing.assert_array_equal(conv.grads["W"], dW)
