"""Detection metrics: box conversions, IoU/GIoU/DIoU, NMS and AP/mAP against plain references.

The references below are written the slow, obvious way (Python loops over boxes, the VOC
devkit's matching loop), independently of the library's vectorised code.
"""
from __future__ import annotations

import importlib
import math
import subprocess
import sys

import numpy as np
import pytest

from nn import backends
from nn.detection import (average_precision, box_area, box_iou, centers_to_corners,
                          corners_to_centers, diou, distance_box_iou, generalized_box_iou, giou,
                          interpolated_ap, iou, mean_average_precision, nms, plot_detections,
                          plot_precision_recall, precision_recall_curve)
from nn.errors import ConfigError, DataError, ShapeError
nms_module = importlib.import_module("nn.detection.nms")


# -- references ---------------------------------------------------------------------------------
def ref_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_enclosing(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def ref_giou(a, b):
    c = ref_enclosing(a, b)
    area_c = (c[2] - c[0]) * (c[3] - c[1])
    inter_union = ref_iou(a, b)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return inter_union - (area_c - union) / area_c


def ref_diou(a, b):
    c = ref_enclosing(a, b)
    d2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    c2 = (c[2] - c[0]) ** 2 + (c[3] - c[1]) ** 2
    return ref_iou(a, b) - d2 / c2


def ref_nms(boxes, scores, threshold):
    """Greedy NMS in plain Python: the definition."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(ref_iou(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


def ref_voc_ap(detections, targets, threshold, difficult=None):
    """The VOC devkit's voc_eval (py-faster-rcnn port) with use_07_metric=False."""
    difficult = difficult or {}
    recs = {k: {"bbox": np.asarray(v, float).reshape(-1, 4),
                "difficult": np.asarray(difficult.get(k, np.zeros(len(v))), bool),
                "det": [False] * len(v)} for k, v in targets.items()}
    npos = sum(int((~r["difficult"]).sum()) for r in recs.values())
    order = sorted(range(len(detections)), key=lambda i: (-detections[i][1], i))
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, k in enumerate(order):
        image_id, _, box = detections[k]
        r = recs.get(image_id, {"bbox": np.zeros((0, 4)), "difficult": [], "det": []})
        ovmax, jmax = -math.inf, -1
        for j, g in enumerate(r["bbox"]):
            o = ref_iou(box, g)
            if o > ovmax:
                ovmax, jmax = o, j
        if ovmax > threshold:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp[d] = 1
                    r["det"][jmax] = True
                else:
                    fp[d] = 1
        else:
            fp[d] = 1
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / npos
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def random_boxes(rng, n, size=100.0, wmin=2.0, wmax=30.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(wmin, wmax, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def clustered_boxes(rng, n, n_objects, size=200.0):
    """Many jittered candidates around each object, as a detector outputs before NMS."""
    centres = rng.uniform(0, size, (n_objects, 2))
    sizes = rng.uniform(5, 40, (n_objects, 2))
    k = rng.integers(0, n_objects, n)
    c = centres[k] + rng.normal(0, 2.5, (n, 2))
    wh = sizes[k] * rng.uniform(0.8, 1.25, (n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


# -- conversions and areas ----------------------------------------------------------------------
def test_corners_centers_round_trip_and_values():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 11)
    c = corners_to_centers(boxes)
    np.testing.assert_allclose(c[:, 0], (boxes[:, 0] + boxes[:, 2]) / 2)
    np.testing.assert_allclose(c[:, 3], boxes[:, 3] - boxes[:, 1])
    np.testing.assert_allclose(centers_to_corners(c), boxes, rtol=1e-12, atol=1e-12)
    assert corners_to_centers(np.array([2, 4, 6, 10])).tolist() == [4, 7, 4, 6]
    # any leading shape
    stacked = boxes.reshape(11, 1, 4).repeat(3, axis=1)
    assert corners_to_centers(stacked).shape == (11, 3, 4)


def test_integer_boxes_are_promoted_not_truncated():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3]])
    assert box_iou(a, b).dtype == np.float64
    assert box_iou(a, b)[0, 0] == pytest.approx(1 / 7)
    assert corners_to_centers(np.array([[0, 0, 3, 5]])).tolist() == [[1.5, 2.5, 3, 5]]
    assert box_area(np.array([[0, 0, 3, 5], [4, 4, 2, 2]])).tolist() == [15, 0]


def test_float32_stays_float32():
    boxes = random_boxes(np.random.default_rng(1), 4).astype(np.float32)
    assert box_iou(boxes, boxes).dtype == np.float32
    assert box_iou(boxes.astype(np.float16), boxes).dtype == np.float32


# -- IoU, GIoU, DIoU ----------------------------------------------------------------------------
@pytest.mark.parametrize("n, m", [(1, 1), (5, 3), (7, 13)])
def test_box_iou_matches_loop_reference(n, m):
    rng = np.random.default_rng(n * 31 + m)
    a, b = random_boxes(rng, n, size=30), random_boxes(rng, m, size=30)
    b[0] = a[0] + rng.uniform(-3, 3, 4)          # at least one pair overlaps
    out = box_iou(a, b)
    assert out.shape == (n, m)
    expected = np.array([[ref_iou(p, q) for q in b] for p in a])
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
    assert (out > 0).any()
    np.testing.assert_allclose(box_iou(b, a), out.T)


def test_box_iou_special_cases():
    box = np.array([[1.5, 2.5, 7.25, 9.0]])
    assert box_iou(box, box)[0, 0] == 1
    assert box_iou(box, box + 20)[0, 0] == 0
    touching = np.array([[7.25, 2.5, 9.0, 9.0]])            # shares an edge: no area
    assert box_iou(box, touching)[0, 0] == 0
    empty = np.array([[3.0, 3.0, 3.0, 3.0]])
    out = box_iou(empty, np.concatenate([empty, box]))
    assert np.isfinite(out).all() and (out == 0).all()      # 0, not NaN
    inside = np.array([[2.0, 3.0, 4.0, 5.0]])
    assert box_iou(inside, box)[0, 0] == pytest.approx(4 / (5.75 * 6.5))
    assert box_iou(np.zeros((0, 4)), box).shape == (0, 1)
    assert box_iou(box, []).shape == (1, 0)


def test_element_wise_iou_broadcasts():
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 6), random_boxes(rng, 6)
    np.testing.assert_allclose(iou(a, b), np.diag(box_iou(a, b)))
    np.testing.assert_allclose(iou(a[:, None], b[None]), box_iou(a, b))


