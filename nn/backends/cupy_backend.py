"""GPU backend: CuPy arrays, float16 matrix products on tensor cores under ``"mixed"``.

CuPy is imported here only, when ``nn.backends.use("cupy")`` asks for it.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .base import Backend, BackendUnavailableError
from .im2col import as_3d, check_columns_buffer, output_shape, shape_3d

INSTALL_HINT = ('install it on a machine with an NVIDIA GPU with  pip install -e ".[gpu]"  (CUDA 12) '
                'or  pip install -e ".[gpu-cuda13]"  (CUDA 13): the "CUDA Version" that '
                'nvidia-smi prints says which')


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

    Matrix products, as CuPy 13/14 issue them (``cupy/_core/_routines_linalg.pyx``):

    * ``"mixed"``: a 2-D product of float16 arrays is one ``cublasGemmEx`` with float16
      A, B and C, ``computeType = CUBLAS_COMPUTE_32F`` (float32 accumulation) and
      ``CUBLAS_GEMM_DEFAULT_TENSOR_OP`` (tensor cores from compute capability 7.0). CuPy
      picks float32 accumulation for float16 outputs whatever ``cupy._core.set_compute_type``
      says, except ``COMPUTE_TYPE_PEDANTIC`` (``CUBLAS_COMPUTE_32F_PEDANTIC``, no tensor
      cores). Operands in neither C nor Fortran order are made contiguous first. A product
      of 3-D or larger float16 arrays would be upcast to float32 by CuPy (a batched SGEMM, no
      tensor cores), so the layers use 2-D products only.
    * ``"fp32"``: ``CUBLAS_COMPUTE_32F`` without TF32 (unless the environment sets
      ``CUPY_TF32=1``), so results match NumPy's up to float32 rounding.

    Nothing here reads a value back to the host: the training step runs without a device
    synchronisation (see ``Network.fit``).
    """

    name = "cupy"

    def __init__(self, precision="fp32", seed=None, *, workspace_bytes=None):
        self.xp = import_cupy()
        super().__init__(precision, seed, workspace_bytes=workspace_bytes)

    def _device_rng(self, seed):
        return self.xp.random.default_rng(seed)

    def asarray(self, a, dtype=None):
        if dtype is None:
            kind = np.dtype(a.dtype).kind if hasattr(a, "dtype") else np.asarray(a).dtype.kind
            if kind not in "fc":
                return self.xp.asarray(a)
            dtype = self.dtype
        # copied as it is, then cast on the GPU: NumPy's float32 -> float16 conversion runs
        # at about 0.1 GB/s, slower than the copy (a 32x3x128x128 batch: 14 ms on the host)
        return self.xp.asarray(a).astype(dtype, copy=False)

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

    def elementwise(self, in_params, out_params, body, name):
        return _elementwise(in_params, out_params, body, name)

    def channel_sums(self, a):
        # two reductions along contiguous axes (positions, then the batch): CuPy's one
        # reduction over the axes (0, 2) strides through memory and ran 3-5x slower (H200)
        N, C = a.shape[:2]
        return a.reshape(N, C, -1).sum(axis=2, dtype=self.acc_dtype).sum(axis=0)

    def all_finite(self, arrays):
        # one reduction kernel per array (isfinite and "all" fused) instead of two, then
        # one over the per-array flags
        if not arrays:
            return self.xp.asarray(True)
        return self.xp.stack([_all_finite()(a) for a in arrays]).all()

    # -- GPU kernels: one thread per output element, no atomics, no host round-trip -----------
    def im2col(self, x, kernel, stride, padding, dilation, out=None):
        xp = self.xp
        N, C = x.shape[:2]
        size = output_shape(x.shape[2:], kernel, stride, padding, dilation)
        k, s, p, d, o = geometry_3d(kernel, stride, padding, dilation, size)
        shape = (C * math.prod(k), N * math.prod(o))
        if out is not None:
            check_columns_buffer(out, shape, x.dtype)
        cols = xp.empty(shape, dtype=x.dtype) if out is None else out
        _kernel("im2col", x.dtype, x, cols)(xp.ascontiguousarray(x), N, C, *shape_3d(x.shape)[2:],
                                   *k, *o, *s, *p, *d, cols)
        return cols

    def col2im(self, cols, x_shape, kernel, stride, padding, dilation):
        xp = self.xp
        N, C = x_shape[:2]
        out = output_shape(x_shape[2:], kernel, stride, padding, dilation)
        k, s, p, d, o = geometry_3d(kernel, stride, padding, dilation, out)
        x = xp.empty(x_shape, dtype=cols.dtype)
        _kernel("col2im", cols.dtype, x, cols)(xp.ascontiguousarray(cols), N, C, *shape_3d(x_shape)[2:],
                                      *k, *o, *s, *p, *d, x)
        return x

    def maxpool(self, x, kernel, stride):
        xp = self.xp
        nd = len(kernel)
        out = output_shape(x.shape[2:], kernel, stride, (0,) * nd, (1,) * nd, owner="max-pool")
        N, C = x.shape[:2]
        y = xp.empty((N, C, *out), dtype=x.dtype)
        argmax = xp.empty(y.shape, dtype=xp.int32)
        _kernel("maxpool", x.dtype, x, y)(xp.ascontiguousarray(x), N, C, *shape_3d(x.shape)[2:],
                                    *as_3d(kernel), *as_3d(out), *as_3d(stride), y, argmax)
        return y, argmax

    def maxpool_backward(self, dy, argmax, x_shape, kernel, stride):
        xp = self.xp
        N, C = x_shape[:2]
        dx = xp.empty(x_shape, dtype=dy.dtype)
        _kernel("maxpool_backward", dy.dtype, dx, dy)(
            xp.ascontiguousarray(dy), argmax, N, C, *shape_3d(x_shape)[2:], *as_3d(kernel),
            *as_3d(dy.shape[2:]), *as_3d(stride), dx)
        return dx


