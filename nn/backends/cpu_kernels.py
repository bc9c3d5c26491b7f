"""numba kernels for the CPU backend: col2im, max-pooling, normalisation, the rectifier,
float16 conversions and the greedy loop of non-maximum suppression.

They compute what the strided-slice versions in :mod:`nn.backends.im2col` and
:meth:`nn.backends.base.Backend.maxpool` compute (the tests compare them; where windows
overlap, sums may run in another order, so the last bit may differ), in one pass over
memory, where NumPy needs a pass per kernel offset, each with short inner loops on small
images (compare, select and record the winner, for max-pooling): 2 to 4 times faster on the
course's LeNet. The kernels work on three spatial axes; 1D and 2D arrays get singleton axes
first (:func:`nn.backends.im2col.shape_3d`), so one compiled function serves spectra, images
and cubes.

Measured and rejected (2-core VM): a numba im2col, slower than NumPy's strided slices
(a ``memcpy``-like pass per kernel offset); and ``parallel=True`` kernels, which fight
OpenBLAS's threads (they keep spinning after every matrix product) and made a training step
3 to 6 times slower. The kernels here are serial for that reason.

Also measured and rejected: a max-pool written as loops over the window's axes (no table of
offsets), twice as slow as :func:`maxpool`; backward's ``W.T @ dY`` written into the kept
im2col columns (its fresh array cost nothing measurable, unlike im2col's: ``ConvND._columns``).

Compiled on first use and cached on disk (``cache=True``). numba has no float16 arithmetic:
float16 arrays (the ``"mixed"`` policy) run the float32 kernels on their exact float32 values
and are rounded once (:meth:`NumpyBackend.in_float32`, ``_float16_through_float32``).
"""
from __future__ import annotations

import functools

import numba
import numpy as np

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@numba.njit(cache=True)
def col2im(cols, stride, dilation, xt):  # pragma: no cover (compiled)
    """Add ``cols (C, KD, KH, KW, N, OD, OH, OW)`` into the zeroed, padded ``xt (N, C, D, H, W)``
    (the layout of the input gradient: without padding, ``xt`` is it).

    One output row ``(od, oh)`` of one kernel offset is a run of ``OW`` values added to a
    row of ``xt`` with step ``sw``: the innermost loop, contiguous when ``sw == 1``.

    Speed: the run is taken as a view, ``row[u : u + OW]`` (without a step, so that numba
    knows it is contiguous), and indexed by the loop counter alone. Indexed as
    ``row[u + ow]``, numba must allow for a negative index (Python's "from the end"), and
    the check in the loop keeps the compiler from vectorising it: the 1D spectra's 16 -> 32
    input gradient (rows of 924) took 1.43 ms written so, 0.38 ms with views; LeNet-like
    6 -> 16 (rows of 10) 0.79 -> 0.53 ms. :func:`im2col_per_example` is the same loop
    copying the other way, into another layout.
    """
    C, KD, KH, KW, N, OD, OH, OW = cols.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for c in range(C):
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    u = kw * dw
                    for n in range(N):
                        for od in range(OD):
                            z = od * sd + kd * dd
                            for oh in range(OH):
                                row = xt[n, c, z, oh * sh + kh * dh]
                                source = cols[c, kd, kh, kw, n, od, oh]
                                if sw == 1:     # a contiguous view: the loop is vectorised
                                    target = row[u:u + OW]
                                    for ow in range(OW):
                                        target[ow] += source[ow]
                                else:
                                    target = row[u:u + sw * (OW - 1) + 1:sw]
                                    for ow in range(OW):
                                        target[ow] += source[ow]


# -- the batch-last layout: columns (C, *K, *out, N), the example index innermost ------------------
# In im2col's layout ``(C*K, N*L)`` a kernel offset of one example is a run of ``OW`` values
# (an output row); on small images (rows of 7 to 10) a kernel spends more time starting
# runs than adding numbers, about 1 ns per value. With the batch innermost (the layout of
# cuda-convnet, Krizhevsky's "CHWN") every output position is a run of ``N`` values, the
# same for every position: the compiler vectorises it. The two kernels below also do the
# transposition between ``(N, C, *S)`` and the batch-last plane, one channel at a time in
# the cache, where NumPy would need a pass over the whole array.
@numba.njit(cache=True)
def col2im_batch_last(cols, stride, dilation, padding, bias, plane, x):  # pragma: no cover
    """``x (N, C, D, H, W) = col2im(cols) + bias``, from ``cols (C, KD, KH, KW, OD, OH, OW,
    N)``; ``plane (Dp, Hp, Wp, N)``: scratch for one padded channel; ``bias (C,)`` or empty.

    Per channel: every column entry is added onto the padded plane (runs of ``N``), then the
    plane's interior is written out, example by example, into ``x[:, c]``.
    """
    C, KD, KH, KW, OD, OH, OW, N = cols.shape
    D, H, W = x.shape[2:]
    sd, sh, sw = stride
    dd, dh, dw = dilation
    pd, ph, pw = padding
    for c in range(C):
        plane[...] = 0
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    for od in range(OD):
                        for oh in range(OH):
                            for ow in range(OW):
                                source = cols[c, kd, kh, kw, od, oh, ow]
                                target = plane[od * sd + kd * dd, oh * sh + kh * dh,
                                               ow * sw + kw * dw]
                                for n in range(N):
                                    target[n] += source[n]
        b = bias[c] if bias.size else plane.dtype.type(0)
        for z in range(D):
            for r in range(H):
                source = plane[z + pd, r + ph, pw:pw + W]           # (W, N), a view
                for n in range(N):
                    target = x[n, c, z, r]
                    for q in range(W):
                        target[q] = source[q, n] + b


@numba.njit(cache=True)
def im2col_batch_last(x, stride, dilation, padding, plane, cols):  # pragma: no cover
    """``cols (C, KD, KH, KW, OD, OH, OW, N) = im2col(x (N, C, D, H, W))``; ``plane (Dp, Hp,
    Wp, N)``: scratch for one padded channel (its border stays zero).

    Per channel: ``x[:, c]`` is written into the plane's interior, then every kernel offset
    of every output position copies a run of ``N`` values out of it.
    """
    C, KD, KH, KW, OD, OH, OW, N = cols.shape
    D, H, W = x.shape[2:]
    sd, sh, sw = stride
    dd, dh, dw = dilation
    pd, ph, pw = padding
    plane[...] = 0
    for c in range(C):
        for z in range(D):
            for r in range(H):
                target = plane[z + pd, r + ph, pw:pw + W]           # (W, N), a view
                for n in range(N):
                    source = x[n, c, z, r]
                    for q in range(W):
                        target[q, n] = source[q]
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    for od in range(OD):
                        for oh in range(OH):
                            for ow in range(OW):
                                source = plane[od * sd + kd * dd, oh * sh + kh * dh,
                                               ow * sw + kw * dw]
                                target = cols[c, kd, kh, kw, od, oh, ow]
                                for n in range(N):
                                    target[n] = source[n]


