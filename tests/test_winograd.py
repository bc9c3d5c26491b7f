"""Winograd's F(2, 3) (nn/backends/winograd.py), the CPU's path for 3x3 stride-1 convolutions.

Its results are compared with im2col's (the reference path of the same layer, forced by
raising ``winograd_min_channels``) and with the naive loops of ``nn.layers.reference``;
its gradients are checked in float64 with a random upstream gradient. The transforms'
matrices are checked against the definition of the correlation they compute.
"""
from __future__ import annotations

import numpy as np
import pytest

from nn import backends
from nn.backends import winograd
from nn.layers import Conv1D, Conv2D, Conv3D
from nn.layers.conv import ConvND
from nn.layers.reference import reference_conv

from helpers import assert_passes

CONV = {2: Conv2D, 3: Conv3D}
IM2COL_ONLY = 10**9       # winograd_min_channels that no layer reaches: im2col runs


@pytest.fixture
def numba_kernels():
    kernels = backends.current().numba_kernels()
    if kernels is None:
        pytest.skip("numba is not installed")
    return kernels


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Every 3x3 stride-1 convolution runs Winograd, whatever its number of channels."""
    monkeypatch.setattr(ConvND, "winograd_min_channels", 1)
    monkeypatch.setattr(ConvND, "winograd_min_size", 1)


def with_im2col(monkeypatch, f):
    """``f()`` with im2col forced, then Winograd restored as it was."""
    kept = ConvND.winograd_min_channels
    monkeypatch.setattr(ConvND, "winograd_min_channels", IM2COL_ONLY)
    try:
        return f()
    finally:
        monkeypatch.setattr(ConvND, "winograd_min_channels", kept)


def step(layer, x, dy, input_grad=True):
    """``(y, dx, grads)`` of one forward and backward, as NumPy arrays."""
    y = layer.forward(x, train=True)
    dx = layer.backward(dy, input_grad=input_grad)
    return y, dx, {k: v.copy() for k, v in layer.grads.items()}


# -- the maths of F(m, 3) -------------------------------------------------------------------------
@pytest.mark.parametrize("m", [2, 4])
def test_one_axis_identity_gives_the_correlation(m):
    """``A^T [(G g) * (B^T d)]`` is the 3-tap correlation of an ``m + 2``-sample tile."""
    B_T, G, A_T = winograd.MATRICES[m]
    assert B_T.shape == (m + 2, m + 2) and G.shape == (m + 2, 3) and A_T.shape == (m, m + 2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
        y = A_T @ ((G @ g) * (B_T @ d))
        np.testing.assert_allclose(y, [d[i:i + 3] @ g for i in range(m)], rtol=1e-12)


def along_every_axis(matrix, block):
    """``matrix`` applied along every axis of ``block`` (``B^T d B`` in 2D)."""
    for axis in range(block.ndim):
        block = np.moveaxis(np.tensordot(matrix, block, axes=([1], [axis])), 0, axis)
    return block


@pytest.mark.parametrize("ndim, m", [(2, 2), (2, 4), (3, 2)])
def test_kernel_transform_and_its_adjoint(ndim, m):
    """``U = G g G^T`` along every axis, and ``<U, dU> = <W, adjoint(dU)>``."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 2) + (3,) * ndim)
    U = winograd.kernel_transform(W, m)
    assert U.shape == ((m + 2) ** ndim, 3, 2)
    expected = along_every_axis(winograd.MATRICES[m][1], W[2, 1])
    np.testing.assert_allclose(U[:, 2, 1], expected.ravel(), rtol=1e-13)
    dU = rng.standard_normal(U.shape)
    np.testing.assert_allclose(np.vdot(U, dU),
                               np.vdot(W, winograd.kernel_transform_adjoint(dU, ndim, m)),
                               rtol=1e-12)


