"""im2col and col2im with the batch innermost: columns ``(C*K, L*N)`` instead of ``(C*K, N*L)``.

:mod:`nn.backends.im2col` lays the columns out example by example: column ``n*L + l`` is
example ``n`` at output position ``l``. Each kernel offset then copies (im2col) or adds
(col2im) one output row of ``OW`` values at a time. On the small images of most courses'
networks the rows are short (LeNet-like: 10, 5 and 3 values; a decoder's 7 and 14), and a
row costs about as much to start as to copy: col2im ran at about 1 ns per value.

Here column ``l*N + n`` is output position ``l`` of example ``n``: the batch is the fastest
index, the layout of cuda-convnet (Krizhevsky's "CHWN"). Every kernel offset of every output
position is then a run of ``N`` values, the same for every position and long enough for
the compiler to vectorise (numba kernels :func:`~nn.backends.cpu_kernels.im2col_batch_last`
and :func:`~nn.backends.cpu_kernels.col2im_batch_last`, which also transpose between
``(N, C, *S)`` and the batch-last layout one channel at a time, in the cache). The matrix
products are unchanged, ``W2 @ X`` and ``W2.T @ dY``: only the order of their columns differs.
The price is a transposition of whatever enters or leaves the product in the batch-last
layout (:func:`to_batch_last`, :func:`from_batch_last`), about twice the cost of the
example-by-example layout's.

Measured on the 2-core VM (ms, example-by-example against batch-last; numba in both, each
kernel's runs taken as views so that they vectorise):

=========================================  ==============  ==============
layer geometry (batch, channels, image)    im2col          col2im
=========================================  ==============  ==============
LeNet-like 6 -> 16, 64 x 6 x 14^2, k5       0.32 -> 0.12    0.59 -> 0.13
the same, ``predict``'s batch of 256        1.26 -> 0.49    2.37 -> 0.48
decoder, 64 x 32 x 14^2, k4 s2 p1           1.49 -> 0.30    1.60 -> 0.34
64 x 6 x 28^2, k3 p1 (rows of 28)           0.71 -> 0.34    0.87 -> 0.38
32 x 32 x 32^2, k3 p1 (rows of 32)          5.96 -> 3.41    3.32 -> 4.00
spectra 32 x 16 x 930, k7 (1D)              0.42 -> 0.73    0.41 -> 0.74
8 x 8 x 16^3, k3 p1 (3D, batch of 8)        2.10 -> 2.58    2.99 -> 3.19
4 x 16 x 14^2, k3 p1 (batch of 4)           0.05 -> 0.08    0.07 -> 0.08
=========================================  ==============  ==============

Hence where the layers use it (:func:`col2im_applies`, :func:`im2col_applies`): on output
rows of at most :data:`MAX_WIDTH` values, col2im from :data:`MIN_EXAMPLES` examples on,
im2col from :data:`IM2COL_MIN_EXAMPLES`. CPU with numba only, in float32 and
float64 (``"mixed"`` keeps the reference path's float16 rounding).
"""
from __future__ import annotations

import math

import numpy as np

from .im2col import as_3d, check_columns_buffer, output_shape, shape_3d

#: col2im runs batch-last from this many examples on ...
MIN_EXAMPLES = 8
#: ... on output rows (the last spatial axis of the window positions) of at most this many
#: values: longer rows are long runs in the example-by-example layout too ...
MAX_WIDTH = 28
#: ... and when the columns have at least this many times as many rows as the matrix whose
#: layout changes with them (a convolution's ``C*K`` against its ``O`` outputs): the
#: transposition of the other operand must be small beside the columns' gain
MIN_ROWS_RATIO = 2
#: im2col runs batch-last under the same conditions from this many examples on
IM2COL_MIN_EXAMPLES = 16