@numba.njit(cache=True)
def from_batch_last(Y, bias, y):  # pragma: no cover (compiled)
    """``y (N, O, L) = Y (O, L, N) + bias``; ``bias (O,)`` or empty.

    A transposition, in blocks of 16 positions: each example's 16 outputs are one short
    contiguous write, and the 16 rows of ``Y`` they come from stay in the cache while every
    example is served (NumPy's strided copy reads ``Y`` with a step of ``N`` per value).
    """
    O, L, N = Y.shape
    for o in range(O):
        b = bias[o] if bias.size else Y.dtype.type(0)
        for start in range(0, L, 16):
            source = Y[o, start:start + 16]                          # (16, N), a view
            for n in range(N):
                target = y[n, o, start:start + 16]
                for l in range(target.shape[0]):
                    target[l] = source[l, n] + b


@numba.njit(cache=True)
def im2col_per_example(xp, stride, dilation, cols):  # pragma: no cover (compiled)
    """``cols (N, C, KD, KH, KW, OD, OH, OW)``: the columns of each example of the padded
    ``xp (N, C, Dp, Hp, Wp)`` in a block of its own (``cols[n]`` is example ``n``'s
    ``(C*K, L)`` matrix, contiguous). Each output row of a kernel offset is one run of ``OW``
    values, copied through views (contiguous ones when ``sw == 1``) so that it vectorises.
    """
    N, C, KD, KH, KW, OD, OH, OW = cols.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for n in range(N):
        for c in range(C):
            for kd in range(KD):
                for kh in range(KH):
                    for kw in range(KW):
                        u = kw * dw
                        for od in range(OD):
                            for oh in range(OH):
                                row = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                                target = cols[n, c, kd, kh, kw, od, oh]
                                if sw == 1:
                                    source = row[u:u + OW]
                                    for ow in range(OW):
                                        target[ow] = source[ow]
                                else:
                                    source = row[u:u + sw * (OW - 1) + 1:sw]
                                    for ow in range(OW):
                                        target[ow] = source[ow]


@functools.lru_cache(maxsize=256)
def window_offsets(kernel, plane_shape) -> np.ndarray:
    """Flat offsets, inside one ``(D, H, W)`` plane, of every kernel position (C order).

    Cached (a network asks for the same few every step), hence read-only.
    """
    D, H, W = plane_shape
    KD, KH, KW = kernel
    kd, kh, kw = np.meshgrid(np.arange(KD), np.arange(KH), np.arange(KW), indexing="ij")
    offsets = (kd * H * W + kh * W + kw).ravel().astype(np.int64)
    offsets.flags.writeable = False
    return offsets


@numba.njit(cache=True)
def maxpool(x, offsets, stride, y, argmax):  # pragma: no cover (compiled)
    """``y`` = max over each window of ``x (P, D, H, W)`` (``P = N*C`` planes); ``argmax`` = the
    winner's index in ``offsets`` (the kernel position in C order; the first wins ties)."""
    P, D, H, W = x.shape
    OD, OH, OW = y.shape[1:]
    sd, sh, sw = stride
    x = x.reshape(P, D * H * W)            # flat planes: a window is base + offsets
    y = y.reshape(P, OD * OH * OW)
    argmax = argmax.reshape(P, OD * OH * OW)
    for p in range(P):
        o = 0
        for od in range(OD):
            for oh in range(OH):
                row = od * sd * H * W + oh * sh * W
                for ow in range(OW):
                    base = row + ow * sw
                    best = x[p, base]
                    where = 0
                    for k in range(1, offsets.size):
                        value = x[p, base + offsets[k]]
                        if value > best:
                            best = value
                            where = k
                    y[p, o] = best
                    argmax[p, o] = where
                    o += 1


@numba.njit(cache=True)
def maxpool_backward(dy, argmax, offsets, stride, dx):  # pragma: no cover (compiled)
    """``dx (P, D, H, W)`` (zeroed here) receives each ``dy`` where its window's maximum was."""
    P, D, H, W = dx.shape
    OD, OH, OW = dy.shape[1:]
    sd, sh, sw = stride
    dx = dx.reshape(P, D * H * W)
    dy = dy.reshape(P, OD * OH * OW)
    argmax = argmax.reshape(P, OD * OH * OW)
    for p in range(P):
        dx[p] = 0
        o = 0
        for od in range(OD):
            for oh in range(OH):
                row = od * sd * H * W + oh * sh * W
                for ow in range(OW):
                    dx[p, row + ow * sw + offsets[argmax[p, o]]] += dy[p, o]
                    o += 1


# -- the rectifier: one pass where NumPy needs three (the mask, its cast, the product) ----------
@numba.njit(cache=True)
def relu(x, y, positive):  # pragma: no cover (compiled)
    """``positive = x > 0`` and ``y = x * positive`` (flat arrays), bit for bit as NumPy's
    formula: a negative ``x`` gives ``-0.0``, a NaN stays NaN."""
    zero, one = x.dtype.type(0), x.dtype.type(1)
    for i in range(x.size):
        p = x[i] > zero
        positive[i] = p
        y[i] = x[i] * (one if p else zero)


@numba.njit(cache=True)
def leaky_relu(x, alpha, y):  # pragma: no cover (compiled)
    """``y = max(x, alpha x)`` (flat arrays, ``0 <= alpha < 1``) in one pass, bit for bit as
    NumPy's ``maximum(x, alpha * x)`` (two passes): a NaN stays NaN."""
    for i in range(x.size):
        ax = alpha * x[i]
        y[i] = x[i] if x[i] > ax else ax


@numba.njit(cache=True)
def leaky_relu_backward(x, dy, alpha, dx):  # pragma: no cover (compiled)
    """``dx = dy`` where ``x > 0``, ``alpha dy`` elsewhere (flat arrays), in one pass: NumPy
    takes four over the mask (:meth:`nn.layers.activations.LeakyReLU._backward`)."""
    for i in range(x.size):
        dx[i] = dy[i] if x[i] > 0 else alpha * dy[i]


@numba.njit(cache=True)
def times_mask(a, mask, out):  # pragma: no cover (compiled)
    """``out = a * mask`` for a boolean ``mask`` (flat arrays), as NumPy computes it."""
    zero, one = a.dtype.type(0), a.dtype.type(1)
    for i in range(a.size):
        out[i] = a[i] * (one if mask[i] else zero)


# -- normalisation: statistics and normalisation in two passes, backward in two ------------------
#: Speed: the sums below may be added in any order (LLVM's ``reassoc`` flag, nothing else of
#: "fast math": NaN and infinity keep their meaning). Written in order, each ``s += x`` waits
#: for the one before (a floating-point addition takes 3-4 cycles), one number at a time;
#: reordered, the compiler keeps several partial sums in vector registers. Measured on the
#: 2-core VM, batch norm of the LeNet-like conv 1 output (64, 6, 784): forward 0.58 -> 0.14
#: ms, backward 0.32 -> 0.15 ms. The sums are in float64 and change in their last bits only.
REASSOCIATE = {"reassoc"}


