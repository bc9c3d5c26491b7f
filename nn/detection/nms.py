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
through a dozen temporary arrays; the plain greedy loop compiled by numba
(:func:`nn.backends.cpu_kernels.greedy_nms`) visits only the boxes that overlap a kept box
horizontally and is far faster, so NumPy arrays take that path (``nn.use("numpy",
numba=False)`` selects the array version, for comparison).

Bad input is refused before any work: boxes as in :mod:`nn.detection.boxes` (``(n, 4)``
real numbers), one finite score per box (a NaN score would be ranked last and a NaN box
would overlap nothing, so both are :class:`~nn.errors.DataError` naming the first bad
index), ``iou_threshold`` a number in [0, 1] (:class:`~nn.errors.ConfigError`).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backends
from ..backends import to_host
from ..checks import as_array, check_finite
from ..errors import ConfigError, ShapeError
from .boxes import _iou, array_module, as_boxes

#: boxes resolved together; a (BLOCK, BLOCK) matrix is cheap, and few rounds are needed
BLOCK = 256


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
    owner = "nms"
    xp = array_module(boxes, scores)
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real) \
            or not 0 <= iou_threshold <= 1:
        raise ConfigError(f"nms: iou_threshold must be a number in [0, 1], got {iou_threshold!r}")
    boxes = as_boxes(boxes, "boxes", xp, owner)
    scores = xp.asarray(as_array(scores, "scores", owner))
    if scores.shape != (boxes.shape[0],):
        raise ShapeError(f"nms: {boxes.shape[0]} boxes but scores of shape {tuple(scores.shape)}; "
                         "give one score per box")
    check_finite(scores, "scores", owner, "remove those boxes or fix their scores")
    order = _descending(xp, scores)
    if classes is None:
        return order[_greedy(xp, boxes[order], iou_threshold)]
    classes = xp.asarray(as_array(classes, "classes", owner))
    if classes.shape != scores.shape:
        raise ShapeError(f"nms: {scores.shape[0]} boxes but classes of shape "
                         f"{tuple(classes.shape)}; give one class id per box")
    check_finite(classes, "classes", owner)
    # per class, in the global score order: the kept indices then merge already sorted
    keep = xp.zeros(order.shape[0], dtype=bool)
    sorted_classes = classes[order]
    for c in np.unique(to_host(sorted_classes)):
        members = xp.flatnonzero(sorted_classes == c)
        keep[members[_greedy(xp, boxes[order[members]], iou_threshold)]] = True
    return order[keep]


def _descending(xp, scores):
    """Stable descending order (ties: lower index first)."""
    return xp.argsort(-scores.astype(np.float64), kind="stable").astype(np.int64)


def _greedy(xp, boxes, threshold):
    """Boolean mask of the kept boxes of ``boxes``, already sorted by descending score."""
    kernels = backends.current().numba_kernels() if xp is np else None
    if kernels is not None and boxes.dtype in (np.float32, np.float64):
        keep = np.zeros(boxes.shape[0], dtype=bool)
        # the threshold in the boxes' dtype, as NumPy compares an array with a Python float
        kernels.greedy_nms(np.ascontiguousarray(boxes), boxes.dtype.type(threshold), keep)
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
        alive = ~(_iou(xp, kept[:, None], block[None]) > threshold).any(axis=0)
        # suppresses[j, i]: box j comes before box i and overlaps it too much
        suppresses = (_iou(xp, block[:, None], block[None]) > threshold) & later
        mine = alive
        for _ in range(b):
            nxt = alive & ~(suppresses & mine[:, None]).any(axis=0)
            if bool((nxt == mine).all()):
                break
            mine = nxt
        keep[start:start + b] = mine
        kept = xp.concatenate([kept, block[mine]])
    return keep


__all__ = ["nms", "BLOCK"]
