"""GPU backend: CuPy arrays, float16 matrix products on tensor cores under ``"mixed"``.

CuPy is imported here only, when ``nn.backends.use("cupy")`` asks for it.
"""
from __future__ import annotations

import numpy as np

from .base import Backend, BackendUnavailableError

INSTALL_HINT = 'install it with  pip install -e ".[gpu]"  (CuPy for CUDA 12) on a machine with an NVIDIA GPU'


def import_cupy():
    """Import CuPy and check that it sees a CUDA device, or say why not and what to do."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        raise BackendUnavailableError(
            f"the 'cupy' backend needs CuPy, which could not be imported ({type(exc).__name__}: "
            f"{exc}); {INSTALL_HINT}, or use the 'numpy' backend") from exc
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        raise BackendUnavailableError(
            f"CuPy is installed but cannot reach a CUDA device ({type(exc).__name__}: {exc}); "
            "run on a machine with an NVIDIA GPU and driver, or use the 'numpy' backend") from exc
    if n_devices == 0:
        raise BackendUnavailableError(
            "CuPy is installed but sees no CUDA device; use the 'numpy' backend")
    return cupy


class CupyBackend(Backend):
    """CuPy on one CUDA device.

    Under ``"mixed"`` a matrix product is one cuBLAS GEMM on float16 operands with float32
    accumulation (``cublasGemmEx``, tensor-core path), which CuPy selects for 2-D float16
    operands in C or Fortran order; other layouts are made contiguous first.
    """

    name = "cupy"

    def __init__(self, precision="fp32", seed=None):
        self.xp = import_cupy()
        super().__init__(precision, seed)

    def _device_rng(self, seed):
        return self.xp.random.default_rng(seed)

    def asarray(self, a, dtype=None):
        if dtype is None:
            kind = np.dtype(a.dtype).kind if hasattr(a, "dtype") else np.asarray(a).dtype.kind
            if kind not in "fc":
                return self.xp.asarray(a)
            dtype = self.dtype
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a):
        return self.xp.asnumpy(a)

    def matmul(self, a, b):
        if self.precision != "mixed":
            return self.xp.matmul(a, b)
        a = self._gemm_operand(a)
        b = self._gemm_operand(b)
        return self.xp.matmul(a, b)

    def _gemm_operand(self, a):
        a = a.astype(self.xp.float16, copy=False)
        if a.ndim == 2 and not (a.flags.c_contiguous or a.flags.f_contiguous):
            a = self.xp.ascontiguousarray(a)
        return a
