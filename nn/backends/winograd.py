"""Winograd's minimal filtering F(m, 3): 3-tap convolutions with fewer multiplications.

im2col + one matrix product (:mod:`nn.backends.im2col`) is how nn teaches convolution, and
it stays the reference. This module computes the same thing for the commonest layer of
image networks, a 3x3 kernel with stride 1 (VGG, U-Net, ResNet), with 4 times fewer
multiplications in 2D (3.4 in 3D), a trick of Lavin & Gray, *Fast Algorithms for
Convolutional Neural Networks* (CVPR 2016), from Winograd's *Arithmetic Complexity of
Computations* (1980).

**One axis, F(2, 3).** Two outputs of a 3-tap correlation, ``y0 = d0 g0 + d1 g1 + d2 g2``
and ``y1 = d1 g0 + d2 g1 + d3 g2``, read a tile of 4 inputs ``d``. They cost 6 products
written so; Winograd's F(2, 3) needs 4::

    y = A^T [ (G g) * (B^T d) ]          (* : element by element)

    B^T = [[1,  0, -1,  0],     G = [[1,    0,   0 ],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [0,    0,   1 ]]

(multiply it out: ``A^T diag(G g) B^T`` is the 2x4 correlation matrix). ``G g`` depends on
the weights only and is computed once per step; ``B^T d`` and ``A^T m`` are additions.
F(4, 3) does the same for 4 outputs from a tile of 6 inputs with 6 products instead of 12
(its matrices ``B_T4``, ``G4``, ``A_T4`` below have entries up to 8, and ``G4`` sixths).

**Several axes.** The transforms act on each axis in turn: a tile ``d`` of an image gives
``B^T d B``, the kernel ``G g G^T``, and the outputs ``A^T m A``. With ``T = (m + 2)**ndim``
positions ``xi`` of the transformed tile, and channels summed::

    V[xi, c, p] = (B^T d_{c,p} B)[xi]       input tile p of channel c       (T, C, P)
    U[xi, o, c] = (G g_{o,c} G^T)[xi]       kernel o <- c                   (T, O, C)
    M[xi]       = U[xi] @ V[xi]             T matrix products               (T, O, P)
    y tile p of channel o = A^T M[:, o, p] A

The ``T`` matrix products ``(O, C) @ (C, P)`` hold all the multiplications. Images use
F(4x4, 3x3): 36 per 4x4 outputs and channel pair, where im2col's product has 144 (F(2x2,
3x3) would have 64); cubes use F(2x2x2, 3x3x3): 64 per 2x2x2 outputs against 216
(:data:`OUTPUTS_PER_TILE`).

**Backward** is every step above transposed, in reverse order (each is linear)::

    dM[:, o, p] = A dy_{o,p} A^T                                            (T, O, P)
    dU[xi] = dM[xi] @ V[xi].T        dW[o, c] = G^T dU[:, o, c] G           (O, C, 3, 3)
    dV[xi] = U[xi].T @ dM[xi]        dx tile p of channel c += B dV[:, c, p] B^T

Tiles overlap by 2 inputs on each axis (they start every ``m``), so the input gradient adds
the overlapping tiles, as col2im adds overlapping windows.

**Rounding.** The transforms add and scale before multiplying, so float32 results are
less exact than im2col's: with F(4, 3) on 32 to 128 channels, 4e-6 to 6e-6 of the largest
output against im2col's 5e-7, and weight gradients within 1e-6 (rms, relative) against
1e-7 (cuDNN and oneDNN make the same trade; SGD's own noise is far larger). float64 agrees
to ~1e-13 (the gradient checks run there).

Only the CPU backend with numba uses this path (:meth:`nn.layers.conv.ConvND._winograd`):
the tile transforms are numba loops, one pass over memory each.
"""
from __future__ import annotations

import numpy as np

#: the three matrices of F(2, 3), as in the docstring
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

#: the matrices of F(4, 3): tiles of 6 inputs, 4 outputs, 6 products instead of 12
B_T4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
A_T4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], dtype=np.float64)

#: F(m, 3) by its number m of outputs per tile: (B^T, G, A^T)
MATRICES = {2: (B_T, G, A_T), 4: (B_T4, G4, A_T4)}

#: outputs per tile and axis for each number of spatial axes: images F(4x4, 3x3), cubes
#: F(2x2x2, 3x3x3) (the tile transforms are written for these two: F(4, 3) in 3D would need
#: 216 products per tile, and as many arrays). Images with F(2x2, 3x3) were measured too:
#: the VGG-ish step took 76-78 ms against 73 with F(4x4, 3x3), with 10 times less rounding.
OUTPUTS_PER_TILE = {2: 4, 3: 2}