@pytest.mark.parametrize("ndim, shape, padding", [
    (2, (2, 3, 6, 7), (1, 1)), (2, (1, 2, 5, 5), (0, 2)), (2, (2, 2, 11, 9), (1, 0)),
    (3, (2, 2, 4, 5, 3), (1, 0, 1))])
def test_tile_transforms_match_the_matrices(fp64, numba_kernels, ndim, shape, padding):
    """The numba kernels compute ``B^T d B`` (input) and ``A^T m A`` (output) tile by tile,
    as the matrices of the module say (F(4, 3) for images, F(2, 3) for cubes), and their
    adjoints are adjoints."""
    m = winograd.OUTPUTS_PER_TILE[ndim]
    B_T, _, A_T = winograd.MATRICES[m]
    kernel = {step: getattr(numba_kernels, f"winograd_{step}_{ndim}d")
              for step in ("input", "output", "output_adjoint", "input_adjoint")}
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    out, counts = winograd.tile_grid(shape, padding, m)
    xp = winograd.padded_input(x, padding, counts, m)
    T, P = (m + 2) ** ndim, shape[0] * int(np.prod(counts))
    V = winograd.slabs(T, shape[1], P, x.dtype)
    kernel["input"](xp, V)
    # the last tile p = (n, i, j[, k]) of the last channel: the block of xp at m * (i, j[, k])
    n, c, index = shape[0] - 1, shape[1] - 1, tuple(t - 1 for t in counts)
    p = np.ravel_multi_index((n, *index), (shape[0], *counts))
    block = xp[(n, c) + tuple(slice(m * i, m * i + m + 2) for i in index)]
    np.testing.assert_allclose(V[:, c, p], along_every_axis(B_T, block).ravel(), rtol=1e-13,
                               atol=1e-13)
    # the adjoint of the input transform: <V, dV> = <xp, B dV B^T added up>
    dV = rng.standard_normal(V.shape)
    dxp = np.zeros_like(xp)
    kernel["input_adjoint"](dV, dxp)
    np.testing.assert_allclose(np.vdot(V, dV), np.vdot(xp, dxp), rtol=1e-12)
    # output transform (what fits of the last tile) and its adjoint: <y, dy> = <M, dM>
    M = rng.standard_normal((T, 3, P))
    y = np.empty((shape[0], 3, *out))
    kernel["output"](M, np.zeros(3), y)
    full = along_every_axis(A_T, M[:, 2, p].reshape((m + 2,) * ndim))
    got = y[(n, 2) + tuple(slice(m * i, m * i + m) for i in index)]
    np.testing.assert_allclose(got, full[tuple(slice(0, s) for s in got.shape)], rtol=1e-13)
    dy = rng.standard_normal(y.shape)
    dM = np.empty_like(M)
    kernel["output_adjoint"](dy, dM)
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(M, dM), rtol=1e-12)


def test_slabs_are_contiguous_matrices_off_the_4k_grid():
    """Each of the T matrices is contiguous; they do not start a multiple of 4 KiB apart."""
    V = winograd.slabs(16, 32, 1024, np.float32)          # back to back: 128 KiB apart
    assert V.shape == (16, 32, 1024) and all(V[t].flags.c_contiguous for t in range(16))
    assert V.strides[0] % 4096 != 0
    assert winograd.slabs(16, 32, 1024, np.float32, spare=V) is V
    assert winograd.slabs(16, 32, 1024, np.float64, spare=V) is not V


# -- the layers: Winograd against im2col and the naive loops ---------------------------------------
# id -> (ndim, in_channels, out_channels, input shape, padding, bias)
CASES = {
    "2d-p1-odd": (2, 3, 4, (2, 3, 7, 9), 1, True),
    "2d-p0-batch1": (2, 2, 3, (1, 2, 6, 5), 0, True),
    "2d-p2x0-nobias": (2, 2, 5, (3, 2, 5, 8), (2, 0), False),
    "2d-3x3-out1": (2, 2, 2, (2, 2, 3, 3), 0, True),
    "3d-p1-odd": (3, 2, 3, (2, 2, 5, 4, 3), 1, True),
    "3d-p0x1x2": (3, 2, 2, (1, 2, 4, 3, 5), (0, 1, 2), True),
}
each_case = pytest.mark.parametrize("ndim, c_in, c_out, shape, padding, bias", CASES.values(),
                                    ids=CASES.keys())