def col2im_applies(kernels, a, out, rows: int, other: int) -> bool:
    """Whether :func:`col2im` runs for the batch ``a (n, C, *S)`` whose window positions
    are ``out``: ``kernels``, the backend's numba kernels or None; ``rows``, the columns'
    rows; ``other``, the rows of the matrix transposed with them."""
    return (kernels is not None and a.dtype in kernels.DTYPES and a.shape[0] >= MIN_EXAMPLES
            and out[-1] <= MAX_WIDTH and rows >= MIN_ROWS_RATIO * other)


def im2col_applies(kernels, a, out, rows: int, other: int) -> bool:
    """Whether :func:`im2col` runs for the batch ``a (n, C, *S)`` with outputs ``out``."""
    return col2im_applies(kernels, a, out, rows, other) and a.shape[0] >= IM2COL_MIN_EXAMPLES


def to_batch_last(a):
    """``a (n, C, *S)`` as the matrix ``(C, L*n)``, the batch innermost (a copy)."""
    return np.ascontiguousarray(np.moveaxis(a, 0, -1)).reshape(a.shape[1], -1)


def from_batch_last(kernels, Y, bias, out):
    """``out (n, O, *S) = Y (O, L*n) + bias`` (``bias (O,)`` or None): the batch-last product
    laid out batch first."""
    if not out.flags.c_contiguous:
        raise ValueError("from_batch_last: out must be C-contiguous")
    n, O = out.shape[:2]
    kernels.from_batch_last(Y.reshape(O, -1, n), _bias(bias, Y.dtype),
                            out.reshape(n, O, -1))


def im2col(kernels, x, kernel, stride, padding, dilation, out=None):
    """Columns ``(C*K, L*n)`` of ``x (n, C, *S)``, batch-last; ``out``: a contiguous array of
    that shape and dtype to write them into, else a new one."""
    n, C = x.shape[:2]
    size = output_shape(x.shape[2:], kernel, stride, padding, dilation)
    shape = (C * math.prod(kernel), math.prod(size) * n)
    if out is None:
        cols = np.empty(shape, dtype=x.dtype)
    else:
        check_columns_buffer(out, shape, x.dtype)
        cols = out
    kernels.im2col_batch_last(
        np.ascontiguousarray(x).reshape(shape_3d(x.shape)), as_3d(stride), as_3d(dilation),
        as_3d(padding, 0), _plane(x.shape, padding, x.dtype),
        cols.reshape(C, *as_3d(kernel), *as_3d(size), n))
    return cols


def col2im(kernels, cols, out, kernel, stride, padding, dilation, bias=None):
    """``out (n, C, *S) = col2im(cols) + bias`` from batch-last ``cols (C*K, L*n)`` (the
    adjoint of :func:`im2col`); ``out``: a C-contiguous array, written whole."""
    if not out.flags.c_contiguous:
        raise ValueError("col2im: out must be C-contiguous (the kernel writes into a view of it)")
    n, C = out.shape[:2]
    size = output_shape(out.shape[2:], kernel, stride, padding, dilation)
    kernels.col2im_batch_last(
        np.ascontiguousarray(cols).reshape(C, *as_3d(kernel), *as_3d(size), n),
        as_3d(stride), as_3d(dilation), as_3d(padding, 0), _bias(bias, cols.dtype),
        _plane(out.shape, padding, cols.dtype), out.reshape(shape_3d(out.shape)))
    return out


def _plane(shape, padding, dtype):
    """Scratch for one padded channel of a batch of ``shape (n, C, *S)``, ``(Dp, Hp, Wp, n)``."""
    padded = tuple(s + 2 * p for s, p in zip(shape[2:], padding))
    return np.empty(as_3d(padded) + (shape[0],), dtype=dtype)


def _bias(bias, dtype):
    """``bias`` as the kernels take it: ``(O,)`` of ``dtype``, or empty for none."""
    return np.zeros(0, dtype=dtype) if bias is None else bias.astype(dtype, copy=False)