def test_box_iou_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        box_iou(np.zeros((3, 5)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="box_iou: b"):
        box_iou(np.zeros((3, 4)), np.zeros((2, 4, 1)))


@pytest.mark.parametrize("fn, ref", [(generalized_box_iou, ref_giou), (distance_box_iou, ref_diou)])
def test_giou_diou_match_references(fn, ref):
    rng = np.random.default_rng(3)
    a, b = random_boxes(rng, 6), random_boxes(rng, 9, size=60)
    expected = np.array([[ref(p, q) for q in b] for p in a])
    np.testing.assert_allclose(fn(a, b), expected, rtol=1e-12, atol=1e-15)
    out = fn(a, b)
    assert (out <= box_iou(a, b) + 1e-15).all() and (out >= -1).all()
    assert (out < 0).any()                           # disjoint pairs are told apart
    np.testing.assert_allclose(np.diag(fn(a, a)), 1.0)


def test_giou_diou_aliases_and_values():
    assert giou is generalized_box_iou and diou is distance_box_iou
    a = np.array([[0.0, 0, 1, 1]])
    b = np.array([[2.0, 0, 3, 1]])          # disjoint, enclosing box 3 x 1
    assert giou(a, b)[0, 0] == pytest.approx(-1 / 3)
    assert diou(a, b)[0, 0] == pytest.approx(-4 / 10)


# -- NMS ------------------------------------------------------------------------------------------
@pytest.fixture(params=["numba", "arrays"])
def nms_path(request, monkeypatch):
    """Run the NMS tests on both CPU paths (the array path is the GPU's too), with a small
    block so that several blocks and long suppression chains inside a block occur."""
    monkeypatch.setattr(nms_module, "BLOCK", 16)
    with backends.using(numba=request.param == "numba"):
        yield request.param


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_nms_matches_greedy_reference(nms_path, threshold, kind):
    rng = np.random.default_rng(int(threshold * 10) + (kind == "clustered"))
    boxes = random_boxes(rng, 150) if kind == "uniform" else clustered_boxes(rng, 150, 12)
    scores = rng.random(150)
    keep = nms(boxes, scores, threshold)
    expected = ref_nms(boxes.tolist(), scores.tolist(), threshold)
    assert keep.tolist() == expected
    assert keep.dtype == np.int64
    assert 0 < len(keep) < 150 or threshold == 1.0


def test_nms_sliding_chain(nms_path):
    """Boxes sliding one pixel at a time with decreasing score: every other one survives a
    chain of suppressions, which needs many rounds inside one block."""
    x = np.arange(40, dtype=float)
    boxes = np.stack([x, np.zeros(40), x + 3, np.full(40, 3.0)], axis=1)
    scores = np.linspace(1, 0.1, 40)
    keep = nms(boxes, scores, 0.45)
    assert keep.tolist() == ref_nms(boxes.tolist(), scores.tolist(), 0.45)
    assert keep.tolist() == list(range(0, 40, 2))


def test_nms_threshold_is_strict_and_ties_keep_order(nms_path):
    boxes = np.array([[0.0, 0, 2, 1], [0, 0, 1, 1]])          # IoU exactly 1/2
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.49).tolist() == [0]
    same = np.array([[0.0, 0, 10, 10]] * 3)
    assert nms(same, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(same, np.array([0.4, 0.5, 0.5]), 0.5).tolist() == [1]


def test_nms_per_class(nms_path):
    rng = np.random.default_rng(7)
    boxes = clustered_boxes(rng, 120, 8, size=80)
    scores = rng.random(120)
    classes = rng.integers(0, 3, 120)
    keep = nms(boxes, scores, 0.4, classes=classes)
    expected = []
    for c in range(3):
        members = np.flatnonzero(classes == c)
        expected += [members[i] for i in ref_nms(boxes[members].tolist(),
                                                  scores[members].tolist(), 0.4)]
    expected.sort(key=lambda i: -scores[i])
    assert keep.tolist() == expected
    assert len(keep) > len(nms(boxes, scores, 0.4))   # other classes no longer suppress
    # two identical boxes of different classes are both kept
    two = np.array([[0.0, 0, 5, 5]] * 2)
    assert nms(two, np.array([0.9, 0.8]), 0.5, classes=np.array([0, 1])).tolist() == [0, 1]


def test_nms_float32_and_empty(nms_path):
    rng = np.random.default_rng(8)
    boxes = random_boxes(rng, 60).astype(np.float32)
    scores = rng.random(60).astype(np.float32)
    assert nms(boxes, scores, 0.3).tolist() == ref_nms(boxes.astype(float).tolist(),
                                                       scores.tolist(), 0.3)
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_errors():
    with pytest.raises(ValueError, match="one score per box"):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(np.zeros((3, 4)), np.zeros(3), 1.5)
    with pytest.raises(ValueError, match="one class id per box"):
        nms(np.zeros((3, 4)), np.zeros(3), 0.5, classes=np.zeros(2))


def test_nms_on_device_arrays(backend_name):
    """Device arrays in, device indices out (the array path on a GPU)."""
    B = backends.use(backend_name)
    rng = np.random.default_rng(9)
    boxes, scores = clustered_boxes(rng, 300, 20), rng.random(300)
    keep = nms(B.asarray(boxes), B.asarray(scores), 0.5)
    assert type(keep) is type(B.xp.zeros(1))
    expected = ref_nms(boxes.astype(np.float32).astype(float).tolist(),
                       scores.astype(np.float32).tolist(), 0.5)
    assert host(keep).tolist() == expected


# -- AP ----------------------------------------------------------------------------------------------
def test_ap_by_hand():
    """Three targets in two images; five detections worked out on paper.

    In score order: d1 TP (a), d2 duplicate of a -> FP, d3 TP (c), d4 no overlap -> FP,
    d5 TP (b). Precision 1, 1/2, 2/3, 2/4, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1.
    Envelope: 1 up to recall 1/3, 2/3 up to 2/3, 3/5 up to 1: AP = (1 + 2/3 + 3/5) / 3.
    """
    targets = {"img0": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]),
               "img1": np.array([[5, 5, 15, 15]])}
    dets = [("img0", 0.9, [0, 0, 10, 10]),       # a
            ("img0", 0.8, [1, 1, 10, 10]),       # duplicate of a
            ("img1", 0.7, [5, 5, 14, 15]),       # c
            ("img1", 0.6, [40, 40, 50, 50]),     # nothing
            ("img0", 0.5, [21, 20, 30, 31])]     # b
    precision, recall, scores = precision_recall_curve(dets, targets)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.7, 0.6, 0.5])
    assert average_precision(dets, targets) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert average_precision(dets, targets) == pytest.approx(ref_voc_ap(dets, targets, 0.5))
    # a detection list given in another order gives the same AP
    assert average_precision(dets[::-1], targets) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_ap_detection_goes_to_its_best_target_even_if_taken():
    """VOC rule: the second detection overlaps target A most (taken) -> false positive, even
    though it also overlaps target B above the threshold."""
    targets = {0: np.array([[0.0, 0, 10, 10], [2, 0, 12, 10]])}
    dets = [(0, 0.9, [0, 0, 10, 10]), (0, 0.8, [0.5, 0, 10.5, 10])]
    precision, recall, _ = precision_recall_curve(dets, targets)
    np.testing.assert_allclose(precision, [1, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5])
    assert average_precision(dets, targets) == pytest.approx(0.5)


