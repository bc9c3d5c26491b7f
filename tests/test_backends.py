"""The array backends: choosing one, the precision policy, seeds, the matrix product,
finiteness checks, a missing CuPy, and the dynamic loss scale of mixed precision."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import nn
from nn import backends
from nn.backends import BackendUnavailableError
from nn.training import LossScaler


# -- choosing a backend --------------------------------------------------------------------------
def test_default_backend_is_numpy_fp32():
    import subprocess
    import sys
    code = ("import nn, numpy as np; B = nn.current(); "
            "print(B.name, B.precision, B.dtype, B.xp is np)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numpy", "fp32", "float32", "True"]


def test_use_without_arguments_gives_numpy_fp32():
    backends.use("numpy", "fp64")
    B = backends.use()
    assert (B.name, B.precision) == ("numpy", "fp32")


def test_use_returns_the_backend_that_current_then_returns():
    B = nn.use("numpy", "fp64", seed=1)
    assert nn.current() is B
    assert backends.current() is B
    assert B.precision == "fp64"


def test_using_restores_the_previous_backend_object():
    before = backends.use("numpy", "fp32", seed=3)
    with backends.using(precision="fp64") as inner:
        assert backends.current() is inner
        assert inner.precision == "fp64" and inner.name == "numpy"
    assert backends.current() is before


def test_using_restores_the_backend_after_an_exception():
    before = backends.current()
    with pytest.raises(KeyError), backends.using(precision="mixed"):
        raise KeyError("inside")
    assert backends.current() is before


def test_unknown_backend_name_lists_the_choices():
    before = backends.current()
    with pytest.raises(ValueError, match="'tensorflow'") as info:
        backends.use("tensorflow")
    assert "'numpy'" in str(info.value) and "'cupy'" in str(info.value)
    assert backends.current() is before


def test_unknown_precision_lists_the_choices():
    before = backends.current()
    with pytest.raises(ValueError, match="'fp8'") as info:
        backends.use("numpy", "fp8")
    for name in ("'fp64'", "'fp32'", "'mixed'"):
        assert name in str(info.value)
    assert backends.current() is before


# -- precision policy --------------------------------------------------------------------------
@pytest.mark.parametrize("precision, dtype, param_dtype, acc_dtype", [
    ("fp64", "float64", "float64", "float64"),
    ("fp32", "float32", "float32", "float32"),
    ("mixed", "float16", "float32", "float32"),
])
def test_precision_policy_dtypes(backend_name, precision, dtype, param_dtype, acc_dtype):
    B = backends.use(backend_name, precision)
    assert B.dtype == np.dtype(dtype)
    assert B.param_dtype == np.dtype(param_dtype)
    assert B.acc_dtype == np.dtype(acc_dtype)
    assert B.mixed == (precision == "mixed")


@pytest.mark.parametrize("precision", ["fp64", "fp32", "mixed"])
def test_asarray_converts_floats_and_keeps_integer_labels(backend_name, precision):
    B = backends.use(backend_name, precision)
    x = B.asarray(np.array([[0.5, 1.5]], dtype=np.float64))
    labels = B.asarray(np.array([0, 2, 1], dtype=np.int64))
    mask = B.asarray(np.array([True, False]))
    assert x.dtype == B.dtype
    assert labels.dtype == np.int64
    assert mask.dtype == np.bool_
    assert isinstance(x, B.xp.ndarray)
    np.testing.assert_array_equal(B.to_host(labels), [0, 2, 1])


def test_asarray_with_explicit_dtype_converts_integers(fp32):
    labels = fp32.asarray(np.array([0, 1]), dtype=fp32.dtype)
    assert labels.dtype == np.float32


@pytest.mark.parametrize("precision", ["fp64", "fp32", "mixed"])
def test_numpy_asarray_does_not_copy_an_array_that_is_already_right(precision):
    B = backends.use("numpy", precision)
    x = np.ones((3, 2), dtype=B.dtype)
    labels = np.arange(3)
    assert B.asarray(x) is x
    assert B.asarray(labels) is labels
    assert B.cast(x) is x


def test_to_host_returns_a_numpy_array(backend_name):
    B = backends.use(backend_name, "fp32")
    host = B.to_host(B.asarray(np.array([1.0, 2.0])))
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, [1.0, 2.0])


def test_param_is_a_fresh_copy_in_the_parameter_dtype(backend_name):
    B = backends.use(backend_name, "mixed")
    W_host = np.ones((2, 3))
    W = B.param(W_host)
    W_host[0, 0] = 5.0
    assert W.dtype == np.float32
    assert float(W[0, 0]) == 1.0


# -- random generators -------------------------------------------------------------------------
def _draws(B):
    return B.host_rng.normal(size=5), B.to_host(B.rng.random(5))


def test_same_seed_gives_the_same_host_and_device_draws(backend_name):
    host_a, device_a = _draws(backends.use(backend_name, "fp32", seed=42))
    host_b, device_b = _draws(backends.use(backend_name, "fp32", seed=42))
    np.testing.assert_array_equal(host_a, host_b)
    np.testing.assert_array_equal(device_a, device_b)


def test_different_seeds_give_different_draws(backend_name):
    host_a, device_a = _draws(backends.use(backend_name, "fp32", seed=1))
    host_b, device_b = _draws(backends.use(backend_name, "fp32", seed=2))
    assert not np.array_equal(host_a, host_b)
    assert not np.array_equal(device_a, device_b)


def test_reseeding_a_backend_restarts_its_generators(fp32):
    fp32.seed(7)
    first = _draws(fp32)
    fp32.seed(7)
    second = _draws(fp32)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


# -- matrix product ----------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "fp64"])
def test_matmul_is_the_plain_product(backend_name, precision):
    B = backends.use(backend_name, precision)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(7, 3))
    c = B.matmul(B.asarray(a), B.asarray(b))
    assert c.dtype == B.dtype
    expected = a.astype(B.dtype) @ b.astype(B.dtype)
    np.testing.assert_allclose(B.to_host(c), expected, rtol=1e-6 if precision == "fp32" else 1e-14)


def test_mixed_matmul_returns_float16(mixed):
    c = mixed.matmul(mixed.asarray(np.ones((2, 3))), mixed.asarray(np.ones((3, 4))))
    assert c.dtype == np.float16
    np.testing.assert_array_equal(mixed.to_host(c), np.full((2, 4), 3.0))


def test_mixed_matmul_rounds_the_operands_to_float16(mixed):
    # 1 + 2**-12 is not a float16 (the spacing at 1 is 2**-10): it is stored as 1, so
    # (1 + 2**-12) - 1 gives 0, although the difference 2**-12 itself is a float16
    xp = mixed.xp
    a = xp.asarray(np.array([[1 + 2.0**-12, 1.0]]))  # float64 operands, as a caller might pass
    b = xp.asarray(np.array([[1.0], [-1.0]]))
    assert float(mixed.matmul(a, b)[0, 0]) == 0.0
    with backends.using(mixed.name, "fp32") as fp32:
        assert float(fp32.matmul(a.astype(xp.float32), b.astype(xp.float32))[0, 0]) == 2.0**-12


def test_mixed_matmul_accumulates_in_float32(mixed):
    # a float16 running sum of ones stalls at 2048 (2048 + 1 rounds back to 2048)
    ones_row = mixed.asarray(np.ones((1, 4096)))
    ones_col = mixed.asarray(np.ones((4096, 1)))
    assert float(mixed.matmul(ones_row, ones_col)[0, 0]) == 4096.0


def _float16_accumulation(a16, b16):
    """The product summed term by term in float16: the reference a mixed matmul must beat."""
    acc = np.zeros((a16.shape[0], b16.shape[1]), dtype=np.float16)
    for k in range(a16.shape[1]):
        acc = (acc + a16[:, k, None] * b16[None, k, :]).astype(np.float16)
    return acc


def test_mixed_matmul_matches_the_exact_product_of_the_rounded_operands(mixed):
    rng = np.random.default_rng(0)
    a = rng.random((64, 1024))  # positive entries: no cancellation, relative errors are meaningful
    b = rng.random((1024, 32))
    a16, b16 = a.astype(np.float16), b.astype(np.float16)
    exact = a16.astype(np.float64) @ b16.astype(np.float64)
    c = mixed.to_host(mixed.matmul(mixed.asarray(a), mixed.asarray(b)))
    assert c.dtype == np.float16
    # only the final rounding to float16 (relative 2**-11) separates c from the exact product
    np.testing.assert_allclose(c.astype(np.float64), exact, rtol=1e-3)
    error = np.max(np.abs(c - exact) / exact)
    error_fp16_sum = np.max(np.abs(_float16_accumulation(a16, b16) - exact) / exact)
    assert error < error_fp16_sum / 10


def test_mixed_matmul_overflows_to_inf_without_a_warning(mixed):
    a = mixed.asarray(np.full((1, 4), 200.0))
    b = mixed.asarray(np.full((4, 1), 200.0))  # 4 * 200 * 200 = 160000 > 65504
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = mixed.matmul(a, b)
    assert np.isposinf(float(c[0, 0]))


# -- finiteness --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, expected", [
    (None, True),
    (np.inf, False),
    (-np.inf, False),
    (np.nan, False),
])
def test_all_finite(backend_name, bad, expected):
    B = backends.use(backend_name, "fp32")
    arrays = [B.asarray(np.ones((2, 3))), B.asarray(np.arange(4.0))]
    if bad is not None:
        arrays[1][2] = bad
    flag = B.all_finite(arrays)
    assert not isinstance(flag, (bool, float, int))   # a device flag, not a host value
    assert flag.shape == () and flag.dtype == bool
    assert bool(flag) is expected


def test_all_finite_of_float16_and_empty_list(mixed):
    assert bool(mixed.all_finite([])) is True
    big = mixed.asarray(np.array([65504.0]))  # the largest float16
    assert bool(mixed.all_finite([big])) is True
    assert bool(mixed.all_finite([big, mixed.asarray(np.array([-np.inf]))])) is False


# -- the rectifiers' numba kernels --------------------------------------------------------------
def inputs_with_specials(shape, view, dtype, seed):
    """``(x, dy)``: normal values, with signed zeros, infinities and NaN at the start of ``x``
    and the end of ``dy``; transposed views when ``view``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, -3.0], dtype=dtype)
    x.flat[:min(x.size, 6)] = specials[:x.size]
    dy.flat[-min(dy.size, 6):] = specials[:dy.size]
    return (x.T, dy.T) if view else (x, dy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, view", [((5, 3, 7, 9), False), ((13, 11), True), ((1,), False)],
                         ids=["4d", "transposed-view", "one-value"])
