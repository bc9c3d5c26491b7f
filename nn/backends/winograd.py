"""Winograd's minimal filtering F(2, 3): 3-tap convolutions with fewer multiplications.

im2col + one matrix product (:mod:`nn.backends.im2col`) is how nn teaches convolution, and
it stays the reference. This module computes the same thing for the commonest layer of
image networks, a 3x3 kernel with stride 1 (VGG, U-Net, ResNet), with 2.25 times fewer
multiplications in 2D (3.4 in 3D), a trick of Lavin & Gray, *Fast Algorithms for
Convolutional Neural Networks* (CVPR 2016), from Winograd's *Arithmetic Complexity of
Computations* (1980).

**One axis.** Two outputs of a 3-tap correlation, ``y0 = d0 g0 + d1 g1 + d2 g2`` and
``y1 = d1 g0 + d2 g1 + d3 g2``, read a tile of 4 inputs ``d``. They cost 6 products
written so; Winograd's F(2, 3) needs 4::

    y = A^T [ (G g) * (B^T d) ]          (* : element by element)

    B^T = [[1,  0, -1,  0],     G = [[1,    0,   0 ],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [0,    0,   1 ]]

(multiply it out: ``A^T diag(G g) B^T`` is the 2x4 correlation matrix). ``G g`` depends on
the weights only and is computed once per step; ``B^T d`` and ``A^T m`` are additions.

**Several axes.** The transforms act on each axis in turn: a 4x4 tile ``d`` of an image
gives ``B^T d B``, a 4x4 kernel transform ``G g G^T``, and 2x2 outputs ``A^T m A``. With
``T = 4**ndim`` positions ``xi`` of the transformed tile, and channels summed::

    V[xi, c, p] = (B^T d_{c,p} B)[xi]       input tile p of channel c       (T, C, P)
    U[xi, o, c] = (G g_{o,c} G^T)[xi]       kernel o <- c                   (T, O, C)
    M[xi]       = U[xi] @ V[xi]             T matrix products               (T, O, P)
    y tile p of channel o = A^T M[:, o, p] A

The ``T`` matrix products ``(O, C) @ (C, P)`` hold all the multiplications: 16 per 2x2
outputs and channel pair, where im2col's product has 36.

**Backward** is every step above transposed, in reverse order (each is linear)::

    dM[:, o, p] = A dy_{o,p} A^T                                            (T, O, P)
    dU[xi] = dM[xi] @ V[xi].T        dW[o, c] = G^T dU[:, o, c] G           (O, C, 3, 3)
    dV[xi] = U[xi].T @ dM[xi]        dx tile p of channel c += B dV[:, c, p] B^T

Tiles overlap by 2 inputs on each axis (they start every 2), so the input gradient adds
the overlapping tiles, as col2im adds overlapping windows.

**Rounding.** The transforms add and subtract before multiplying, so float32 results
differ from im2col's by a few units in the last place of the largest terms (measured in
the tests); float64 agrees to ~1e-15 (the gradient checks run there).

Only the CPU backend with numba uses this path (:meth:`nn.layers.conv.ConvND._winograd`):
the tile transforms are numba loops, one pass over memory each.
"""
from __future__ import annotations

import numpy as np