def test_ap_difficult_targets_neither_tp_nor_fp():
    targets = {0: np.array([[0.0, 0, 10, 10], [30, 30, 40, 40]])}
    difficult = {0: np.array([False, True])}
    dets = [(0, 0.9, [30, 30, 40, 40]), (0, 0.8, [0, 0, 10, 10]), (0, 0.7, [31, 30, 40, 40])]
    assert average_precision(dets, targets, difficult=difficult) == 1.0
    precision, recall, scores = precision_recall_curve(dets, targets, difficult=difficult)
    assert scores.tolist() == [0.8] and recall.tolist() == [1.0]
    # the same flags given with the boxes
    assert average_precision(dets, {0: (targets[0], difficult[0])}) == 1.0
    # without the flag, the first detection is a TP of the second target
    assert average_precision(dets, targets) == pytest.approx(ref_voc_ap(dets, targets, 0.5))
    assert len(precision_recall_curve(dets, targets)[0]) == 3


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.75])
def test_ap_matches_voc_devkit_on_random_data(threshold):
    rng = np.random.default_rng(int(threshold * 100))
    targets, difficult, dets = {}, {}, []
    for image in range(12):
        truth = random_boxes(rng, int(rng.integers(0, 6)), size=80, wmin=5, wmax=25)
        targets[image] = truth
        difficult[image] = rng.random(len(truth)) < 0.2
        for box in truth:                       # a few noisy hits per target, some misses
            for _ in range(int(rng.integers(0, 3))):
                dets.append((image, float(rng.random()), box + rng.normal(0, 1.0, 4)))
        for box in random_boxes(rng, int(rng.integers(0, 3)), size=80):
            dets.append((image, float(rng.random()) * 0.6, box))
    targets[99] = np.zeros((0, 4))                      # an image without targets
    dets.append((99, 0.95, np.array([0.0, 0, 5, 5])))
    ap = average_precision(dets, targets, threshold, difficult=difficult)
    assert ap == pytest.approx(ref_voc_ap(dets, targets, threshold, difficult), abs=1e-12)
    assert 0.05 < ap < 0.95