def make(ndim, c_in, c_out, padding, bias, rng):
    layer = CONV[ndim](c_in, c_out, 3, padding=padding, bias=bias)
    if bias:
        layer.params["b"] = backends.current().param(rng.standard_normal(c_out))
    return layer


@each_case
def test_forward_matches_the_naive_loops_and_im2col(fp64, numba_kernels, winograd_everywhere,
                                                    monkeypatch, ndim, c_in, c_out, shape,
                                                    padding, bias):
    rng = np.random.default_rng(3)
    layer = make(ndim, c_in, c_out, padding, bias, rng)
    x = rng.standard_normal(shape)
    y = layer.forward(x, train=True)
    assert layer.winograd_saved is not None                     # it did run Winograd
    pad = (padding,) * ndim if isinstance(padding, int) else padding
    W = layer.params["W"]
    b = layer.params["b"] if bias else None
    expected = reference_conv(x, W, b, (1,) * ndim, pad, (1,) * ndim)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    y_im2col = with_im2col(monkeypatch, lambda: layer.forward(x, train=True))
    np.testing.assert_allclose(y, y_im2col, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@each_case
def test_backward_matches_im2col(fp64, numba_kernels, winograd_everywhere, monkeypatch, ndim,
                                 c_in, c_out, shape, padding, bias):
    rng = np.random.default_rng(4)
    layer = make(ndim, c_in, c_out, padding, bias, rng)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal((shape[0], *layer.output_shape(shape[1:])))
    y, dx, grads = step(layer, x, dy)
    y2, dx2, grads2 = with_im2col(monkeypatch, lambda: step(layer, x, dy))
    assert layer.winograd_saved is None and layer.cols is not None  # the second step ran im2col
    layer.forward(x, train=True)                           # Winograd again: im2col's columns
    assert layer.winograd_saved is not None and layer.cols is None  # are let go
    np.testing.assert_allclose(dx, dx2, rtol=1e-11, atol=1e-12 * np.abs(dx2).max())
    assert set(grads) == set(grads2) == ({"W", "b"} if bias else {"W"})
    for name in grads:
        np.testing.assert_allclose(grads[name], grads2[name], rtol=1e-11,
                                   atol=1e-12 * np.abs(grads2[name]).max())


@each_case
def test_gradient(fp64, numba_kernels, winograd_everywhere, ndim, c_in, c_out, shape, padding,
                  bias):
    """A convolution is linear in ``x`` and in ``W``: central differences are exact at any
    step, and a step of 1e-3 (not 1e-5) keeps the forward's rounding, larger than im2col's
    (the transforms add terms before multiplying), out of the numerical gradient."""
    layer = CONV[ndim](c_in, c_out, 3, padding=padding, bias=bias)
    errors = assert_passes(layer, shape, seed=ndim, eps=1e-3)
    assert layer.winograd_saved is not None
    assert ("b" in errors) == bias


@pytest.mark.parametrize("ndim, shape, blocks", [
    (2, (5, 3, 9, 6), "one-example-each"), (2, (5, 3, 9, 6), "two-and-a-remainder"),
    (3, (3, 2, 5, 4, 3), "one-example-each"), (3, (3, 2, 5, 4, 3), "two-and-a-remainder")])
def test_blocks_of_examples_match_one_block(fp64, numba_kernels, monkeypatch, ndim,
                                                         shape, blocks):
    """The ``T`` products and the transforms run a few examples at a time
    (``PRODUCT_BLOCK_BYTES``), forward and backward: the one-block results (the weight
    gradient summed block by block, in another order)."""
    rng = np.random.default_rng(7)
    layer = make(ndim, shape[1], 4, 1, True, rng)
    monkeypatch.setattr(ConvND, "winograd_min_channels", 1)
    monkeypatch.setattr(ConvND, "winograd_min_size", 1)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal((shape[0], *layer.output_shape(shape[1:])))
    one = step(layer, x, dy)
    m = winograd.OUTPUTS_PER_TILE[ndim]
    tiles = np.prod(winograd.tiles(shape[2:], m))               # per example (padding 1)
    per_example = (m + 2) ** ndim * 4 * tiles * 8                  # bytes of M, float64
    monkeypatch.setattr(winograd, "PRODUCT_BLOCK_MIN_TILES", 1)
    monkeypatch.setattr(winograd, "PRODUCT_BLOCK_BYTES",
                        per_example if blocks == "one-example-each" else 2 * per_example + 1)
    sizes = [n1 - n0 for n0, n1, _, _ in winograd.example_blocks(
        shape[0], (m + 2) ** ndim * 4, winograd.tiles(shape[2:], m), 8)]
    assert sizes == ([1] * shape[0] if blocks == "one-example-each"
                     else [2] * (shape[0] // 2) + [1])
    blocked = step(layer, x, dy)
    assert layer.winograd_saved is not None
    for got, want in [*zip(blocked[:2], one[:2]), *((blocked[2][k], one[2][k]) for k in one[2])]:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())


def test_without_input_grad_and_frozen(fp64, numba_kernels, winograd_everywhere):
    """``input_grad=False`` returns None with the same weight gradients; a frozen layer still
    returns ``dx`` and computes no gradient."""
    rng = np.random.default_rng(5)
    layer = make(2, 3, 4, 1, True, rng)
    x, dy = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 4, 6, 6))
    _, dx, grads = step(layer, x, dy)
    _, none, grads2 = step(layer, x, dy, input_grad=False)
    assert none is None
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads2[name])
    layer.trainable = False
    layer.grads = {}
    _, dx3, grads3 = step(layer, x, dy)
    np.testing.assert_array_equal(dx3, dx)
    assert grads3 == {}