def geometry_3d(kernel, stride, padding, dilation, out):
    """The convolution geometry on three spatial axes (a missing axis: size 1, no padding)."""
    return (as_3d(kernel), as_3d(stride), as_3d(padding, fill=0), as_3d(dilation), as_3d(out))


# Every kernel sees the arrays as (N, C, D, H, W) (1D and 2D have singleton leading axes) and
# the geometry as three values per axis. Sums run in float (double for float64 arrays).
_SHAPE = ("int64 N, int64 C, int64 D, int64 H, int64 W, int64 KD, int64 KH, int64 KW, "
          "int64 OD, int64 OH, int64 OW")
_CONV = _SHAPE + (", int64 sd, int64 sh, int64 sw, int64 pd, int64 ph, int64 pw, "
                  "int64 dd, int64 dh, int64 dw")
_POOL = _SHAPE + ", int64 sd, int64 sh, int64 sw"

_SOURCES = {
    # i indexes cols (C, KD, KH, KW, N, OD, OH, OW); each thread copies one input value (or 0)
    "im2col": ("raw T x, " + _CONV, "T col", """
        long long t = i;
        const long long ow = t % OW; t /= OW;  const long long oh = t % OH; t /= OH;
        const long long od = t % OD; t /= OD;  const long long n = t % N;   t /= N;
        const long long kw = t % KW; t /= KW;  const long long kh = t % KH; t /= KH;
        const long long kd = t % KD;           const long long c = t / KD;
        const long long z = od * sd - pd + kd * dd, v = oh * sh - ph + kh * dh,
                        u = ow * sw - pw + kw * dw;
        col = (0 <= z && z < D && 0 <= v && v < H && 0 <= u && u < W)
              ? x[(((n * C + c) * D + z) * H + v) * W + u] : (T)0.0f;
    """),
    # i indexes x (N, C, D, H, W); each thread gathers the columns entries copied from it
    "col2im": ("raw T cols, " + _CONV, "T x", """
        long long t = i;
        const long long u = t % W; t /= W;  const long long v = t % H; t /= H;
        const long long z = t % D; t /= D;  const long long c = t % C; const long long n = t / C;
        ACC sum = 0;
        for (long long kd = 0; kd < KD; ++kd) {
          const long long tz = z + pd - kd * dd;
          if (tz < 0 || tz % sd) continue;
          const long long od = tz / sd;  if (od >= OD) continue;
          for (long long kh = 0; kh < KH; ++kh) {
            const long long tv = v + ph - kh * dh;
            if (tv < 0 || tv % sh) continue;
            const long long oh = tv / sh;  if (oh >= OH) continue;
            for (long long kw = 0; kw < KW; ++kw) {
              const long long tu = u + pw - kw * dw;
              if (tu < 0 || tu % sw) continue;
              const long long ow = tu / sw;  if (ow >= OW) continue;
              const long long row = ((c * KD + kd) * KH + kh) * KW + kw;
              sum += (ACC)cols[((row * N + n) * OD + od) * OH * OW + oh * OW + ow];
            }
          }
        }
        x = (T)sum;
    """),
    # i indexes y (N, C, OD, OH, OW); the first maximum of the window wins
    "maxpool": ("raw T x, " + _POOL, "T y, int32 argmax", """
        long long t = i;
        const long long ow = t % OW; t /= OW;  const long long oh = t % OH; t /= OH;
        const long long od = t % OD; t /= OD;  const long long nc = t;
        const T* plane = &x[nc * D * H * W];
        T best = plane[((od * sd) * H + oh * sh) * W + ow * sw];
        int where = 0, k = 0;
        for (long long kd = 0; kd < KD; ++kd)
          for (long long kh = 0; kh < KH; ++kh)
            for (long long kw = 0; kw < KW; ++kw, ++k) {
              const T value = plane[((od * sd + kd) * H + oh * sh + kh) * W + ow * sw + kw];
              if (value > best) { best = value; where = k; }
            }
        y = best;
        argmax = where;
    """),
    # i indexes dx (N, C, D, H, W); each thread sums dy of the windows whose maximum it was
    "maxpool_backward": ("raw T dy, raw I argmax, " + _POOL, "T dx", """
        long long t = i;
        const long long u = t % W; t /= W;  const long long v = t % H; t /= H;
        const long long z = t % D; const long long nc = t / D;
        ACC sum = 0;
        for (long long kd = 0; kd < KD; ++kd) {
          const long long tz = z - kd;
          if (tz < 0 || tz % sd || tz / sd >= OD) continue;
          for (long long kh = 0; kh < KH; ++kh) {
            const long long tv = v - kh;
            if (tv < 0 || tv % sh || tv / sh >= OH) continue;
            for (long long kw = 0; kw < KW; ++kw) {
              const long long tu = u - kw;
              if (tu < 0 || tu % sw || tu / sw >= OW) continue;
              const long long o = ((nc * OD + tz / sd) * OH + tv / sh) * OW + tu / sw;
              if (argmax[o] == (kd * KH + kh) * KW + kw) sum += (ACC)dy[o];
            }
          }
        }
        dx = (T)sum;
    """),
}


