"""YOLOLoss: gradient checks in float64 (association held fixed), values against a loop
reference, the association rules, decoding, precisions, and training through Network."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nn
from nn import backends
from nn.detection import YOLOLoss
from nn.gradcheck import numerical_gradient, rel_error
from nn.losses import from_dict, to_dict

TOL = 1e-6
PRIORS = [[8.0, 8.0], [20.0, 12.0], [30.0, 30.0]]


def host(a):
    return backends.current().to_host(a)


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def loop_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def reference_loss(loss, raw, targets):
    """The loss written box by box with Python loops, from the class docstring alone.

    Assumes no two targets share a cell and a best prior (the tests' data avoid it).
    """
    raw = np.asarray(raw, dtype=np.float64)
    N, _, Gh, Gw = raw.shape
    A, D, C, s = loss.n_priors, loss.channels_per_prior, loss.n_classes, loss.stride
    parts = dict.fromkeys(("position", "size", "objectness", "background", "classes", "params"), 0.0)
    for n in range(N):
        boxes, classes, params = (targets[n]["boxes"], targets[n]["classes"],
                                  targets[n].get("params", np.zeros((len(targets[n]["boxes"]), 0))))
        predicted = {}
        for a in range(A):
            for gy in range(Gh):
                for gx in range(Gw):
                    t = raw[n, a * D:(a + 1) * D, gy, gx]
                    tw = min(max(t[2], -loss.max_log_scale), loss.max_log_scale)
                    th = min(max(t[3], -loss.max_log_scale), loss.max_log_scale)
                    cx, cy = (gx + sigmoid(t[0])) * s, (gy + sigmoid(t[1])) * s
                    w, h = loss.priors[a][0] * math.exp(tw), loss.priors[a][1] * math.exp(th)
                    predicted[a, gy, gx] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        matched = {}
        for k, box in enumerate(boxes):
            cx, cy = (box[0] + box[2]) / 2 / s, (box[1] + box[3]) / 2 / s
            gx, gy = min(int(cx), Gw - 1), min(int(cy), Gh - 1)
            w, h = box[2] - box[0], box[3] - box[1]
            shape_iou = [loop_iou((0, 0, w, h), (0, 0, pw, ph)) for pw, ph in loss.priors]
            a = int(np.argmax(shape_iou))
            assert (a, gy, gx) not in matched, "reference: two targets on one prior of a cell"
            matched[a, gy, gx] = k
        for (a, gy, gx), box in predicted.items():
            t = raw[n, a * D:(a + 1) * D, gy, gx]
            obj = sigmoid(t[4])
            if (a, gy, gx) not in matched:
                if all(loop_iou(box, b) <= loss.good_iou for b in boxes):
                    parts["background"] += loss.lambda_noobj * obj ** 2
                continue
            k = matched[a, gy, gx]
            b = boxes[k]
            ox = min((b[0] + b[2]) / 2 / s - gx, 1.0)
            oy = min((b[1] + b[3]) / 2 / s - gy, 1.0)
            parts["position"] += loss.lambda_coord * ((sigmoid(t[0]) - ox) ** 2
                                                      + (sigmoid(t[1]) - oy) ** 2)
            lw = math.log((b[2] - b[0]) / loss.priors[a][0])
            lh = math.log((b[3] - b[1]) / loss.priors[a][1])
            parts["size"] += loss.lambda_size * ((t[2] - lw) ** 2 + (t[3] - lh) ** 2)
            overlap = loop_iou(box, b)
            target = {"iou": overlap, "(1+iou)/2": (1 + overlap) / 2, "one": 1.0}[
                loss.objectness_target]
            parts["objectness"] += loss.lambda_obj * (obj - target) ** 2
            z = t[5:5 + C]
            if C and loss.class_activation == "softmax":
                parts["classes"] -= loss.lambda_class * (z[classes[k]] - z.max()
                                                         - math.log(np.exp(z - z.max()).sum()))
            elif C:
                p = 1 / (1 + np.exp(-z))
                onehot = np.eye(C)[classes[k]]
                parts["classes"] -= loss.lambda_class * (onehot * np.log(p)
                                                         + (1 - onehot) * np.log(1 - p)).sum()
            weights = np.broadcast_to(loss.lambda_param, (loss.n_params,))
            parts["params"] += float((weights * (t[5 + C:] - params[k]) ** 2).sum())
    parts = {key: value / N for key, value in parts.items()}
    return sum(parts.values()), parts


def make_targets(rng, N, size, n_params, n_classes, per_image=(0, 4), wmin=4, wmax=40):
    targets = []
    for _ in range(N):
        k = int(rng.integers(*per_image, endpoint=True))
        c = rng.uniform(0, size, (k, 2))
        wh = rng.uniform(wmin, wmax, (k, 2))
        targets.append({"boxes": np.concatenate([c - wh / 2, c + wh / 2], axis=1),
                        "classes": rng.integers(0, max(n_classes, 1), k),
                        "params": rng.standard_normal((k, n_params))})
    return targets


def gradient_error(loss, raw, targets):
    """Relative error of backward() against finite differences, association held fixed."""
    B = backends.current()
    raw = B.asarray(raw)
    loss.forward(raw, targets)
    analytic = host(loss.backward())
    association = loss.association
    raw_host = host(raw).copy()

    def f(r):
        return float(loss.forward(B.asarray(r), targets, association=association))

    numeric = numerical_gradient(f, raw_host)
    assert analytic.shape == raw_host.shape
    return rel_error(analytic, numeric), analytic, association


def moderate_raw(rng, shape):
    """Raw outputs in [-1.5, 1.5]: sigmoids stay away from 0 and 1, so no gradient is tiny
    next to the rounding noise of the finite differences."""
    return rng.uniform(-1.5, 1.5, shape)


# -- gradient checks ---------------------------------------------------------------------------------
CONFIGS = [  # (n_classes, n_params, class_activation, objectness_target, grid, stride)
    (3, 2, "softmax", "iou", (4, 5), 16),
    (3, 2, "sigmoid", "(1+iou)/2", (4, 5), 16),
    (1, 0, "softmax", "one", (3, 3), 20),
    (0, 1, "softmax", "iou", (5, 2), 12),
    (2, 4, "sigmoid", "iou", (1, 1), 64),
    (4, 0, "softmax", "(1+iou)/2", (7, 3), 10),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"C{c[0]}P{c[1]}-{c[2]}-{c[3]}-{c[4]}")
def test_gradient_random_targets(fp64, config):
    n_classes, n_params, activation, objectness, (Gh, Gw), stride = config
    rng = np.random.default_rng(Gh * 10 + Gw)
    loss = YOLOLoss(PRIORS, n_classes, n_params, stride=stride, class_activation=activation,
                    objectness_target=objectness, good_iou=0.3, lambda_param=0.7)
    targets = make_targets(rng, 3, min(Gh, Gw) * stride, n_params, n_classes)
    raw = moderate_raw(rng, (3, loss.channels, Gh, Gw))
    err, grad, association = gradient_error(loss, raw, targets)
    assert err < TOL, f"relative error {err:.2e}"
    assert association.n_matched > 0 and np.abs(grad).max() > 0


def test_gradient_edge_cases(fp64):
    """Targets on cell borders and on the image edge, several in one cell (one dropped),
    and an image without any target."""
    rng = np.random.default_rng(5)
    loss = YOLOLoss(PRIORS, 2, 1, stride=16, good_iou=0.2)
    boxes0 = np.array([[8.0, 8.0, 24.0, 24.0],       # centre (16, 16): a corner of 4 cells
                       [0.0, 10.0, 32.0, 22.0],      # centre x = 16: on a vertical border
                       [40.0, 50.0, 64.0, 64.0]])    # centre y = 57, x = 52; right edge
    boxes1 = np.array([[17.0, 17.0, 29.0, 29.0],     # four targets in cell (1, 1): 3 priors
                       [18.0, 19.0, 30.0, 27.0],
                       [20.0, 16.0, 26.0, 30.0],
                       [16.5, 16.5, 31.0, 31.0]])
    targets = [{"boxes": boxes0, "classes": np.array([0, 1, 1]), "params": rng.normal(size=(3, 1))},
               {"boxes": boxes1, "classes": np.array([1, 0, 1, 0]), "params": rng.normal(size=(4, 1))},
               {"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "params": np.zeros((0, 1))}]
    raw = moderate_raw(rng, (3, loss.channels, 4, 4))
    err, grad, association = gradient_error(loss, raw, targets)
    assert err < TOL, f"relative error {err:.2e}"
    assert association.n_targets == 7
    assert association.n_matched == 6 and association.n_dropped == 1
    # the image without targets only learns background objectness
    D = loss.channels_per_prior
    objectness_channels = [a * D + 4 for a in range(loss.n_priors)]
    others = np.setdiff1d(np.arange(loss.channels), objectness_channels)
    assert (grad[2][others] == 0).all() and (grad[2][objectness_channels] != 0).all()


def test_gradient_batch_without_targets(fp64):
    rng = np.random.default_rng(6)
    loss = YOLOLoss(PRIORS, 3, 2, stride=8)
    empty = [{"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "params": np.zeros((0, 2))}] * 2
    raw = moderate_raw(rng, (2, loss.channels, 3, 4))
    err, grad, association = gradient_error(loss, raw, empty)
    assert err < TOL
    assert association.n_matched == 0 and loss.parts["background"] > 0
    assert sum(v for k, v in loss.parts.items() if k != "background") == 0


# -- values against the loop reference -----------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS[:4], ids=lambda c: f"C{c[0]}P{c[1]}-{c[2]}-{c[3]}")
def test_forward_matches_loop_reference(fp64, config):
    n_classes, n_params, activation, objectness, (Gh, Gw), stride = config
    rng = np.random.default_rng(11 + n_classes)
    loss = YOLOLoss(PRIORS, n_classes, n_params, stride=stride, class_activation=activation,
                    objectness_target=objectness, good_iou=0.25, lambda_coord=3.0,
                    lambda_noobj=0.3, lambda_param=[0.5, 2.0][:n_params] or 1.0)
    # one target per cell at most, so the reference's simple association applies
    cells = rng.permutation(Gh * Gw)[:4]
    boxes = []
    for c in cells:
        cx, cy = (c % Gw + rng.uniform(0.1, 0.9)) * stride, (c // Gw + rng.uniform(0.1, 0.9)) * stride
        w, h = rng.uniform(5, 35, 2)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    boxes = np.array(boxes)
    targets = [{"boxes": boxes[:3], "classes": rng.integers(0, max(n_classes, 1), 3),
                "params": rng.normal(size=(3, n_params))},
               {"boxes": boxes[3:], "classes": rng.integers(0, max(n_classes, 1), 1),
                "params": rng.normal(size=(1, n_params))}]
    raw = rng.normal(0, 1.5, (2, loss.channels, Gh, Gw))
    raw[:, 2::loss.channels_per_prior] *= 3         # some sizes beyond the clip
    value = loss.forward(raw, targets)
    expected, parts = reference_loss(loss, raw, targets)
    assert value == pytest.approx(expected, rel=1e-12)
    for key, v in parts.items():
        assert loss.parts[key] == pytest.approx(v, rel=1e-12, abs=1e-15), key
    assert parts["background"] > 0 and parts["position"] > 0


# -- association ----------------------------------------------------------------------------------------
def raw_for(loss, N, Gh, Gw):
    """A raw output whose every box is the prior's size at the centre of its cell, with a
    neutral objectness: easy to reason about."""
    return np.zeros((N, loss.channels, Gh, Gw))


def test_association_cells_priors_and_offsets(fp64):
    loss = YOLOLoss(PRIORS, 2, stride=16)
    targets = [(np.array([[12.0, 12.0, 20.0, 20.0],    # 8 x 8 at (16, 16): cell (1, 1), prior 0
                          [40.0, 4.0, 58.0, 14.0],     # 18 x 10 at (49, 9): cell (0, 3), prior 1
                          [44.0, 40.0, 64.0, 64.0]]),  # 20 x 24 at (54, 52): cell (3, 3), prior 2
                np.array([0, 1, 1]))]
    a = loss.associate(raw_for(loss, 1, 4, 4), targets)
    n, prior, _, gy, gx = a.index
    assert host(n).tolist() == [0, 0, 0] and host(prior).tolist() == [0, 1, 2]
    assert host(gy).tolist() == [1, 0, 3] and host(gx).tolist() == [1, 3, 3]
    np.testing.assert_allclose(host(a.offsets), [[0, 0], [0.0625, 0.5625], [0.375, 0.25]])
    np.testing.assert_allclose(host(a.log_sizes), np.log([[1, 1], [18 / 20, 10 / 12],
                                                          [20 / 30, 24 / 30]]))
    assert host(a.classes).tolist() == [0, 1, 1]


def test_association_image_edge_is_clipped_to_last_cell(fp64):
    loss = YOLOLoss([[4.0, 4.0]], 1, stride=10)
    # a box whose centre lies exactly on the bottom-right edge of a 3 x 3 grid
    a = loss.associate(raw_for(loss, 1, 3, 3), [(np.array([[28.0, 28.0, 32.0, 32.0]]), [0])])
    _, _, _, gy, gx = a.index
    assert (host(gy).tolist(), host(gx).tolist()) == ([2], [2])
    np.testing.assert_allclose(host(a.offsets), [[1.0, 1.0]])


def test_association_shared_cell_takes_next_free_prior(fp64):
    loss = YOLOLoss([[8.0, 8.0], [16.0, 16.0]], 1, stride=32)
    boxes = np.array([[0.0, 0.0, 8.0, 8.0], [1.0, 1.0, 9.0, 9.0], [2.0, 2.0, 10.0, 10.0]])
    a = loss.associate(raw_for(loss, 1, 1, 1), [(boxes, [0, 0, 0])])
    assert host(a.index[1]).tolist() == [0, 1]            # the second moves to prior 1
    assert (a.n_matched, a.n_dropped, a.n_targets) == (2, 1, 3)
    np.testing.assert_allclose(host(a.log_sizes)[1], np.log([0.5, 0.5]))


def test_good_but_not_best_boxes_are_ignored(fp64):
    """A box of another prior, in the same cell, that already fits the target well is left
    out: its gradient is zero on every channel."""
    loss = YOLOLoss([[10.0, 10.0], [12.0, 12.0]], 1, stride=32, good_iou=0.5)
    raw = raw_for(loss, 1, 2, 2)
    target = [(np.array([[10.0, 11.0, 21.0, 21.5]]), [0])]    # the 10 x 10 prior fits best
    loss.forward(raw, target)
    grad = host(loss.backward()).reshape(1, 2, 6, 2, 2)
    a = loss.association
    assert int(a.n_ignored) == 1
    assert (grad[0, 1, :, 0, 0] == 0).all()                   # prior 1, cell (0, 0): ignored
    assert (grad[0, 0, :5, 0, 0] != 0).all()      # prior 0: matched, learns all (1 class: no CE)
    assert (grad[0, :, :4, 1, :] == 0).all() and (grad[0, :, 4, 1, :] > 0).all()  # background
    loss_strict = YOLOLoss([[10.0, 10.0], [12.0, 12.0]], 1, stride=32, good_iou=0.9)
    loss_strict.forward(raw, target)
    assert int(loss_strict.association.n_ignored) == 0
    assert loss_strict.parts["background"] > loss.parts["background"]


@pytest.mark.parametrize("kind, expected", [("iou", lambda u: u), ("(1+iou)/2", lambda u: (1 + u) / 2),
                                            ("one", lambda u: 1.0)])
def test_objectness_targets(fp64, kind, expected):
    loss = YOLOLoss([[10.0, 10.0]], 1, stride=32, objectness_target=kind)
    target = [(np.array([[10.0, 12.0, 22.0, 20.0]]), [0])]   # 12 x 8 around (16, 16)
    a = loss.associate(raw_for(loss, 1, 1, 1), target)
    overlap = 80 / (100 + 96 - 80)                              # the 10 x 10 prior box vs 12 x 8
    assert host(a.objectness)[0] == pytest.approx(expected(overlap))


def test_target_formats_are_equivalent(fp64):
    rng = np.random.default_rng(12)
    loss = YOLOLoss(PRIORS, 3, 2, stride=16)
    targets = make_targets(rng, 3, 64, 2, 3, per_image=(1, 3))
    raw = rng.normal(size=(3, loss.channels, 4, 4))
    as_dicts = loss.forward(raw, targets)
    as_tuples = loss.forward(raw, [(t["boxes"], t["classes"], t["params"]) for t in targets])
    as_objects = loss.forward(raw, np.array(targets, dtype=object))     # what Network.fit passes
    assert as_dicts == as_tuples == as_objects
    # make_radio_sky's targets carry extra keys ("centers"): accepted as they are
    _, sky = nn.data.make_radio_sky(2, size=64, seed=0, sources_per_image=3)
    radio = YOLOLoss(PRIORS, 2, 4, stride=16)
    assert math.isfinite(radio.forward(rng.normal(size=(2, radio.channels, 4, 4)), sky))


def test_errors_say_what_to_do(fp64):
    loss = YOLOLoss(PRIORS, 2, 1, stride=16)
    good = [{"boxes": np.array([[0.0, 0, 8, 8]]), "classes": [1], "params": [[0.5]]}]
    with pytest.raises(ValueError, match=r"\(N, 24, Gh, Gw\).*output 24 channels"):
        loss.forward(np.zeros((1, 23, 4, 4)), good)
    with pytest.raises(ValueError, match="list of 2 targets"):
        loss.forward(np.zeros((2, 24, 4, 4)), good)
    with pytest.raises(ValueError, match="no 'params'"):
        loss.forward(np.zeros((1, 24, 4, 4)), [{"boxes": [[0, 0, 8, 8]], "classes": [1]}])
    with pytest.raises(ValueError, match="class ids outside"):
        loss.forward(np.zeros((1, 24, 4, 4)), [{**good[0], "classes": [2]}])
    with pytest.raises(ValueError, match="x2 <= x1"):
        loss.forward(np.zeros((1, 24, 4, 4)), [{**good[0], "boxes": [[8.0, 0, 8, 8]]}])
    loss.forward(np.zeros((1, 24, 4, 4)), good)
    with pytest.raises(ValueError, match="association was made"):
        loss.forward(np.zeros((1, 24, 2, 4)), good, association=loss.association)
    for kwargs in ({"priors": [[0, 4]]}, {"objectness_target": "half"},
                   {"class_activation": "relu"}, {"good_iou": 1.5}, {"lambda_noobj": -1},
                   {"lambda_param": [1.0, 2.0]}, {"stride": 0}):
        args = {"priors": PRIORS, "n_classes": 2, "n_params": 1, **kwargs}
        with pytest.raises(ValueError, match="YOLOLoss"):
            YOLOLoss(**args)


# -- decoding ----------------------------------------------------------------------------------------
def encode(loss, N, Gh, Gw, entries):
    """Raw output placing, for each (n, a, gy, gx, box, objectness, class, params), exactly
    that box (the inverse of the activations)."""
    raw = np.full((N, loss.channels, Gh, Gw), -8.0)      # objectness sigmoid(-8): nothing
    D = loss.channels_per_prior
    for n, a, gy, gx, box, obj, cls, params in entries:
        cx, cy = (box[0] + box[2]) / 2 / loss.stride - gx, (box[1] + box[3]) / 2 / loss.stride - gy
        c = raw[n, a * D:(a + 1) * D, gy, gx]
        c[0], c[1] = math.log(cx / (1 - cx)), math.log(cy / (1 - cy))
        c[2] = math.log((box[2] - box[0]) / loss.priors[a][0])
        c[3] = math.log((box[3] - box[1]) / loss.priors[a][1])
        c[4] = math.log(obj / (1 - obj))
        c[5:5 + loss.n_classes] = 0.0
        if loss.n_classes:
            c[5 + cls] = 3.0
        c[5 + loss.n_classes:] = params
    return raw


def test_decode_inverts_the_activations(fp64):
    loss = YOLOLoss(PRIORS, 3, 2, stride=16)
    entries = [(0, 1, 2, 3, [50.0, 36.0, 70.0, 50.0], 0.9, 2, [0.5, -1.0]),
               (0, 0, 0, 0, [2.0, 3.0, 9.0, 12.0], 0.6, 0, [1.0, 2.0]),
               (1, 2, 1, 1, [10.0, 12.0, 40.0, 40.0], 0.7, 1, [0.0, 3.0]),
               (1, 0, 3, 0, [3.0, 50.0, 12.0, 59.0], 0.3, 1, [0.0, 0.0])]    # below threshold
    boxes, scores, classes, params = loss.decode(encode(loss, 2, 4, 4, entries), 0.5)
    p_class = math.exp(3) / (math.exp(3) + 2)
    np.testing.assert_allclose(boxes[0], [entries[0][4], entries[1][4]], atol=1e-9)
    np.testing.assert_allclose(scores[0], [0.9 * p_class, 0.6 * p_class])
    assert classes[0].tolist() == [2, 0] and classes[1].tolist() == [1]
    np.testing.assert_allclose(params[1], [[0.0, 3.0]], atol=1e-12)
    np.testing.assert_allclose(boxes[1], [entries[2][4]], atol=1e-9)
    assert len(loss.decode(encode(loss, 2, 4, 4, entries), 0.2)[0][1]) == 2
    # the threshold is on the objectness (0.9 and 0.6 in image 0), inclusive
    assert len(loss.decode(encode(loss, 2, 4, 4, entries), 0.599)[0][0]) == 2
    assert len(loss.decode(encode(loss, 2, 4, 4, entries), 0.601)[0][0]) == 1
    assert all(len(b) == 0 for b in loss.decode(encode(loss, 2, 4, 4, entries), 0.95)[0])


def test_decode_with_nms_and_without_classes(fp64):
    loss = YOLOLoss(PRIORS, 0, stride=16)
    entries = [(0, 0, 1, 1, [17.0, 17.0, 27.0, 27.0], 0.9, 0, []),
               (0, 1, 1, 1, [18.0, 17.0, 28.0, 27.0], 0.8, 0, [])]     # a near-duplicate
    raw = encode(loss, 1, 3, 3, entries)
    boxes, scores, classes, _ = loss.decode(raw, 0.5)
    assert len(boxes[0]) == 2 and classes[0].tolist() == [0, 0]
    np.testing.assert_allclose(scores[0], [0.9, 0.8])
    boxes, scores, _, _ = loss.decode(raw, 0.5, nms_threshold=0.5)
    assert len(boxes[0]) == 1 and scores[0][0] == pytest.approx(0.9)


def test_decoded_targets_score_a_perfect_loss(fp64):
    """Raw outputs that decode exactly to the targets have zero position, size and params
    loss and an objectness target IoU of 1."""
    loss = YOLOLoss([[8.0, 8.0]], 2, 1, stride=16, objectness_target="iou")
    box = [20.0, 22.0, 30.0, 34.0]
    raw = encode(loss, 1, 3, 3, [(0, 0, 1, 1, box, 0.999, 1, [0.25])])
    loss.forward(raw, [(np.array([box]), [1], [[0.25]])])
    parts = loss.parts
    assert parts["position"] < 1e-20 and parts["size"] < 1e-20 and parts["params"] < 1e-20
    assert host(loss.association.objectness)[0] == pytest.approx(1.0)


# -- precisions and backends ---------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "mixed"])
def test_lower_precisions_compute_in_float32(backend_name, precision):
    rng = np.random.default_rng(13)
    loss = YOLOLoss(PRIORS, 3, 2, stride=16)
    targets = make_targets(rng, 4, 64, 2, 3, per_image=(1, 4))
    raw = rng.normal(size=(4, loss.channels, 4, 4))
    with backends.using(backend_name, "fp64"):
        exact = float(loss.forward(raw, targets))
        exact_grad = host(loss.backward())
    with backends.using(backend_name, precision) as B:
        device_raw = B.asarray(raw)
        assert device_raw.dtype == (np.float16 if precision == "mixed" else np.float32)
        value = float(loss.forward(device_raw, targets))
        grad = loss.backward()
        assert grad.dtype == np.float32 and grad.shape == raw.shape
        tol = 2e-3 if precision == "mixed" else 1e-5
        assert value == pytest.approx(exact, rel=tol)
        np.testing.assert_allclose(host(grad), exact_grad, rtol=20 * tol, atol=20 * tol * np.abs(exact_grad).max())


def test_runs_on_every_backend(backend_name):
    with backends.using(backend_name, "fp32") as B:
        rng = np.random.default_rng(14)
        loss = YOLOLoss(PRIORS, 2, 4, stride=16)
        _, sky = nn.data.make_radio_sky(3, size=64, seed=1, sources_per_image=4)
        raw = B.asarray(rng.normal(size=(3, loss.channels, 4, 4)))
        value = loss.forward(raw, sky)
        grad = loss.backward()
        assert type(grad) is type(raw) and math.isfinite(float(value))
        boxes, scores, classes, params = loss.decode(raw, 0.3)
        assert all(isinstance(b, np.ndarray) for b in boxes) and params[0].shape[1] == 4


# -- with a network ------------------------------------------------------------------------------------
def test_config_round_trip_and_parts():
    loss = YOLOLoss(PRIORS, 2, 3, stride=8, lambda_param=[1.0, 0.5, 2.0], good_iou=0.4,
                    objectness_target="(1+iou)/2", class_activation="sigmoid")
    rebuilt = from_dict(json.loads(json.dumps(to_dict(loss))))
    assert isinstance(rebuilt, YOLOLoss) and rebuilt.config() == loss.config()
    assert "YOLOLoss(priors=" in repr(loss)
    assert loss.channels == 3 * (5 + 2 + 3)


def test_network_fit_learns_a_single_source():
    """A small conv net trained with Network.fit on images of one bright source: the loss
    falls and the decoded box lands on the source."""
    nn.use("numpy", "fp32", seed=0)
    rng = np.random.default_rng(0)
    N, size = 32, 16
    x = rng.normal(0, 0.1, (N, 1, size, size)).astype(np.float32)
    targets = []
    for i in range(N):
        cx, cy = rng.uniform(3, 13, 2)
        yy, xx = np.mgrid[0:size, 0:size] + 0.5
        x[i, 0] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 2).astype(np.float32)
        targets.append({"boxes": np.array([[cx - 2, cy - 2, cx + 2, cy + 2]]),
                        "classes": np.array([0])})
    loss = YOLOLoss([[4.0, 4.0]], 1, stride=4)
    L = nn.layers
    net = nn.Network([L.Conv2D(1, 8, 3, padding=1), L.ReLU(), L.MaxPool2D(2),
                      L.Conv2D(8, 16, 3, padding=1), L.ReLU(), L.MaxPool2D(2),
                      L.Conv2D(16, loss.channels, 1)], loss)
    history = net.fit(x, np.array(targets, dtype=object), epochs=50, batch_size=8,
                      optimizer=nn.optim.Adam(1e-2), seed=0, progress=False)
    assert history["train_loss"][-1] < 0.1 * history["train_loss"][0]
    boxes, scores, _, _ = loss.decode(net.predict(x[:8]), 0.0)
    hits = [nn.detection.box_iou(boxes[i][:1], targets[i]["boxes"])[0, 0] for i in range(8)]
    assert np.mean(hits) > 0.5


def test_network_with_yolo_loss_saves_and_loads(tmp_path):
    nn.use("numpy", "fp32", seed=0)
    loss = YOLOLoss(PRIORS, 2, 1, stride=4, good_iou=0.45, objectness_target="(1+iou)/2")
    net = nn.Network([nn.layers.Conv2D(1, 4, 3, padding=1), nn.layers.MaxPool2D(4),
                      nn.layers.Conv2D(4, loss.channels, 1)], loss)
    path = net.save(tmp_path / "yolo")
    loaded = nn.Network.load(path)
    assert isinstance(loaded.loss, YOLOLoss) and loaded.loss.config() == loss.config()
    x = np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
