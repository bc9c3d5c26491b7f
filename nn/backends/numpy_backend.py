"""CPU backend: NumPy arrays (numba kernels for the convolution hot loops)."""
from __future__ import annotations

import numpy as np

from .base import Backend


class NumpyBackend(Backend):
    """NumPy on the CPU; ``"mixed"`` is emulated bit for bit as a GPU would compute it.

    NumPy's own float16 matrix product is about 350 times slower than float32 (it has no
    float16 BLAS), so under ``"mixed"`` the operands are *stored* in float16 and *multiplied*
    as float32: exactly the arithmetic of a tensor-core GEMM with float32 accumulation.
    """

    name = "numpy"
    xp = np

    def _device_rng(self, seed):
        return np.random.default_rng(seed)

    def asarray(self, a, dtype=None):
        a = np.asarray(a)
        if dtype is None:
            if a.dtype.kind not in "fc":
                return a
            dtype = self.dtype
        return a.astype(dtype, copy=False)

    def to_host(self, a):
        return np.asarray(a)

    def matmul(self, a, b):
        if self.precision != "mixed":
            return np.matmul(a, b)
        # round the operands to float16 (what is stored), then multiply in float32
        a32 = a.astype(np.float16, copy=False).astype(np.float32)
        b32 = b.astype(np.float16, copy=False).astype(np.float32)
        with np.errstate(over="ignore"):
            return np.matmul(a32, b32).astype(np.float16)

    def all_finite(self, arrays):
        return all(np.isfinite(a).all() for a in arrays)

    def scalar(self, value):
        return float(value)

    def errstate(self, **kwargs):
        return np.errstate(**kwargs)