def test_relu_kernels_give_numpys_bits(dtype, shape, view):
    """The one-pass numba rectifier and mask product against NumPy's formulas, bit for bit,
    signed zeros, infinities and NaN included."""
    x, dy = inputs_with_specials(shape, view, dtype, seed=0)
    with backends.using("numpy", "fp32", numba=False) as plain, np.errstate(invalid="ignore"):
        y0, mask0 = plain.relu(x)                      # -inf * 0 is NaN, in both
        dx0 = plain.times_mask(dy, mask0)
    with backends.using("numpy", "fp32") as B:
        if B.numba_kernels() is None:
            pytest.skip("numba is not installed")
        y, mask = B.relu(x)
        dx = B.times_mask(dy, mask)
    np.testing.assert_array_equal(mask, mask0)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
    bits = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(np.ascontiguousarray(y).view(bits), np.ascontiguousarray(y0).view(bits))
    np.testing.assert_array_equal(np.ascontiguousarray(dx).view(bits), np.ascontiguousarray(dx0).view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("shape, view", [((5, 3, 7, 9), False), ((13, 11), True), ((1,), False)],
                         ids=["4d", "transposed-view", "one-value"])
def test_leaky_relu_kernels_give_numpys_bits(dtype, alpha, shape, view):
    """LeakyReLU's one-pass numba forward and backward against its NumPy formulas, bit for
    bit, signed zeros, infinities and NaN included."""
    from nn.layers import LeakyReLU
    x, dy = inputs_with_specials(shape, view, dtype, seed=1)
    results = []
    for numba in (False, True):
        with backends.using("numpy", "fp32", numba=numba) as B, np.errstate(invalid="ignore"):
            if numba and B.numba_kernels() is None:
                pytest.skip("numba is not installed")
            layer = LeakyReLU(alpha)
            results.append((layer.forward(x), layer.backward(dy)))
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for plain, kernel in zip(*results):
        assert kernel.dtype == dtype and kernel.shape == x.shape
        np.testing.assert_array_equal(np.ascontiguousarray(kernel).view(bits),
                                      np.ascontiguousarray(plain).view(bits))


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("M, K, N", [(7, 9001, 5), (3, 8192, 3), (16, 10240, 32), (25, 12544, 6)])
def test_long_thin_products_are_summed_in_chunks(dtype, rtol, M, K, N):
    """The chunked product (a remainder of K or none, the largest output it takes) against
    a float64 product, and the backend's matmul takes it for such shapes."""
    from nn.backends.numpy_backend import is_long_and_thin, long_thin_matmul
    rng = np.random.default_rng(2)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((N, K)).astype(dtype).T          # a transposed view, as in dW
    assert is_long_and_thin(a, b)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    for got in (long_thin_matmul(a, b), long_thin_matmul(a, b, chunk=1000),
                backends.use("numpy", "fp32").matmul(a, b)):
        assert got.dtype == dtype and got.shape == (M, N)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.sqrt(K))


