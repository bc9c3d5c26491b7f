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
    """Add ``cols (C, KD, KH, KW, N, OD, OH, OW)`` into the zeroed, padded ``xt (C, N, D, H, W)``.

    One output row ``(od, oh)`` of one kernel offset is a run of ``OW`` values added to a
    row of ``xt`` with step ``sw``: the innermost loop, contiguous when ``sw == 1``.
    """
    C, KD, KH, KW, N, OD, OH, OW = cols.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for c in range(C):
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    for n in range(N):
                        for od in range(OD):
                            z = od * sd + kd * dd
                            for oh in range(OH):
                                target = xt[c, n, z, oh * sh + kh * dh]
                                source = cols[c, kd, kh, kw, n, od, oh]
                                u = kw * dw
                                if sw == 1:      # lets the compiler vectorize the common case
                                    for ow in range(OW):
                                        target[u + ow] += source[ow]
                                else:
                                    for ow in range(OW):
                                        target[u + ow * sw] += source[ow]


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
def times_mask(a, mask, out):  # pragma: no cover (compiled)
    """``out = a * mask`` for a boolean ``mask`` (flat arrays), as NumPy computes it."""
    zero, one = a.dtype.type(0), a.dtype.type(1)
    for i in range(a.size):
        out[i] = a[i] * (one if mask[i] else zero)


# -- normalisation: statistics and normalisation in two passes, backward in two ------------------
@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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