@numba.njit(cache=True, fastmath=REASSOCIATE)
def batchnorm_forward(x, W, b, eps, y, xhat, inv_sigma, mean, var):  # pragma: no cover
    """Per channel of ``x (N, C, L)``: mean, biased variance, ``x̂``, ``y = W x̂ + b``.

    Pass 1 sums ``x``; pass 2 sums the squared deviations (two passes: the one-pass
    ``E[x²] - E[x]²`` loses digits when the mean is large); pass 3 writes ``x̂`` and ``y``.
    NumPy needs about eight passes and as many temporaries for the same.
    """
    N, C, L = x.shape
    M = N * L
    for c in range(C):
        s = 0.0
        for n in range(N):
            for l in range(L):
                s += x[n, c, l]
        mu = s / M
        ss = 0.0
        for n in range(N):
            for l in range(L):
                d = x[n, c, l] - mu
                ss += d * d
        v = ss / M
        inv = 1.0 / np.sqrt(v + eps)
        w, bb = W[c], b[c]
        for n in range(N):
            for l in range(L):
                h = (x[n, c, l] - mu) * inv
                xhat[n, c, l] = h
                y[n, c, l] = w * h + bb
        mean[c], var[c], inv_sigma[c] = mu, v, inv


@numba.njit(cache=True, fastmath=REASSOCIATE)
def batchnorm_backward(dy, xhat, inv_sigma, W, dx, dW, db):  # pragma: no cover
    """Pass 1: ``db = sum dy``, ``dW = sum dy x̂`` per channel; pass 2: the three-term ``dx``,
    ``W/sigma (dy - db/M - x̂ dW/M)`` (the means of ``dx̂ = W dy`` written with ``db``, ``dW``)."""
    N, C, L = dy.shape
    M = N * L
    for c in range(C):
        sdy = 0.0
        sdyx = 0.0
        for n in range(N):
            for l in range(L):
                g = dy[n, c, l]
                sdy += g
                sdyx += g * xhat[n, c, l]
        db[c], dW[c] = sdy, sdyx
        k = W[c] * inv_sigma[c]
        m1, m2 = sdy / M, sdyx / M
        for n in range(N):
            for l in range(L):
                dx[n, c, l] = k * (dy[n, c, l] - m1 - xhat[n, c, l] * m2)


@numba.njit(cache=True, fastmath=REASSOCIATE)
def groupnorm_forward(x, W, b, eps, y, xhat, inv_sigma):  # pragma: no cover
    """For each example and group of ``x (N, G, K, L)``: statistics over ``K`` channels and
    ``L`` positions (a contiguous block), then ``x̂`` and ``y = W x̂ + b`` per channel."""
    N, G, K, L = x.shape
    M = K * L
    for n in range(N):
        for g in range(G):
            s = 0.0
            for k in range(K):
                for l in range(L):
                    s += x[n, g, k, l]
            mu = s / M
            ss = 0.0
            for k in range(K):
                for l in range(L):
                    d = x[n, g, k, l] - mu
                    ss += d * d
            inv = 1.0 / np.sqrt(ss / M + eps)
            inv_sigma[n, g] = inv
            for k in range(K):
                w, bb = W[g, k], b[g, k]
                for l in range(L):
                    h = (x[n, g, k, l] - mu) * inv
                    xhat[n, g, k, l] = h
                    y[n, g, k, l] = w * h + bb


@numba.njit(cache=True, fastmath=REASSOCIATE)
def groupnorm_backward(dy, xhat, inv_sigma, W, dx, dW, db):  # pragma: no cover
    """Per example and group: the sums of ``dx̂ = W dy`` and ``dx̂ x̂``, then the three-term
    ``dx``; ``dW``, ``db`` (zeroed here) collect ``dy x̂`` and ``dy`` per channel."""
    N, G, K, L = dy.shape
    M = K * L
    dW[:] = 0
    db[:] = 0
    for n in range(N):
        for g in range(G):
            s1 = 0.0
            s2 = 0.0
            for k in range(K):
                w = W[g, k]
                sdy = 0.0
                sdyx = 0.0
                for l in range(L):
                    d = dy[n, g, k, l]
                    sdy += d
                    sdyx += d * xhat[n, g, k, l]
                db[g, k] += sdy
                dW[g, k] += sdyx
                s1 += w * sdy
                s2 += w * sdyx
            inv = inv_sigma[n, g]
            m1, m2 = s1 / M, s2 / M
            for k in range(K):
                w = W[g, k]
                for l in range(L):
                    dx[n, g, k, l] = inv * (w * dy[n, g, k, l] - m1 - xhat[n, g, k, l] * m2)


# -- float16 conversions (the "mixed" policy on the CPU) --------------------------------------------
# NumPy converts float32 <-> float16 one element at a time in scalar C code (about 0.1 GB/s);
# emulated mixed precision spends most of its time there. The kernels below do the same
# rounding (IEEE round to nearest, ties to even, overflow to inf) with integer operations on
# the bits, in one vectorisable pass; float16 -> float32 is a lookup in a table of the 65 536
# float16 values. The tests compare them with NumPy's conversions bit for bit.
@functools.lru_cache(maxsize=1)
def half_table() -> np.ndarray:
    """The float32 value of every float16 bit pattern (256 KiB, made once)."""
    table = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    table.flags.writeable = False
    return table


@numba.njit(cache=True, inline="always")
def _half_bits(f):  # pragma: no cover (compiled)
    """float16 bits of the float32 whose bits are ``f`` (an int64), rounded to nearest even."""
    sign = (f >> 16) & 0x8000
    f = f & 0x7FFFFFFF
    if f >= 0x47800000:                        # |x| >= 65536, inf or NaN
        o = 0x7E00 if f > 0x7F800000 else 0x7C00
    elif f < 0x38800000:                       # |x| < 2**-14: a float16 subnormal, or 0
        e = f >> 23
        if e < 102:                            # |x| < 2**-25 rounds to 0
            o = 0
        else:                                  # the value in units of 2**-24, rounded
            m = (f & 0x7FFFFF) | 0x800000
            shift = 126 - e
            o = m >> shift
            rest = m & ((1 << shift) - 1)
            half = 1 << (shift - 1)
            if rest > half or (rest == half and (o & 1) == 1):
                o += 1
    else:                                      # normal: rebias the exponent, round the mantissa
        f = f - (112 << 23) + 0xFFF + ((f >> 13) & 1)
        o = f >> 13                            # a carry into the exponent gives 65520 -> inf
    return o | sign


@numba.njit(cache=True)
def float_to_half(x, out):  # pragma: no cover (compiled)
    """``out`` (uint16, the float16 bits) = ``x`` (float32 bits as uint32) rounded to float16."""
    for i in range(x.size):
        out[i] = _half_bits(np.int64(x[i]))


