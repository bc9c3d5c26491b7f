"""Pooling: MaxPool1D/2D/3D, AvgPool1D/2D/3D, GlobalAvgPool, GlobalMaxPool.

Forward passes are compared with naive loops over the windows kept at the top of this file.
Max-pool gradients are checked on inputs without ties (a permutation of well separated
values): at a tie the maximum is not differentiable and a finite difference measures
neither side. Ties get their own test: the whole gradient goes to the first maximum of the
window in C order. The NumPy backend has two max-pool paths (numba kernels for
float32/float64, strided slices otherwise): they must agree bit for bit.
"""
from __future__ import annotations


import numpy as np
import pytest

from nn import backends
from nn.backends import cpu_kernels
from nn.layers import (AvgPool1D, AvgPool2D, AvgPool3D, GlobalAvgPool, GlobalMaxPool, MaxPool1D,
                       MaxPool2D, MaxPool3D, from_dict, to_dict)

from nn.layers.reference import reference_global, reference_maxpool_backward, reference_pool

from helpers import (assert_leaves_x_and_dy_alone, assert_passes, assert_rejects_wrong_dy,
                     distinct_values, host)

MAX = {1: MaxPool1D, 2: MaxPool2D, 3: MaxPool3D}
AVG = {1: AvgPool1D, 2: AvgPool2D, 3: AvgPool3D}
ALL = (slice(None), slice(None))   # every example and every channel


# -- helpers --------------------------------------------------------------------------------------


def tied_values(shape, seed=0):
    """Small integers: most windows hold their maximum two or more times."""
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.float64)


@pytest.fixture(params=[True, False], ids=["numba", "numpy-slices"])
def maxpool_path(request):
    """Both max-pool implementations of the NumPy backend (numba kernels, strided slices);
    on CuPy, its one implementation (the CUDA kernels), under the id "numba"."""
    if backends.current().name != "numpy":
        if not request.param:
            pytest.skip("the strided-slices path is the NumPy backend's; CuPy has its kernels only")
        yield request.param
        return
    with backends.using(numba=request.param):
        yield request.param


# id -> (ndim, kernel_size, stride, input shape)
CASES = {
    "1d-k2": (1, 2, None, (2, 3, 8)),
    "1d-k3-s2-overlap": (1, 3, 2, (2, 2, 11)),
    "1d-k3-s1-batch1": (1, 3, 1, (1, 2, 7)),
    "2d-2x2": (2, 2, None, (2, 2, 6, 6)),
    "2d-2x2-odd-input-cropped": (2, 2, None, (2, 2, 5, 7)),
    "2d-3x2-s2x1-overlap": (2, (3, 2), (2, 1), (2, 2, 7, 5)),
    "2d-3x3-s2-overlap-batch1": (2, 3, 2, (1, 3, 7, 7)),
    "2d-2-s3-gaps": (2, 2, 3, (2, 1, 8, 7)),
    "3d-2": (3, 2, None, (2, 2, 4, 4, 4)),
    "3d-2x1x3-s1x1x2-overlap": (3, (2, 1, 3), (1, 1, 2), (1, 2, 3, 4, 5)),
}
each_case = pytest.mark.parametrize("ndim, kernel, stride, shape", CASES.values(),
                                    ids=CASES.keys())


def _tuples(ndim, kernel, stride):
    kernel = (kernel,) * ndim if isinstance(kernel, int) else tuple(kernel)
    stride = kernel if stride is None else (stride,) * ndim if isinstance(stride, int) \
        else tuple(stride)
    return kernel, stride


