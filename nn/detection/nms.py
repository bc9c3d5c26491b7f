"""Non-maximum suppression: keep the best of each group of boxes that overlap.

The greedy rule (every detector since Viola-Jones): take the boxes in descending score;
keep a box unless it overlaps an already kept box by an IoU *above* ``iou_threshold``.

Written as a Python loop over boxes it costs one IoU per (kept, remaining) pair and one
interpreter step each. Here the boxes go in blocks of :data:`BLOCK`: a block is first
compared with all the boxes kept so far (one ``(kept, BLOCK)`` IoU matrix), then resolved
inside itself. Inside a block, box ``i`` is kept when no *kept* box ``j < i`` overlaps it;
starting from "all kept" and re-applying that rule converges, after at most ``BLOCK``
rounds (usually 2 or 3), to exactly the greedy answer: after round ``r`` the first ``r``
boxes are decided, and the rule has one solution. Every step is an array operation, so
the same code runs on a GPU, where it is used.

On the CPU the array version still computes an IoU for every (kept, later) pair, each
through a dozen temporary arrays; the plain greedy loop compiled by numba (:func:`_greedy_cpu`)
visits only the boxes that overlap a kept box horizontally and is far faster, so NumPy
arrays take that path (``USE_NUMBA = False`` selects the array version, for comparison).
"""
from __future__ import annotations

import numba
import numpy as np

from .boxes import array_module, as_boxes, iou

#: boxes resolved together; a (BLOCK, BLOCK) matrix is cheap, and few rounds are needed
BLOCK = 256
#: NumPy inputs use the compiled greedy loop
USE_NUMBA = True


def nms(boxes, scores, iou_threshold: float = 0.5, classes=None):
    """Indices of the boxes kept by greedy non-maximum suppression, in descending score.

    Parameters
    ----------
    boxes : (n, 4) array
        ``(x1, y1, x2, y2)``; NumPy or CuPy.
    scores : (n,) array
        Higher is better. Equal scores keep the order of ``boxes``.
    iou_threshold : float
        A box is removed when its IoU with a kept box is above this value.
    classes : (n,) int array, optional
        When given, boxes of different classes never suppress each other (per-class NMS).

    Returns
    -------
    (k,) int64 array of indices into ``boxes``, highest score first (on the input's device).
    """
    xp = array_module(boxes, scores)
    boxes = as_boxes(boxes, "nms: boxes", xp)
    scores = xp.asarray(scores)
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"nms: {boxes.shape[0]} boxes but scores of shape {tuple(scores.shape)}; "
                         "give one score per box")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"nms: iou_threshold must lie in [0, 1], got {iou_threshold!r}")
    order = _descending(xp, scores)
    if classes is None:
        return order[_greedy(xp, boxes[order], iou_threshold)]
    classes = xp.asarray(classes)
    if classes.shape != scores.shape:
        raise ValueError(f"nms: {scores.shape[0]} boxes but classes of shape "
                         f"{tuple(classes.shape)}; give one class id per box")
    # per class, in the global score order: the kept indices then merge already sorted
    keep = xp.zeros(order.shape[0], dtype=bool)
    sorted_classes = classes[order]
    for c in np.unique(_host(sorted_classes)):
        members = xp.flatnonzero(sorted_classes == c)
        keep[members[_greedy(xp, boxes[order[members]], iou_threshold)]] = True
    return order[keep]


def _descending(xp, scores):
    """Stable descending order (ties: lower index first)."""
    return xp.argsort(-scores.astype(np.float64), kind="stable").astype(np.int64)


def _greedy(xp, boxes, threshold):
    """Boolean mask of the kept boxes of ``boxes``, already sorted by descending score."""
    if xp is np and USE_NUMBA and boxes.dtype in (np.float32, np.float64):
        keep = np.zeros(boxes.shape[0], dtype=bool)
        # the threshold in the boxes' dtype, as NumPy compares an array with a Python float
        _greedy_cpu(np.ascontiguousarray(boxes), boxes.dtype.type(threshold), keep)
        return keep
    n = boxes.shape[0]
    keep = xp.zeros(n, dtype=bool)
    kept = boxes[:0]
    later = None
    for start in range(0, n, BLOCK):
        block = boxes[start:start + BLOCK]
        b = block.shape[0]
        if later is None or later.shape[0] != b:
            later = xp.triu(xp.ones((b, b), dtype=bool), k=1)   # later[j, i]: j before i
        # alive: not suppressed by a box kept in an earlier block
        alive = ~(iou(kept[:, None], block[None]) > threshold).any(axis=0)
        # suppresses[j, i]: box j comes before box i and overlaps it too much
        suppresses = (iou(block[:, None], block[None]) > threshold) & later
        mine = alive
        for _ in range(b):
            nxt = alive & ~(suppresses & mine[:, None]).any(axis=0)
            if bool((nxt == mine).all()):
                break
            mine = nxt
        keep[start:start + b] = mine
        kept = xp.concatenate([kept, block[mine]])
    return keep


@numba.njit(cache=True)
def _greedy_cpu(boxes, threshold, keep):  # pragma: no cover (compiled)
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


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


__all__ = ["nms", "BLOCK"]