@numba.njit(cache=True)
def round_to_half(x, table, out):  # pragma: no cover (compiled)
    """``out`` (float32) = the float32 ``x`` (as uint32 bits) rounded to float16, kept as float32."""
    for i in range(x.size):
        out[i] = table[_half_bits(np.int64(x[i]))]


@numba.njit(cache=True)
def half_to_float(bits, table, out):  # pragma: no cover (compiled)
    """``out`` (float32) = the float16 values whose bits are ``bits`` (uint16): a lookup."""
    for i in range(bits.size):
        out[i] = table[bits[i]]


# -- non-maximum suppression (nn.detection.nms) ------------------------------------------------
@numba.njit(cache=True)
def greedy_nms(boxes, threshold, keep):  # pragma: no cover (compiled)
    """The greedy loop on sorted ``boxes (n, 4)``: fills ``keep (n,)`` with the kept boxes.

    A kept box ``i`` can only suppress boxes that overlap it horizontally, whose ``x1`` lies
    in ``(x1_i - widest, x2_i)``: with the boxes also sorted by ``x1``, two binary searches
    find them. The IoU is computed as in :func:`nn.detection.boxes.iou` (same operations,
    same dtype), so both paths agree even for an IoU equal to the threshold.
    """
    n = boxes.shape[0]
    zero = boxes.dtype.type(0)
    suppressed = np.zeros(n, dtype=np.bool_)
    area = np.empty(n, dtype=boxes.dtype)
    widest = zero
    for i in range(n):
        w = max(boxes[i, 2] - boxes[i, 0], zero)
        area[i] = w * max(boxes[i, 3] - boxes[i, 1], zero)
        widest = max(widest, w)
    by_x = np.argsort(boxes[:, 0], kind="mergesort")
    # coordinates in x1 order, read in sequence by the inner loop (cache-friendly)
    sx1, sy1 = boxes[by_x, 0].copy(), boxes[by_x, 1].copy()
    sx2, sy2 = boxes[by_x, 2].copy(), boxes[by_x, 3].copy()
    for i in range(n):
        if suppressed[i]:
            continue
        keep[i] = True
        x1, y1, x2, y2 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        first = np.searchsorted(sx1, x1 - widest, side="right")
        last = np.searchsorted(sx1, x2, side="left")
        for k in range(first, last):
            j = by_x[k]
            if j <= i or suppressed[j]:     # j <= i: scores higher, already decided
                continue
            w = min(x2, sx2[k]) - max(x1, sx1[k])
            if w <= zero:
                continue
            h = min(y2, sy2[k]) - max(y1, sy1[k])
            if h <= zero:
                continue
            inter = w * h
            union = area[i] + area[j] - inter
            if union > zero and inter / union > threshold:
                suppressed[j] = True



# -- Winograd: the tile transforms (the maths is in nn/backends/winograd.py) ----------------------
# Cubes use F(2, 3): a 4x4x4 tile is four planes of 4x4 values, each plane in 16 local
# variables in (h, w) order (index 4 h + w), the planes combined along d with the same 1D
# formulas (index 16 d + 4 h + w). Images use F(4, 3), further below. (A version with loops
# over a small tile array, for any number of axes, ran 3 to 9 times slower: the compiler
# cannot unroll loops whose bounds it does not know.)
@numba.njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3):  # pragma: no cover (compiled)
    """``B^T d`` on 4 values."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@numba.njit(cache=True, inline="always")
def _b(v0, v1, v2, v3):  # pragma: no cover (compiled)
    """``B v`` on 4 values: the adjoint of ``_bt``."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


@numba.njit(cache=True, inline="always")
def _at(m0, m1, m2, m3):  # pragma: no cover (compiled)
    """``A^T m`` on 4 values."""
    return m0 + m1 + m2, m1 - m2 - m3


@numba.njit(cache=True, inline="always")
def _a(g0, g1):  # pragma: no cover (compiled)
    """``A g`` on 2 values: the adjoint of ``_at``."""
    return g0, g0 + g1, g0 - g1, -g1


@numba.njit(cache=True, inline="always")
def _input_tile(plane, r, q):  # pragma: no cover (compiled)
    """``B^T d B`` of the patch ``d = plane[r:r+4, q:q+4]``: 16 values."""
    a0, a1, a2, a3 = _bt(plane[r, q], plane[r, q + 1], plane[r, q + 2], plane[r, q + 3])  # rows
    b0, b1, b2, b3 = _bt(plane[r + 1, q], plane[r + 1, q + 1], plane[r + 1, q + 2], plane[r + 1, q + 3])
    c0, c1, c2, c3 = _bt(plane[r + 2, q], plane[r + 2, q + 1], plane[r + 2, q + 2], plane[r + 2, q + 3])
    e0, e1, e2, e3 = _bt(plane[r + 3, q], plane[r + 3, q + 1], plane[r + 3, q + 2], plane[r + 3, q + 3])
    v0, v4, v8, v12 = _bt(a0, b0, c0, e0)                                                 # columns
    v1, v5, v9, v13 = _bt(a1, b1, c1, e1)
    v2, v6, v10, v14 = _bt(a2, b2, c2, e2)
    v3, v7, v11, v15 = _bt(a3, b3, c3, e3)
    return (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15)


@numba.njit(cache=True, inline="always")
def _input_adjoint_tile(dV, base, c, p):  # pragma: no cover (compiled)
    """``B v B^T`` of ``v = dV[base:base+16, c, p]``: the 16 values to add onto a 4x4 patch."""
    a0, b0, c0, e0 = _b(dV[base, c, p], dV[base + 4, c, p], dV[base + 8, c, p], dV[base + 12, c, p])
    a1, b1, c1, e1 = _b(dV[base + 1, c, p], dV[base + 5, c, p], dV[base + 9, c, p], dV[base + 13, c, p])
    a2, b2, c2, e2 = _b(dV[base + 2, c, p], dV[base + 6, c, p], dV[base + 10, c, p], dV[base + 14, c, p])
    a3, b3, c3, e3 = _b(dV[base + 3, c, p], dV[base + 7, c, p], dV[base + 11, c, p], dV[base + 15, c, p])
    v0, v1, v2, v3 = _b(a0, a1, a2, a3)                                                   # rows
    v4, v5, v6, v7 = _b(b0, b1, b2, b3)
    v8, v9, v10, v11 = _b(c0, c1, c2, c3)
    v12, v13, v14, v15 = _b(e0, e1, e2, e3)
    return (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15)


@numba.njit(cache=True, inline="always")
def _add_patch(plane, r, q, t):  # pragma: no cover (compiled)
    """``plane[r:r+4, q:q+4] += t`` (16 values in (h, w) order)."""
    for h in range(4):
        row = plane[r + h]
        row[q] += t[4 * h]
        row[q + 1] += t[4 * h + 1]
        row[q + 2] += t[4 * h + 2]
        row[q + 3] += t[4 * h + 3]