def tiles(out_shape, m: int) -> tuple:
    """Number of ``m``-output tiles on each spatial axis (the last one may stick out)."""
    return tuple(-(-n // m) for n in out_shape)


def kernel_transform(W, m: int):
    """``U (T, O, C)``: ``G g G^T`` (along every spatial axis) of each kernel ``g`` of
    ``W (O, C, 3, ...)``, for F(m, 3)."""
    O, C = W.shape[:2]
    G_m = MATRICES[m][1]
    U = W.astype(np.float64)
    for axis in range(W.ndim - 2):                 # apply G along each kernel axis
        U = np.moveaxis(np.tensordot(U, G_m, axes=([2 + axis], [1])), -1, 2 + axis)
    # (O, C, m+2, m+2, ...) -> (T, O, C): one (O, C) matrix per transformed position
    return np.ascontiguousarray(np.moveaxis(U.reshape(O, C, -1), 2, 0), dtype=W.dtype)


def kernel_transform_adjoint(dU, kernel_ndim: int, m: int):
    """``dW (O, C, 3, ...)`` from ``dU (T, O, C)``: ``G^T dU G`` along every axis."""
    T, O, C = dU.shape
    G_m = MATRICES[m][1]
    dW = np.moveaxis(dU.astype(np.float64), 0, 2).reshape(O, C, *(m + 2,) * kernel_ndim)
    for axis in range(kernel_ndim):
        dW = np.moveaxis(np.tensordot(dW, G_m, axes=([2 + axis], [0])), -1, 2 + axis)
    return np.ascontiguousarray(dW, dtype=dU.dtype)


def tile_grid(x_shape, padding, m: int) -> tuple:
    """``(out, counts)``: the output's spatial shape and the number of ``m``-output tiles on
    each axis, for a 3x3, stride-1 convolution of ``x (N, C, *S)``."""
    out = tuple(n + 2 * p - 2 for n, p in zip(x_shape[2:], padding))
    return out, tiles(out, m)


def padded_input(x, padding, counts, m: int):
    """``x (N, C, *S)`` with ``padding`` zeros in front and enough behind for every tile:
    ``m * count + 2`` inputs per axis."""
    xp = np.zeros(x.shape[:2] + tuple(m * n + 2 for n in counts), dtype=x.dtype)
    xp[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(padding, x.shape[2:]))] = x
    return xp


def _kernels(kernels, ndim: int):
    """The four numba tile transforms on ``ndim`` axes: input, output, and the adjoints of
    output and input (:mod:`nn.backends.cpu_kernels`; F(4, 3) in 2D, F(2, 3) in 3D)."""
    return tuple(getattr(kernels, f"winograd_{step}_{ndim}d")
                 for step in ("input", "output", "output_adjoint", "input_adjoint"))


def slabs(T: int, rows: int, cols: int, dtype, spare=None):
    """An array ``(T, rows, cols)`` whose ``T`` matrices are each contiguous, ``spare`` if it
    is one of these with the same shape and dtype (the previous step's).

    Speed: the tile transforms read or write the ``T`` matrices at once, at the same
    ``(row, col)``. Laid out back to back, those ``T`` addresses are a multiple of
    ``rows * cols * 4`` bytes apart, often a multiple of 4 KiB: they then fall in the same
    set of the L1 cache (8 to 12 lines per set), which evicts itself every tile. Each matrix
    here starts 32 elements (128 bytes) later than back-to-back, in another set. Measured on
    the VGG-ish 32 -> 64 layer with F(2x2, 3x3): output adjoint 25 ms -> 3.9 ms, input
    transform 12 -> 1.4 ms.
    """
    if (isinstance(spare, np.ndarray) and spare.shape == (T, rows, cols)
            and spare.dtype == dtype):
        return spare
    step = rows * cols + 32
    buffer = np.empty(T * step, dtype=dtype)
    return np.lib.stride_tricks.as_strided(
        buffer, (T, rows, cols), (step * buffer.itemsize, cols * buffer.itemsize, buffer.itemsize))


#: forward and backward run the products and the transforms a block of whole examples at a
#: time: about this many bytes of ``M`` (:func:`example_blocks`) ...
PRODUCT_BLOCK_BYTES = 2 * 2**20
#: ... and at least this many tiles (the 3D step: 20.3 ms with 1024 tiles, 21.7 with 2048,
#: 23.1 with 4096; the VGG-ish step lost 0.4-1.7 ms with blocks of 192 tiles)
PRODUCT_BLOCK_MIN_TILES = 1024


def forward(kernels, x, W, b, padding, spare=None):
    """``(y, saved)``: the convolution of ``x (N, C, *S)`` (2D or 3D) by ``W (O, C, 3, ...)``
    plus ``b`` (stride 1), and what :func:`backward` needs: ``(V, U)``, the transformed
    input tiles and the transformed kernels.

    ``spare``: the previous step's ``saved``; its arrays are written over when they fit (a
    fresh array of tens of MiB costs page faults as long as the transform itself).

    Speed: the products ``M`` are made for a few examples at a time
    (:func:`example_blocks`) and turned into outputs while they are in the cache; backward
    does not need them (it makes its ``dM`` block by block too: the VGG-ish step's peak
    memory 210 -> 183 MB). Measured on the 2-core VM, the 3D 8 -> 16 layer (8 cubes of
    16^3): its 64 products 1.62 ms into the whole ``M`` (16 MiB), 0.84-0.96 ms in blocks
    of 128 to 2048 tiles; the forward 5.1 -> 3.8 ms.
    """
    ndim = x.ndim - 2
    m = OUTPUTS_PER_TILE[ndim]
    N, C, O = x.shape[0], x.shape[1], W.shape[0]
    out, counts = tile_grid(x.shape, padding, m)
    T, P = (m + 2) ** ndim, N * int(np.prod(counts))
    V = slabs(T, C, P, x.dtype, spare[0] if spare else None)
    transform_input, transform_output, _, _ = _kernels(kernels, ndim)
    transform_input(padded_input(x, padding, counts, m), V)
    U = kernel_transform(W, m)
    y = np.empty((N, O, *out), dtype=x.dtype)
    bias = b if b is not None else np.zeros(O, dtype=x.dtype)
    M = None
    for n0, n1, p0, p1 in example_blocks(N, T * O, counts, x.itemsize):
        if M is None or M.shape[2] != p1 - p0:                 # the first block, or the last
            M = slabs(T, O, p1 - p0, x.dtype)
        np.matmul(U, V[:, :, p0:p1], out=M)                     # T products (O, C) @ (C, P)
        transform_output(M, bias, y[n0:n1])
    return y, (V, U)


def backward(kernels, dy, saved, x_shape, padding, input_grad=True, weight_grad=True):
    """``(dW, dx)`` of :func:`forward` from the upstream gradient ``dy`` (``dx`` is None
    unless ``input_grad``, ``dW`` None unless ``weight_grad``); ``saved``: forward's.

    Speed: as in :func:`forward`, a few examples at a time (:func:`example_blocks`): their
    ``dM``, their part of ``dU`` and their ``dV`` are made and used while in the cache,
    where the whole ``dM`` and ``dV`` (16 and 8 MiB on the 3D 8 -> 16 layer) went through
    memory. Measured on the 2-core VM, forward + backward (ms, one block -> blocks): 3D
    8 -> 16 on 8 cubes of 16^3 12.7 -> 9.4, 16 -> 16 22.2 -> 18.1; 2D 16 -> 32 on 32
    images of 32^2 9.7 -> 8.3, 32 -> 64 22.3 -> 21.9, 64 -> 128 on 16^2 16.1 -> 16.2. The
    3D step 22.3-24.2 -> 19.5-20.4 ms; the VGG-ish step 60.5-61.6 -> 61.9-62.9 ms.
    """
    V, U = saved
    ndim = dy.ndim - 2
    m = OUTPUTS_PER_TILE[ndim]
    N, C = x_shape[:2]
    T, O = U.shape[:2]
    _, counts = tile_grid(x_shape, padding, m)
    _, _, adjoint_output, adjoint_input = _kernels(kernels, ndim)
    dy = np.ascontiguousarray(dy)
    dU = np.zeros((T, O, C), dtype=dy.dtype) if weight_grad else None
    dxp = (np.zeros((N, C) + tuple(m * n + 2 for n in counts), dtype=dy.dtype) if input_grad
           else None)
    dM = dV = None
    for n0, n1, p0, p1 in example_blocks(N, T * O, counts, dy.itemsize):
        if dM is None or dM.shape[2] != p1 - p0:            # the first block, or the last
            dM = slabs(T, O, p1 - p0, dy.dtype)
            dV = slabs(T, C, p1 - p0, dy.dtype) if input_grad else None
        adjoint_output(dy[n0:n1], dM)                          # dM = A dy A^T
        if weight_grad:
            dU += np.matmul(dM, V[:, :, p0:p1].transpose(0, 2, 1))  # (T, O, P) @ (T, P, C)
        if input_grad:
            np.matmul(U.transpose(0, 2, 1), dM, out=dV)        # dV = U.T @ dM
            adjoint_input(dV, dxp[n0:n1])
    dW = kernel_transform_adjoint(dU, ndim, m) if weight_grad else None
    if not input_grad:
        return dW, None
    inner = tuple(slice(p, p + n) for p, n in zip(padding, x_shape[2:]))
    return dW, np.ascontiguousarray(dxp[(slice(None), slice(None)) + inner])


def example_blocks(N: int, rows: int, counts, itemsize: int):
    """``(n0, n1, p0, p1)``: the batch in blocks of whole examples ``n0:n1`` (tiles
    ``p0:p1``) whose ``(T, O, P)`` products, ``rows = T * O`` rows of them, take about
    :data:`PRODUCT_BLOCK_BYTES` (at least one example)."""
    tiles = int(np.prod(counts))
    per_block = max(-(-PRODUCT_BLOCK_MIN_TILES // tiles),
                    PRODUCT_BLOCK_BYTES // (rows * tiles * itemsize))
    for n0 in range(0, N, per_block):
        n1 = min(N, n0 + per_block)
        yield n0, n1, n0 * tiles, n1 * tiles
