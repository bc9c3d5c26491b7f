# %% [markdown]
# # Detection metrics by hand: IoU, non-maximum suppression and average precision
#
# **What you will learn:** how detections are judged: the overlap of two boxes, the
# suppression of duplicate detections, and the PASCAL VOC average precision (AP@50, mAP)
# that the course's detectors report. **Estimated time:** 1.5 to 2 hours.
#
# The slides: `shared/course/001_597c6f3b4d88b483.txt`, "How to estimate box
# « correctness » ?" (IoU), "Post-processing: Non Max Suppression" and "Detection
# performance metric" / "The precision-recall curve" / "Per class AP and Mean AP"
# (also in `004_3d9df880d40eb3ff.txt`).
#
# A detector answers "what is where": a list of boxes, each with a class and a score. To
# judge it we need three tools, which you write here and then find in the library
# (`nn.detection`):
#
# 1. **IoU**, intersection over union, measures how well two boxes agree:
#
#        IoU(A, B) = |A ∩ B| / |A ∪ B|,   |A ∪ B| = |A| + |B| - |A ∩ B|
#
#    1 for identical boxes, 0 for disjoint ones. Boxes are `(x1, y1, x2, y2)` in pixels,
#    real numbers: compute in floating point, never in integers.
# 2. **Non-maximum suppression (NMS)**: a detector fires several times around each object.
#    Take the boxes by descending score; keep a box unless it overlaps an already kept box
#    by an IoU *above* a threshold.
# 3. **Average precision (AP)**, the PASCAL VOC way. Sort all detections of all images by
#    descending score. Each detection goes to the target of its image that it overlaps
#    most: a *true positive* (TP) if that IoU is above the threshold (0.5 for "AP@50") and
#    the target is still free (the detection takes it); a *false positive* (FP) otherwise
#    (a miss, or a duplicate of an already found target). Targets flagged *difficult* (here:
#    radio sources fainter than 5 sigma) neither reward nor punish: their detections are
#    skipped. After the `k` best detections
#
#        precision_k = TP_k / k        recall_k = TP_k / (number of targets that are not difficult)
#
#    AP is the area under precision(recall) after each precision is replaced by the best
#    precision at any higher recall (the *envelope*), over every point (all-point
#    interpolation). mAP is the mean AP over the classes.

# %%
import numpy as np


def iou(box_a, box_b):
    """IoU of two boxes ``(x1, y1, x2, y2)``, a float in [0, 1] (0 when both are empty).

    Example: ``iou((0, 0, 2, 2), (1, 1, 3, 3)) = 1 / 7``.
    """
    raise NotImplementedError("★ the overlap rectangle (its width and height never negative), its area, the union of the two areas, and their ratio, in floating point")
    return value