# Speed: a loop ``for x in range(16): V[x, c, p] = t[x]`` indexes the tuple at run time, and
# ran 2 to 4 times slower than the 16 stores written out (measured); hence these helpers.
@numba.njit(cache=True, inline="always")
def _store16(A, base, c, p, t):  # pragma: no cover (compiled)
    """``A[base:base+16, c, p] = t``."""
    (A[base, c, p], A[base + 1, c, p], A[base + 2, c, p], A[base + 3, c, p],
     A[base + 4, c, p], A[base + 5, c, p], A[base + 6, c, p], A[base + 7, c, p],
     A[base + 8, c, p], A[base + 9, c, p], A[base + 10, c, p], A[base + 11, c, p],
     A[base + 12, c, p], A[base + 13, c, p], A[base + 14, c, p], A[base + 15, c, p]) = t


@numba.njit(cache=True, inline="always")
def _along_d(f, t0, t1, t2, t3):  # pragma: no cover (compiled)
    """``f`` (``_bt`` or ``_b``) applied along d to four planes of 16 values: four planes."""
    v0, v1, v2, v3 = f(t0[0], t1[0], t2[0], t3[0])
    w0, w1, w2, w3 = f(t0[1], t1[1], t2[1], t3[1])
    x0, x1, x2, x3 = f(t0[2], t1[2], t2[2], t3[2])
    y0, y1, y2, y3 = f(t0[3], t1[3], t2[3], t3[3])
    return ((v0, w0, x0, y0), (v1, w1, x1, y1), (v2, w2, x2, y2), (v3, w3, x3, y3))


@numba.njit(cache=True, inline="always")
def _along_d16(f, t0, t1, t2, t3):  # pragma: no cover (compiled)
    """:func:`_along_d` on planes of 16 values, four at a time."""
    a0, a1, a2, a3 = _along_d(f, t0[0:4], t1[0:4], t2[0:4], t3[0:4])
    b0, b1, b2, b3 = _along_d(f, t0[4:8], t1[4:8], t2[4:8], t3[4:8])
    c0, c1, c2, c3 = _along_d(f, t0[8:12], t1[8:12], t2[8:12], t3[8:12])
    e0, e1, e2, e3 = _along_d(f, t0[12:16], t1[12:16], t2[12:16], t3[12:16])
    return a0 + b0 + c0 + e0, a1 + b1 + c1 + e1, a2 + b2 + c2 + e2, a3 + b3 + c3 + e3


@numba.njit(cache=True)
def winograd_input_3d(xp, V):  # pragma: no cover (compiled)
    """``V (64, C, P)`` for cubes ``xp (N, C, 2 nd + 2, 2 nh + 2, 2 nw + 2)``: the tile's
    four planes (``_input_tile``), then ``B^T`` along d."""
    N, C, DP, HP, WP = xp.shape
    nd, nh, nw = (DP - 2) // 2, (HP - 2) // 2, (WP - 2) // 2
    for n in range(N):
        for c in range(C):
            for i in range(nd):
                x0, x1, x2, x3 = xp[n, c, 2 * i], xp[n, c, 2 * i + 1], xp[n, c, 2 * i + 2], xp[n, c, 2 * i + 3]
                for j in range(nh):
                    for k in range(nw):
                        p = ((n * nd + i) * nh + j) * nw + k
                        r, q = 2 * j, 2 * k
                        v0, v1, v2, v3 = _along_d16(_bt, _input_tile(x0, r, q), _input_tile(x1, r, q),
                                                    _input_tile(x2, r, q), _input_tile(x3, r, q))
                        _store16(V, 0, c, p, v0)
                        _store16(V, 16, c, p, v1)
                        _store16(V, 32, c, p, v2)
                        _store16(V, 48, c, p, v3)


@numba.njit(cache=True)
def winograd_input_adjoint_3d(dV, dxp):  # pragma: no cover (compiled)
    """The adjoint of :func:`winograd_input_3d`: each of the tile's four planes of ``dV``
    (``_input_adjoint_tile``), then ``B`` along d."""
    N, C, DP, HP, WP = dxp.shape
    nd, nh, nw = (DP - 2) // 2, (HP - 2) // 2, (WP - 2) // 2
    for n in range(N):
        for c in range(C):
            for i in range(nd):
                x0, x1, x2, x3 = dxp[n, c, 2 * i], dxp[n, c, 2 * i + 1], dxp[n, c, 2 * i + 2], dxp[n, c, 2 * i + 3]
                for j in range(nh):
                    for k in range(nw):
                        p = ((n * nd + i) * nh + j) * nw + k
                        r, q = 2 * j, 2 * k
                        q0, q1, q2, q3 = _along_d16(
                            _b, _input_adjoint_tile(dV, 0, c, p), _input_adjoint_tile(dV, 16, c, p),
                            _input_adjoint_tile(dV, 32, c, p), _input_adjoint_tile(dV, 48, c, p))
                        _add_patch(x0, r, q, q0)
                        _add_patch(x1, r, q, q1)
                        _add_patch(x2, r, q, q2)
                        _add_patch(x3, r, q, q3)


# -- Winograd's F(4, 3) for images: 6x6 tiles, 4x4 outputs ----------------------------------------
# Against F(2, 3) it needs 36 products per 16 outputs instead of 64, and its arrays hold 2.25
# values per input or output instead of 4: the VGG-ish step took 73 ms against 76-78. Its
# transforms read or write 36 arrays at once, which the CPU streams more slowly than 16.
# A tile is six rows of six values (index 6 a + j); each 1D formula takes and returns a tuple.
# The integer factors come in the arrays' dtype, ``k = (2, 4, 5, 8)`` (``_factors``): numba, as
# NumPy, would turn ``4 * d`` of a float32 ``d`` into a float64.
@numba.njit(cache=True, inline="always")
def _factors(dtype):  # pragma: no cover (compiled)
    return dtype.type(2), dtype.type(4), dtype.type(5), dtype.type(8)


@numba.njit(cache=True, inline="always")
def _bt6(d, k):  # pragma: no cover (compiled)
    """``B^T d`` of F(4, 3) on 6 values."""
    d0, d1, d2, d3, d4, d5 = d
    two, four, five, _ = k
    return (four * d0 - five * d2 + d4, d3 + d4 - four * (d1 + d2), four * (d1 - d2) - d3 + d4,
            two * (d3 - d1) - d2 + d4, two * (d1 - d3) - d2 + d4, four * d1 - five * d3 + d5)


@numba.njit(cache=True, inline="always")
def _b6(v, k):  # pragma: no cover (compiled)
    """``B v`` of F(4, 3) on 6 values: the adjoint of ``_bt6``."""
    v0, v1, v2, v3, v4, v5 = v
    two, four, five, _ = k
    return (four * v0, four * (v2 - v1 + v5) + two * (v4 - v3),
            -five * v0 - four * (v1 + v2) - v3 - v4, v1 - v2 + two * (v3 - v4) - five * v5,
            v0 + v1 + v2 + v3 + v4, v5)


