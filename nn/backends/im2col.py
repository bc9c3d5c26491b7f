"""N-dimensional im2col and col2im, and the output-size arithmetic of every sliding window.

A convolution slides a kernel of ``K = k1 x k2 x ...`` taps over the input. im2col copies,
for every output position, the ``C x K`` input values under the kernel into one column, so
that the whole convolution becomes **one matrix product**::

    x (N, C, *S)  --im2col-->  cols (C*K, N*L)       L = number of output positions
    y = W.reshape(O, C*K) @ cols                      (O, N*L) -> (N, O, *out)

col2im is its adjoint: it adds every column entry back onto the input position it was
copied from (positions under several windows receive several contributions). That is the
backward pass of im2col, and it is also the forward pass of the transposed convolution.

Both loop only over the ``K`` kernel offsets, never over pixels: for the offset
``(i, j)`` the values under that tap, for all examples and output positions at once, form a
strided slice of the (padded) input,
``x_padded[:, :, i*d : i*d + s*OH : s, j*d : j*d + s*OW : s]``
(Deep Learning from Scratch, ``common/util.py``). The same code serves 1D spectra, 2D
images and 3D cubes, on NumPy and on CuPy.

Layout of ``cols``: row ``c*K + k`` is channel ``c`` at kernel offset ``k`` (offsets in C
order, so ``W.reshape(O, C*K)`` lines up with it); column ``n*L + l`` is example ``n`` at
output position ``l``. Examples are the slow column index, so a chunk of the batch is a
contiguous block of columns.
"""
from __future__ import annotations

import itertools
import math

from ..errors import ShapeError

#: default size of the im2col workspace; a larger batch is processed in chunks of examples
#: whose columns fit in it (see :func:`batch_chunks` and ``Backend.workspace_bytes``)
WORKSPACE_BYTES = 256 * 2**20


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                dilation: int = 1) -> int:
    """Number of positions of a window sliding along one axis of ``size`` samples.

    The window spans ``dilation * (kernel - 1) + 1`` samples of the input padded with
    ``padding`` zeros on both sides, and moves by ``stride``::

        out = floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1

    This is the only place where nn computes it (convolutions, transposed convolutions and
    pooling all call it). Returns a value < 1 when the window does not fit.
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def transposed_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                    dilation: int = 1, output_padding: int = 0) -> int:
    """Output length of a transposed convolution: the input length of the convolution it undoes.

    ``output_size`` rounds down, so a strided convolution maps ``stride`` input lengths to
    the same output length; ``output_padding`` (< stride) picks which one (PyTorch's rule)::

        out = (size - 1) stride - 2 padding + dilation (kernel - 1) + 1 + output_padding
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1 + output_padding


def output_shape(spatial, kernel, stride, padding, dilation, owner: str = "window") -> tuple:
    """:func:`output_size` on every spatial axis, or a ``ValueError`` saying which does not fit."""
    out = tuple(output_size(*args) for args in zip(spatial, kernel, stride, padding, dilation))
    if min(out, default=1) < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        padded = tuple(n + 2 * p for n, p in zip(spatial, padding))
        raise ShapeError(
            f"{owner}: the kernel spans {_fmt(span)} samples (kernel {_fmt(kernel)}, dilation "
            f"{_fmt(dilation)}) but the padded input is only {_fmt(padded)} (input "
            f"{_fmt(spatial)}, padding {_fmt(padding)}); use a larger input, more padding or a "
            "smaller kernel")
    return out


def _fmt(t) -> str:
    return "x".join(str(v) for v in t)


def offsets(kernel):
    """Every kernel offset ``(i, j, ...)``, in C order (the order of the rows of ``cols``)."""
    return itertools.product(*(range(k) for k in kernel))


def tap(offset, out, stride, dilation) -> tuple:
    """Slices of the padded input seen by kernel tap ``offset`` at every output position."""
    return tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                 for o, n, s, d in zip(offset, out, stride, dilation))


def pool_taps(kernel, stride, out) -> list:
    """Per kernel offset, the slice of ``x (N, C, *S)`` holding that offset of every window."""
    ones = (1,) * len(kernel)
    return [(slice(None), slice(None)) + tap(offset, out, stride, ones) for offset in offsets(kernel)]


def pad(xp, x, padding):
    """``x (N, C, *S)`` with ``padding`` zeros on both sides of each spatial axis (no copy if 0)."""
    if not any(padding):
        return x
    padded = xp.zeros(x.shape[:2] + tuple(n + 2 * p for n, p in zip(x.shape[2:], padding)),
                      dtype=x.dtype)
    padded[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(padding, x.shape[2:]))] = x
    return padded


def im2col(xp, x, kernel, stride, padding, dilation, out=None):
    """Columns ``(C*K, N*L)`` of ``x (N, C, *S)`` (layout in the module docstring).

    ``out``: a contiguous ``(C*K, N*L)`` array of ``x``'s dtype to write them into (a buffer
    kept from the previous step, see :meth:`nn.layers.conv.ConvND._columns`), else a new one.
    """
    N, C = x.shape[:2]
    size = output_shape(x.shape[2:], kernel, stride, padding, dilation)
    # channels first, then the batch: every tap below then writes one contiguous block
    xt = pad(xp, x, padding).swapaxes(0, 1)                    # (C, N, *S_padded), a view
    if out is None:
        cols = xp.empty((C, *kernel, N, *size), dtype=x.dtype)
    else:
        check_columns_buffer(out, (C * math.prod(kernel), N * math.prod(size)), x.dtype)
        cols = out.reshape(C, *kernel, N, *size)               # a view: out is contiguous
    if (len(kernel) >= 2 and kernel[-1] > 1 and stride[-2] == 1
            and size[-1] <= TWO_STAGE_MAX_WIDTH):
        _taps_in_two_stages(xp, xt, cols, kernel, stride, dilation, size)
    else:
        for offset in offsets(kernel):
            cols[(slice(None), *offset)] = xt[(slice(None), slice(None)) + tap(offset, size, stride, dilation)]
    return cols.reshape(C * math.prod(kernel), N * math.prod(size))