def test_ap_edge_cases():
    targets = {0: np.array([[0.0, 0, 10, 10]])}
    assert average_precision([(0, 0.5, [0, 0, 10, 10])], targets) == 1.0
    assert average_precision([], targets) == 0.0
    assert math.isnan(average_precision([(0, 0.5, [0, 0, 10, 10])], {0: np.zeros((0, 4))}))
    assert math.isnan(average_precision([], {0: np.zeros((0, 4))}))
    # IoU exactly 0.5 is not above 0.5
    half = [(0, 0.5, [0, 0, 10, 20])]
    assert average_precision(half, targets, 0.5) == 0.0
    assert average_precision(half, targets, 0.49) == 1.0
    # a detection in a searched image without target: a false positive
    with_empty = {**targets, 5: np.zeros((0, 4))}
    assert average_precision([(5, 0.9, [0, 0, 1, 1]), (0, 0.5, [0, 0, 10, 10])],
                             with_empty) == pytest.approx(0.5)
    # an image id that is not among the targets is refused (it could never match)
    with pytest.raises(DataError, match=r"detection 0 is for image 5 \(int\)"):
        average_precision([(5, 0.9, [0, 0, 1, 1])], targets)
    with pytest.raises(ValueError, match="image_id, score, box"):
        average_precision([(0, 0.5)], targets)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        average_precision([], {0: np.zeros((2, 3))})