@numba.njit(cache=True, inline="always")
def _at6(m, k):  # pragma: no cover (compiled)
    """``A^T m`` of F(4, 3): 6 values to 4 outputs."""
    m0, m1, m2, m3, m4, m5 = m
    two, four, _, eight = k
    return (m0 + m1 + m2 + m3 + m4, m1 - m2 + two * (m3 - m4), m1 + m2 + four * (m3 + m4),
            m1 - m2 + eight * (m3 - m4) + m5)


@numba.njit(cache=True, inline="always")
def _a6(g, k):  # pragma: no cover (compiled)
    """``A g`` of F(4, 3): 4 outputs to 6 values, the adjoint of ``_at6``."""
    g0, g1, g2, g3 = g
    two, four, _, eight = k
    return (g0, g0 + g1 + g2 + g3, g0 - g1 + g2 - g3, g0 + two * g1 + four * g2 + eight * g3,
            g0 - two * g1 + four * g2 - eight * g3, g3)


@numba.njit(cache=True, inline="always")
def _row6(row, q):  # pragma: no cover (compiled)
    return row[q], row[q + 1], row[q + 2], row[q + 3], row[q + 4], row[q + 5]



@numba.njit(cache=True, inline="always")
def _store_columns6(A, c, p, k0, k1, k2, k3, k4, k5):  # pragma: no cover (compiled)
    """``A[6 a + j, c, p] = kj[a]``: six transformed columns ``kj`` stored row by row
    (written out: a loop over ``a`` would index the tuples at run time, 2 to 4 times slower)."""
    (A[0, c, p], A[1, c, p], A[2, c, p], A[3, c, p], A[4, c, p], A[5, c, p]) = \
        k0[0], k1[0], k2[0], k3[0], k4[0], k5[0]
    (A[6, c, p], A[7, c, p], A[8, c, p], A[9, c, p], A[10, c, p], A[11, c, p]) = \
        k0[1], k1[1], k2[1], k3[1], k4[1], k5[1]
    (A[12, c, p], A[13, c, p], A[14, c, p], A[15, c, p], A[16, c, p], A[17, c, p]) = \
        k0[2], k1[2], k2[2], k3[2], k4[2], k5[2]
    (A[18, c, p], A[19, c, p], A[20, c, p], A[21, c, p], A[22, c, p], A[23, c, p]) = \
        k0[3], k1[3], k2[3], k3[3], k4[3], k5[3]
    (A[24, c, p], A[25, c, p], A[26, c, p], A[27, c, p], A[28, c, p], A[29, c, p]) = \
        k0[4], k1[4], k2[4], k3[4], k4[4], k5[4]
    (A[30, c, p], A[31, c, p], A[32, c, p], A[33, c, p], A[34, c, p], A[35, c, p]) = \
        k0[5], k1[5], k2[5], k3[5], k4[5], k5[5]



@numba.njit(cache=True)
def winograd_input_2d(xp, V):  # pragma: no cover (compiled)
    """``V (36, C, P)``: ``B^T d B`` of every 6x6 tile ``d`` of ``xp (N, C, 4 nh + 2, 4 nw + 2)``;
    tile ``p = (n nh + i) nw + k`` starts at row ``4 i``, column ``4 k``."""
    N, C, HP, WP = xp.shape
    nh, nw = (HP - 2) // 4, (WP - 2) // 4
    f = _factors(V.dtype)
    for n in range(N):
        for c in range(C):
            plane = xp[n, c]
            for i in range(nh):
                rows = plane[4 * i], plane[4 * i + 1], plane[4 * i + 2], plane[4 * i + 3], \
                    plane[4 * i + 4], plane[4 * i + 5]
                for k in range(nw):
                    q = 4 * k
                    r0, r1, r2 = _bt6(_row6(rows[0], q), f), _bt6(_row6(rows[1], q), f), _bt6(_row6(rows[2], q), f)
                    r3, r4, r5 = _bt6(_row6(rows[3], q), f), _bt6(_row6(rows[4], q), f), _bt6(_row6(rows[5], q), f)
                    _store_columns6(V, c, (n * nh + i) * nw + k,
                                    _bt6((r0[0], r1[0], r2[0], r3[0], r4[0], r5[0]), f),
                                    _bt6((r0[1], r1[1], r2[1], r3[1], r4[1], r5[1]), f),
                                    _bt6((r0[2], r1[2], r2[2], r3[2], r4[2], r5[2]), f),
                                    _bt6((r0[3], r1[3], r2[3], r3[3], r4[3], r5[3]), f),
                                    _bt6((r0[4], r1[4], r2[4], r3[4], r4[4], r5[4]), f),
                                    _bt6((r0[5], r1[5], r2[5], r3[5], r4[5], r5[5]), f))



# The 2D output transform and the adjoints (and the 3D output transform and its adjoint, at
# the end of this file) run on many tiles at once. Tile by tile, as the
# kernels above, each tile is about 200 scalar instructions and 36 loads from 36 matrices;
# here each step is a loop over every tile ``q`` of one channel whose body is the same
# formula on contiguous rows (``M[t, o, :]``, one per position ``t``), which the compiler
# turns into vector instructions (8 or 16 tiles per instruction). The transforms run in
# the same order as tile by tile (along the columns of each row first, then along the
# rows), so the results are the same bits. The tiles' image rows are laid out side by side
# (``rows[a, w q + j]``: row ``a`` of tile ``q``, column ``j``, ``w`` columns a tile), one
# copy away from the image. Measured on the VGG-ish 32 -> 64 layer (2-core VM), tile by
# tile against this: output transform 4.9 -> 2.4 ms, its adjoint 6.2 -> 1.8 ms, the input
# transform's adjoint 3.1 -> 2.4 ms. The input transform itself stays tile by tile (above):
# written this way (its tiles overlap, so their rows are first copied side by side) it took
# 2.3 ms either way on that layer, and 1.5 against 1.0 ms on the 64 -> 128 one. On the 3D
# 8 -> 16 layer (8 cubes of 16^3): output transform 2.4 -> 1.1 ms, its adjoint 3.6 -> 0.9
# ms; the 3D input transform and its adjoint stay tile by tile (not rewritten). The kernels
# get the ``T`` matrices as one flat buffer and the distance between two of them
# (:func:`_flat_slabs`): numba compiles the rows of a flat array as contiguous, but those
# of the skewed ``(T, O, P)`` array (:func:`nn.backends.winograd.slabs`) as strided, which
# it does not vectorise.

