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

Every image that was searched must be a key of ``targets`` (with an empty ``(0, 4)`` array
when it holds no object): a detection whose image id is not among the targets is refused
with a :class:`~nn.errors.DataError` naming the id and its type, since ``5`` and ``"5"`` are
different keys and such a detection could never match anything. Boxes and scores must be
finite numbers (NaN or inf: a ``DataError`` giving the first bad index), and
``iou_threshold`` a number in [0, 1] (:class:`~nn.errors.ConfigError`).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backends import to_host
from ..checks import as_array, check_finite
from ..errors import ConfigError, DataError, ShapeError
from .boxes import as_boxes, box_iou


def _target_boxes(value, image_id, owner):
    return to_host(as_boxes(value, f"targets[{image_id!r}]", np, owner)).astype(np.float64)


def _is_box_array(a) -> bool:
    """True for an ``(n, 4)`` array of boxes (or an empty one), False for a single box."""
    try:
        a = np.asarray(to_host(a) if hasattr(a, "__cuda_array_interface__") else a)
    except ValueError:                       # a ragged list: not one array of boxes
        return False
    return a.ndim == 2 or a.size == 0


def _flags(value, n, what, owner):
    flags = to_host(as_array(value, what, owner, kinds="biuf")).reshape(-1)
    if flags.shape != (n,):
        raise ShapeError(f"{owner}: {what} holds {flags.size} flags for {n} target boxes; give "
                         "one per box")
    return flags.astype(bool)


def _class_ids(value, what, owner):
    """Integer class ids as an int64 host array; integral floats are accepted."""
    ids = to_host(as_array(value, what, owner)).reshape(-1)
    if ids.dtype.kind == "f":
        check_finite(ids, what, owner)
        if (ids != np.round(ids)).any():
            raise DataError(f"{owner}: {what} must be integer class ids, got {ids.tolist()[:5]}")
    return ids.astype(np.int64)


def _check_threshold(iou_threshold, owner):
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real) \
            or not 0 <= iou_threshold <= 1:
        raise ConfigError(f"{owner}: iou_threshold must be a number in [0, 1], got "
                          f"{iou_threshold!r}")


def _split_targets(targets, difficult, owner="average_precision"):
    """``{image_id: (boxes (n, 4), difficult (n,) bool)}`` from the accepted target forms."""
    if not isinstance(targets, dict):
        raise DataError(f"{owner}: targets must be a dict image_id -> (n, 4) boxes, got "
                        f"{type(targets).__name__}")
    if difficult is not None:
        if not isinstance(difficult, dict):
            raise DataError(f"{owner}: difficult must be a dict image_id -> (n,) bool flags, got "
                            f"{type(difficult).__name__}")
        stray = [k for k in difficult if k not in targets]
        if stray:
            raise DataError(f"{owner}: difficult names image {stray[0]!r} "
                            f"({type(stray[0]).__name__}), which is not a key of targets")
    out = {}
    for image_id, value in targets.items():
        flags = None
        if isinstance(value, tuple) and len(value) == 2 and _is_box_array(value[0]):
            value, flags = value
        boxes = _target_boxes(value, image_id, owner)
        if difficult is not None and image_id in difficult:
            flags = difficult[image_id]
        flags = np.zeros(len(boxes), bool) if flags is None else _flags(
            flags, len(boxes), f"the difficult flags of image {image_id!r}", owner)
        out[image_id] = (boxes, flags)
    return out


def _unknown_image(owner, k, image_id, keys):
    """The error for a detection whose image is not among the targets."""
    same_text = [key for key in keys if str(key) == str(image_id)]
    example = same_text[0] if same_text else next(iter(keys), None)
    hint = (f"targets has {example!r} ({type(example).__name__}): the same id with another "
            "type" if same_text else
            f"targets' keys look like {example!r} ({type(example).__name__})" if keys else
            "targets is empty")
    return DataError(f"{owner}: detection {k} is for image {image_id!r} "
                     f"({type(image_id).__name__}), which is not among the targets' image ids "
                     f"({hint}); every searched image must be a key of targets, with an empty "
                     "(0, 4) array when it holds no object, and with ids of the same type")


