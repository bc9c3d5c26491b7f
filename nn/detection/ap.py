"""Average precision of a detector, as in the PASCAL VOC devkit (2010 and later).

For one class:

1. sort all detections (of every image) by descending score;
2. each detection goes to the target of its image that it overlaps most; it is a **true
   positive** when that IoU is above ``iou_threshold`` and the target is still free, which
   takes it; a **false positive** otherwise (no overlap, or the target was already taken by
   a better detection: a duplicate). A target flagged *difficult* neither rewards nor
   penalises: the detections it attracts are skipped;
3. after the ``k`` best detections, ``precision = TP_k / k`` and ``recall = TP_k / n_targets``
   (``n_targets`` counts the targets that are not difficult);
4. AP is the area under the precision-recall curve after replacing each precision by the
   best precision at any higher recall (the monotone "envelope"), over every point of the
   curve (all-point interpolation, not VOC 2007's 11 points).

mAP is the mean of the per-class APs.
"""
from __future__ import annotations

import math

import numpy as np

from .boxes import box_iou


def _host(a, dtype=None):
    a = a.get() if hasattr(a, "get") else a
    return np.asarray(a, dtype=dtype)


def _target_boxes(value, image_id):
    boxes = _host(value, np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"targets[{image_id!r}] must be an (n, 4) array of boxes, got shape "
                         f"{boxes.shape}")
    return boxes


def _is_box_array(a) -> bool:
    """True for an ``(n, 4)`` array of boxes (or an empty one), False for a single box."""
    a = _host(a)
    return a.ndim == 2 or a.size == 0


def _split_targets(targets, difficult):
    """``{image_id: (boxes (n, 4), difficult (n,) bool)}`` from the accepted target forms."""
    if not isinstance(targets, dict):
        raise TypeError(f"targets must be a dict image_id -> (n, 4) boxes, got "
                        f"{type(targets).__name__}")
    out = {}
    for image_id, value in targets.items():
        flags = None
        if isinstance(value, tuple) and len(value) == 2 and _is_box_array(value[0]):
            value, flags = value
        boxes = _target_boxes(value, image_id)
        if difficult is not None and image_id in difficult:
            flags = difficult[image_id]
        flags = np.zeros(len(boxes), bool) if flags is None else _host(flags).astype(bool).reshape(-1)
        if flags.shape != (len(boxes),):
            raise ValueError(f"image {image_id!r}: {len(boxes)} target boxes but {flags.size} "
                             "difficult flags")
        out[image_id] = (boxes, flags)
    return out


def _match(detections, targets, iou_threshold, difficult):
    """Scores and TP flags of the detections that count (difficult matches dropped), best first,
    and the number of targets that are not difficult."""
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold!r}")
    truth = _split_targets(targets, difficult)
    n_targets = int(sum((~flags).sum() for _, flags in truth.values()))
    n = len(detections)
    image_ids = [None] * n
    scores = np.empty(n)
    boxes = np.empty((n, 4))
    for k, det in enumerate(detections):
        try:
            image_ids[k], scores[k], boxes[k] = det[0], float(det[1]), _host(det[2]).reshape(4)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"detection {k} must be (image_id, score, box of 4 numbers), got "
                             f"{det!r}") from exc
    order = np.argsort(-scores, kind="stable")

    # the IoUs of each image's detections with its targets, in one matrix per image
    best_target = np.full(n, -1)
    best_iou = np.zeros(n)
    by_image: dict = {}
    for k, image_id in enumerate(image_ids):
        by_image.setdefault(image_id, []).append(k)
    for image_id, members in by_image.items():
        boxes_t = truth.get(image_id, (np.zeros((0, 4)), None))[0]
        if len(boxes_t):
            overlaps = box_iou(boxes[members], boxes_t)
            best_target[members] = overlaps.argmax(axis=1)
            best_iou[members] = overlaps.max(axis=1)

    taken = {image_id: np.zeros(len(b), bool) for image_id, (b, _) in truth.items()}
    counted = np.zeros(n, bool)
    tp = np.zeros(n, bool)
    for k in order:
        j = best_target[k]
        if j < 0 or not best_iou[k] > iou_threshold:
            counted[k] = True               # false positive: overlaps no target enough
            continue
        image_id = image_ids[k]
        if truth[image_id][1][j]:
            continue                        # a difficult target: neither TP nor FP
        counted[k] = True
        if not taken[image_id][j]:
            taken[image_id][j] = True
            tp[k] = True                    # else a duplicate: false positive
    kept = order[counted[order]]
    return scores[kept], tp[kept], n_targets


