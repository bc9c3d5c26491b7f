"""The float16 conversions of the CPU backend's "mixed" policy: numba kernels that must round
exactly as NumPy (IEEE round to nearest, ties to even, overflow to inf), bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from nn import backends


@pytest.fixture
def mixed_numpy():
    with backends.using("numpy", "mixed", seed=0) as B:
        yield B


def hard_cases():
    """Every float16 value, the midpoints between neighbours (the ties) and the floats just
    off them, subnormals, the overflow boundary, zeros, infinities and NaN."""
    rng = np.random.default_rng(0)
    every = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    finite = np.sort(every[np.isfinite(every) & (every >= 0)])
    mid = ((finite[1:].astype(np.float64) + finite[:-1]) / 2).astype(np.float32)
    random = (rng.standard_normal(200_000) * 10.0 ** rng.integers(-10, 6, 200_000)).astype(np.float32)
    edges = np.array([65504, 65519.996, 65520, 65536, 1e30, np.inf, -np.inf, np.nan, 0.0, -0.0,
                      2.0**-25, 2.0**-24, 3 * 2.0**-26, 1e-45, -2.0**-25, 6.1e-5], np.float32)
    return np.concatenate([every, mid, -mid, np.nextafter(mid, np.float32(np.inf)),
                           np.nextafter(mid, np.float32(0)), random, edges])


def same_bits(a, b):
    a16, b16 = a.astype(np.float16), b.astype(np.float16)
    equal = a16.view(np.uint16) == b16.view(np.uint16)
    return bool(np.all(equal | (np.isnan(a16) & np.isnan(b16))))


def test_to_half_rounds_exactly_as_numpy(mixed_numpy):
    x = hard_cases()
    with np.errstate(over="ignore", invalid="ignore"):
        reference = x.astype(np.float16)
    got = mixed_numpy.to_half(x)
    assert got.dtype == np.float16
    assert same_bits(got, reference)


def test_half_as_float32_is_the_float16_value_in_float32(mixed_numpy):
    x = hard_cases()
    with np.errstate(over="ignore", invalid="ignore"):
        reference = x.astype(np.float16).astype(np.float32)
    got = mixed_numpy.half_as_float32(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.array_equal(got, reference, equal_nan=True)
    halves = reference.astype(np.float16)       # float16 input: a table lookup
    assert np.array_equal(mixed_numpy.half_as_float32(halves), reference, equal_nan=True)


@pytest.mark.parametrize("shape, transpose", [((7, 5), False), ((6, 4), True), ((2, 3, 4), False)])
def test_conversions_keep_shapes_and_follow_strides(mixed_numpy, shape, transpose):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    if transpose:
        x = x.T                                    # not C-contiguous
    np.testing.assert_array_equal(mixed_numpy.to_half(x), x.astype(np.float16))
    np.testing.assert_array_equal(mixed_numpy.half_as_float32(x),
                                  x.astype(np.float16).astype(np.float32))


def test_the_numpy_path_gives_the_same_products(mixed_numpy):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((9, 13)).astype(np.float32), rng.standard_normal((13, 5)).astype(np.float16)
    fast = mixed_numpy.matmul(a, b)
    with backends.using("numpy", "mixed", numba=False) as plain:
        slow = plain.matmul(a, b)
    assert fast.dtype == slow.dtype == np.float16
    np.testing.assert_array_equal(fast, slow)