def _read_detections(detections, truth, owner):
    """Image ids, scores ``(n,)`` and boxes ``(n, 4)`` of ``(image_id, score, box)`` tuples."""
    try:
        detections = list(detections)
    except TypeError:
        raise DataError(f"{owner}: detections must be a list of (image_id, score, box), got "
                        f"{type(detections).__name__}") from None
    n = len(detections)
    image_ids = [None] * n
    scores = np.empty(n)
    boxes = np.empty((n, 4))
    for k, det in enumerate(detections):
        try:
            image_id, score, box = det
            if isinstance(score, (bool, str, bytes)):
                raise TypeError("a score must be a number")
            scores[k] = float(to_host(score) if hasattr(score, "__cuda_array_interface__")
                              else score)
            box = to_host(as_array(box, "box", owner)).astype(np.float64).reshape(-1)
            boxes[k] = box
        except (TypeError, ValueError, IndexError) as exc:
            raise DataError(f"{owner}: detection {k} must be (image_id, score, box of 4 "
                            f"numbers), got {det!r} ({exc})") from None
        try:
            known = image_id in truth
        except TypeError:
            raise DataError(f"{owner}: detection {k} has an image id {image_id!r} that cannot be "
                            "a dict key (use an int or a str)") from None
        if not known:
            raise _unknown_image(owner, k, image_id, list(truth))
        image_ids[k] = image_id
    check_finite(scores, "the scores of the detections", owner, "remove those detections")
    check_finite(boxes, "the boxes of the detections", owner,
                 "remove those detections (the index is (detection, coordinate))")
    return image_ids, scores, boxes