def test_float32_is_close_to_float64(fp32, numba_kernels, winograd_everywhere):
    """The transforms add and scale before multiplying: float32 stays within a few units of
    the last place of the largest possible sum (VGG-ish sizes: 32 channels, values of order
    1; measured 2.2 units with F(4, 3))."""
    rng = np.random.default_rng(6)
    x, layer = rng.standard_normal((2, 32, 12, 12)), Conv2D(32, 16, 3, padding=1)
    dy = rng.standard_normal((2, 16, 12, 12))
    y, dx, grads = step(layer, backends.current().asarray(x), backends.current().asarray(dy))
    assert y.dtype == dx.dtype == grads["W"].dtype == np.float32 and layer.winograd_saved is not None
    W, b = (layer.params[k].astype(np.float64) for k in ("W", "b"))
    expected = reference_conv(x, W, b, (1, 1), (1, 1), (1, 1))
    scale = np.abs(x).max() * np.abs(W).sum(axis=(1, 2, 3)).max()   # the largest |sum of terms|
    assert np.abs(y - expected).max() < 8 * np.finfo(np.float32).eps * scale


# -- when it runs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make_layer, x_shape, runs", [
    (lambda: Conv2D(16, 8, 3, padding=1), (2, 16, 8, 8), True),
    (lambda: Conv3D(16, 4, 3), (1, 16, 10, 10, 10), True),
    (lambda: Conv2D(8, 8, 3, padding=1), (2, 8, 8, 8), True),
    (lambda: Conv2D(7, 8, 3, padding=1), (2, 7, 8, 8), False),          # too few channels
    (lambda: Conv2D(16, 8, 3), (2, 16, 9, 10), False),                  # 7 x 8 outputs: too few
    (lambda: Conv2D(16, 8, 3), (2, 16, 10, 11), True),                  # 8 x 9
    (lambda: Conv2D(16, 8, 3, stride=2), (2, 16, 8, 8), False),
    (lambda: Conv2D(16, 8, 3, dilation=2), (2, 16, 8, 8), False),
    (lambda: Conv2D(16, 8, (3, 5)), (2, 16, 8, 8), False),
    (lambda: Conv2D(16, 8, 5), (2, 16, 8, 8), False),
    (lambda: Conv1D(16, 8, 3), (2, 16, 8), False),                     # 1D: im2col
])
def test_which_layers_run_winograd(fp32, numba_kernels, make_layer, x_shape, runs):
    layer = make_layer()
    layer.forward(np.ones(x_shape, np.float32))
    assert (layer.winograd_saved is not None) == runs


