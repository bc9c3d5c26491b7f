"""Naive reference versions of the fast layers: explicit loops, written to be read.

Each function computes, one output position (or window) at a time, what the library's
vectorised code computes in one matrix product or one strided pass: the convolution as the
sum that defines it, the transposed convolution as a scatter, im2col column by column,
pooling window by window. They are slow (Python loops over every position) and exact
(float64): the tests compare the fast layers with them, and a student who wants to see a
formula at work can step through them.

All take host NumPy arrays ``x (N, C, *S)`` with any number of spatial axes.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

ALL = (slice(None), slice(None))   # every example and every channel


def reference_output_size(size, kernel, stride, padding, dilation):
    """PyTorch's documented formula:
    ``floor((size + 2 padding - dilation (kernel - 1) - 1) / stride + 1)``."""
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)


def reference_conv(x, W, b, stride, padding, dilation):
    """``y[n, o, i] = b[o] + sum_{c, k} W[o, c, k] x_padded[n, c, i * stride + k * dilation]``.

    ``x (N, C, *S)``, ``W (O, C, *K)``; ``i`` and ``k`` are multi-indices over the spatial axes.
    """
    N, _, *S = x.shape
    O, _, *K = W.shape
    x_padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out = [reference_output_size(*g) for g in zip(S, K, stride, padding, dilation)]
    y = np.zeros((N, O, *out))
    for i in itertools.product(*map(range, out)):
        for k in itertools.product(*map(range, K)):
            pos = tuple(ii * s + kk * d for ii, kk, s, d in zip(i, k, stride, dilation))
            # (N, C) @ (C, O): every example and every output channel at this position and tap
            y[ALL + i] += x_padded[ALL + pos] @ W[ALL + k].T
    if b is not None:
        y += b.reshape(-1, *[1] * len(S))
    return y


def reference_conv_transpose(x, W, b, stride, padding, dilation, output_padding):
    """Scatter: each input pixel adds ``x[n, c, i] * W[c, :, k]`` at ``i * stride + k * dilation``.

    ``x (N, C, *S)``, ``W (C, O, *K)``. The full result is then cropped by ``padding`` on both
    sides; ``output_padding`` extra samples are kept at the end of each axis (PyTorch).
    """
    N, _, *S = x.shape
    _, O, *K = W.shape
    full = [(n - 1) * s + d * (k - 1) + 1 + op
            for n, k, s, d, op in zip(S, K, stride, dilation, output_padding)]
    y = np.zeros((N, O, *full))
    for i in itertools.product(*map(range, S)):
        for k in itertools.product(*map(range, K)):
            pos = tuple(ii * s + kk * d for ii, kk, s, d in zip(i, k, stride, dilation))
            y[ALL + pos] += x[ALL + i] @ W[ALL + k]           # (N, C) @ (C, O)
    y = y[ALL + tuple(slice(p, n - p) for p, n in zip(padding, full))]
    if b is not None:
        y = y + b.reshape(-1, *[1] * len(S))
    return y


def reference_im2col(x, kernel, stride, padding, dilation):
    """``cols[c*K + k, n*L + l] = x_padded[n, c, l * stride + k * dilation]`` (k, l in C order)."""
    N, C, *S = x.shape
    x_padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out = [reference_output_size(*g) for g in zip(S, kernel, stride, padding, dilation)]
    K, L = math.prod(kernel), math.prod(out)
    cols = np.empty((C * K, N * L))
    for n, c in itertools.product(range(N), range(C)):
        for k, offset in enumerate(itertools.product(*map(range, kernel))):
            for l, i in enumerate(itertools.product(*map(range, out))):
                pos = tuple(ii * s + kk * d for ii, kk, s, d in zip(i, offset, stride, dilation))
                cols[c * K + k, n * L + l] = x_padded[(n, c) + pos]
    return cols


def reference_pool(x, kernel, stride, kind):
    """``y[n, c, i]`` = max or mean of ``x[n, c, i * stride : i * stride + kernel]``, and for
    "max" the offset of the first maximum in the window (C order)."""
    N, C, *S = x.shape
    out = [(n - k) // s + 1 for n, k, s in zip(S, kernel, stride)]
    y = np.empty((N, C, *out))
    argmax = np.empty((N, C, *out), dtype=np.int64)
    for i in itertools.product(*map(range, out)):
        window = x[ALL + tuple(slice(j * s, j * s + k) for j, s, k in zip(i, stride, kernel))]
        flat = window.reshape(N, C, -1)
        y[ALL + i] = flat.max(axis=2) if kind == "max" else flat.mean(axis=2)
        argmax[ALL + i] = flat.argmax(axis=2)           # np.argmax: the first maximum
    return (y, argmax) if kind == "max" else y


def reference_maxpool_backward(x, dy, kernel, stride):
    """``dx``: each ``dy`` added at the first maximum of its window (C order), window by window."""
    _, argmax = reference_pool(x, kernel, stride, "max")
    dx = np.zeros(x.shape)
    for index in np.ndindex(*dy.shape):
        n, c, *i = index
        offset = np.unravel_index(argmax[index], kernel)
        dx[(n, c, *(j * s + o for j, s, o in zip(i, stride, offset)))] += dy[index]
    return dx


def reference_global(x, kind):
    """Running max / sum over every spatial position, one position at a time."""
    N, C, *S = x.shape
    best, total = np.full((N, C), -np.inf), np.zeros((N, C))
    for i in itertools.product(*map(range, S)):
        best = np.maximum(best, x[ALL + i])
        total += x[ALL + i]
    return best if kind == "max" else total / math.prod(S)
