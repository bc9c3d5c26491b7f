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
    """A loss with the practical's priors; the association rule is "prior" unless told."""
    return YOLOLoss(PRIORS, kwargs.pop("n_classes", 2), kwargs.pop("n_params", 2),
                    stride=kwargs.pop("stride", 8),
                    association=kwargs.pop("association", "prior"), **kwargs)


def library_matches(loss, raw, boxes, classes, params):
    """The library's association as the practical's list: (a, gy, gx) or None per target."""
    with backends.using("numpy", "fp64"):
        assoc = loss.associate(raw[None], [(boxes, classes, params)])
    _, a, _, gy, gx = assoc.index
    matches = [None] * len(boxes)
    for k, target in enumerate(assoc.targets):
        matches[int(target)] = (int(a[k]), int(gy[k]), int(gx[k]))
    return matches


def predicted_boxes(raw, loss):
    """The predicted boxes (A, Gh, Gw, 4) of one image, written here so that the association
    tests do not depend on the student's decode_boxes."""
    A, D = loss.n_priors, loss.channels_per_prior
    t = raw.reshape(A, D, *raw.shape[1:])
    gy, gx = np.mgrid[0:raw.shape[1], 0:raw.shape[2]]
    m = loss.max_log_scale
    cx = (gx + 1 / (1 + np.exp(-t[:, 0]))) * loss.stride
    cy = (gy + 1 / (1 + np.exp(-t[:, 1]))) * loss.stride
    w = loss.priors[:, 0, None, None] * np.exp(np.clip(t[:, 2], -m, m))
    h = loss.priors[:, 1, None, None] * np.exp(np.clip(t[:, 3], -m, m))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def as_tuples(matches):
    return [None if m is None else tuple(int(v) for v in m) for m in matches]


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
def test_associate_by_prior_shape_cells_and_shared_cells(module):
    loss = settings()
    boxes = np.array([[5.0, 5.0, 11.0, 11.0],      # centre (8, 8): a cell corner -> cell (1, 1)
                      [26.0, 10.0, 38.0, 20.0],    # 12 x 10 at (32, 15): cell (1, 4), prior 1
                      [4.0, 5.0, 10.0, 11.0],      # 6 x 6 at (7, 8): cell (1, 0)
                      [58.0, 58.0, 64.0, 64.0],    # touches the image corner: last cell (7, 7)
                      [9.0, 9.0, 15.0, 15.0],      # cell (1, 1) again, prior 0 taken -> prior 1
                      [8.5, 8.5, 14.5, 14.5],      # cell (1, 1): -> prior 2
                      [8.2, 8.2, 14.2, 14.2]])     # cell (1, 1), all priors taken: dropped
    raw = np.random.default_rng(0).normal(size=(loss.channels, 8, 8))
    predicted = predicted_boxes(raw, loss)
    matches = as_tuples(module.associate(boxes, predicted, loss))
    assert matches == [(0, 1, 1), (1, 1, 4), (0, 1, 0), (0, 7, 7), (1, 1, 1), (2, 1, 1), None]
    assert matches == library_matches(loss, raw, boxes, np.zeros(7, int), np.zeros((7, 2)))
    edge = module.associate(np.array([[60.0, 60.0, 68.0, 68.0]]), predicted, loss)
    assert as_tuples(edge) == [(0, 7, 7)], "a centre on the image edge belongs to the last cell"