@pytest.mark.parametrize("a_shape, b_shape, dtype", [
    ((5, 8191), (8191, 5), np.float32),       # K too short
    ((2, 10000), (10000, 9), np.float32),     # two rows
    ((9, 10000), (10000, 1), np.float32),     # a matrix-vector product
    ((17, 10000), (10000, 31), np.float32),   # 527 outputs
    ((5, 10000), (10000, 5), np.int64),       # not a BLAS type
    ((5, 10000), (10000, 5), np.float16),
    ((2, 5, 10000), (10000, 5), np.float32),  # a stack of matrices
])
def test_other_products_are_one_call(a_shape, b_shape, dtype):
    from nn.backends.numpy_backend import is_long_and_thin
    assert not is_long_and_thin(np.ones(a_shape, dtype), np.ones(b_shape, dtype))


@pytest.mark.parametrize("numba", [True, False], ids=["blocks-per-example", "one-matrix"])
def test_weight_gradient_in_chunks_of_positions_matches_the_definition(numba):
    """A 2 -> 6 channel 5x5 convolution on 2 images of 97 x 97 (9409 positions per example,
    more than one product per example takes): each example's weight gradient runs in chunks
    of positions plus a remainder, with the columns in blocks per example (numba) or one
    matrix; against ``dW[o, i, j] = sum dy[n, o, h, w] x[n, h+i, w+j]``."""
    from numpy.lib.stride_tricks import sliding_window_view
    from nn.layers import Conv2D
    from nn.layers import conv as conv_module
    backends.use("numpy", "fp64", seed=0, numba=numba)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 97, 97))
    layer = Conv2D(2, 6, 5, padding=2)
    dy = rng.standard_normal(layer.forward(x, train=True).shape)
    assert layer.layout == ("per_example" if numba else "rows")
    assert 97 * 97 > conv_module.PER_EXAMPLE_MAX_POSITIONS and 97 * 97 % 1024
    layer.backward(dy, input_grad=False)
    windows = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), (5, 5), axis=(2, 3))
    expected = np.einsum("nohw,nchwij->ocij", dy, windows)
    np.testing.assert_allclose(layer.grads["W"], expected, rtol=1e-10, atol=1e-10)


