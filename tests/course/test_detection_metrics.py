"""The detection-metrics practical: IoU, NMS, VOC matching, precision-recall and AP by hand,
each compared with nn.detection (whose own tests compare it with plain references)."""
from __future__ import annotations

import numpy as np
import pytest

from nn import detection

PRACTICAL = "detection_metrics"


def random_boxes(rng, n, size=60.0):
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(3, 25, (n, 2))], axis=1)


def clustered(rng, n, n_objects):
    centres = rng.uniform(0, 100, (n_objects, 2))
    k = rng.integers(0, n_objects, n)
    c = centres[k] + rng.normal(0, 2, (n, 2))
    wh = rng.uniform(6, 20, (n_objects, 2))[k] * rng.uniform(0.8, 1.2, (n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def random_problem(seed, n_images=8):
    """Targets (some difficult) and detections around them, duplicates and misses included."""
    rng = np.random.default_rng(seed)
    targets, difficult, dets = {}, {}, []
    for i in range(n_images):
        truth = random_boxes(rng, int(rng.integers(0, 5)))
        targets[i] = truth
        difficult[i] = rng.random(len(truth)) < 0.25
        for box in truth:
            for _ in range(int(rng.integers(0, 3))):
                dets.append((i, float(rng.random()), box + rng.normal(0, 1.2, 4)))
        for box in random_boxes(rng, int(rng.integers(0, 3))):
            dets.append((i, float(rng.random()) * 0.7, box))
    return dets, targets, difficult


@pytest.mark.student("iou")
def test_iou_by_hand_values(module, report):
    cases = [((0, 0, 2, 2), (1, 1, 3, 3), 1 / 7),           # integers: 1/7, not 0
             ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
             ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),         # touching: no area
             ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
             ((1.5, 2.5, 7.25, 9.0), (2.0, 3.0, 4.0, 5.0), 4 / (5.75 * 6.5)),
             ((0, 0, 4, 2), (1, -1, 3, 5), 4 / 16)]
    worst = max(abs(module.iou(a, b) - expected) for a, b, expected in cases)
    report(rel_error=worst, limit=1e-12)
    for a, b, expected in cases:
        assert module.iou(a, b) == pytest.approx(expected, abs=1e-12), (a, b)
        assert module.iou(b, a) == pytest.approx(expected, abs=1e-12), "IoU is symmetric"
    assert module.iou((3, 3, 3, 3), (3, 3, 3, 3)) == 0.0, "two empty boxes: 0, not a division by 0"


@pytest.mark.student("iou")
def test_iou_edge_cases(module):
    """Boxes touching at a corner, one inside the other, a box on the image border (x1 = 0)
    with a degenerate (zero-width) box, and numpy integer inputs."""
    assert module.iou((0, 0, 5, 5), (5, 5, 9, 9)) == 0.0, "a shared corner has no area"
    assert module.iou((0, 0, 10, 10), (2, 2, 7, 7)) == pytest.approx(25 / 100)
    assert module.iou((0, 0, 4, 4), (0, 1, 0, 3)) == 0.0, "a zero-width box overlaps nothing"
    value = module.iou(np.array([0, 0, 3, 3]), np.array([1, 0, 4, 3]))
    assert isinstance(value, float) and value == pytest.approx(6 / 12)


@pytest.mark.student("iou_matrix")
def test_iou_matrix_edge_cases(module):
    """No box on one side, identical boxes, boxes touching the border of the image."""
    a = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 5.0, 4.0, 15.0]])
    assert np.asarray(module.iou_matrix(a, np.zeros((0, 4)))).shape == (2, 0)
    m = np.asarray(module.iou_matrix(a, a))
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(m[0, 1], 20 / (100 + 40 - 20))
    empty = np.array([[3.0, 3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(module.iou_matrix(empty, empty), [[0.0]])


@pytest.mark.student("iou_matrix")
@pytest.mark.parametrize("n, m", [(1, 1), (4, 7), (9, 3)])
def test_iou_matrix_matches_the_library(module, report, n, m):
    rng = np.random.default_rng(n * 10 + m)
    a, b = random_boxes(rng, n), random_boxes(rng, m)
    b[0] = a[0] + 1.0                                      # one pair surely overlaps
    mine = np.asarray(module.iou_matrix(a, b))
    assert mine.shape == (n, m), f"expected shape ({n}, {m}), got {mine.shape}"
    err = float(np.abs(mine - detection.box_iou(a, b)).max())
    report(rel_error=err, limit=1e-12)
    assert err < 1e-12
    assert np.asarray(module.iou_matrix([[0, 0, 2, 2]], [[1, 1, 3, 3]])).item() == \
        pytest.approx(1 / 7)


@pytest.mark.student("nms")
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_the_library(module, threshold):
    rng = np.random.default_rng(int(threshold * 10))
    boxes, scores = clustered(rng, 80, 10), rng.random(80)
    mine = np.asarray(module.nms(boxes, scores, threshold)).tolist()
    assert mine == detection.nms(boxes, scores, threshold).tolist(), \
        "kept indices differ from nn.detection.nms (order: highest score first)"
    assert 10 <= len(mine) < 80


@pytest.mark.student("nms")
def test_nms_threshold_is_strict_and_ties_keep_order(module):
    boxes = np.array([[0.0, 0, 2, 1], [0, 0, 1, 1]])         # IoU exactly 1/2
    assert np.asarray(module.nms(boxes, [0.9, 0.8], 0.5)).tolist() == [0, 1], \
        "a box is removed only when the IoU is *above* the threshold"
    assert np.asarray(module.nms(boxes, [0.9, 0.8], 0.45)).tolist() == [0]
    same = np.array([[0.0, 0, 10, 10]] * 3)
    assert np.asarray(module.nms(same, [0.4, 0.5, 0.5], 0.5)).tolist() == [1]


@pytest.mark.student("match_detections")
def test_match_detections_voc_rules(module):
    targets = {0: np.array([[0.0, 0, 10, 10], [2, 0, 12, 10], [40, 40, 50, 50]]),
               1: np.zeros((0, 4))}
    difficult = {0: np.array([False, False, True])}
    dets = [(0, 0.5, [0, 0, 10, 10]),          # TP: target 0
            (0, 0.9, [40, 40, 50, 50]),        # difficult target: skipped
            (0, 0.4, [0.5, 0, 10.5, 10]),      # best overlap target 0, taken -> FP
            (1, 0.8, [0, 0, 5, 5]),            # image without targets -> FP
            (0, 0.3, [30, 0, 35, 5])]          # overlaps nothing -> FP
    scores, tp, n_targets = module.match_detections(dets, targets, 0.5, difficult)
    assert n_targets == 2
    assert np.asarray(scores).tolist() == [0.8, 0.5, 0.4, 0.3]
    assert np.asarray(tp).tolist() == [False, True, False, False]
    # without the flags the difficult target is a normal one: first detection a TP
    scores, tp, n_targets = module.match_detections(dets, targets, 0.5)
    assert n_targets == 3 and np.asarray(tp).tolist() == [True, False, True, False, False]


@pytest.mark.student("precision_recall")
def test_precision_recall_values(module):
    precision, recall = module.precision_recall([True, False, True, False, True], 3)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])


@pytest.mark.student("precision_recall")
def test_precision_recall_edge_cases(module):
    """Only false positives; a single detection; more targets than detections."""
    precision, recall = module.precision_recall([False, False], 4)
    np.testing.assert_array_equal(precision, [0, 0])
    np.testing.assert_array_equal(recall, [0, 0])
    precision, recall = module.precision_recall([True], 1)
    np.testing.assert_allclose([precision[0], recall[0]], [1, 1])
    precision, recall = module.precision_recall(np.array([True, True]), 5)
    np.testing.assert_allclose(recall, [0.2, 0.4])


@pytest.mark.student("interpolated_ap")
def test_interpolated_ap_edge_cases(module):
    """A perfect detector, a detector that finds half the targets, no detection."""
    assert module.interpolated_ap([1.0, 1.0], [0.5, 1.0]) == pytest.approx(1.0)
    assert module.interpolated_ap([1.0, 0.5], [0.5, 0.5]) == pytest.approx(0.5)
    assert module.interpolated_ap([], []) == 0.0


@pytest.mark.student("interpolated_ap")
def test_interpolated_ap_by_hand(module, report):
    # envelope: 1 up to recall 1/3, 2/3 up to 2/3, 3/5 up to 1
    ap = module.interpolated_ap([1, 1 / 2, 2 / 3, 2 / 4, 3 / 5], [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    report(rel_error=abs(ap - (1 + 2 / 3 + 3 / 5) / 3), limit=1e-12)
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert module.interpolated_ap([1.0, 0.5, 0.75], [0.25, 0.25, 0.75]) == pytest.approx(0.625), \
        "the dip to 0.5 must be filled by the later precision 0.75 (the envelope)"
    assert module.interpolated_ap([], []) == 0.0


@pytest.mark.student("match_detections")
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_average_precision_matches_the_library(module, report, seed, threshold):
    dets, targets, difficult = random_problem(seed)
    mine = module.average_precision(dets, targets, threshold, difficult)
    reference = detection.average_precision(dets, targets, threshold, difficult=difficult)
    report(rel_error=abs(mine - reference), limit=1e-12)
    assert mine == pytest.approx(reference, abs=1e-12)
    assert 0.0 < reference < 1.0