def _flat_slabs(A):
    """``(buffer, step)``: ``A (T, rows, cols)``, whose matrices are each contiguous, as a flat
    array in which matrix ``t`` starts at ``t * step``."""
    T, rows, cols = A.shape
    item = A.itemsize
    if A.strides[2] != item or A.strides[1] != cols * item or A.strides[0] % item:
        raise ValueError(f"the {T} matrices of A must each be contiguous, got strides {A.strides}")
    step = A.strides[0] // item
    size = step * (T - 1) + rows * cols
    return np.lib.stride_tricks.as_strided(A, (size,), (item,)), step


def winograd_input_adjoint_2d(dV, dxp):
    """Add ``B v B^T`` of every ``v = dV[:, c, p]`` onto its 6x6 tile of the zeroed, padded
    ``dxp (N, C, 4 nh + 2, 4 nw + 2)``: the adjoint of :func:`winograd_input_2d`.
    Neighbouring tiles overlap by 2 rows or columns, so the additions accumulate."""
    buffer, step = _flat_slabs(dV)
    _winograd_input_adjoint_2d(buffer, step, dxp)


def winograd_output_2d(M, b, y):
    """``y (N, O, H, W)``: ``A^T m A + b[o]`` of every tile ``m = M[:, o, p]`` (4x4 outputs,
    what fits of a last tile); ``M (36, O, P)``, tile ``p = (n nh + i) nw + k``."""
    buffer, step = _flat_slabs(M)
    _winograd_output_2d(buffer, step, b, y)


def winograd_output_adjoint_2d(dy, dM):
    """``dM (36, O, P)``: ``A g A^T`` of every 4x4 tile ``g`` of ``dy (N, O, H, W)`` (0 past
    the edge); the adjoint of :func:`winograd_output_2d`."""
    buffer, step = _flat_slabs(dM)
    _winograd_output_adjoint_2d(dy, buffer, step)


@numba.njit(cache=True, inline="always")
def _six_rows(A, start, stride, P):  # pragma: no cover (compiled)
    """``A[start + k stride :][:P]`` for ``k = 0..5``: six rows of the flat ``T`` matrices."""
    return (A[start:start + P], A[start + stride:start + stride + P],
            A[start + 2 * stride:start + 2 * stride + P], A[start + 3 * stride:start + 3 * stride + P],
            A[start + 4 * stride:start + 4 * stride + P], A[start + 5 * stride:start + 5 * stride + P])


@numba.njit(cache=True)
def _winograd_output_2d(M, step, b, y):  # pragma: no cover (compiled)
    N, O, H, W = y.shape
    nh, nw = (H + 3) // 4, (W + 3) // 4
    P = N * nh * nw
    f = _factors(M.dtype)
    R = np.empty((6, 4, P), dtype=M.dtype)      # A^T along each row of every tile
    rows = np.empty((4, 4 * P), dtype=M.dtype)   # then along the columns: the output rows
    for o in range(O):
        for r in range(6):                      # row r of the 6x6 tiles: M[6 r + c, o, :]
            m0, m1, m2, m3, m4, m5 = _six_rows(M, 6 * r * step + o * P, step, P)
            R0, R1, R2, R3 = R[r, 0], R[r, 1], R[r, 2], R[r, 3]
            for q in range(P):
                R0[q], R1[q], R2[q], R3[q] = _at6((m0[q], m1[q], m2[q], m3[q], m4[q], m5[q]), f)
        Y0, Y1, Y2, Y3 = rows[0], rows[1], rows[2], rows[3]
        for j in range(4):                      # output column j
            s0, s1, s2, s3, s4, s5 = R[0, j], R[1, j], R[2, j], R[3, j], R[4, j], R[5, j]
            for q in range(P):
                Y0[4 * q + j], Y1[4 * q + j], Y2[4 * q + j], Y3[4 * q + j] = \
                    _at6((s0[q], s1[q], s2[q], s3[q], s4[q], s5[q]), f)
        bias = b[o]
        for n in range(N):
            plane = y[n, o]
            for i in range(nh):
                start = (n * nh + i) * 4 * nw
                for a in range(min(4, H - 4 * i)):
                    row, source = plane[4 * i + a], rows[a, start:start + W]
                    for x in range(W):
                        row[x] = source[x] + bias


@numba.njit(cache=True)
def _winograd_output_adjoint_2d(dy, dM, step):  # pragma: no cover (compiled)
    N, O, H, W = dy.shape
    nh, nw = (H + 3) // 4, (W + 3) // 4
    P = N * nh * nw
    f = _factors(dM.dtype)
    rows = np.zeros((4, 4 * P), dtype=dM.dtype)  # dy's rows, tile by tile (0 past the edge)
    R = np.empty((4, 6, P), dtype=dM.dtype)      # A along each row of every tile
    for o in range(O):
        for n in range(N):
            plane = dy[n, o]
            for i in range(nh):
                start = (n * nh + i) * 4 * nw
                for a in range(min(4, H - 4 * i)):
                    row, target = plane[4 * i + a], rows[a, start:start + W]
                    for x in range(W):
                        target[x] = row[x]
        for a in range(4):                      # row a of the 4x4 tiles
            G, R0, R1, R2, R3, R4, R5 = rows[a], R[a, 0], R[a, 1], R[a, 2], R[a, 3], R[a, 4], R[a, 5]
            for q in range(P):
                R0[q], R1[q], R2[q], R3[q], R4[q], R5[q] = \
                    _a6((G[4 * q], G[4 * q + 1], G[4 * q + 2], G[4 * q + 3]), f)
        for c in range(6):                      # column c: dM[6 r + c, o, :] for the rows r
            s0, s1, s2, s3 = R[0, c], R[1, c], R[2, c], R[3, c]
            k0, k1, k2, k3, k4, k5 = _six_rows(dM, c * step + o * P, 6 * step, P)
            for q in range(P):
                k0[q], k1[q], k2[q], k3[q], k4[q], k5[q] = _a6((s0[q], s1[q], s2[q], s3[q]), f)


@numba.njit(cache=True)
def _winograd_input_adjoint_2d(dV, step, dxp):  # pragma: no cover (compiled)
    N, C, HP, WP = dxp.shape
    nh, nw = (HP - 2) // 4, (WP - 2) // 4
    P = N * nh * nw
    f = _factors(dV.dtype)
    R = np.empty((6, 6, P), dtype=dV.dtype)      # B along each row of every tile
    rows = np.empty((6, 6 * P), dtype=dV.dtype)  # then along the columns: rows[a, 6 q + j]
    for c in range(C):
        for r in range(6):                      # row r of the 6x6 tiles: dV[6 r + j, c, :]
            v0, v1, v2, v3, v4, v5 = _six_rows(dV, 6 * r * step + c * P, step, P)
            R0, R1, R2, R3, R4, R5 = R[r, 0], R[r, 1], R[r, 2], R[r, 3], R[r, 4], R[r, 5]
            for q in range(P):
                R0[q], R1[q], R2[q], R3[q], R4[q], R5[q] = \
                    _b6((v0[q], v1[q], v2[q], v3[q], v4[q], v5[q]), f)
        for j in range(6):                      # input column j
            s0, s1, s2, s3, s4, s5 = R[0, j], R[1, j], R[2, j], R[3, j], R[4, j], R[5, j]
            Z0, Z1, Z2, Z3, Z4, Z5 = rows[0], rows[1], rows[2], rows[3], rows[4], rows[5]
            for q in range(P):
                Z0[6 * q + j], Z1[6 * q + j], Z2[6 * q + j], Z3[6 * q + j], Z4[6 * q + j], \
                    Z5[6 * q + j] = _b6((s0[q], s1[q], s2[q], s3[q], s4[q], s5[q]), f)
        for n in range(N):                      # add up the overlapping tiles, in tile order
            plane = dxp[n, c]
            for i in range(nh):
                start = (n * nh + i) * nw * 6
                for a in range(6):
                    row, source = plane[4 * i + a], rows[a, start:start + 6 * nw]
                    for k in range(nw):
                        for j in range(6):
                            row[4 * k + j] += source[6 * k + j]