@functools.lru_cache(maxsize=None)
def _compiled(name: str, acc: str, index: str):
    import cupy
    params, output, body = source(name, acc, index)
    return cupy.ElementwiseKernel(params, output, body, f"nn_{name}_{acc}_{index.replace(' ', '')}")


def source(name: str, acc: str = "double", index: str = "long long"):
    """``(params, output, body)`` of kernel ``name``: sums in ``acc``, indices in ``index``
    ("long long", or "int" with the geometry passed as int32)."""
    params, output, body = _SOURCES[name]
    if index == "int":
        params = params.replace("int64", "int32")
    return params, output, body.replace("ACC", acc).replace("long long", index)


@functools.lru_cache(maxsize=None)
def _elementwise(in_params, out_params, body, name):
    import cupy
    return cupy.ElementwiseKernel(in_params, out_params, body, name)


@functools.lru_cache(maxsize=None)
def _all_finite():
    """``isfinite(a).all()`` as one reduction kernel: a 0-d bool array."""
    import cupy
    return cupy.ReductionKernel("T x", "bool y", "isfinite((double)x)", "a && b", "y = a", "true",
                                "nn_all_finite")


def _kernel(name: str, dtype, *arrays):
    """The compiled kernel ``name``, summing in double for float64 arrays, else in float.

    Its index arithmetic (a division and a remainder per axis, per element) runs in 32-bit
    ints when every flat index of ``arrays`` fits: a GPU divides 64-bit integers in software,
    tens of instructions each, and that made these kernels several times slower.
    """
    small = max(a.size for a in arrays) < 2**31
    return _compiled(name, "double" if dtype == np.float64 else "float",
                     "int" if small else "long long")