def test_im2col_runs_without_numba_under_mixed_and_past_the_workspace(numba_kernels):
    x = np.ones((2, 16, 8, 8), np.float32)
    with backends.using("numpy", "fp32", numba=False):
        layer = Conv2D(16, 8, 3, padding=1)
        layer.forward(x)
        assert layer.winograd_saved is None
    with backends.using("numpy", "mixed"):
        layer = Conv2D(16, 8, 3, padding=1)
        layer.forward(x)
        assert layer.winograd_saved is None
    # T (C + O) P float32 values: 36 positions (F(4, 3)), 16 + 8 channels, 2 x 2 x 2 tiles
    need = 36 * 24 * 8 * 4
    with backends.using("numpy", "fp32", workspace_bytes=need - 1):
        layer = Conv2D(16, 8, 3, padding=1)
        layer.forward(x)
        assert layer.winograd_saved is None
    with backends.using("numpy", "fp32", workspace_bytes=need):
        layer.forward(x)
        assert layer.winograd_saved is not None


def test_the_next_step_reuses_the_arrays_and_computes_the_same(fp64, numba_kernels,
                                                                winograd_everywhere):
    rng = np.random.default_rng(7)
    layer, fresh = make(2, 3, 4, 1, True, rng), Conv2D(3, 4, 3, padding=1)
    fresh.params = {k: v.copy() for k, v in layer.params.items()}
    shape = (2, 3, 7, 6)
    step(layer, rng.standard_normal(shape), rng.standard_normal((2, 4, 7, 6)))
    kept = layer.winograd_saved
    x, dy = rng.standard_normal(shape), rng.standard_normal((2, 4, 7, 6))
    results, expected = step(layer, x, dy), step(fresh, x, dy)
    assert layer.winograd_saved[0] is kept[0]                        # V, written over
    for got, want in zip(results[:2], expected[:2]):
        np.testing.assert_array_equal(got, want)
    for name in expected[2]:
        np.testing.assert_array_equal(results[2][name], expected[2][name])
    layer.forward(rng.standard_normal((3, *shape[1:])))              # a new batch size
    V = layer.winograd_saved[0]
    assert V is not kept[0] and V.shape[2] == 3 * kept[0].shape[2] // 2


def test_flat_slabs_sees_the_matrices_of_slabs_and_refuses_others():
    """The 2D kernels read the ``T`` matrices as one flat buffer: matrix ``t`` starts at
    ``t * step``, for skewed slabs and plain arrays alike; other layouts are refused."""
    from nn.backends.cpu_kernels import _flat_slabs
    for A in (winograd.slabs(5, 3, 7, np.float32), np.empty((5, 3, 7))):
        A[...] = np.arange(A.size).reshape(A.shape)
        buffer, step = _flat_slabs(A)
        for t in range(5):
            np.testing.assert_array_equal(buffer[t * step:t * step + 21], A[t].ravel())
    with pytest.raises(ValueError, match="contiguous"):
        _flat_slabs(np.empty((5, 7, 3)).transpose(0, 2, 1))