# -- forward against the naive loops --------------------------------------------------------------
@each_case
def test_maxpool_forward_matches_naive_loops(fp64, maxpool_path, ndim, kernel, stride, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    y = host(MAX[ndim](kernel, stride).forward(fp64.asarray(x)))
    expected, _ = reference_pool(x, *_tuples(ndim, kernel, stride), "max")
    np.testing.assert_array_equal(y, expected)


@each_case
def test_avgpool_forward_matches_naive_loops(fp64, ndim, kernel, stride, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    y = host(AVG[ndim](kernel, stride).forward(fp64.asarray(x)))
    expected = reference_pool(x, *_tuples(ndim, kernel, stride), "mean")
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-15)


GLOBAL_SHAPES = [(2, 3, 5), (1, 2, 3, 4), (2, 2, 2, 3, 2)]


@pytest.mark.parametrize("shape", GLOBAL_SHAPES, ids=["1d", "2d-batch1", "3d"])
@pytest.mark.parametrize("layer, kind", [(GlobalAvgPool(), "mean"), (GlobalMaxPool(), "max")],
                         ids=["avg", "max"])
def test_global_pool_forward_matches_naive_loops(fp64, layer, kind, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    y = host(layer.forward(fp64.asarray(x)))
    assert y.shape == shape[:2]
    np.testing.assert_allclose(y, reference_global(x, kind), rtol=1e-13, atol=1e-15)


def test_maxpool2d_hand_computed(fp64):
    x = np.array([[[[1.0, 5.0, 2.0, 0.0],
                    [3.0, 4.0, 8.0, 7.0],
                    [0.0, -1.0, 6.0, 6.0],
                    [-2.0, 9.0, 6.0, 1.0]]]])
    layer = MaxPool2D(2)
    y = host(layer.forward(fp64.asarray(x)))
    np.testing.assert_array_equal(y, [[[[5.0, 8.0], [9.0, 6.0]]]])
    dx = host(layer.backward(fp64.asarray(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))))
    # the bottom-right window [[6 6] [6 1]] has three maxima: the first (top-left) takes all
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0, 0.0, 0.0],
                                         [0.0, 0.0, 2.0, 0.0],
                                         [0.0, 0.0, 4.0, 0.0],
                                         [0.0, 3.0, 0.0, 0.0]]]])


def test_avgpool1d_overlapping_hand_computed(fp64):
    layer = AvgPool1D(2, stride=1)
    y = host(layer.forward(fp64.asarray(np.array([[[1.0, 3.0, 8.0]]]))))
    np.testing.assert_array_equal(y, [[[2.0, 5.5]]])
    # the middle sample is in both windows: 1/2 of each dy
    dx = host(layer.backward(fp64.asarray(np.array([[[2.0, 4.0]]]))))
    np.testing.assert_array_equal(dx, [[[1.0, 3.0, 2.0]]])


# -- gradient checks ------------------------------------------------------------------------------
@each_case
def test_maxpool_gradient(fp64, maxpool_path, ndim, kernel, stride, shape):
    assert_passes(MAX[ndim](kernel, stride), shape, x=distinct_values(shape, seed=ndim))


@each_case
def test_avgpool_gradient(fp64, ndim, kernel, stride, shape):
    assert_passes(AVG[ndim](kernel, stride), shape, seed=ndim)


@pytest.mark.parametrize("shape", GLOBAL_SHAPES, ids=["1d", "2d-batch1", "3d"])
def test_global_avg_pool_gradient(fp64, shape):
    assert_passes(GlobalAvgPool(), shape)


@pytest.mark.parametrize("shape", GLOBAL_SHAPES, ids=["1d", "2d-batch1", "3d"])
def test_global_max_pool_gradient(fp64, shape):
    assert_passes(GlobalMaxPool(), shape, x=distinct_values(shape, seed=1))