def iou_matrix(a, b):
    """IoU of every box of ``a (n, 4)`` with every box of ``b (m, 4)``: an ``(n, m)`` array.

    No Python loop: ``a`` arrives with an axis of length 1 in the middle, ``b`` with one in
    front, so NumPy broadcasts each operation over all the pairs. A pair of empty boxes
    (union 0) has IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    raise NotImplementedError("★★ the same quantities as in iou, with element-wise minima and maxima that broadcast over all the pairs; guard the empty unions")
    return matrix


def nms(boxes, scores, iou_threshold=0.5):
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first.

    Visit the boxes by descending score (``order``, a stable sort: equal scores keep their
    order); keep a box unless its IoU with a box kept before is above ``iou_threshold``
    (strictly above: an IoU equal to the threshold is kept).

    Returns
    -------
    (k,) int array of indices into ``boxes``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    raise NotImplementedError("★★ the greedy rule of the slides (NMS): visit the boxes by descending score, keep one when no kept box overlaps it above the threshold")
    return np.array(kept, dtype=np.int64)


def match_detections(detections, targets, iou_threshold=0.5, difficult=None):
    """The VOC matching of one class's detections to its targets.

    Parameters
    ----------
    detections : list of (image_id, score, box)
    targets : dict image_id -> (n, 4) array of target boxes
    iou_threshold : float
    difficult : dict image_id -> (n,) bool array, optional

    Returns
    -------
    scores : (k,) scores of the detections that count, in descending order
    tp : (k,) bool, True for a true positive, False for a false positive
    n_targets : int, the number of targets that are not difficult

    Each detection, by descending score (stable), goes to the target it overlaps most in
    its image. IoU above the threshold and target free: TP, and the target is taken. Above
    the threshold but the target difficult: skipped (not returned). Otherwise (no target,
    IoU too small, target already taken): FP.
    """
    difficult = difficult or {}
    flags = {k: np.asarray(difficult.get(k, np.zeros(len(v))), dtype=bool) for k, v in targets.items()}
    n_targets = int(sum((~f).sum() for f in flags.values()))
    taken = {k: np.zeros(len(v), dtype=bool) for k, v in targets.items()}
    order = np.argsort([-float(d[1]) for d in detections], kind="stable")
    scores, tp = [], []
    raise NotImplementedError("★★★ for each detection by descending score, its best-overlapping target in its image, then the rule of the docstring (true positive, false positive or skipped)")
    return np.array(scores, dtype=np.float64), np.array(tp, dtype=bool), n_targets


def precision_recall(tp, n_targets):
    """Precision and recall after each detection (``tp`` sorted by descending score).

    ``precision_k = TP_k / k`` and ``recall_k = TP_k / n_targets``, ``TP_k`` the number of
    true positives among the first ``k`` detections.
    """
    tp = np.asarray(tp, dtype=np.float64)
    raise NotImplementedError("★ the running count of true positives, divided by the number of detections so far and by the number of targets")
    return precision, recall


def interpolated_ap(precision, recall):
    """Area under the envelope of precision(recall), over every point of the curve.

    Add the points ``(recall 0, precision 0)`` at the start and ``(recall 1, precision 0)``
    at the end; replace each precision by the largest precision at the same or a higher
    recall (a running maximum from the end); sum ``(r_{i+1} - r_i) * p_{i+1}`` over the
    points where the recall changes.
    """
    r = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    raise NotImplementedError("★★ the envelope (a running maximum taken from the high recalls down), then the area of the steps where the recall grows")
    return ap


def average_precision(detections, targets, iou_threshold=0.5, difficult=None):
    """AP of one class: the three steps above put together."""
    _, tp, n_targets = match_detections(detections, targets, iou_threshold, difficult)
    precision, recall = precision_recall(tp, n_targets)
    return interpolated_ap(precision, recall)


def noisy_detector(targets, rng, hits=3, jitter=0.4, false_per_image=3, size=128):
    """A stand-in for a detector: a few jittered boxes around each source (scores higher for
    brighter sources), and some false alarms with low scores. Returns a list of
    ``(image_id, class_id, score, box)``."""
    detections = []
    for image_id, t in enumerate(targets):
        snr = t["params"][:, 0] * 9 / (t["params"][:, 1] * t["params"][:, 2])
        for box, c, s in zip(t["boxes"], t["classes"], snr):
            for _ in range(rng.integers(1, hits + 1)):
                score = 1 / (1 + np.exp(-(np.log(s) - 1.6) * 3)) * rng.uniform(0.7, 1.0)
                cls = c if rng.random() < 0.9 else 1 - c
                detections.append((image_id, int(cls), float(score),
                                   box + rng.normal(0, jitter * (1 + 4 / s), 4)))
        for _ in range(rng.poisson(false_per_image)):
            xy = rng.uniform(0, size - 8, 2)
            detections.append((image_id, int(rng.integers(0, 2)), float(rng.uniform(0, 0.6)),
                               np.concatenate([xy, xy + rng.uniform(5, 12, 2)])))
    return detections


# %% [markdown]
# ## The experiment
#
# Thirty images of the synthetic radio sky (`nn.data.make_radio_sky`), and a fake
# detector that fires a few times around each source with some jitter, plus some false
# alarms. NMS cleans up the duplicates; AP measures the result, per class (point and
# extended sources), with the sources fainter than 5 sigma marked difficult. Your functions
# are compared with the library's at each step.

# %%
if __name__ == "__main__":
    from nn.course import show
    from nn.data import RADIO_CLASSES, make_radio_sky
    from nn.detection import (average_precision as library_ap, nms as library_nms,
                              plot_detections, plot_precision_recall, precision_recall_curve)

    print("IoU of (0, 0, 2, 2) and (1, 1, 3, 3):", iou((0, 0, 2, 2), (1, 1, 3, 3)), "= 1/7")
    images, targets = make_radio_sky(30, size=128, seed=0, sources_per_image=8,
                                     extended_fraction=0.5)
    rng = np.random.default_rng(0)
    raw = noisy_detector(targets, rng)
    print(f"{len(raw)} raw detections for {sum(len(t['boxes']) for t in targets)} sources")

# %%
if __name__ == "__main__":
    # NMS per image and class, by hand and by the library
    detections = []
    for image_id in range(len(images)):
        for c in range(2):
            mine = [d for d in raw if d[0] == image_id and d[1] == c]
            boxes = np.array([d[3] for d in mine]).reshape(-1, 4)
            scores = np.array([d[2] for d in mine])
            kept = nms(boxes, scores, 0.4)
            assert kept.tolist() == library_nms(boxes, scores, 0.4).tolist()
            detections += [mine[k] for k in kept]
    print(f"{len(detections)} detections after NMS (the library keeps the same ones)")

# %%
if __name__ == "__main__":
    # AP per class, sources fainter than 5 sigma difficult
    aps = []
    for c, name in enumerate(RADIO_CLASSES):
        dets = [(d[0], d[2], d[3]) for d in detections if d[1] == c]
        truth = {i: t["boxes"][t["classes"] == c] for i, t in enumerate(targets)}
        snr = {i: (t["params"][:, 0] * 9 / (t["params"][:, 1] * t["params"][:, 2]))[t["classes"] == c]
               for i, t in enumerate(targets)}
        hard = {i: s < 5 for i, s in snr.items()}
        ap = average_precision(dets, truth, 0.5, hard)
        reference = library_ap(dets, truth, 0.5, difficult=hard)
        print(f"AP@50 {name:<9} {ap:.4f} (library {reference:.4f})")
        aps.append(ap)
        precision, recall, _ = precision_recall_curve(dets, truth, 0.5, difficult=hard)
        if c == 0:
            fig = plot_precision_recall(precision, recall, label=f"{name}: AP {ap:.2f}")
        else:
            plot_precision_recall(precision, recall, ax=fig.axes[0], label=f"{name}: AP {ap:.2f}")
    print(f"mAP@50 {np.mean(aps):.4f}")
    show(fig, "precision_recall")

# %%
if __name__ == "__main__":
    before = [d for d in raw if d[0] == 0]
    after = [d for d in detections if d[0] == 0]
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    plot_detections(np.arcsinh(images[0, 0]), [d[3] for d in before], targets[0]["boxes"],
                    ax=axes[0], title=f"before NMS: {len(before)} boxes")
    plot_detections(np.arcsinh(images[0, 0]), [d[3] for d in after], targets[0]["boxes"],
                    ax=axes[1], title=f"after NMS: {len(after)} boxes (dashed: truth)")
    show(fig, "nms")