def test_interpolated_ap_envelope():
    # a dip in precision is filled by the later, higher precision
    assert interpolated_ap([1.0, 0.5, 0.75], [0.25, 0.25, 0.75]) == pytest.approx(
        0.25 * 1.0 + 0.5 * 0.75)


def test_mean_average_precision():
    targets = {0: (np.array([[0.0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 1])),
               1: (np.array([[0.0, 0, 10, 10], [50, 50, 60, 60]]), np.array([1, 1]),
                   np.array([False, True]))}
    dets = [(0, 0, 0.9, [0, 0, 10, 10]),          # class 0: TP
            (0, 1, 0.8, [0, 0, 10, 10]),          # class 1 on a class-0 target: FP
            (0, 1, 0.7, [20, 20, 30, 30]),        # class 1: TP
            (1, 1, 0.6, [0, 0, 10, 10]),          # class 1: TP
            (1, 1, 0.5, [50, 50, 60, 60])]        # difficult: ignored
    aps, mean = mean_average_precision(dets, targets, n_classes=3)
    assert aps.shape == (3,)
    assert aps[0] == 1.0
    # class 1: precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> envelope 2/3 everywhere
    assert aps[1] == pytest.approx(2 / 3)
    assert math.isnan(aps[2])                     # no target of class 2: left out
    assert mean == pytest.approx((1 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="outside"):
        mean_average_precision([(0, 3, 0.5, [0, 0, 1, 1])], targets, n_classes=3)
    with pytest.raises(ValueError, match="class ids outside"):
        mean_average_precision([], targets, n_classes=1)


# -- bad input: the error type and a message that names the problem ------------------------------
NAN_BOX = [[0.0, 0, 10, 10], [1, np.nan, 5, 5]]
T = {0: np.array([[0.0, 0, 10, 10]])}
BAD_INPUTS = [
    ("box_iou NaN", lambda: box_iou(NAN_BOX, [[0, 0, 1, 1]]), DataError,
     r"box_iou: a holds NaN at index \(1, 1\)"),
    ("box_iou inf", lambda: box_iou([[0, 0, 1, 1]], [[0, 0, np.inf, 1]]), DataError,
     r"box_iou: b holds inf at index \(0, 2\)"),
    ("box_iou strings", lambda: box_iou([["a", "b", "c", "d"]], [[0, 0, 1, 1]]), DataError,
     "box_iou: a holds strings"),
    ("box_iou ragged", lambda: box_iou([[0, 0, 1, 1], [0, 1]], [[0, 0, 1, 1]]), DataError,
     "box_iou: a is a ragged list"),
    ("box_iou (3, 5)", lambda: box_iou(np.zeros((3, 5)), np.zeros((2, 4))), ShapeError,
     r"box_iou: a must have shape \(n, 4\).*\(3, 5\)"),
    ("giou NaN", lambda: giou(NAN_BOX, NAN_BOX), DataError, "generalized_box_iou: a holds NaN"),
    ("diou NaN", lambda: diou([[0, 0, 1, 1]], NAN_BOX), DataError, "distance_box_iou: b holds NaN"),
    ("iou NaN", lambda: iou(np.array(NAN_BOX), np.zeros((2, 4))), DataError, "iou: a holds NaN"),
    ("iou (2, 3)", lambda: iou(np.zeros((2, 3)), np.zeros((2, 4))), ShapeError,
     r"iou: a must have shape \(\.\.\., 4\)"),
    ("box_area NaN", lambda: box_area(NAN_BOX), DataError, "box_area: boxes holds NaN"),
    ("corners_to_centers (5,)", lambda: corners_to_centers([1, 2, 3, 4, 5]), ShapeError,
     r"corners_to_centers: boxes must have shape \(\.\.\., 4\)"),
    ("centers_to_corners complex", lambda: centers_to_corners(np.ones(4) * 1j), DataError,
     "centers_to_corners: boxes holds complex numbers"),
    ("nms NaN box", lambda: nms(NAN_BOX, [0.9, 0.8]), DataError,
     r"nms: boxes holds NaN at index \(1, 1\)"),
    ("nms NaN score", lambda: nms([[0, 0, 1, 1], [2, 2, 3, 3]], [0.9, np.nan]), DataError,
     r"nms: scores holds NaN at index \(1,\)"),
    ("nms string scores", lambda: nms([[0, 0, 1, 1]], ["high"]), DataError,
     "nms: scores holds strings"),
    ("nms threshold string", lambda: nms([[0, 0, 1, 1]], [0.5], "0.5"), ConfigError,
     "nms: iou_threshold must be a number in"),
    ("nms 2-D scores", lambda: nms(np.zeros((2, 4)), np.zeros((2, 1))), ShapeError,
     "one score per box"),
    ("nms NaN classes", lambda: nms(np.zeros((2, 4)), np.zeros(2), classes=[0, np.nan]), DataError,
     "nms: classes holds NaN"),
    ("AP image id type", lambda: average_precision([(5, 0.9, [0, 0, 1, 1])], {"5": np.zeros((1, 4))}),
     DataError, (r"detection 0 is for image 5 \(int\).*targets has '5' \(str\): the same id "
                 "with another type")),
    ("AP unknown image", lambda: average_precision([(0, 0.9, [0, 0, 1, 1]), ("b", 0.5, [0, 0, 1, 1])], T),
     DataError, r"detection 1 is for image 'b' \(str\).*keys look like 0 \(int\)"),
    ("AP unhashable id", lambda: average_precision([([0], 0.9, [0, 0, 1, 1])], T), DataError,
     "cannot be a dict key"),
    ("AP NaN score", lambda: average_precision([(0, np.nan, [0, 0, 1, 1])], T), DataError,
     r"average_precision: the scores of the detections holds NaN at index \(0,\)"),
    ("AP NaN box", lambda: average_precision([(0, 0.5, [0, 0, np.inf, 1])], T), DataError,
     r"the boxes of the detections holds inf at index \(0, 2\)"),
    ("AP string score", lambda: average_precision([(0, "high", [0, 0, 1, 1])], T), DataError,
     "detection 0 must be \\(image_id, score, box of 4 numbers\\)"),
    ("AP box of 5", lambda: average_precision([(0, 0.5, [0, 0, 1, 1, 1])], T), DataError,
     "box of 4 numbers"),
    ("AP NaN target", lambda: average_precision([], {0: np.array([[0, 0, np.nan, 1.0]])}), DataError,
     r"average_precision: targets\[0\] holds NaN at index \(0, 2\)"),
    ("AP targets list", lambda: average_precision([], [np.zeros((1, 4))]), DataError,
     "targets must be a dict"),
    ("AP threshold", lambda: average_precision([], T, 1.5), ConfigError,
     r"iou_threshold must be a number in \[0, 1\]"),
    ("AP difficult stray", lambda: average_precision([], T, difficult={1: [True]}), DataError,
     "difficult names image 1 \\(int\\), which is not a key of targets"),
    ("AP difficult count", lambda: average_precision([], T, difficult={0: [True, False]}),
     ShapeError, "holds 2 flags for 1 target boxes"),
    ("PR curve image", lambda: precision_recall_curve([(1, 0.5, [0, 0, 1, 1])], T), DataError,
     "precision_recall_curve: detection 0 is for image 1"),
    ("mAP image id", lambda: mean_average_precision(
        [("0", 0, 0.5, [0, 0, 1, 1])], {0: (np.zeros((1, 4)), [0])}, 1), DataError,
     r"mean_average_precision: detection 0 is for image '0' \(str\).*targets has 0 \(int\)"),
    ("mAP class 1.5", lambda: mean_average_precision(
        [(0, 1.5, 0.5, [0, 0, 1, 1])], {0: (np.zeros((1, 4)), [0])}, 2), DataError,
     "the class id of detection 0 must be integer class ids"),
    ("mAP class string", lambda: mean_average_precision(
        [(0, "car", 0.5, [0, 0, 1, 1])], {0: (np.zeros((1, 4)), [0])}, 2), DataError,
     "the class id of detection 0 holds strings"),
    ("mAP n_classes", lambda: mean_average_precision([], {}, 0), ConfigError,
     "n_classes must be an int >= 1"),
    ("mAP ids count", lambda: mean_average_precision([], {0: (np.zeros((2, 4)), [0])}, 1),
     ShapeError, r"targets\[0\] has 2 boxes but 1 class ids"),
    ("plot image (2, 4, 4)", lambda: plot_detections(np.zeros((2, 4, 4))), ShapeError,
     r"plot_detections: image must have shape \(H, W\), \(1, H, W\) or \(3, H, W\)"),
    ("plot labels", lambda: plot_detections(np.zeros((4, 4)), [[0, 0, 1, 1]], labels=["a", "b"]),
     ShapeError, "1 boxes but 2 labels"),
    ("plot boxes (8,)", lambda: plot_detections(np.zeros((4, 4)), np.arange(8.0)), ShapeError,
     r"plot_detections: boxes must have shape \(n, 4\)"),
    ("plot PR shapes", lambda: plot_precision_recall([1, 0.5], [0.5]), ShapeError,
     "2 precisions but 1 recalls"),
    ("interpolated_ap shapes", lambda: interpolated_ap([1.0, 0.5], [0.5]), ShapeError,
     "2 precisions but 1 recalls"),
    ("mAP three fields", lambda: mean_average_precision([(0, 0.5, [0, 0, 1, 1])],
                                                        {0: (np.zeros((1, 4)), [0])}, 1), DataError,
     "must be \\(image_id, class_id, score, box\\)"),
]


@pytest.mark.parametrize("what, call, error, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_get_a_clear_error(what, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_plot_precision_recall_and_lazy_matplotlib():
    code = ("import sys, nn, nn.detection; "
            "print('matplotlib' in sys.modules, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plot_precision_recall([1, 0.5, 0.67], [0.33, 0.33, 0.67], label="AP 0.6")
    assert fig.axes[0].get_xlabel() == "recall" and len(fig.axes[0].lines) == 2
    fig2 = plot_detections(np.zeros((1, 16, 20)), boxes=[[1, 1, 5, 5]],
                           true_boxes=[[2, 2, 6, 6], [8, 8, 9, 9]], labels=["point 0.9"])
    assert len(fig2.axes[0].patches) == 3
    rgb = plot_detections(np.random.default_rng(0).random((3, 16, 20)), boxes=[[1, 1, 5, 5]])
    assert rgb.axes[0].images[0].get_array().shape == (16, 20, 3)
    for f in (fig, fig2, rgb):
        plt.close(f)
