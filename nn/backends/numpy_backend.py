"""CPU backend: NumPy arrays (numba kernels for the convolution hot loops)."""
from __future__ import annotations

import math

import numpy as np

from . import cpu_kernels
from .base import Backend
from .im2col import as_3d, output_shape, shape_3d, unpad


class NumpyBackend(Backend):
    """NumPy on the CPU; ``"mixed"`` is emulated bit for bit as a GPU would compute it.

    NumPy's own float16 matrix product is about 350 times slower than float32 (it has no
    float16 BLAS), so under ``"mixed"`` the operands are *stored* in float16 and *multiplied*
    as float32: exactly the arithmetic of a tensor-core GEMM with float32 accumulation.
    """

    name = "numpy"
    xp = np
    on_host = True
    #: run col2im and max-pooling as numba kernels (float32/float64); False: the strided-slice
    #: NumPy versions of the base class (what float16 always uses)
    use_numba = True

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

    def scalar(self, value):
        return float(value)

    def channel_sums(self, a):
        # a matrix-vector product with ones: one BLAS call, several times faster than NumPy's
        # axis sum; float16 rows are widened to float32 first (the emulated accumulation)
        N, C = a.shape[:2]
        rows = a.reshape(N * C, -1).astype(self.acc_dtype, copy=False)
        return np.matmul(rows, np.ones(rows.shape[1], dtype=self.acc_dtype)).reshape(N, C).sum(axis=0)

    def errstate(self, **kwargs):
        return np.errstate(**kwargs)

    # -- numba kernels (see cpu_kernels.py); the base class has the NumPy versions -----------
    def _numba(self, *arrays) -> bool:
        return self.use_numba and all(a.dtype in cpu_kernels.DTYPES for a in arrays)

    def col2im(self, cols, x_shape, kernel, stride, padding, dilation):
        if not self._numba(cols):
            return super().col2im(cols, x_shape, kernel, stride, padding, dilation)
        N, C = x_shape[:2]
        out = output_shape(x_shape[2:], kernel, stride, padding, dilation)
        padded = tuple(n + 2 * p for n, p in zip(x_shape[2:], padding))
        xt = np.zeros((C, N, *as_3d(padded)), dtype=cols.dtype)
        cpu_kernels.col2im(np.ascontiguousarray(cols).reshape(C, *as_3d(kernel), N, *as_3d(out)),
                           as_3d(stride), as_3d(dilation), xt)
        return unpad(np, xt.reshape(C, N, *padded), padding)

    def maxpool(self, x, kernel, stride):
        if not self._numba(x):
            return super().maxpool(x, kernel, stride)
        nd = len(kernel)
        out = output_shape(x.shape[2:], kernel, stride, (0,) * nd, (1,) * nd, owner="max-pool")
        y = np.empty(x.shape[:2] + out, dtype=x.dtype)
        argmax = np.empty(y.shape, dtype=np.uint8 if math.prod(kernel) < 256 else np.int32)
        planes = shape_3d(x.shape)[2:]
        cpu_kernels.maxpool(np.ascontiguousarray(x).reshape(-1, *planes),
                            cpu_kernels.window_offsets(as_3d(kernel), planes), as_3d(stride),
                            y.reshape(-1, *as_3d(out)), argmax.reshape(-1, *as_3d(out)))
        return y, argmax

    def maxpool_backward(self, dy, argmax, x_shape, kernel, stride):
        if not self._numba(dy):
            return super().maxpool_backward(dy, argmax, x_shape, kernel, stride)
        planes = shape_3d(x_shape)[2:]
        out = as_3d(dy.shape[2:])
        dx = np.empty(x_shape, dtype=dy.dtype)
        cpu_kernels.maxpool_backward(np.ascontiguousarray(dy).reshape(-1, *out),
                                     np.ascontiguousarray(argmax).reshape(-1, *out),
                                     cpu_kernels.window_offsets(as_3d(kernel), planes),
                                     as_3d(stride), dx.reshape(-1, *planes))
        return dx