def precision_recall_curve(detections, targets, iou_threshold: float = 0.5, difficult=None):
    """Precision and recall after each detection, in descending score, for one class.

    Parameters
    ----------
    detections : list of (image_id, score, box)
        ``box`` is ``(x1, y1, x2, y2)``; image ids are any hashable values.
    targets : dict image_id -> (n, 4) boxes, or -> (boxes, difficult flags (n,))
        Every image that was searched should appear, with an empty ``(0, 4)`` array when it
        holds no target (its detections are then false positives either way).
    iou_threshold : float
        A detection matches a target when their IoU is above this value.
    difficult : dict image_id -> (n,) bool, optional
        Targets that neither count as missed nor make their detections false positives.

    Returns
    -------
    precision, recall, scores : (k,) arrays, one entry per counted detection (detections
    of difficult targets are left out), best score first.
    """
    scores, tp, n_targets = _match(detections, targets, iou_threshold, difficult)
    tp_cum = np.cumsum(tp)
    precision = tp_cum / np.arange(1, len(tp) + 1)
    recall = tp_cum / n_targets if n_targets else np.full(len(tp), np.nan)
    return precision, recall, scores


def interpolated_ap(precision, recall) -> float:
    """All-point interpolated AP: area under the monotone envelope of precision(recall).

    ``AP = sum_i (r_{i+1} - r_i) p_env(r_{i+1})`` with ``p_env(r) = max_{r' >= r} p(r')``,
    the curve extended by ``(r=0, p=0)`` and ``(r=1, p=0)``.
    """
    mrec = np.concatenate([[0.0], np.asarray(recall, float), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, float), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]          # the envelope
    step = np.flatnonzero(mrec[1:] != mrec[:-1])            # where recall moves
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


def average_precision(detections, targets, iou_threshold: float = 0.5, difficult=None) -> float:
    """Average precision of one class (VOC 2010+ all-point interpolation).

    Parameters
    ----------
    detections : list of (image_id, score, box)
    targets : dict image_id -> (n, 4) boxes (or -> (boxes, difficult flags))
    iou_threshold : float
        0.5 gives "AP@50".
    difficult : dict image_id -> (n,) bool, optional

    Returns
    -------
    float in [0, 1]; NaN when there is no target that is not difficult (AP is undefined).
    See the module docstring for the matching rule.
    """
    precision, recall, _ = precision_recall_curve(detections, targets, iou_threshold, difficult)
    if len(recall) and math.isnan(recall[0]):
        return math.nan
    if not len(recall):
        n_targets = sum((~f).sum() for _, f in _split_targets(targets, difficult).values())
        return 0.0 if n_targets else math.nan
    return interpolated_ap(precision, recall)


def mean_average_precision(detections, targets, n_classes: int, iou_threshold: float = 0.5):
    """Per-class APs and their mean.

    Parameters
    ----------
    detections : list of (image_id, class_id, score, box)
    targets : dict image_id -> (boxes (n, 4), class_ids (n,)) or (boxes, class_ids, difficult)
    n_classes : int
    iou_threshold : float

    Returns
    -------
    aps : (n_classes,) float array
        AP of each class; NaN for a class without any (non-difficult) target.
    mean : float
        Mean over the classes whose AP is defined (NaN when none is).
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"mean_average_precision: n_classes must be an int >= 1, got {n_classes!r}")
    if not isinstance(targets, dict):
        raise TypeError("mean_average_precision: targets must be a dict image_id -> "
                        f"(boxes, class_ids), got {type(targets).__name__}")
    per_class_dets = [[] for _ in range(n_classes)]
    for k, det in enumerate(detections):
        if len(det) != 4:
            raise ValueError(f"detection {k} must be (image_id, class_id, score, box), got {det!r}")
        image_id, c, score, box = det
        c = int(c)
        if not 0 <= c < n_classes:
            raise ValueError(f"detection {k} has class {c}, outside [0, {n_classes})")
        per_class_dets[c].append((image_id, score, box))
    per_class_targets = [{} for _ in range(n_classes)]
    for image_id, value in targets.items():
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
            raise ValueError(f"targets[{image_id!r}] must be (boxes, class_ids) or (boxes, "
                             "class_ids, difficult)")
        boxes = _target_boxes(value[0], image_id)
        ids = _host(value[1]).astype(np.int64).reshape(-1)
        flags = np.zeros(len(boxes), bool) if len(value) == 2 else _host(value[2]).astype(bool).reshape(-1)
        if ids.shape != (len(boxes),) or flags.shape != (len(boxes),):
            raise ValueError(f"targets[{image_id!r}]: {len(boxes)} boxes but {ids.size} class ids"
                             + ("" if len(value) == 2 else f" and {flags.size} difficult flags"))
        if ids.size and (ids.min() < 0 or ids.max() >= n_classes):
            raise ValueError(f"targets[{image_id!r}] holds class ids outside [0, {n_classes})")
        for c in range(n_classes):
            sel = ids == c
            per_class_targets[c][image_id] = (boxes[sel], flags[sel])
    aps = np.array([average_precision(per_class_dets[c], per_class_targets[c], iou_threshold)
                    for c in range(n_classes)])
    defined = aps[~np.isnan(aps)]
    return aps, float(defined.mean()) if defined.size else math.nan


__all__ = ["average_precision", "mean_average_precision", "precision_recall_curve",
           "interpolated_ap"]