# -- ties: the whole gradient goes to the first maximum of each window ----------------------------
@each_case
def test_maxpool_ties_route_the_gradient_to_the_first_maximum(fp64, maxpool_path, ndim, kernel,
                                                              stride, shape):
    B = fp64
    kernel, stride = _tuples(ndim, kernel, stride)
    rng = np.random.default_rng(3)
    x = tied_values(shape, seed=4)
    x[(0, 0) + (slice(None),) * ndim] = 1.0               # one plane where every window is tied
    layer = MAX[ndim](kernel, stride)
    y = layer.forward(B.asarray(x))
    # nonzero integers: a routed dy is visible, and sums of them are exact in any order
    dy = rng.integers(1, 9, tuple(y.shape)).astype(np.float64)
    dx = host(layer.backward(B.asarray(dy)))
    np.testing.assert_array_equal(dx, reference_maxpool_backward(x, dy, kernel, stride))
    assert dx.sum() == dy.sum()
    if kernel == stride:
        # side-by-side windows: exactly one element of each window holds its window's dy
        for i in np.ndindex(*y.shape[2:]):
            window = dx[ALL + tuple(slice(j * s, j * s + k) for j, s, k in zip(i, stride, kernel))]
            window = window.reshape(shape[0], shape[1], -1)
            assert ((window != 0).sum(axis=2) == 1).all()
            np.testing.assert_array_equal(window.sum(axis=2), dy[ALL + i])
        # in the all-tied plane the first element (offset 0) of every window wins
        starts = tuple(slice(0, o * s, s) for o, s in zip(y.shape[2:], stride))
        np.testing.assert_array_equal(dx[0, 0][starts], dy[0, 0])


def test_global_max_pool_tie_goes_to_the_first_position(fp64):
    x = np.array([[[[2.0, 5.0], [5.0, 1.0]], [[3.0, 3.0], [3.0, 3.0]]]])
    layer = GlobalMaxPool()
    np.testing.assert_array_equal(host(layer.forward(fp64.asarray(x))), [[5.0, 3.0]])
    dx = host(layer.backward(fp64.asarray(np.array([[1.5, -2.0]]))))
    np.testing.assert_array_equal(dx, [[[[0.0, 1.5], [0.0, 0.0]], [[-2.0, 0.0], [0.0, 0.0]]]])


def _both_max_pool_paths(monkeypatch, precision, values, kernel, stride, shape):
    """y, argmax and dx from the numba kernels and from the strided slices, same x and dy."""
    x_host = tied_values(shape, 5) if values == "tied" else \
        np.random.default_rng(5).standard_normal(shape)
    calls = []
    compiled_forward, compiled_backward = cpu_kernels.maxpool, cpu_kernels.maxpool_backward
    monkeypatch.setattr(cpu_kernels, "maxpool",
                        lambda *a: calls.append("forward") or compiled_forward(*a))
    monkeypatch.setattr(cpu_kernels, "maxpool_backward",
                        lambda *a: calls.append("backward") or compiled_backward(*a))
    results = {}
    for use_numba in (True, False):
        with backends.using("numpy", precision, numba=use_numba) as B:
            x = B.asarray(x_host)
            y, argmax = B.maxpool(x, kernel, stride)
            dy = B.asarray(np.random.default_rng(6).standard_normal(y.shape))
            dx = B.maxpool_backward(dy, argmax, x.shape, kernel, stride)
            results[use_numba] = (y, argmax, dx)
    assert calls == ["forward", "backward"]       # the numba kernels ran once, the slices once
    return x_host, results[True], results[False]


both_paths = pytest.mark.parametrize("values", ["tied", "distinct"])
both_precisions = pytest.mark.parametrize("precision", ["fp32", "fp64"])


@each_case
@both_precisions
@both_paths
def test_numba_and_numpy_max_pool_forward_agree(monkeypatch, precision, values, ndim, kernel,
                                                stride, shape):
    """Same y and argmax, bit for bit, and both are the naive first-maximum offsets."""
    kernel, stride = _tuples(ndim, kernel, stride)
    x, (y1, a1, _), (y2, a2, _) = _both_max_pool_paths(monkeypatch, precision, values, kernel,
                                                       stride, shape)
    assert y1.dtype == y2.dtype == np.dtype(precision.replace("fp", "float"))
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(a1, reference_pool(x, kernel, stride, "max")[1])


@each_case
@both_precisions
@both_paths
def test_numba_and_numpy_max_pool_backward_agree(monkeypatch, precision, values, ndim, kernel,
                                                 stride, shape):
    """Same dx; where windows overlap, a position sums the dy of several windows, in another
    order on each path, so equal up to rounding (a few ulps), exact elsewhere."""
    kernel, stride = _tuples(ndim, kernel, stride)
    _, (_, _, dx1), (_, _, dx2) = _both_max_pool_paths(monkeypatch, precision, values, kernel,
                                                       stride, shape)
    assert dx1.dtype == dx2.dtype
    if all(s >= k for s, k in zip(stride, kernel)):
        np.testing.assert_array_equal(dx1, dx2)
    else:
        eps = np.finfo(dx1.dtype).eps
        np.testing.assert_allclose(dx1, dx2, rtol=4 * eps, atol=4 * eps * np.abs(dx1).max())