#: the three matrices of F(2, 3), as in the docstring
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def tiles(out_shape) -> tuple:
    """Number of 2-output tiles on each spatial axis (the last one may stick out by 1)."""
    return tuple(-(-n // 2) for n in out_shape)


def kernel_transform(W):
    """``U (T, O, C)``: ``G g G^T`` (along every spatial axis) of each kernel ``g`` of ``W (O, C, 3, ...)``."""
    O, C = W.shape[:2]
    ndim = W.ndim - 2
    U = W.astype(np.float64)
    for axis in range(ndim):                       # apply G along each kernel axis
        U = np.tensordot(U, G, axes=([2 + axis], [1]))
        U = np.moveaxis(U, -1, 2 + axis)
    # (O, C, 4, 4, ...) -> (T, O, C): one (O, C) matrix per transformed position
    return np.ascontiguousarray(np.moveaxis(U.reshape(O, C, -1), 2, 0), dtype=W.dtype)


def kernel_transform_adjoint(dU, kernel_ndim: int):
    """``dW (O, C, 3, ...)`` from ``dU (T, O, C)``: ``G^T dU G`` along every axis."""
    T, O, C = dU.shape
    dW = np.moveaxis(dU.astype(np.float64), 0, 2).reshape(O, C, *(4,) * kernel_ndim)
    for axis in range(kernel_ndim):
        dW = np.tensordot(dW, G, axes=([2 + axis], [0]))
        dW = np.moveaxis(dW, -1, 2 + axis)
    return np.ascontiguousarray(dW, dtype=dU.dtype)



def tile_grid(x_shape, padding) -> tuple:
    """``(out, counts)``: the output's spatial shape and the number of tiles on each axis, for
    a 3x3, stride-1 convolution of ``x (N, C, *S)``."""
    out = tuple(n + 2 * p - 2 for n, p in zip(x_shape[2:], padding))
    return out, tiles(out)


def padded_input(x, padding, counts):
    """``x (N, C, *S)`` with ``padding`` zeros in front and enough behind for every tile:
    ``2 * count + 2`` inputs per axis."""
    xp = np.zeros(x.shape[:2] + tuple(2 * n + 2 for n in counts), dtype=x.dtype)
    xp[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(padding, x.shape[2:]))] = x
    return xp


def slabs(T: int, rows: int, cols: int, dtype, spare=None):
    """An array ``(T, rows, cols)`` whose ``T`` matrices are each contiguous, ``spare`` if it
    is one of these with the same shape and dtype (the previous step's).

    Speed: the tile transforms read or write the ``T`` matrices at once, at the same
    ``(row, col)``. Laid out back to back, those ``T`` addresses are a multiple of
    ``rows * cols * 4`` bytes apart, often a multiple of 4 KiB: they then fall in the same
    set of the L1 cache (8 to 12 lines per set), which evicts itself every tile. Each matrix
    here starts 32 elements (128 bytes) later than back-to-back, in another set. Measured on
    the VGG-ish 32 -> 64 layer: output adjoint 25 ms -> 3.9 ms, input transform 12 -> 1.4 ms.
    """
    if (isinstance(spare, np.ndarray) and spare.shape == (T, rows, cols)
            and spare.dtype == dtype):
        return spare
    step = rows * cols + 32
    buffer = np.empty(T * step, dtype=dtype)
    return np.lib.stride_tricks.as_strided(
        buffer, (T, rows, cols), (step * buffer.itemsize, cols * buffer.itemsize, buffer.itemsize))


def forward(kernels, x, W, b, padding, spare=None):
    """``(y, saved)``: the convolution of ``x (N, C, *S)`` (2D or 3D) by ``W (O, C, 3, ...)``
    plus ``b`` (stride 1), and what :func:`backward` needs: ``(V, M, U)``, the transformed
    input tiles, the ``(T, O, P)`` products (backward writes over them) and the
    transformed kernels.

    ``spare``: the previous step's ``saved``; its arrays are written over when they fit (a
    fresh array of tens of MiB costs page faults as long as the transform itself).
    """
    ndim = x.ndim - 2
    N, C, O = x.shape[0], x.shape[1], W.shape[0]
    out, counts = tile_grid(x.shape, padding)
    T, P = 4 ** ndim, N * int(np.prod(counts))
    V = slabs(T, C, P, x.dtype, spare[0] if spare else None)
    M = slabs(T, O, P, x.dtype, spare[1] if spare else None)
    transform_input, transform_output = ((kernels.winograd_input_2d, kernels.winograd_output_2d)
                                         if ndim == 2 else
                                         (kernels.winograd_input_3d, kernels.winograd_output_3d))
    transform_input(padded_input(x, padding, counts), V)
    U = kernel_transform(W)
    np.matmul(U, V, out=M)                                      # T products (O, C) @ (C, P)
    y = np.empty((N, O, *out), dtype=x.dtype)
    transform_output(M, b if b is not None else np.zeros(O, dtype=x.dtype), y)
    return y, (V, M, U)


def backward(kernels, dy, saved, x_shape, padding, input_grad=True, weight_grad=True):
    """``(dW, dx)`` of :func:`forward` from the upstream gradient ``dy`` (``dx`` is None
    unless ``input_grad``, ``dW`` None unless ``weight_grad``). ``saved`` is forward's; its
    arrays are written over."""
    V, M, U = saved
    ndim = dy.ndim - 2
    N, C = x_shape[:2]
    _, counts = tile_grid(x_shape, padding)
    adjoint_output, adjoint_input = ((kernels.winograd_output_adjoint_2d,
                                      kernels.winograd_input_adjoint_2d) if ndim == 2 else
                                     (kernels.winograd_output_adjoint_3d,
                                      kernels.winograd_input_adjoint_3d))
    dM = M                                                      # forward's products, reused
    adjoint_output(np.ascontiguousarray(dy), dM)
    dW = None
    if weight_grad:
        dU = np.matmul(dM, V.transpose(0, 2, 1))               # (T, O, P) @ (T, P, C)
        dW = kernel_transform_adjoint(dU, ndim)
    if not input_grad:
        return dW, None
    dV = np.matmul(U.transpose(0, 2, 1), dM, out=V)            # V is not needed any more
    dxp = np.zeros((N, C) + tuple(2 * n + 2 for n in counts), dtype=dy.dtype)
    adjoint_input(dV, dxp)
    inner = tuple(slice(p, p + n) for p, n in zip(padding, x_shape[2:]))
    return dW, np.ascontiguousarray(dxp[(slice(None), slice(None)) + inner])
