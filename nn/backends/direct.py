"""Direct convolution of a single input channel: no im2col columns.

With one input channel (the first layer of a network on spectra, grey images or cubes),
im2col's columns ``(K, N*L)`` are ``K`` times the input and the product ``W (O, K) @ cols``
is thin: writing and reading the columns costs more than the multiplications. Written
directly, each output is a weighted sum of ``K`` input values at fixed distances::

    y[n, o, p] = b[o] + sum_k W[o, k] * xp[n, p + offset_k]

with ``xp`` the padded input read as one flat array per example, ``p`` an output position
counted in the padded input (row length ``Wp``, plane size ``Hp*Wp``), and ``offset_k =
kd*dd*Hp*Wp + kh*dh*Wp + kw*dw`` the distance of tap ``k``. Along one output row, and across
rows (stepping ``Wp``), the output positions are consecutive flat positions of ``xp``: each
tap reads one contiguous run, ``xp[n, base + offset_k : base + offset_k + nq]``. The last
``Wp - W_out`` positions of each row are not outputs (their window wraps onto the next row);
they are computed into scratch and dropped (``Wp - W_out`` is the kernel's span less one).

The weight gradient is the same sum the other way, over examples and positions::

    dW[o, k] = sum_{n, p} dy[n, o, p] * xp[n, p + offset_k]

with ``dy`` copied into a scratch row of the padded input's width, zero on the dropped
positions. The input gradient, needed only when the layer is not the first, is col2im's as
usual (:class:`nn.layers.conv.ConvND`).

Speed. Each kernel is one loop over ``q``, the flat positions, with the ``K`` taps written
out, ``w0 * v0[q] + w1 * v1[q] + ...`` (forward) or ``a0 += d * v0[q]; a1 += ...``
(weight gradient): numba vectorises that loop (16 float32 positions per instruction with
AVX-512), each tap is one load, and the ``K`` weights or sums stay in registers. Written
as a loop over the taps, the loop over ``q`` could not be vectorised, or each tap would
be one more pass over the scratch (measured and rejected: 12 to 24 % slower than im2col).
The loop's text depends on ``K``, so it is generated here, once for each number of taps,
as Python source (:func:`kernel_source`, printable) compiled by numba; the source is
written to a cache directory so that numba caches the machine code too.

Measured on the 2-core VM, float32, against im2col (one block of columns per example and
one product each, :func:`~nn.backends.numpy_backend.columns_per_example`):

- 3D 1 -> 8, k3 p1, 8 cubes of 32^3: forward 4.4 -> 2.5 ms (bound by writing ``y``), forward
  + weight gradient 7.6 -> 5.4 ms; the 3D step of ``benchmarks/conv.py`` 24.5-26.3 ->
  22.0-24.1 ms (in the same process, taking turns);
- LeNet-like 1 -> 6, k5 p2, ``predict``'s 256 images of 28^2: 2.0 -> 1.5 ms; the whole
  ``predict`` 10.6 -> 9.4-9.6 ms;
- the LeNet-like training step (64 images) 7.2-7.7 -> 6.9 ms, although the layer alone is
  level (forward + weight gradient 0.75 against 0.79 ms): the columns no longer push the
  next layers' data out of the cache; the spectra's step (1 -> 16, k7) 14.1-14.5 -> 14.1.

Measured and rejected: two or four output channels per pass, sharing the taps' loads
(slower); the taps summed as a balanced tree, or in three interleaved sums (no change); the
last kernel axis first copied into shifted rows so that every load is aligned (no change:
the loads are not the bound); three input channels (VGG-ish 3 -> 32, with a loop over the
channels): 4.7 against im2col's 3.8 ms.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .im2col import as_3d, output_shape

#: the direct kernels are generated for up to this many taps (the weight gradient keeps one
#: sum per tap in a register: AVX-512 has 32)
MAX_TAPS = 27
#: the scratch holds this many values: the output rows of one block (L1-sized)
SCRATCH_VALUES = 4096


def applies(kernels, x, layer) -> bool:
    """Whether ``layer`` (a :class:`~nn.layers.conv.ConvND`) convolves ``x`` directly:
    numba, float32 or float64, one input channel, stride 1, at most :data:`MAX_TAPS` taps."""
    return (kernels is not None and x.dtype in kernels.DTYPES and layer.in_channels == 1
            and all(s == 1 for s in layer.stride) and math.prod(layer.kernel_size) <= MAX_TAPS)


def forward(x, W, b, padding, dilation):
    """``y (N, O, *S_out)``: the convolution of ``x (N, 1, *S)`` by ``W (O, 1, *k)`` plus ``b``
    (``(O,)`` or None), stride 1."""
    kernel = W.shape[2:]
    out = output_shape(x.shape[2:], kernel, (1,) * len(kernel), padding, dilation)
    N, O = x.shape[0], W.shape[0]
    xp, offsets, plane, row = _padded(x, kernel, padding, dilation)
    y = np.empty((N, O, *out), dtype=x.dtype)
    bias = np.zeros(O, dtype=x.dtype) if b is None else b.astype(x.dtype, copy=False)
    scratch = np.empty(_scratch_size(row, out), dtype=x.dtype)
    _compiled(len(offsets))[0](xp, offsets, W.reshape(O, -1).astype(x.dtype, copy=False), bias,
                              y.reshape((N, O) + as_3d(out)), plane, row, scratch)
    return y


def weight_grad(x, dy, kernel, padding, dilation):
    """``dW (O, 1, *k)`` of :func:`forward` from ``x (N, 1, *S)`` and ``dy (N, O, *S_out)``."""
    N, O = dy.shape[:2]
    xp, offsets, plane, row = _padded(x, kernel, padding, dilation)
    dW = np.zeros((O, len(offsets)), dtype=x.dtype)
    scratch = np.zeros(_scratch_size(row, dy.shape[2:]), dtype=x.dtype)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    _compiled(len(offsets))[1](xp, offsets, dy.reshape((N, O) + as_3d(dy.shape[2:])), dW,
                              plane, row, scratch)
    return dW.reshape(O, 1, *kernel)


def _padded(x, kernel, padding, dilation):
    """``(xp (N, P), offsets (K,), plane, row)``: the padded input, flat per example; the
    taps' distances in it; the size of its planes and rows."""
    pads = ((0, 0),) + tuple((p, p) for p in padding)
    xp = np.pad(x[:, 0], pads) if any(padding) else np.ascontiguousarray(x[:, 0])
    Dp, Hp, Wp = as_3d(xp.shape[1:])
    kd, kh, kw = as_3d(kernel)
    dd, dh, dw = as_3d(dilation)
    offsets = np.array([i * dd * Hp * Wp + j * dh * Wp + k * dw
                        for i in range(kd) for j in range(kh) for k in range(kw)], dtype=np.int64)
    return xp.reshape(x.shape[0], -1), offsets, Hp * Wp, Wp