def winograd_output_3d(M, b, y):
    """``y (N, O, D, H, W)`` from ``M (64, O, P)``: ``A^T`` along w, h, then d of every tile
    (2x2x2 outputs, what fits of a last tile), plus ``b[o]``. Vectorised across tiles as the
    2D kernels (:func:`winograd_output_2d`); same bits as tile by tile."""
    buffer, step = _flat_slabs(M)
    _winograd_output_3d(buffer, step, b, y)


def winograd_output_adjoint_3d(dy, dM):
    """``dM (64, O, P)`` from ``dy (N, O, D, H, W)``: the adjoint of :func:`winograd_output_3d`,
    ``A`` along w, h, then d of every 2x2x2 tile (0 past the edge)."""
    buffer, step = _flat_slabs(dM)
    _winograd_output_adjoint_3d(dy, buffer, step)


@numba.njit(cache=True, inline="always")
def _cube_rows(cube, rows, first, bias, gather):  # pragma: no cover (compiled)
    """Copy between ``cube (D, H, W)`` and ``rows[e, a, 2 q + x]``, the rows of its 2x2x2
    tiles laid out side by side (tile ``q``, counted from ``first * nh * nw``; ``e``, ``a``
    its plane and row, ``x`` the column): ``rows`` from ``cube`` when ``gather``, else
    ``cube`` from ``rows`` plus ``bias``. What lies past the cube's edge is not touched."""
    D, H, W = cube.shape
    nd, nh, nw = (D + 1) // 2, (H + 1) // 2, (W + 1) // 2
    for i in range(nd):
        for e in range(min(2, D - 2 * i)):
            plane = cube[2 * i + e]
            for j in range(nh):
                start = 2 * ((first + i) * nh + j) * nw
                for a in range(min(2, H - 2 * j)):
                    row, tiles = plane[2 * j + a], rows[e, a, start:start + W]
                    if gather:
                        for x in range(W):
                            tiles[x] = row[x]
                    else:
                        for x in range(W):
                            row[x] = tiles[x] + bias


@numba.njit(cache=True)
def _winograd_output_3d(M, step, b, y):  # pragma: no cover (compiled)
    N, O, D, H, W = y.shape
    nd, nh, nw = (D + 1) // 2, (H + 1) // 2, (W + 1) // 2
    P = N * nd * nh * nw
    R1 = np.empty((4, 4, 2, P), dtype=M.dtype)   # A^T along w: [d, h, w out]
    R2 = np.empty((4, 2, 2, P), dtype=M.dtype)   # then along h: [d, h out, w out]
    rows = np.empty((2, 2, 2 * P), dtype=M.dtype)  # then along d: rows[d out, h out, 2 q + w out]
    for o in range(O):
        for d in range(4):
            for h in range(4):
                s = (16 * d + 4 * h) * step + o * P
                m0, m1 = M[s:s + P], M[s + step:s + step + P]
                m2, m3 = M[s + 2 * step:s + 2 * step + P], M[s + 3 * step:s + 3 * step + P]
                A0, A1 = R1[d, h, 0], R1[d, h, 1]
                for q in range(P):
                    A0[q], A1[q] = _at(m0[q], m1[q], m2[q], m3[q])
        for d in range(4):
            for w in range(2):
                s0, s1, s2, s3 = R1[d, 0, w], R1[d, 1, w], R1[d, 2, w], R1[d, 3, w]
                A0, A1 = R2[d, 0, w], R2[d, 1, w]
                for q in range(P):
                    A0[q], A1[q] = _at(s0[q], s1[q], s2[q], s3[q])
        for h in range(2):
            lower, upper = rows[0, h], rows[1, h]
            for w in range(2):
                s0, s1, s2, s3 = R2[0, h, w], R2[1, h, w], R2[2, h, w], R2[3, h, w]
                for q in range(P):
                    lower[2 * q + w], upper[2 * q + w] = _at(s0[q], s1[q], s2[q], s3[q])
        for n in range(N):
            _cube_rows(y[n, o], rows, n * nd, b[o], False)


@numba.njit(cache=True)
def _winograd_output_adjoint_3d(dy, dM, step):  # pragma: no cover (compiled)
    N, O, D, H, W = dy.shape
    nd, nh, nw = (D + 1) // 2, (H + 1) // 2, (W + 1) // 2
    P = N * nd * nh * nw
    rows = np.zeros((2, 2, 2 * P), dtype=dM.dtype)  # dy's rows, tile by tile (0 past the edge)
    S1 = np.empty((2, 2, 4, P), dtype=dM.dtype)     # A along w: [d, h, w]
    S2 = np.empty((2, 4, 4, P), dtype=dM.dtype)     # then along h
    for o in range(O):
        for n in range(N):
            _cube_rows(dy[n, o], rows, n * nd, dM.dtype.type(0), True)
        for e in range(2):
            for a in range(2):
                G, A0, A1, A2, A3 = rows[e, a], S1[e, a, 0], S1[e, a, 1], S1[e, a, 2], S1[e, a, 3]
                for q in range(P):
                    A0[q], A1[q], A2[q], A3[q] = _a(G[2 * q], G[2 * q + 1])
        for e in range(2):
            for w in range(4):
                s0, s1 = S1[e, 0, w], S1[e, 1, w]
                A0, A1, A2, A3 = S2[e, 0, w], S2[e, 1, w], S2[e, 2, w], S2[e, 3, w]
                for q in range(P):
                    A0[q], A1[q], A2[q], A3[q] = _a(s0[q], s1[q])
        for h in range(4):
            for w in range(4):
                s = (4 * h + w) * step + o * P
                s0, s1 = S2[0, h, w], S2[1, h, w]
                k0, k1 = dM[s:s + P], dM[s + 16 * step:s + 16 * step + P]
                k2, k3 = dM[s + 32 * step:s + 32 * step + P], dM[s + 48 * step:s + 48 * step + P]
                for q in range(P):
                    k0[q], k1[q], k2[q], k3[q] = _a(s0[q], s1[q])