# -- CuPy missing ------------------------------------------------------------------------------
def test_missing_cupy_raises_with_install_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    before = backends.current()
    with pytest.raises(BackendUnavailableError) as info:
        backends.use("cupy")
    assert isinstance(info.value, RuntimeError)
    assert 'pip install -e ".[gpu]"' in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert backends.current() is before


def test_missing_cupy_is_reported_as_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert backends.available("cupy") is False
    assert backends.available("numpy") is True


def test_importing_nn_loads_no_optional_dependency():
    code = ("import nn, sys; "
            "loaded = [m for m in ('cupy', 'matplotlib', 'albumentations') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- dynamic loss scaling ----------------------------------------------------------------------
def test_loss_scaler_starts_at_2_to_the_15():
    scaler = LossScaler()
    assert scaler.scale == 2.0**15
    assert scaler.skipped == 0


def test_overflow_halves_the_scale_and_skips_the_step():
    scaler = LossScaler()
    assert bool(scaler.update(False)) is False
    assert scaler.scale == 2.0**14
    assert scaler.skipped == 1
    assert bool(scaler.update(False)) is False
    assert scaler.scale == 2.0**13
    assert scaler.skipped == 2


def test_2000_clean_steps_double_the_scale():
    scaler = LossScaler()
    for _ in range(1999):
        assert bool(scaler.update(True)) is True
    assert scaler.scale == 2.0**15
    assert scaler.clean_steps == 1999
    scaler.update(True)
    assert scaler.scale == 2.0**16
    assert scaler.clean_steps == 0
    assert scaler.skipped == 0


def test_an_overflow_restarts_the_count_of_clean_steps():
    scaler = LossScaler(growth_interval=3)
    scaler.update(True)
    scaler.update(True)
    scaler.update(False)  # 2**15 -> 2**14, and the two clean steps no longer count
    scaler.update(True)
    scaler.update(True)
    assert scaler.scale == 2.0**14
    scaler.update(True)
    assert scaler.scale == 2.0**15


def test_custom_growth_interval_and_factors():
    scaler = LossScaler(init_scale=8.0, growth_factor=4.0, backoff_factor=0.25, growth_interval=5)
    for _ in range(5):
        scaler.update(True)
    assert scaler.scale == 32.0
    scaler.update(False)
    assert scaler.scale == 8.0


def test_the_scale_never_falls_below_min_scale():
    scaler = LossScaler(init_scale=4.0, min_scale=1.0)
    for _ in range(5):
        assert bool(scaler.update(False)) is False
    assert scaler.scale == 1.0
    assert scaler.skipped == 5
    # 4 -> 2 -> 1: the overflows at scale 1 (the last three) are real overflows
    assert scaler.overflows_at_min_scale == 3


def _device_scalar(B, a) -> bool:
    """A 0-d array of backend B (NumPy's 0-d arithmetic gives NumPy scalars, also fine)."""
    kinds = (B.xp.ndarray, np.generic) if B.on_host else B.xp.ndarray
    return isinstance(a, kinds) and a.shape == ()


def test_loss_scaler_state_lives_on_the_device(backend_name):
    B = backends.use(backend_name, "mixed")
    scaler = LossScaler()
    S = scaler.scale_array()
    assert _device_scalar(B, S) and S.dtype == np.float32
    flag = scaler.update(B.all_finite([B.asarray(np.array([np.inf]))]))
    assert _device_scalar(B, flag) and flag.dtype == bool
    assert all(_device_scalar(B, c) for c in scaler.device_counters())
    # the array handed out before the update still holds the scale that step used
    assert float(S) == 2.0**15
    assert float(scaler.scale_array()) == 2.0**14


def test_loss_scaler_follows_a_change_of_backend():
    scaler = LossScaler(init_scale=64.0)
    with backends.using("numpy", "mixed"):
        scaler.update(False)
    with backends.using("numpy", "fp32"):
        scaler.update(True)
    assert scaler.scale == 32.0
    assert scaler.skipped == 1
    assert scaler.clean_steps == 1


@pytest.mark.parametrize("kwargs", [
    {"init_scale": 0.0},
    {"init_scale": -1.0},
    {"growth_factor": 1.0},
    {"backoff_factor": 0.0},
    {"backoff_factor": 1.0},
    {"growth_interval": 0},
    {"min_scale": 0.0},
])
def test_loss_scaler_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="LossScaler"):
        LossScaler(**kwargs)


# -- host memory: freed blocks kept for the next step (nn.backends.numpy_backend.keep_freed_memory)
FAULTS_OF_A_SECOND_ARRAY = """
import resource
import numpy as np
import nn
nn.use("numpy")
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):           # the first: the heap grows; the second: as a step after a step
    before = faults()
    arrays = [np.ones(2**24 // 8) for _ in range(8)]   # 8 arrays of 16 MiB, freed at once
    del arrays
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or
                    __import__("platform").libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.parametrize("keep", [True, False])
def test_the_numpy_backend_keeps_freed_memory_for_the_next_array(keep):
    """128 MiB of arrays made again after being freed: with the memory kept, their pages are
    still mapped (almost no page faults); with ``NN_KEEP_FREED_MEMORY=0``, glibc gives them
    back and every page (4 KiB, or 2 MiB where huge pages are used) faults again."""
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "NN_KEEP"))}
    if not keep:
        env["NN_KEEP_FREED_MEMORY"] = "0"
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_A_SECOND_ARRAY], env=env,
                         capture_output=True, text=True, check=True)
    faults = int(out.stdout.split()[-1])
    if keep:
        assert faults < 32
    else:
        assert faults >= 2**27 // 2**21          # at least one fault per 2 MiB