def _scratch_size(row: int, out) -> int:
    """Scratch for the output rows of one block: as many whole rows as fit
    :data:`SCRATCH_VALUES` (at least one)."""
    return max(1, SCRATCH_VALUES // row) * row


# -- the generated kernels ---------------------------------------------------------------------
def kernel_source(K: int) -> str:
    """The Python source of the two kernels for ``K`` taps, ``forward`` and ``weight_grad``.

    Both walk the output one block of rows at a time (``rows`` rows of ``row`` values in the
    scratch): ``base`` is the block's first position in the padded input, ``nq`` the number
    of flat positions it spans, and ``v{k}`` the run tap ``k`` reads.
    """
    taps = range(K)
    views = "\n".join(f"                v{k} = x[base + offsets[{k}]:base + offsets[{k}] + nq]"
                      for k in taps)
    weights = "\n".join(f"                    w{k} = W[o, {k}]" for k in taps)
    weighted_sum = " + ".join(f"w{k} * v{k}[q]" for k in taps)
    zeros = "\n".join(f"                    a{k} = zero" for k in taps)
    sums = "\n".join(f"                        a{k} += d * v{k}[q]" for k in taps)
    stores = "\n".join(f"                    dW[o, {k}] += a{k}" for k in taps)
    walk = f"""    rows = scratch.size // row
    for n in range(N):
        x = xp[n]
        for z in range(D):
            for r0 in range(0, H, rows):
                block = min(rows, H - r0)
                base = z * plane + r0 * row
                nq = (block - 1) * row + Wd
{views}
                s = scratch[:nq]
                for o in range(O):"""
    return f'''"""Direct convolution kernels for {K} taps, generated by nn.backends.direct."""
import numba


@numba.njit(cache=True, fastmath={{"contract"}})
def forward(xp, offsets, W, b, y, plane, row, scratch):  # pragma: no cover (compiled)
    """y[n, o] = b[o] + sum_k W[o, k] * xp[n, p + offsets[k]] (see nn.backends.direct)."""
    N, O, D, H, Wd = y.shape
{walk}
{weights}
                    for q in range(nq):
                        s[q] = {weighted_sum}
                    bias = b[o]
                    for r in range(block):        # drop the positions past each row
                        target, source = y[n, o, z, r0 + r], scratch[r * row:r * row + Wd]
                        for i in range(Wd):
                            target[i] = source[i] + bias


@numba.njit(cache=True, fastmath={{"contract", "reassoc", "nsz"}})
def weight_grad(xp, offsets, dy, dW, plane, row, scratch):  # pragma: no cover (compiled)
    """dW[o, k] += sum_(n, p) dy[n, o, p] * xp[n, p + offsets[k]]; scratch: zeros."""
    N, O, D, H, Wd = dy.shape
    zero = scratch.dtype.type(0)
{walk}
                    for r in range(block):        # dy's rows at the padded input's width
                        target, source = scratch[r * row:r * row + Wd], dy[n, o, z, r0 + r]
                        for i in range(Wd):
                            target[i] = source[i]
{zeros}
                    for q in range(nq):
                        d = s[q]
{sums}
{stores}
'''


@functools.lru_cache(maxsize=None)
def _compiled(K: int):
    """``(forward, weight_grad)`` for ``K`` taps: :func:`kernel_source` written to the cache
    directory (:func:`_source_directory`) and imported from there, so that numba caches
    them; or compiled in memory where no directory is writable."""
    source = kernel_source(K)
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    directory = _source_directory()
    if directory is not None:
        path = directory / f"direct_{K}_{digest}.py"
        try:
            if not path.exists():
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(source)
                os.replace(temporary, path)                 # atomic: never a partial file
            name = f"nn_direct_kernels_{K}_{digest}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module          # numba's cache finds the module by name
            spec.loader.exec_module(module)
            return module.forward, module.weight_grad
        except OSError:
            pass
    namespace = {}
    exec(compile(source.replace("cache=True", "cache=False"), f"<direct kernels, {K} taps>",
                 "exec"), namespace)
    return namespace["forward"], namespace["weight_grad"]


def _source_directory() -> Path | None:
    """Where the generated sources live: ``$NN_CACHE_DIR``, else ``$XDG_CACHE_HOME/nn`` or
    ``~/.cache/nn``, else the temporary directory; None if none can be made."""
    candidates = []
    if os.environ.get("NN_CACHE_DIR"):
        candidates.append(Path(os.environ["NN_CACHE_DIR"]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates += [Path(base) / "nn", Path(tempfile.gettempdir()) / f"nn-{getattr(os, 'getuid', lambda: 'user')()}"]
    for directory in candidates:
        try:
            directory = directory / "kernels"
            directory.mkdir(parents=True, exist_ok=True)
            if os.access(directory, os.W_OK):
                return directory
        except OSError:
            continue
    return None