def test_backend_maxpool_argmax_is_the_offset_in_c_order(fp64):
    """argmax of a 2x3 window is its row * 3 + column; a 3D window (d, h, w) likewise."""
    x = np.zeros((1, 1, 2, 3))
    x[0, 0, 1, 2] = 1.0
    _, argmax = fp64.maxpool(fp64.asarray(x), (2, 3), (2, 3))
    assert int(host(argmax).ravel()[0]) == 1 * 3 + 2
    x = np.zeros((1, 1, 2, 2, 3))
    x[0, 0, 1, 0, 2] = 1.0
    _, argmax = fp64.maxpool(fp64.asarray(x), (2, 2, 3), (2, 2, 3))
    assert int(host(argmax).ravel()[0]) == 1 * 6 + 0 * 3 + 2


def test_large_window_uses_a_wide_argmax_type(fp64):
    """More than 255 offsets per window do not fit in uint8; the winner must still be found."""
    x = np.random.default_rng(7).standard_normal((1, 2, 17, 17))
    y, argmax = fp64.maxpool(fp64.asarray(x), (17, 17), (17, 17))
    flat = x.reshape(1, 2, -1)
    np.testing.assert_array_equal(host(argmax).reshape(1, 2), flat.argmax(axis=2))
    layer = MaxPool2D(17)
    layer.forward(fp64.asarray(x))
    dx = host(layer.backward(fp64.asarray(np.ones((1, 2, 1, 1)))))
    assert dx.reshape(1, 2, -1)[0, 0, flat[0, 0].argmax()] == 1.0 and dx.sum() == 2.0


# -- forward never modifies x, backward never modifies dy -----------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: MaxPool1D(3, stride=2), (2, 2, 9)),
    (lambda: MaxPool2D(2), (2, 3, 4, 6)),
    (lambda: MaxPool3D((2, 1, 2), stride=1), (2, 1, 3, 3, 3)),
    (lambda: AvgPool1D(3, stride=2), (2, 2, 9)),
    (lambda: AvgPool2D((3, 2), stride=1), (2, 3, 4, 6)),
    (lambda: AvgPool3D(2), (2, 1, 4, 4, 4)),
    (GlobalAvgPool, (2, 3, 4, 5)),
    (GlobalMaxPool, (2, 3, 4, 5)),
], ids=["max1d-overlap", "max2d", "max3d-overlap", "avg1d-overlap", "avg2d-overlap", "avg3d",
        "global-avg", "global-max"])
def test_layers_never_modify_x_or_dy(fp32, maxpool_path, make, shape):
    B = fp32
    assert_leaves_x_and_dy_alone(B, make(), shape)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape, expected", [
    (MaxPool2D(2), (2, 3, 8), "(N, C, H, W)"),
    (MaxPool2D(2), (3, 8, 8), "(N, C, H, W)"),
    (AvgPool1D(2), (2, 3, 8, 8), "(N, C, L)"),
    (MaxPool3D(2), (2, 1, 4, 4), "(N, C, D, H, W)"),
    (AvgPool3D(2), (2, 1, 4, 4, 4, 4), "(N, C, D, H, W)"),
    (GlobalAvgPool(), (2, 3), "(N, C, *S)"),
    (GlobalMaxPool(), (5,), "(N, C, *S)"),
], ids=["max2d-given-3-axes", "max2d-no-batch", "avg1d-given-4-axes", "max3d-given-4-axes",
        "avg3d-given-6-axes", "global-avg-given-dense", "global-max-given-1-axis"])