def _match(detections, targets, iou_threshold, difficult, owner="average_precision"):
    """Scores and TP flags of the detections that count (difficult matches dropped), best first,
    and the number of targets that are not difficult."""
    _check_threshold(iou_threshold, owner)
    truth = _split_targets(targets, difficult, owner)
    n_targets = int(sum((~flags).sum() for _, flags in truth.values()))
    image_ids, scores, boxes = _read_detections(detections, truth, owner)
    n = len(image_ids)
    order = np.argsort(-scores, kind="stable")

    # the IoUs of each image's detections with its targets, in one matrix per image
    best_target = np.full(n, -1)
    best_iou = np.zeros(n)
    by_image: dict = {}
    for k, image_id in enumerate(image_ids):
        by_image.setdefault(image_id, []).append(k)
    for image_id, members in by_image.items():
        boxes_t = truth[image_id][0]
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
        Every image that was searched must appear, with an empty ``(0, 4)`` array when it
        holds no target (its detections are then false positives). A detection for an image
        id that is not a key (``5`` against ``"5"``, say) is refused with a ``DataError``.
    iou_threshold : float
        A detection matches a target when their IoU is above this value.
    difficult : dict image_id -> (n,) bool, optional
        Targets that neither count as missed nor make their detections false positives.

    Returns
    -------
    precision, recall, scores : (k,) arrays, one entry per counted detection (detections
    of difficult targets are left out), best score first.
    """
    return _curve(detections, targets, iou_threshold, difficult, "precision_recall_curve")


def _curve(detections, targets, iou_threshold, difficult, owner):
    scores, tp, n_targets = _match(detections, targets, iou_threshold, difficult, owner)
    tp_cum = np.cumsum(tp)
    precision = tp_cum / np.arange(1, len(tp) + 1)
    recall = tp_cum / n_targets if n_targets else np.full(len(tp), np.nan)
    return precision, recall, scores


def interpolated_ap(precision, recall) -> float:
    """All-point interpolated AP: area under the monotone envelope of precision(recall).

    ``AP = sum_i (r_{i+1} - r_i) p_env(r_{i+1})`` with ``p_env(r) = max_{r' >= r} p(r')``,
    the curve extended by ``(r=0, p=0)`` and ``(r=1, p=0)``.
    """
    precision = np.asarray(precision, float).reshape(-1)
    recall = np.asarray(recall, float).reshape(-1)
    if precision.shape != recall.shape:
        raise ShapeError(f"interpolated_ap: {precision.size} precisions but {recall.size} "
                         "recalls; give the two arrays of precision_recall_curve")
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]          # the envelope
    step = np.flatnonzero(mrec[1:] != mrec[:-1])            # where recall moves
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


def average_precision(detections, targets, iou_threshold: float = 0.5, difficult=None) -> float:
    """Average precision of one class (VOC 2010+ all-point interpolation).

    Parameters
    ----------
    detections : list of (image_id, score, box)
        Finite scores and boxes; every ``image_id`` must be a key of ``targets``.
    targets : dict image_id -> (n, 4) boxes (or -> (boxes, difficult flags))
        Every searched image, with a ``(0, 4)`` array when it holds no target.
    iou_threshold : float
        0.5 gives "AP@50".
    difficult : dict image_id -> (n,) bool, optional

    Returns
    -------
    float in [0, 1]; NaN when there is no target that is not difficult (AP is undefined).
    See the module docstring for the matching rule.
    """
    return _average_precision(detections, targets, iou_threshold, difficult, "average_precision")


def _average_precision(detections, targets, iou_threshold, difficult, owner):
    precision, recall, _ = _curve(detections, targets, iou_threshold, difficult, owner)
    if len(recall) and math.isnan(recall[0]):
        return math.nan
    if not len(recall):
        n_targets = sum((~f).sum() for _, f in _split_targets(targets, difficult, owner).values())
        return 0.0 if n_targets else math.nan
    return interpolated_ap(precision, recall)


def mean_average_precision(detections, targets, n_classes: int, iou_threshold: float = 0.5):
    """Per-class APs and their mean.

    Parameters
    ----------
    detections : list of (image_id, class_id, score, box)
        Every ``image_id`` must be a key of ``targets`` (a ``DataError`` names it otherwise).
    targets : dict image_id -> (boxes (n, 4), class_ids (n,)) or (boxes, class_ids, difficult)
        Every searched image, with empty arrays when it holds no target.
    n_classes : int
    iou_threshold : float

    Returns
    -------
    aps : (n_classes,) float array
        AP of each class; NaN for a class without any (non-difficult) target.
    mean : float
        Mean over the classes whose AP is defined (NaN when none is).
    """
    owner = "mean_average_precision"
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
        raise ConfigError(f"{owner}: n_classes must be an int >= 1, got {n_classes!r}")
    _check_threshold(iou_threshold, owner)
    if not isinstance(targets, dict):
        raise DataError(f"{owner}: targets must be a dict image_id -> (boxes, class_ids), got "
                        f"{type(targets).__name__}")
    per_class_targets = [{} for _ in range(n_classes)]
    for image_id, value in targets.items():
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
            raise DataError(f"{owner}: targets[{image_id!r}] must be (boxes, class_ids) or "
                            f"(boxes, class_ids, difficult), got {type(value).__name__}")
        boxes = _target_boxes(value[0], image_id, owner)
        ids = _class_ids(value[1], f"the class ids of targets[{image_id!r}]", owner)
        if ids.shape != (len(boxes),):
            raise ShapeError(f"{owner}: targets[{image_id!r}] has {len(boxes)} boxes but "
                             f"{ids.size} class ids; give one per box")
        flags = np.zeros(len(boxes), bool) if len(value) == 2 else _flags(
            value[2], len(boxes), f"the difficult flags of targets[{image_id!r}]", owner)
        if ids.size and (ids.min() < 0 or ids.max() >= n_classes):
            raise DataError(f"{owner}: targets[{image_id!r}] holds class ids outside "
                            f"[0, {n_classes}): {ids[(ids < 0) | (ids >= n_classes)][0]}")
        for c in range(n_classes):
            sel = ids == c
            per_class_targets[c][image_id] = (boxes[sel], flags[sel])
    per_class_dets = [[] for _ in range(n_classes)]
    try:
        detections = list(detections)
    except TypeError:
        raise DataError(f"{owner}: detections must be a list of (image_id, class_id, score, "
                        f"box), got {type(detections).__name__}") from None
    for k, det in enumerate(detections):
        try:
            image_id, c, score, box = det
        except (TypeError, ValueError):
            raise DataError(f"{owner}: detection {k} must be (image_id, class_id, score, box), "
                            f"got {det!r}") from None
        c = _class_ids(c, f"the class id of detection {k}", owner)
        if c.size != 1 or not 0 <= c[0] < n_classes:
            raise DataError(f"{owner}: detection {k} has class {c.tolist()}, not one id in "
                            f"[0, {n_classes}) (outside the classes)")
        try:
            known = image_id in targets
        except TypeError:
            raise DataError(f"{owner}: detection {k} has an image id {image_id!r} that cannot be "
                            "a dict key (use an int or a str)") from None
        if not known:
            raise _unknown_image(owner, k, image_id, list(targets))
        per_class_dets[int(c[0])].append((image_id, score, box))
    aps = np.array([_average_precision(per_class_dets[c], per_class_targets[c], iou_threshold,
                                       None, owner) for c in range(n_classes)])
    defined = aps[~np.isnan(aps)]
    return aps, float(defined.mean()) if defined.size else math.nan


__all__ = ["average_precision", "mean_average_precision", "precision_recall_curve",
           "interpolated_ap"]