@pytest.mark.student("associate")
def test_associate_best_predicted_box(module):
    """The slides' rule: the free box of the cell that predicts the target best."""
    loss = settings(association="best", min_iou=0.1)
    D = loss.channels_per_prior
    raw = np.zeros((loss.channels, 4, 4))
    raw[2:4] = 1.0                                 # prior 0 (6 px) grows to about 16 px
    raw[2 * D + 2:2 * D + 4] = -1.3                # prior 2 (22 px) shrinks to about 6 px
    predicted = predicted_boxes(raw, loss)
    box = np.array([[9.0, 9.0, 15.0, 15.0]])         # 6 x 6 at the centre of cell (1, 1)
    assert as_tuples(module.associate(box, predicted, loss)) == [(2, 1, 1)], \
        "the best *predicted* box wins (prior 2 predicts 6 x 6 here), not the best prior shape"
    two = np.array([[9.0, 9.0, 15.0, 15.0], [6.0, 7.0, 18.0, 17.0]])    # then 12 x 10
    assert as_tuples(module.associate(two, predicted, loss)) == [(2, 1, 1), (1, 1, 1)]
    # no free box overlaps above min_iou: the prior shape decides; a box touching the image
    # border (x1 = 0) and sticking out of it (y2 > 32)
    far = np.array([[0.0, 26.0, 3.0, 34.0]])
    strict = settings(association="best", min_iou=0.5)
    assert as_tuples(module.associate(far, predicted, strict)) == [(0, 3, 0)], \
        "no free box overlaps the target above min_iou: the best prior shape wins"
    assert library_matches(strict, raw, far, [0], np.zeros((1, 2))) == [(0, 3, 0)]
    assert library_matches(loss, raw, two, [0, 1], np.zeros((2, 2))) == [(2, 1, 1), (1, 1, 1)]
    rng = np.random.default_rng(5)
    for _ in range(3):
        raw = rng.normal(0, 1, (loss.channels, 5, 5))
        boxes, classes, params = one_per_cell(rng, loss, (5, 5), 4)
        boxes = np.concatenate([boxes, boxes[:2] + rng.uniform(-2, 2, (2, 4))])   # shared cells
        classes, params = np.r_[classes, classes[:2]], np.r_[params, params[:2]]
        mine = as_tuples(module.associate(boxes, predicted_boxes(raw, loss), loss))
        assert mine == library_matches(loss, raw, boxes, classes, params)


@pytest.mark.student("yolo_loss")
@pytest.mark.parametrize("association", ["best", "prior"])
@pytest.mark.parametrize("objectness", ["iou", "(1+iou)/2"])
@pytest.mark.parametrize("n_classes, n_params", [(2, 2), (3, 0), (0, 1)])
def test_yolo_loss_matches_the_library(module, report, association, objectness, n_classes,
                                       n_params):
    rng = np.random.default_rng(n_classes * 7 + n_params)
    loss = settings(n_classes=n_classes, n_params=n_params, fiou=objectness,
                    association=association, good_iou=0.3, lambda_pos=4.0,
                    lambda_void=[0.7, 0.4, 1.1], lambda_param=0.5, lambda_prob=1.3,
                    lambda_obj=0.8, gamma=np.linspace(0.5, 1.5, n_params).tolist() or 1.0)
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
def test_yolo_loss_shared_cell_border_and_no_target(module, report):
    """Several targets in one cell, a centre on a cell border, a box touching the image
    border, a log-size beyond the clip; then an image with no target (only void terms)."""
    loss = settings(good_iou=0.4, association="best", max_log_scale=1.0)
    rng = np.random.default_rng(3)
    boxes = np.array([[9.0, 9.0, 15.0, 15.0], [8.0, 9.5, 20.0, 19.5],   # two in cell (1, 1)
                      [20.0, 30.0, 44.0, 52.0],                          # centre (32, 41): border
                      [44.0, 0.0, 48.0, 5.0],                            # touches the top edge
                      [0.0, 20.0, 47.0, 26.0]])                          # 47 px: log-size clipped
    classes, params = np.array([0, 1, 1, 0, 1]), rng.normal(size=(5, 2))
    raw = rng.normal(0, 1, (loss.channels, 6, 6))
    total, _ = module.yolo_loss(raw, boxes, classes, params, loss)
    expected, _, _ = library(loss, raw, boxes, classes, params)
    report(rel_error=abs(total - expected) / expected, limit=1e-9)
    assert total == pytest.approx(expected, rel=1e-9)
    empty_total, parts = module.yolo_loss(raw, np.zeros((0, 4)), np.zeros(0, int),
                                          np.zeros((0, 2)), loss)
    assert empty_total == pytest.approx(library(loss, raw, np.zeros((0, 4)), np.zeros(0, int),
                                                np.zeros((0, 2)))[0], rel=1e-12)
    assert parts["void"] == pytest.approx(empty_total), "no target: only the void terms"