def test_wrong_input_shape_names_layer_and_shapes(fp32, layer, shape, expected):
    with pytest.raises(ValueError) as info:
        layer.forward(fp32.asarray(np.zeros(shape)))
    message = str(info.value)
    assert repr(layer) in message
    assert expected in message
    assert str(shape) in message


@pytest.mark.parametrize("make, shape", [
    (lambda: MaxPool2D(2), (2, 3, 4, 6)),
    (lambda: MaxPool1D(3, stride=1), (2, 2, 7)),
    (lambda: AvgPool2D(2), (2, 3, 4, 6)),
    (lambda: AvgPool3D(2), (1, 1, 2, 4, 2)),
    (GlobalAvgPool, (2, 3, 4)),
    (GlobalMaxPool, (2, 3, 4)),
], ids=["max2d", "max1d", "avg2d", "avg3d", "global-avg", "global-max"])
@pytest.mark.parametrize("change", ["batch", "channels", "last-axis"])
def test_backward_with_wrong_dy_shape_raises(fp32, maxpool_path, make, shape, change):
    B = fp32
    layer = make()
    x = B.asarray(np.random.default_rng(0).standard_normal(shape))
    assert_rejects_wrong_dy(B, layer, x, {"batch": 0, "channels": 1, "last-axis": -1}[change])


@pytest.mark.parametrize("layer, shape", [
    (MaxPool2D(3), (1, 1, 2, 5)),
    (AvgPool1D(4), (2, 1, 3)),
    (MaxPool3D((1, 1, 3)), (1, 1, 2, 2, 2)),
], ids=["max2d-3-on-2", "avg1d-4-on-3", "max3d-last-axis"])
def test_window_larger_than_the_input_raises(fp32, layer, shape):
    with pytest.raises(ValueError, match=r"kernel spans .* padded input") as info:
        layer.forward(fp32.asarray(np.zeros(shape)))
    assert repr(layer) in str(info.value)
    with pytest.raises(ValueError, match="kernel spans"):
        layer.output_shape(shape[1:])


@pytest.mark.parametrize("make", [
    lambda: MaxPool2D(0),
    lambda: MaxPool2D(2, stride=0),
    lambda: MaxPool2D((2, 2, 2)),
    lambda: AvgPool1D((2, 2)),
    lambda: AvgPool3D(2, stride=(1, 1)),
    lambda: AvgPool2D(-1),
    lambda: MaxPool1D(1.5),
    lambda: MaxPool1D(True),
], ids=["kernel-0", "stride-0", "tuple-too-long", "1d-given-2-values", "3d-stride-too-short",
        "negative-kernel", "float-kernel", "bool-kernel"])
def test_bad_configuration_raises_naming_the_layer(make):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).split(":")[0] in {"MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D",
                                             "AvgPool2D", "AvgPool3D"}


# -- output_shape agrees with forward -------------------------------------------------------------
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", [MAX, AVG], ids=["max", "avg"])
def test_output_shape_matches_forward_on_random_geometries(fp32, family, ndim):
    rng = np.random.default_rng(ndim)
    for _ in range(15):
        kernel = tuple(int(v) for v in rng.integers(1, 4, ndim))
        stride = tuple(int(v) for v in rng.integers(1, 4, ndim))
        size = tuple(k + int(v) for k, v in zip(kernel, rng.integers(0, 6, ndim)))
        channels = int(rng.integers(1, 4))
        layer = family[ndim](kernel, stride)
        y = layer.forward(fp32.asarray(np.zeros((2, channels, *size))))
        expected = (channels, *((n - k) // s + 1 for n, k, s in zip(size, kernel, stride)))
        assert layer.output_shape((channels, *size)) == tuple(y.shape[1:]) == expected, repr(layer)


@pytest.mark.parametrize("layer", [GlobalAvgPool(), GlobalMaxPool()], ids=repr)
@pytest.mark.parametrize("shape", [(3, 5), (4, 2, 3), (1, 2, 2, 2)])
def test_global_output_shape_matches_forward(fp32, layer, shape):
    y = layer.forward(fp32.asarray(np.zeros((2, *shape))))
    assert layer.output_shape(shape) == tuple(y.shape[1:]) == (shape[0],)


# -- precision ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: MaxPool2D(2), lambda: AvgPool2D(3, stride=2),
                                  GlobalAvgPool, GlobalMaxPool],
                         ids=["max", "avg", "global-avg", "global-max"])