#: :func:`im2col` copies in two stages when output rows are at most this wide (and the stride
#: along the axis before the last is 1)
TWO_STAGE_MAX_WIDTH = 24


def _taps_in_two_stages(xp, xt, cols, kernel, stride, dilation, size):
    """Fill ``cols (C, *K, N, *size)`` from ``xt (C, N, *S_padded)``: first every tap along
    the last axis, ``xw[:, j] = xt[..., j*d : ... : s]`` (all rows of the padded input, each
    cut to the ``OW`` positions of tap ``j``), then every tap along the other axes, whose
    ``OH`` consecutive rows of ``xw`` are one contiguous block.

    Speed: the same copies as one stage, in longer runs. One stage copies ``OW`` values at a
    time, ``C*K*N*OH`` times; a short row (LeNet-like 6 -> 16: 10 values) costs about as much
    to start as to copy. Here the second stage, which moves nearly everything, copies
    ``OH*OW`` values at a time. Measured (2-core VM): LeNet-like 6 -> 16, batch 64, 0.55 ->
    0.32 ms; the same for ``predict``'s 256 images 2.11 -> 1.23 ms; 8 channels, 5x5 kernel
    on 16 x 16, 0.71 -> 0.43 ms. From rows of about 28 on the extra stage costs more than it
    saves (32: 1.54 -> 2.04 ms), hence :data:`TWO_STAGE_MAX_WIDTH`; with a stride along the
    second-last axis the blocks are not contiguous (the decoder's stride 2: 1.54 -> 2.11 ms).
    """
    C, N = xt.shape[:2]
    KW, sw, dw, OW = kernel[-1], stride[-1], dilation[-1], size[-1]
    xw = xp.empty((C, KW, N) + tuple(xt.shape[2:-1]) + (OW,), dtype=xt.dtype)
    for j in range(KW):
        xw[:, j] = xt[..., j * dw:j * dw + sw * (OW - 1) + 1:sw]
    for offset in offsets(kernel[:-1]):
        rows = (slice(None), slice(None)) + tap(offset, size[:-1], stride[:-1], dilation[:-1])
        for j in range(KW):
            cols[(slice(None), *offset, j)] = xw[(slice(None), j) + rows[1:]]


def check_columns_buffer(out, shape, dtype) -> None:
    """Refuse an ``out`` for im2col that is not a contiguous ``shape`` array of ``dtype``."""
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ShapeError(
            f"im2col: out must be a C-contiguous {shape} array of {dtype}, got "
            f"{tuple(out.shape)} {out.dtype}{'' if out.flags.c_contiguous else ' (not contiguous)'}; "
            "pass out=None to get a new array")


def col2im(xp, cols, x_shape, kernel, stride, padding, dilation):
    """The adjoint of :func:`im2col`: sum the columns ``(C*K, N*L)`` back into ``(N, C, *S)``.

    Where windows overlap (stride < dilated kernel) a position collects the contributions
    of every window covering it; that sum is why the gradient of im2col is not a copy.
    """
    N, C = x_shape[:2]
    spatial = tuple(x_shape[2:])
    out = output_shape(spatial, kernel, stride, padding, dilation)
    cols = cols.reshape(C, *kernel, N, *out)
    xt = xp.zeros((C, N, *(n + 2 * p for n, p in zip(spatial, padding))), dtype=cols.dtype)
    for offset in offsets(kernel):
        xt[(slice(None), slice(None)) + tap(offset, out, stride, dilation)] += cols[(slice(None), *offset)]
    return unpad(xp, xt, padding)


def unpad(xp, xt, padding):
    """``xt (C, N, *S_padded)`` without its padding, as a contiguous ``(N, C, *S)`` array."""
    inner = tuple(slice(p, n - p) for p, n in zip(padding, xt.shape[2:]))
    return xp.ascontiguousarray(xt[(slice(None), slice(None)) + inner].swapaxes(0, 1))


def as_3d(values, fill: int = 1) -> tuple:
    """Per-axis ``values`` for 1 or 2 axes extended to 3 with leading ``fill`` (an axis of 1)."""
    return (fill,) * (3 - len(values)) + tuple(values)


def shape_3d(shape) -> tuple:
    """``(N, C, *S)`` as ``(N, C, D, H, W)`` with singleton leading spatial axes."""
    return tuple(shape[:2]) + as_3d(shape[2:])


def batch_chunks(n: int, bytes_per_example: int, budget: int):
    """Slices of ``range(n)`` whose im2col columns fit in ``budget`` bytes (at least one example each).

    The im2col matrix of a whole batch is ``K`` times larger than the input: a 3x3 kernel on
    a batch of 256 RGB 128x128 images with 16 channels needs 2.4 GB. Processing the batch in
    chunks keeps that workspace bounded, so peak memory stays near the activations' size.
    """
    per_chunk = max(1, min(n, budget // max(1, bytes_per_example)))
    return [slice(i, min(i + per_chunk, n)) for i in range(0, n, per_chunk)]