def channel_groups(loss):
    """The channels of a prior's block, by the term of equation (14) that trains them."""
    C, D = loss.n_classes, loss.channels_per_prior
    groups = {"centre (t_x, t_y)": [0, 1], "size (t_w, t_h)": [2, 3],
              "probability P and objectness O (t_P, t_O)": [4, 5]}
    if C:
        groups["classes"] = list(range(6, 6 + C))
    if loss.n_params:
        groups["parameters"] = list(range(6 + C, D))
    return groups


def check_groups(grad, expected, loss, limit, against):
    """Assert channel group by channel group, naming the wrong group."""
    A, D = loss.n_priors, loss.channels_per_prior
    g = grad.reshape(A, D, *grad.shape[1:])
    e = expected.reshape(A, D, *expected.shape[1:])
    for name, channels in channel_groups(loss).items():
        err = rel_error(g[:, channels], e[:, channels])
        assert err < limit, (f"the gradient of the {name} channels is wrong: relative error "
                             f"{err:.2e} to {against} (limit {limit:g})")


@pytest.mark.student("yolo_loss_gradient")
@pytest.mark.parametrize("association", ["best", "prior"])
@pytest.mark.parametrize("n_classes, n_params, grid", [(2, 2, (4, 4)), (3, 0, (3, 5)), (1, 3, (5, 2))])
def test_gradient_against_library_and_finite_differences(module, report, association, n_classes,
                                                          n_params, grid):
    rng = np.random.default_rng(n_classes + 10 * n_params)
    loss = settings(n_classes=n_classes, n_params=n_params, good_iou=0.35, association=association,
                    fiou="(1+iou)/2" if n_params % 2 else "iou", lambda_void=[0.3, 0.6, 0.9],
                    lambda_prob=1.2, lambda_obj=0.7,
                    gamma=np.linspace(0.5, 2.0, n_params).tolist() or 1.0)
    boxes, classes, params = one_per_cell(rng, loss, grid, 3)
    raw = rng.uniform(-1.5, 1.5, (loss.channels, *grid))
    grad = np.asarray(module.yolo_loss_gradient(raw, boxes, classes, params, loss))
    assert grad.shape == raw.shape
    _, _, expected = library(loss, raw, boxes, classes, params)
    with backends.using("numpy", "fp64"):
        association_held = loss.associate(raw[None], [(boxes, classes, params)])
        numeric = numerical_gradient(
            lambda r: loss.forward(r[None], [(boxes, classes, params)],
                                   association=association_held), raw.copy())
    err = rel_error(grad, numeric)
    report(rel_error=err, limit=1e-6)
    check_groups(grad, numeric, loss, 1e-6, "finite differences")
    check_groups(grad, expected, loss, 1e-9, "the library")


@pytest.mark.student("yolo_loss_gradient")
def test_gradient_shared_cell_edge_and_empty_image(module, report):
    """Two targets in one cell, one touching the image's right edge, and an image without
    targets (the void terms only)."""
    loss = settings(association="best", lambda_void=[0.2, 0.5, 1.0], good_iou=0.5)
    rng = np.random.default_rng(11)
    boxes = np.array([[9.0, 9.0, 15.0, 15.0], [7.0, 8.0, 19.0, 18.0], [34.0, 2.0, 40.0, 9.0]])
    classes, params = np.array([1, 0, 1]), rng.normal(size=(3, 2))
    raw = rng.uniform(-1.5, 1.5, (loss.channels, 3, 5))
    for b, c, p in ((boxes, classes, params), (np.zeros((0, 4)), np.zeros(0, int), np.zeros((0, 2)))):
        grad = np.asarray(module.yolo_loss_gradient(raw, b, c, p, loss))
        _, _, expected = library(loss, raw, b, c, p)
        report(rel_error=rel_error(grad, expected), limit=1e-9)
        check_groups(grad, expected, loss, 1e-9, "the library")
