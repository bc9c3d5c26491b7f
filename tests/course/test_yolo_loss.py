"""The YOLO-loss practical: decoding, association, the loss of one image and its gradient,
compared with nn.detection.YOLOLoss and with finite differences."""
from __future__ import annotations

import numpy as np
import pytest

from nn import backends
from nn.detection import YOLOLoss
from nn.gradcheck import numerical_gradient, rel_error

PRACTICAL = "yolo_loss"
PRIORS = [[6.0, 6.0], [12.0, 10.0], [22.0, 22.0]]


def settings(**kwargs):
    return YOLOLoss(PRIORS, kwargs.pop("n_classes", 2), kwargs.pop("n_params", 2),
                    stride=kwargs.pop("stride", 8), **kwargs)


def one_per_cell(rng, loss, grid, n):
    """n target boxes in n different cells, with classes and params."""
    Gh, Gw = grid
    cells = rng.permutation(Gh * Gw)[:n]
    boxes = []
    for c in cells:
        cx = (c % Gw + rng.uniform(0.05, 0.95)) * loss.stride
        cy = (c // Gw + rng.uniform(0.05, 0.95)) * loss.stride
        w, h = rng.uniform(4, 26, 2)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return (np.array(boxes).reshape(-1, 4), rng.integers(0, max(loss.n_classes, 1), n),
            rng.normal(size=(n, loss.n_params)))


def library(loss, raw, boxes, classes, params):
    with backends.using("numpy", "fp64"):
        value = loss.forward(raw[None], [(boxes, classes, params)])
        return value, loss.parts, loss.backward()[0]


@pytest.mark.student("decode_boxes")
@pytest.mark.parametrize("grid", [(4, 4), (3, 5)])
def test_decode_boxes(module, report, grid):
    rng = np.random.default_rng(grid[1])
    loss = settings()
    raw = rng.normal(0, 2, (loss.channels, *grid))
    boxes = np.asarray(module.decode_boxes(raw, loss))
    assert boxes.shape == (3, *grid, 4)
    t = raw.reshape(3, loss.channels_per_prior, *grid)
    a, gy, gx = 1, grid[0] - 1, 2
    v = t[a, :, gy, gx]
    s = 1 / (1 + np.exp(-v[:2]))
    cx, cy = (gx + s[0]) * 8, (gy + s[1]) * 8
    w = PRIORS[a][0] * np.exp(np.clip(v[2], -4, 4))
    h = PRIORS[a][1] * np.exp(np.clip(v[3], -4, 4))
    expected = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    err = float(np.abs(boxes[a, gy, gx] - expected).max())
    report(rel_error=err, limit=1e-9)
    np.testing.assert_allclose(boxes[a, gy, gx], expected, atol=1e-9)
    big = raw.copy()
    big[2::loss.channels_per_prior] = 9.0          # t_w beyond the clip: exp(4), not exp(9)
    widths = np.asarray(module.decode_boxes(big, loss))[..., 2] - np.asarray(
        module.decode_boxes(big, loss))[..., 0]
    np.testing.assert_allclose(widths[0], PRIORS[0][0] * np.exp(4.0))


@pytest.mark.student("prior_ranking")
def test_prior_ranking(module):
    assert list(module.prior_ranking([0, 0, 6, 6], PRIORS)) == [0, 1, 2]
    assert list(module.prior_ranking([0, 0, 13, 9], PRIORS))[0] == 1
    assert list(module.prior_ranking([0, 0, 30, 30], PRIORS)) == [2, 1, 0]
    # tie: the same shape IoU for two equal priors -> the first
    assert list(module.prior_ranking([0, 0, 5, 5], [[4, 4], [4, 4]])) == [0, 1]


@pytest.mark.student("associate")
def test_associate_cells_priors_and_shared_cells(module):
    loss = settings()
    boxes = np.array([[5.0, 5.0, 11.0, 11.0],      # centre (8, 8): a cell corner -> cell (1, 1)
                      [26.0, 10.0, 38.0, 20.0],    # 12 x 10 at (32, 15): cell (1, 4), prior 1
                      [4.0, 5.0, 10.0, 11.0],      # 6 x 6 at (7, 8): cell (1, 0)
                      [58.0, 58.0, 64.0, 64.0],    # centre (61, 61): last cell (7, 7)
                      [9.0, 9.0, 15.0, 15.0],      # cell (1, 1) again, prior 0 taken -> prior 1
                      [8.5, 8.5, 14.5, 14.5],      # cell (1, 1): -> prior 2
                      [8.2, 8.2, 14.2, 14.2]])     # cell (1, 1), all priors taken: dropped
    matches = module.associate(boxes, loss, (8, 8))
    assert [None if m is None else tuple(int(v) for v in m) for m in matches] == [
        (0, 1, 1), (1, 1, 4), (0, 1, 0), (0, 7, 7), (1, 1, 1), (2, 1, 1), None]
    edge = module.associate(np.array([[60.0, 60.0, 68.0, 68.0]]), loss, (8, 8))
    assert tuple(int(v) for v in edge[0]) == (0, 7, 7), "centre outside: clip to the last cell"


@pytest.mark.student("yolo_loss")
@pytest.mark.parametrize("objectness", ["iou", "(1+iou)/2", "one"])
@pytest.mark.parametrize("n_classes, n_params", [(2, 2), (3, 0), (0, 1)])
def test_yolo_loss_matches_the_library(module, report, objectness, n_classes, n_params):
    rng = np.random.default_rng(n_classes * 7 + n_params)
    loss = settings(n_classes=n_classes, n_params=n_params, objectness_target=objectness,
                    good_iou=0.3, lambda_coord=4.0, lambda_noobj=0.7, lambda_param=0.5)
    boxes, classes, params = one_per_cell(rng, loss, (5, 6), 4)
    raw = rng.normal(0, 1.5, (loss.channels, 5, 6))
    total, parts = module.yolo_loss(raw, boxes, classes, params, loss)
    expected, expected_parts, _ = library(loss, raw, boxes, classes, params)
    err = abs(total - expected) / abs(expected)
    report(rel_error=err, limit=1e-9)
    for name, value in expected_parts.items():
        assert parts[name] == pytest.approx(value, rel=1e-9, abs=1e-12), f"the {name} term"
    assert total == pytest.approx(expected, rel=1e-9)


@pytest.mark.student("yolo_loss")
def test_yolo_loss_shared_cell_and_no_target(module, report):
    loss = settings(good_iou=0.4)
    rng = np.random.default_rng(3)
    boxes = np.array([[9.0, 9.0, 15.0, 15.0], [8.0, 9.5, 20.0, 19.5], [20.0, 30.0, 44.0, 52.0]])
    classes, params = np.array([0, 1, 1]), rng.normal(size=(3, 2))
    raw = rng.normal(0, 1, (loss.channels, 6, 6))
    total, _ = module.yolo_loss(raw, boxes, classes, params, loss)
    expected, _, _ = library(loss, raw, boxes, classes, params)
    report(rel_error=abs(total - expected) / expected, limit=1e-9)
    assert total == pytest.approx(expected, rel=1e-9)
    empty_total, parts = module.yolo_loss(raw, np.zeros((0, 4)), np.zeros(0, int),
                                          np.zeros((0, 2)), loss)
    assert empty_total == pytest.approx(library(loss, raw, np.zeros((0, 4)), np.zeros(0, int),
                                                np.zeros((0, 2)))[0], rel=1e-12)
    assert parts["background"] == pytest.approx(empty_total)


@pytest.mark.student("yolo_loss_gradient")
@pytest.mark.parametrize("n_classes, n_params, grid", [(2, 2, (4, 4)), (3, 0, (3, 5)), (1, 3, (5, 2))])
def test_gradient_against_library_and_finite_differences(module, report, n_classes, n_params, grid):
    rng = np.random.default_rng(n_classes + 10 * n_params)
    loss = settings(n_classes=n_classes, n_params=n_params, good_iou=0.35,
                    objectness_target="(1+iou)/2")
    boxes, classes, params = one_per_cell(rng, loss, grid, 3)
    raw = rng.uniform(-1.5, 1.5, (loss.channels, *grid))
    grad = np.asarray(module.yolo_loss_gradient(raw, boxes, classes, params, loss))
    assert grad.shape == raw.shape
    _, _, expected = library(loss, raw, boxes, classes, params)
    with backends.using("numpy", "fp64"):
        loss.forward(raw[None], [(boxes, classes, params)])
        association = loss.association
        numeric = numerical_gradient(
            lambda r: loss.forward(r[None], [(boxes, classes, params)], association=association),
            raw.copy())
    err = rel_error(grad, numeric)
    report(rel_error=err, limit=1e-6)
    assert err < 1e-6, f"relative error to finite differences {err:.2e}"
    assert rel_error(grad, expected) < 1e-9