def test_pools_keep_float16_under_mixed(mixed, make):
    B = mixed
    x = np.random.default_rng(9).standard_normal((2, 3, 7, 7))
    layer = make()
    y = layer.forward(B.asarray(x))
    assert y.dtype == np.float16
    dx = layer.backward(B.asarray(np.ones(tuple(y.shape))))
    assert dx.dtype == np.float16
    with backends.using(B.name, "fp64"):
        exact = host(make().forward(backends.current().asarray(x.astype(np.float16))))
    # the input is already float16: max is exact, a float16 mean of 9 values of size ~1 may be
    # a few float16 steps (2**-10 near 1) off
    np.testing.assert_allclose(host(y).astype(np.float64), exact, rtol=0, atol=1e-2)


# -- against PyTorch, when it is installed --------------------------------------------------------
TORCH_CASES = {
    "max1d-k3-s2": ("max", 1, 3, 2, (2, 2, 11)),
    "max2d-3x2-s2x1": ("max", 2, (3, 2), (2, 1), (2, 2, 7, 5)),
    "max3d-2": ("max", 3, 2, 2, (1, 2, 4, 4, 5)),
    "avg1d-k3-s2": ("avg", 1, 3, 2, (2, 2, 11)),
    "avg2d-3x2-s2x1": ("avg", 2, (3, 2), (2, 1), (2, 2, 7, 5)),
    "avg3d-2x1x3-s1": ("avg", 3, (2, 1, 3), 1, (1, 2, 3, 4, 5)),
}


@pytest.mark.parametrize("kind, ndim, kernel, stride, shape", TORCH_CASES.values(),
                         ids=TORCH_CASES.keys())
def test_matches_pytorch(fp64, kind, ndim, kernel, stride, shape):
    torch = pytest.importorskip("torch")
    B = fp64
    x = distinct_values(shape, seed=10)
    layer = (MAX if kind == "max" else AVG)[ndim](kernel, stride)
    y = host(layer.forward(B.asarray(x)))
    dy = np.random.default_rng(11).standard_normal(y.shape)
    dx = host(layer.backward(B.asarray(dy)))
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, f"{kind}_pool{ndim}d")(tx, kernel, stride)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shape", GLOBAL_SHAPES, ids=["1d", "2d-batch1", "3d"])
def test_global_pools_match_pytorch(fp64, shape):
    torch = pytest.importorskip("torch")
    x = distinct_values(shape, seed=12)
    dy = np.random.default_rng(13).standard_normal(shape[:2])
    for layer, reduce in [(GlobalAvgPool(), torch.mean), (GlobalMaxPool(), torch.amax)]:
        y = host(layer.forward(fp64.asarray(x)))
        dx = host(layer.backward(fp64.asarray(dy)))
        tx = torch.tensor(x, requires_grad=True)
        ty = reduce(tx, dim=tuple(range(2, len(shape))))
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13, atol=1e-15)


# -- repr, config, round trip ---------------------------------------------------------------------
def test_repr_and_default_stride():
    assert repr(MaxPool2D(2)) == "MaxPool2D(2x2)"
    assert repr(AvgPool1D(3, stride=2)) == "AvgPool1D(3, stride=2)"
    assert MaxPool3D((1, 2, 2)).stride == (1, 2, 2)
    assert repr(GlobalAvgPool()) == "GlobalAvgPool()"


@pytest.mark.parametrize("layer", [MaxPool1D(3, stride=2), MaxPool2D((2, 3)), MaxPool3D(2),
                                   AvgPool1D(2), AvgPool2D(3, stride=(1, 2)), AvgPool3D((1, 2, 2)),
                                   GlobalAvgPool(), GlobalMaxPool()], ids=repr)
def test_to_dict_from_dict_round_trip(layer):
    rebuilt = from_dict(to_dict(layer))
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == layer.config()
    assert repr(rebuilt) == repr(layer)
