"""YOLOLoss: equation (14) of the detection chapter against an independent reference written
here with plain loops, fp64 gradient checks of every term (association held fixed), the two
association rules, decoding, precisions, and training through Network."""
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


# -- the reference: equation (14) written box by box ----------------------------------------------------
# Nothing below calls nn: its own sigmoid, IoU, association and derivatives, from the slides'
# training procedure and equation (14) (shared/course/001_597c6f3b4d88b483.txt) and the channel
# layout documented in YOLOLoss: t_x, t_y, t_w, t_h, t_P, t_O, classes, params.
def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def pair_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference(loss, raw, targets, rule=None):
    """Loss, parts and gradient of equation (14), batch mean; association recomputed here.

    ``loss`` is read for its settings only (numbers). Returns (total, parts, grad, matches)
    with matches[n] = list of (target index, a, gy, gx) per image, None for dropped.
    """
    raw = np.asarray(raw, dtype=np.float64)
    N, _, Gh, Gw = raw.shape
    A, C, P, s = len(loss.priors), loss.n_classes, loss.n_params, loss.stride
    D = 6 + C + P
    rule = rule or loss.association_rule
    void_w = np.broadcast_to(np.asarray(loss.lambda_void, float), (A,))
    gamma = np.broadcast_to(np.asarray(loss.gamma, float), (P,))
    m = loss.max_log_scale
    parts = dict.fromkeys(("position", "size", "probability", "objectness", "void", "classes",
                           "params"), 0.0)
    grad = np.zeros_like(raw)
    all_matches = []
    for n in range(N):
        boxes = np.asarray(targets[n]["boxes"], float).reshape(-1, 4)
        classes = np.asarray(targets[n].get("classes", np.zeros(len(boxes))), int).reshape(-1)
        params = np.asarray(targets[n].get("params", np.zeros((len(boxes), 0))), float).reshape(
            len(boxes), -1) if len(boxes) else np.zeros((0, P))

        def t(a, gy, gx, n=n):
            return raw[n, a * D:(a + 1) * D, gy, gx]

        def predicted(a, gy, gx, t=t):
            v = t(a, gy, gx)
            cx, cy = (gx + sig(v[0])) * s, (gy + sig(v[1])) * s
            w = loss.priors[a][0] * math.exp(min(max(v[2], -m), m))
            h = loss.priors[a][1] * math.exp(min(max(v[3], -m), m))
            return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

        # association: targets in order, each to the best free box of its cell
        taken, matches = {}, []
        for k, b in enumerate(boxes):
            cx, cy = (b[0] + b[2]) / 2 / s, (b[1] + b[3]) / 2 / s
            gx, gy = min(max(math.floor(cx), 0), Gw - 1), min(max(math.floor(cy), 0), Gh - 1)
            w, h = b[2] - b[0], b[3] - b[1]
            best, best_key = None, None
            for a in range(A):
                if (a, gy, gx) in taken:
                    continue
                pw, ph = loss.priors[a]
                inter = min(w, pw) * min(h, ph)
                shape = inter / (w * h + pw * ph - inter)
                overlap = pair_iou(predicted(a, gy, gx), b)
                key = shape if rule == "prior" else (
                    (1, overlap) if overlap > loss.min_iou else (0, shape))
                if best_key is None or key > best_key:
                    best, best_key = a, key
            if best is None:
                matches.append(None)
                continue
            taken[best, gy, gx] = k
            matches.append((k, best, gy, gx))
        all_matches.append(matches)

        for a in range(A):
            for gy in range(Gh):
                for gx in range(Gw):
                    v, g = t(a, gy, gx), grad[n, a * D:(a + 1) * D, gy, gx]
                    box = predicted(a, gy, gx)
                    sP, sO = sig(v[4]), sig(v[5])
                    if (a, gy, gx) not in taken:
                        if any(pair_iou(box, b) > loss.good_iou for b in boxes):
                            continue                                # good but not best
                        lw = void_w[a]
                        parts["void"] += lw * (loss.lambda_prob * sP ** 2 + loss.lambda_obj * sO ** 2)
                        g[4] = lw * loss.lambda_prob * 2 * sP * sP * (1 - sP)
                        g[5] = lw * loss.lambda_obj * 2 * sO * sO * (1 - sO)
                        continue
                    k = taken[a, gy, gx]
                    b = boxes[k]
                    for c, centre, cell in ((0, (b[0] + b[2]) / 2, gx), (1, (b[1] + b[3]) / 2, gy)):
                        target = min(max(centre / s - cell, 0.0), 1.0)
                        sv = sig(v[c])
                        parts["position"] += loss.lambda_pos * (sv - target) ** 2
                        g[c] = loss.lambda_pos * 2 * (sv - target) * sv * (1 - sv)
                    for c, extent, prior in ((2, b[2] - b[0], loss.priors[a][0]),
                                             (3, b[3] - b[1], loss.priors[a][1])):
                        target = min(max(math.log(extent / prior), -m), m)
                        parts["size"] += loss.lambda_size * (v[c] - target) ** 2
                        g[c] = loss.lambda_size * 2 * (v[c] - target)
                    parts["probability"] += loss.lambda_prob * (sP - 1) ** 2
                    g[4] = loss.lambda_prob * 2 * (sP - 1) * sP * (1 - sP)
                    overlap = pair_iou(box, b)
                    fiou = overlap if loss.fiou == "iou" else (1 + overlap) / 2
                    parts["objectness"] += loss.lambda_obj * (sO - fiou) ** 2
                    g[5] = loss.lambda_obj * 2 * (sO - fiou) * sO * (1 - sO)
                    z = v[6:6 + C]
                    if C and loss.class_activation == "softmax":
                        e = [math.exp(zi - max(z)) for zi in z]
                        total = sum(e)
                        parts["classes"] -= loss.lambda_class * math.log(e[classes[k]] / total)
                        for j in range(C):
                            g[6 + j] = loss.lambda_class * (e[j] / total - (j == classes[k]))
                    elif C:
                        for j in range(C):
                            p, y = sig(z[j]), float(j == classes[k])
                            parts["classes"] -= loss.lambda_class * (
                                y * math.log(p) + (1 - y) * math.log(1 - p))
                            g[6 + j] = loss.lambda_class * (p - y)
                    for j in range(P):
                        d = v[6 + C + j] - params[k][j]
                        parts["params"] += loss.lambda_param * gamma[j] * d ** 2
                        g[6 + C + j] = loss.lambda_param * gamma[j] * 2 * d
    parts = {key: value / N for key, value in parts.items()}
    return sum(parts.values()), parts, grad / N, all_matches


# -- helpers ---------------------------------------------------------------------------------------------
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


def channel(loss, a, k):
    """Index of channel k of prior a in the raw output."""
    return a * loss.channels_per_prior + k


# -- against the reference --------------------------------------------------------------------------------
CONFIGS = [  # (n_classes, n_params, class_activation, fiou, association, grid, stride)
    (3, 2, "softmax", "iou", "best", (4, 5), 16),
    (3, 2, "sigmoid", "(1+iou)/2", "best", (4, 5), 16),
    (1, 0, "softmax", "iou", "prior", (3, 3), 20),
    (0, 1, "softmax", "(1+iou)/2", "best", (5, 2), 12),
    (2, 4, "sigmoid", "iou", "prior", (1, 1), 64),
    (4, 0, "softmax", "(1+iou)/2", "best", (2, 2), 24),
]
IDS = [f"C{c[0]}P{c[1]}-{c[2]}-{c[3]}-{c[4]}-{c[5][0]}x{c[5][1]}" for c in CONFIGS]


def configured(config, **kwargs):
    n_classes, n_params, activation, fiou, rule, _, stride = config
    return YOLOLoss(PRIORS, n_classes, n_params, stride=stride, class_activation=activation,
                    fiou=fiou, association=rule, good_iou=0.3, lambda_pos=3.0, lambda_size=2.0,
                    lambda_prob=1.5, lambda_obj=0.8, lambda_class=1.2, lambda_param=0.7,
                    lambda_void=[0.2, 0.5, 0.9], gamma=np.linspace(0.5, 2.0, n_params).tolist()
                    or 1.0, **kwargs)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_loss_and_gradient_match_the_reference(fp64, config):
    """Random targets, several per cell on the small grids (some dropped), sizes beyond the
    clip: loss, every part and the gradient agree with the loops of equation (14)."""
    Gh, Gw = config[5]
    rng = np.random.default_rng(Gh * 10 + Gw)
    loss = configured(config)
    targets = make_targets(rng, 3, min(Gh, Gw) * config[6], loss.n_params, loss.n_classes,
                           per_image=(0, 6))
    raw = rng.normal(0, 1.5, (3, loss.channels, Gh, Gw))
    raw[:, 2::loss.channels_per_prior] *= 3          # some sizes beyond the clip
    value = loss.forward(raw, targets)
    grad = host(loss.backward())
    expected, parts, expected_grad, matches = reference(loss, raw, targets)
    assert value == pytest.approx(expected, rel=1e-12)
    for key, v in parts.items():
        assert loss.parts[key] == pytest.approx(v, rel=1e-12, abs=1e-15), key
    assert rel_error(grad, expected_grad) < 1e-12
    expected_boxes = sorted((i, a, gy, gx) for i, image in enumerate(matches)
                            for m in image if m is not None for (_, a, gy, gx) in [m])
    n, a, _, gy, gx = (host(i).tolist() for i in loss.association.index)
    assert sorted(zip(n, a, gy, gx)) == expected_boxes and len(expected_boxes) > 0
    assert parts["void"] > 0 and parts["position"] > 0


def test_reference_agreement_numbers(fp64):
    """The closing note's figure: loss and gradient of YOLOLoss against the reference on a
    radio-sky batch with both rules (printed with -s)."""
    _, sky = nn.data.make_radio_sky(4, size=64, seed=5, sources_per_image=8)
    sky = [{**t, "params": np.log1p(np.abs(t["params"]))} for t in sky]    # values of order 1
    rng = np.random.default_rng(1)
    for rule in ("best", "prior"):
        loss = YOLOLoss([[6, 6], [11, 11], [20, 20]], 2, 4, stride=8, association=rule,
                        lambda_void=[0.3, 0.5, 0.7], gamma=[1.0, 0.5, 0.25, 2.0], good_iou=0.5)
        raw = rng.normal(0, 1, (4, loss.channels, 8, 8))
        value = loss.forward(raw, sky)
        grad = host(loss.backward())
        expected, _, expected_grad, _ = reference(loss, raw, sky)
        loss_err = abs(value - expected) / abs(expected)
        grad_err = rel_error(grad, expected_grad)
        print(f"{rule}: loss {value:.12f} vs reference {expected:.12f} (rel. {loss_err:.1e}); "
              f"gradient rel. error {grad_err:.1e}")
        assert loss_err < 1e-13 and grad_err < 1e-13


# -- gradient checks (finite differences, association held fixed) ------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_gradient_random_targets(fp64, config):
    Gh, Gw = config[5]
    rng = np.random.default_rng(Gh * 7 + Gw)
    loss = configured(config)
    targets = make_targets(rng, 3, min(Gh, Gw) * config[6], loss.n_params, loss.n_classes)
    raw = moderate_raw(rng, (3, loss.channels, Gh, Gw))
    err, grad, association = gradient_error(loss, raw, targets)
    assert err < TOL, f"relative error {err:.2e}"
    assert association.n_matched > 0 and np.abs(grad).max() > 0


@pytest.mark.parametrize("rule", ["best", "prior"])
def test_gradient_edge_cases(fp64, rule):
    """Several targets in one cell (one dropped), a centre on a cell border and one on the
    image edge, an image without target; per-prior void weights and per-parameter gamma."""
    rng = np.random.default_rng(5)
    loss = YOLOLoss(PRIORS, 2, 2, stride=16, good_iou=0.2, association=rule,
                    lambda_void=[0.1, 0.6, 1.3], gamma=[0.5, 3.0], lambda_prob=2.0)
    boxes0 = np.array([[8.0, 8.0, 24.0, 24.0],       # centre (16, 16): a corner of 4 cells
                       [0.0, 10.0, 32.0, 20.0],      # centre (16, 15): on a vertical border
                       [40.0, 50.0, 64.0, 64.0],     # centre (52, 57)
                       [56.0, 58.0, 72.0, 70.0]])    # centre (64, 64): the image's corner
    boxes1 = np.array([[17.0, 17.0, 29.0, 29.0],     # four targets in cell (1, 1): 3 priors
                       [18.0, 19.0, 30.0, 27.0],
                       [20.0, 16.0, 26.0, 30.0],
                       [16.5, 16.5, 31.0, 31.0]])
    targets = [{"boxes": boxes0, "classes": np.array([0, 1, 1, 0]), "params": rng.normal(size=(4, 2))},
               {"boxes": boxes1, "classes": np.array([1, 0, 1, 0]), "params": rng.normal(size=(4, 2))},
               {"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "params": np.zeros((0, 2))}]
    raw = moderate_raw(rng, (3, loss.channels, 4, 4))
    # O = sigmoid(2) = 0.88, away from the IoU targets: no gradient is close to 0 there
    raw[:, 5::loss.channels_per_prior] = 2.0
    err, grad, association = gradient_error(loss, raw, targets)
    assert err < TOL, f"relative error {err:.2e}"
    assert association.n_targets == 8
    assert association.n_matched == 7 and association.n_dropped == 1
    _, _, expected_grad, _ = reference(loss, raw, targets)
    assert rel_error(grad, expected_grad) < 1e-12
    # border and edge: the cells right/below, the corner's offset is (1, 1)
    n, a, _, gy, gx = (host(i).tolist() for i in association.index)
    cells = {(n_, gy_, gx_) for n_, gy_, gx_ in zip(n, gy, gx)}
    assert {(0, 1, 1), (0, 0, 1), (0, 3, 3)} <= cells
    offsets = host(association.offsets)
    np.testing.assert_allclose(offsets[3], [1.0, 1.0])
    np.testing.assert_allclose(offsets[:2], [[0.0, 0.0], [0.0, 15 / 16]])
    # the image without targets only learns P = O = 0, weighted per prior
    assert (grad[2][[channel(loss, 0, k) for k in (0, 1, 2, 3, 6, 7, 8, 9)]] == 0).all()
    for a_, weight in enumerate([0.1, 0.6, 1.3]):
        s = 1 / (1 + np.exp(-raw[2, channel(loss, a_, 4)]))
        np.testing.assert_allclose(grad[2, channel(loss, a_, 4)],
                                   weight * 2.0 * 2 * s * s * (1 - s) / 3, rtol=1e-12)


def test_gradient_of_each_term_alone(fp64):
    """Each weight of (14) switched on alone: its own finite-difference check, so a wrong
    term cannot hide behind a larger one."""
    rng = np.random.default_rng(8)
    targets = make_targets(rng, 2, 48, 3, 3, per_image=(2, 5))
    raw = moderate_raw(rng, (2, 3 * (6 + 3 + 3), 3, 3))
    zero = {"lambda_pos": 0.0, "lambda_size": 0.0, "lambda_prob": 0.0, "lambda_obj": 0.0,
            "lambda_class": 0.0, "lambda_param": 0.0}
    for name, extra in (("lambda_pos", {}), ("lambda_size", {}), ("lambda_class", {}),
                        ("lambda_param", {"gamma": [0.2, 1.0, 4.0]}),
                        ("lambda_prob", {"lambda_void": [0.0, 0.0, 0.0]}),
                        ("lambda_obj", {"lambda_void": [0.0, 0.0, 0.0]}),
                        ("lambda_prob", {"lambda_void": [0.3, 0.0, 2.0]}),
                        ("lambda_obj", {"lambda_void": [0.0, 1.0, 0.5]})):
        kwargs = {**zero, name: 1.7, **extra}
        loss = YOLOLoss(PRIORS, 3, 3, stride=16, good_iou=0.4, **kwargs)
        err, grad, _ = gradient_error(loss, raw, targets)
        assert err < TOL, f"{name} {extra}: relative error {err:.2e}"
        assert np.abs(grad).max() > 0, name


def test_gradient_batch_without_targets(fp64):
    rng = np.random.default_rng(6)
    loss = YOLOLoss(PRIORS, 3, 2, stride=8)
    empty = [{"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "params": np.zeros((0, 2))}] * 2
    raw = moderate_raw(rng, (2, loss.channels, 3, 4))
    err, grad, association = gradient_error(loss, raw, empty)
    assert err < TOL
    assert association.n_matched == 0 and loss.parts["void"] > 0
    assert sum(v for k, v in loss.parts.items() if k != "void") == 0


# -- association ----------------------------------------------------------------------------------------
def raw_for(loss, N, Gh, Gw):
    """A raw output whose every box is the prior's size at the centre of its cell, with
    neutral P and O: easy to reason about."""
    return np.zeros((N, loss.channels, Gh, Gw))


def test_association_cells_priors_and_offsets(fp64):
    for rule in ("best", "prior"):      # boxes = priors at the cell centres: here the rules agree
        loss = YOLOLoss(PRIORS, 2, stride=16, association=rule)
        targets = [(np.array([[12.0, 12.0, 20.0, 20.0],    # 8 x 8 at (16, 16): cell (1, 1), prior 0
                              [40.0, 4.0, 58.0, 14.0],     # 18 x 10 at (49, 9): cell (0, 3), prior 1
                              [44.0, 40.0, 64.0, 64.0]]),  # 20 x 24 at (54, 52): cell (3, 3), prior 2
                    np.array([0, 1, 1]))]
        a = loss.associate(raw_for(loss, 1, 4, 4), targets)
        n, prior, _, gy, gx = a.index
        assert a.rule == rule
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
    # a box sticking out on the left: its centre (-1, 5) belongs to cell (0, 0), offset 0
    a = loss.associate(raw_for(loss, 1, 3, 3), [(np.array([[-4.0, 2.0, 2.0, 8.0]]), [0])])
    np.testing.assert_allclose(host(a.offsets), [[0.0, 0.5]])


def test_issue_14_case_targets_in_order_take_their_best_free_prior(fp64):
    """2 priors, 3 targets centred in one cell; targets 0 and 1 prefer prior 0, target 2
    prefers prior 1. Targets in order: 0 -> prior 0, 1 -> prior 1 (its best *free* prior),
    2 -> dropped. (nn used to give prior 1 to target 2 and drop target 1.)"""
    loss = YOLOLoss([[8.0, 8.0], [16.0, 16.0]], 1, stride=32, association="prior")
    boxes = np.array([[12.0, 12.0, 20.0, 20.0],       # 8 x 8: prior 0
                      [11.0, 11.5, 20.0, 20.5],       # 9 x 9: prior 0
                      [8.0, 8.0, 24.0, 24.0]])        # 16 x 16: prior 1
    rng = np.random.default_rng(14)
    raw = rng.normal(0, 0.5, (1, loss.channels, 1, 1))
    targets = [{"boxes": boxes, "classes": np.zeros(3, int)}]
    value = loss.forward(raw, targets)
    a = loss.association
    assert host(a.index[1]).tolist() == [0, 1] and a.targets.tolist() == [0, 1]
    assert (a.n_matched, a.n_dropped) == (2, 1)
    expected, _, _, matches = reference(loss, raw, targets)
    assert matches[0] == [(0, 0, 0, 0), (1, 1, 0, 0), None]
    assert value == pytest.approx(expected, rel=1e-12)
    # what the old rule computed: target 2 before target 1
    other, _, _, _ = reference(loss, raw, [{"boxes": boxes[[0, 2, 1]], "classes": np.zeros(3, int)}])
    assert abs(value - other) > 1e-3
    print(f"issue 14 case: loss {value:.4f} (documented rule) vs {other:.4f} (old rule)")


def test_best_association_follows_the_predictions(fp64):
    """The slides' rule: the box whose *prediction* overlaps the target most, even when
    another prior has the target's shape; "prior" keeps YOLOv2's choice."""
    priors = [[8.0, 8.0], [24.0, 24.0]]
    target = [{"boxes": np.array([[12.0, 12.0, 20.0, 20.0]]), "classes": [0]}]   # 8 x 8
    raw = np.zeros((1, 2 * 7, 1, 1))
    raw[0, 0 * 7 + 0] = 4.0          # prior 0's box moved away to the right
    raw[0, 1 * 7 + 2:1 * 7 + 4] = math.log(9 / 24)   # prior 1 shrunk to 9 x 9, centred
    best = YOLOLoss(priors, 1, stride=32, association="best")
    prior = YOLOLoss(priors, 1, stride=32, association="prior")
    assert host(best.associate(raw, target).index[1]).tolist() == [1]
    assert host(prior.associate(raw, target).index[1]).tolist() == [0]
    assert best.associate(raw, target, rule="prior").rule == "prior"
    # the IoU of the matched prediction is the objectness target (held fixed)
    a = best.associate(raw, target)
    assert host(a.fiou)[0] == pytest.approx(64 / 81)


def test_best_association_without_overlap_falls_back_to_the_prior_shape(fp64):
    priors = [[30.0, 30.0], [8.0, 8.0]]
    raw = np.zeros((1, 2 * 6, 2, 2))
    raw[0, 2:4] = raw[0, 6 + 2:6 + 4] = -4.0      # both predicted boxes tiny: no overlap
    target = [{"boxes": np.array([[2.0, 2.0, 10.0, 10.0]])}]
    loss = YOLOLoss(priors, 0, stride=32, min_iou=0.0)
    a = loss.associate(raw, target)
    assert host(a.iou)[0] == 0 and host(a.index[1]).tolist() == [1]
    # boxes = priors at the cell centre (16, 16): only the 30 x 30 one overlaps the 8 x 8
    # target near the corner, by 64 / 900 = 0.07; below min_iou the shape decides
    raw = np.zeros((1, 2 * 6, 1, 1))
    loss = YOLOLoss(priors, 0, stride=32, min_iou=0.1)
    assert host(loss.associate(raw, target).index[1]).tolist() == [1]
    loss = YOLOLoss(priors, 0, stride=32, min_iou=0.05)
    assert host(loss.associate(raw, target).index[1]).tolist() == [0]


def test_best_association_in_order_with_several_targets_per_cell(fp64):
    """Targets in order: target 0 takes the box it overlaps most even though target 1
    would have fitted that box better; target 1 takes what is left."""
    priors = [[10.0, 10.0], [10.0, 10.0]]
    raw = np.zeros((1, 2 * 6, 1, 1))
    raw[0, 0], raw[0, 6 + 0] = -1.0, 1.0          # box 0 left of the centre, box 1 right
    t0 = [12.0, 11.0, 22.0, 21.0]                 # centre 17: a bit right -> box 1
    t1 = [13.5, 11.0, 23.5, 21.0]                 # centre 18.5: further right, wants box 1 too
    loss = YOLOLoss(priors, 0, stride=32)
    a = loss.associate(raw, [{"boxes": np.array([t0, t1])}])
    assert host(a.index[1]).tolist() == [1, 0]
    a = loss.associate(raw, [{"boxes": np.array([t1, t0])}])
    assert host(a.index[1]).tolist() == [1, 0]


def test_good_but_not_best_boxes_are_ignored(fp64):
    """A box of another prior, in the same cell, that already fits the target well is left
    out: its gradient is zero on every channel."""
    loss = YOLOLoss([[10.0, 10.0], [12.0, 12.0]], 1, stride=32, good_iou=0.5)
    raw = raw_for(loss, 1, 2, 2)
    target = [(np.array([[10.0, 11.0, 21.0, 21.5]]), [0])]    # the 10 x 10 box fits best
    loss.forward(raw, target)
    grad = host(loss.backward()).reshape(1, 2, 7, 2, 2)
    a = loss.association
    assert int(a.n_ignored) == 1
    assert (grad[0, 1, :, 0, 0] == 0).all()                   # prior 1, cell (0, 0): ignored
    assert (grad[0, 0, :6, 0, 0] != 0).all()     # prior 0: matched, learns all (1 class: no CE)
    assert (grad[0, :, :4, 1, :] == 0).all() and (grad[0, :, 4:6, 1, :] > 0).all()  # void
    strict = YOLOLoss([[10.0, 10.0], [12.0, 12.0]], 1, stride=32, good_iou=0.9)
    strict.forward(raw, target)
    assert int(strict.association.n_ignored) == 0
    assert strict.parts["void"] > loss.parts["void"]


@pytest.mark.parametrize("kind, expected", [("iou", lambda u: u), ("(1+iou)/2", lambda u: (1 + u) / 2)])
def test_fiou_targets(fp64, kind, expected):
    loss = YOLOLoss([[10.0, 10.0]], 1, stride=32, fiou=kind)
    target = [(np.array([[10.0, 12.0, 22.0, 20.0]]), [0])]   # 12 x 8 around (16, 16)
    a = loss.associate(raw_for(loss, 1, 1, 1), target)
    overlap = 80 / (100 + 96 - 80)                              # the 10 x 10 prior box vs 12 x 8
    assert host(a.fiou)[0] == pytest.approx(expected(overlap))
    assert host(a.iou)[0] == pytest.approx(overlap)


def test_startup_images_use_the_prior_rule_until_backward_has_seen_them(fp64):
    priors = [[8.0, 8.0], [24.0, 24.0]]
    target = [{"boxes": np.array([[12.0, 12.0, 20.0, 20.0]]), "classes": [0]}] * 2
    raw = np.zeros((2, 2 * 7, 1, 1))
    raw[:, 0] = 4.0
    raw[:, 7 + 2:7 + 4] = math.log(9 / 24)
    loss = YOLOLoss(priors, 1, stride=32, startup_images=3)
    seen = []
    for _ in range(3):
        loss.forward(raw, target)
        seen.append((loss.association.rule, host(loss.association.index[1]).tolist()[0]))
        loss.backward()
    assert seen == [("prior", 0), ("prior", 0), ("best", 1)] and loss.images_seen == 6
    loss.images_seen = 0
    assert loss.current_rule() == "prior"


def test_target_formats_are_equivalent(fp64):
    rng = np.random.default_rng(12)
    loss = YOLOLoss(PRIORS, 3, 2, stride=16)
    targets = make_targets(rng, 3, 64, 2, 3, per_image=(1, 3))
    raw = rng.normal(size=(3, loss.channels, 4, 4))
    as_dicts = loss.forward(raw, targets)
    as_tuples = loss.forward(raw, [(t["boxes"], t["classes"], t["params"]) for t in targets])
    as_objects = loss.forward(raw, np.array(targets, dtype=object))     # what Network.fit passes
    as_lists = loss.forward(raw, [{k: v.tolist() for k, v in t.items()} for t in targets])
    assert as_dicts == as_tuples == as_objects == as_lists
    # make_radio_sky's targets carry extra keys ("centers"): accepted as they are
    _, sky = nn.data.make_radio_sky(2, size=64, seed=0, sources_per_image=3)
    radio = YOLOLoss(PRIORS, 2, 4, stride=16)
    assert math.isfinite(radio.forward(rng.normal(size=(2, radio.channels, 4, 4)), sky))


# -- decoding ----------------------------------------------------------------------------------------
def encode(loss, N, Gh, Gw, entries):
    """Raw output placing, for each (n, a, gy, gx, box, P, O, class, params), exactly that
    box (the inverse of the activations)."""
    raw = np.full((N, loss.channels, Gh, Gw), -8.0)      # P, O = sigmoid(-8): nothing
    D = loss.channels_per_prior
    for n, a, gy, gx, box, p, o, cls, params in entries:
        cx, cy = (box[0] + box[2]) / 2 / loss.stride - gx, (box[1] + box[3]) / 2 / loss.stride - gy
        c = raw[n, a * D:(a + 1) * D, gy, gx]
        c[0], c[1] = math.log(cx / (1 - cx)), math.log(cy / (1 - cy))
        c[2] = math.log((box[2] - box[0]) / loss.priors[a][0])
        c[3] = math.log((box[3] - box[1]) / loss.priors[a][1])
        c[4], c[5] = math.log(p / (1 - p)), math.log(o / (1 - o))
        c[6:6 + loss.n_classes] = 0.0
        if loss.n_classes:
            c[6 + cls] = 3.0
        c[6 + loss.n_classes:] = params
    return raw


def test_decode_inverts_the_activations(fp64):
    loss = YOLOLoss(PRIORS, 3, 2, stride=16)
    entries = [(0, 1, 2, 3, [50.0, 36.0, 70.0, 50.0], 0.8, 0.9, 2, [0.5, -1.0]),
               (0, 0, 0, 0, [2.0, 3.0, 9.0, 12.0], 0.95, 0.6, 0, [1.0, 2.0]),
               (1, 2, 1, 1, [10.0, 12.0, 40.0, 40.0], 0.5, 0.7, 1, [0.0, 3.0]),
               (1, 0, 3, 0, [3.0, 50.0, 12.0, 59.0], 0.9, 0.3, 1, [0.0, 0.0])]    # O below 0.5
    boxes, scores, classes, params = loss.decode(encode(loss, 2, 4, 4, entries), 0.5)
    p_class = math.exp(3) / (math.exp(3) + 2)
    np.testing.assert_allclose(boxes[0], [entries[0][4], entries[1][4]], atol=1e-9)
    # score = P * O * p(class), best first
    np.testing.assert_allclose(scores[0], [0.8 * 0.9 * p_class, 0.95 * 0.6 * p_class])
    assert classes[0].tolist() == [2, 0] and classes[1].tolist() == [1]
    np.testing.assert_allclose(params[1], [[0.0, 3.0]], atol=1e-12)
    np.testing.assert_allclose(boxes[1], [entries[2][4]], atol=1e-9)
    assert len(loss.decode(encode(loss, 2, 4, 4, entries), 0.2)[0][1]) == 2
    # the threshold is on the objectness O (0.9 and 0.6 in image 0), inclusive
    assert len(loss.decode(encode(loss, 2, 4, 4, entries), 0.599)[0][0]) == 2
    assert len(loss.decode(encode(loss, 2, 4, 4, entries), 0.601)[0][0]) == 1
    assert all(len(b) == 0 for b in loss.decode(encode(loss, 2, 4, 4, entries), 0.95)[0])


def test_decode_with_nms_and_without_classes(fp64):
    loss = YOLOLoss(PRIORS, 0, stride=16)
    entries = [(0, 0, 1, 1, [17.0, 17.0, 27.0, 27.0], 0.5, 0.9, 0, []),
               (0, 1, 1, 1, [18.0, 17.0, 28.0, 27.0], 0.5, 0.8, 0, [])]     # a near-duplicate
    raw = encode(loss, 1, 3, 3, entries)
    boxes, scores, classes, _ = loss.decode(raw, 0.5)
    assert len(boxes[0]) == 2 and classes[0].tolist() == [0, 0]
    np.testing.assert_allclose(scores[0], [0.45, 0.4])
    boxes, scores, _, _ = loss.decode(raw, 0.5, nms_threshold=0.5)
    assert len(boxes[0]) == 1 and scores[0][0] == pytest.approx(0.45)


def test_decoded_targets_score_a_perfect_loss(fp64):
    """Raw outputs that decode exactly to the targets have zero position, size and params
    loss and an objectness target IoU of 1."""
    loss = YOLOLoss([[8.0, 8.0]], 2, 1, stride=16)
    box = [20.0, 22.0, 30.0, 34.0]
    raw = encode(loss, 1, 3, 3, [(0, 0, 1, 1, box, 0.999, 0.999, 1, [0.25])])
    loss.forward(raw, [(np.array([box]), [1], [[0.25]])])
    parts = loss.parts
    assert parts["position"] < 1e-20 and parts["size"] < 1e-20 and parts["params"] < 1e-20
    assert parts["probability"] < 1e-5 and parts["objectness"] < 1e-5
    assert host(loss.association.fiou)[0] == pytest.approx(1.0)


# -- bad input ---------------------------------------------------------------------------------------
def good_target():
    return {"boxes": np.array([[0.0, 0, 8, 8]]), "classes": [1], "params": [[0.5]]}


TARGET_CASES = [  # (what, targets for one 4 x 4 image of stride 16, error, message)
    ("empty dict", [{}], nn.errors.DataError, r"image 0 has no 'boxes'.*its keys: \[\]"),
    ("not a list", {"boxes": [[0, 0, 8, 8]]}, nn.errors.DataError, "must be a list of 1"),
    ("two targets, one image", [good_target()] * 2, nn.errors.ShapeError, "holds 1 images"),
    ("a string", ["boxes"], nn.errors.DataError, "image 0 must be a dict"),
    ("boxes (8,)", [{**good_target(), "boxes": np.arange(8.0)}], nn.errors.ShapeError,
     r"'boxes' of image 0 must have shape \(k, 4\).*\(8,\)"),
    ("boxes (1, 5)", [{**good_target(), "boxes": [[0, 0, 8, 8, 1]]}], nn.errors.ShapeError,
     r"'boxes' of image 0.*\(1, 5\)"),
    ("string boxes", [{**good_target(), "boxes": [["a", "b", "c", "d"]]}], nn.errors.DataError,
     "'boxes' of image 0 holds strings"),
    ("ragged boxes", [{**good_target(), "boxes": [[0, 0, 8, 8], [1, 2]]}], nn.errors.DataError,
     "'boxes' of image 0 is a ragged list"),
    ("NaN box", [{**good_target(), "boxes": [[0, np.nan, 8, 8]]}], nn.errors.DataError,
     r"'boxes' of image 0 holds NaN at index \(0, 1\)"),
    ("inf box", [{**good_target(), "boxes": [[0, 0, np.inf, 8]]}], nn.errors.DataError,
     r"'boxes' of image 0 holds inf at index \(0, 2\)"),
    ("inverted box", [{**good_target(), "boxes": [[8.0, 0, 8, 8]]}], nn.errors.DataError,
     r"box 0 of image 0, \[8.0, 0.0, 8.0, 8.0\], has x2 <= x1"),
    ("box outside", [{**good_target(), "boxes": [[70.0, 10, 80, 20]]}], nn.errors.DataError,
     (r"box 0 of image 0, \[70.0, 10.0, 80.0, 20.0\], lies wholly outside the image grid "
      r"\[0, 64\] x \[0, 64\]")),
    ("box above", [{**good_target(), "boxes": [[10.0, -20, 20, -2]]}], nn.errors.DataError,
     "lies wholly outside"),
    ("no classes", [{"boxes": [[0, 0, 8, 8]], "params": [[0.5]]}], nn.errors.DataError,
     "image 0 has no 'classes' \\(2 classes"),
    ("class 2 of 2", [{**good_target(), "classes": [2]}], nn.errors.DataError,
     r"'classes' of image 0 holds class ids outside \[0, 2\): 2"),
    ("class -1", [{**good_target(), "classes": [-1]}], nn.errors.DataError, "outside"),
    ("class 0.5", [{**good_target(), "classes": [0.5]}], nn.errors.DataError,
     "must hold integer class ids, got 0.5"),
    ("class strings", [{**good_target(), "classes": ["star"]}], nn.errors.DataError,
     "'classes' of image 0 holds strings"),
    ("two classes, one box", [{**good_target(), "classes": [0, 1]}], nn.errors.ShapeError,
     r"'classes' of image 0 must have shape \(1,\)"),
    ("no params", [{"boxes": [[0, 0, 8, 8]], "classes": [1]}], nn.errors.DataError,
     "image 0 has no 'params'.*learns 1 parameters"),
    ("params (1, 2)", [{**good_target(), "params": [[0.5, 1.0]]}], nn.errors.ShapeError,
     r"'params' of image 0 must have shape \(1, 1\).*got shape \(1, 2\)"),
    ("NaN params", [{**good_target(), "params": [[np.nan]]}], nn.errors.DataError,
     "'params' of image 0 holds NaN"),
]


@pytest.mark.parametrize("what, targets, error, message", TARGET_CASES,
                         ids=[c[0] for c in TARGET_CASES])
def test_bad_targets_name_the_image_and_the_key(what, targets, error, message):
    loss = YOLOLoss(PRIORS, 2, 1, stride=16)
    with pytest.raises(error, match=message):
        loss.forward(np.zeros((1, loss.channels, 4, 4)), targets)


def test_bad_raw_outputs_and_call_order():
    loss = YOLOLoss(PRIORS, 2, 1, stride=16)
    good = [good_target()]
    with pytest.raises(nn.errors.StateError, match="call forward.*first"):
        YOLOLoss(PRIORS, 2, 1).backward()
    with pytest.raises(nn.errors.ShapeError, match=r"\(N, 27, Gh, Gw\).*output 27 channels"):
        loss.forward(np.zeros((1, 24, 4, 4)), good)
    with pytest.raises(nn.errors.ShapeError, match="holds no image"):
        loss.forward(np.zeros((0, 27, 4, 4)), [])
    with pytest.raises(nn.errors.DataError, match="raw output holds strings"):
        loss.forward(np.full((1, 27, 2, 2), "x"), good)
    loss.forward(np.zeros((1, 27, 4, 4)), good)
    with pytest.raises(nn.errors.ShapeError, match="association was made"):
        loss.forward(np.zeros((1, 27, 2, 4)), good, association=loss.association)
    with pytest.raises(nn.errors.ConfigError, match="must be an Association"):
        loss.forward(np.zeros((1, 27, 4, 4)), good, association="best")
    with pytest.raises(nn.errors.ConfigError, match="rule must be one of 'best', 'prior'"):
        loss.associate(np.zeros((1, 27, 4, 4)), good, rule="shape")
    raw = np.zeros((1, 27, 4, 4))
    raw[0, 0, 1, 1] = np.nan
    with pytest.raises(nn.errors.DataError, match="image 0 decodes to a box that is not finite"):
        loss.decode(raw, 0.0)
    for kwargs in ({"objectness_threshold": 1.5}, {"objectness_threshold": "0.5"},
                   {"nms_threshold": -0.1}):
        with pytest.raises(nn.errors.ConfigError, match="threshold"):
            loss.decode(np.zeros((1, 27, 4, 4)), **{"objectness_threshold": 0.5, **kwargs})


CONFIG_CASES = [
    ({"priors": [[0, 4]]}, "priors must be a non-empty"),
    ({"priors": [[4, np.nan]]}, "priors must be"),
    ({"priors": "big"}, "priors must be"),
    ({"n_classes": 2.0}, "n_classes must be an int"),
    ({"n_params": -1}, "n_params must be an int"),
    ({"stride": 0}, "stride must be a finite number > 0"),
    ({"association": "shape"}, "association must be one of 'best', 'prior'"),
    ({"fiou": "one"}, r"fiou must be one of 'iou', '\(1\+iou\)/2'"),
    ({"class_activation": "relu"}, "class_activation"),
    ({"good_iou": 1.5}, r"good_iou must lie in \[0, 1\]"),
    ({"lambda_void": -1}, "lambda_void must be a finite number >= 0"),
    ({"lambda_void": [1.0, 2.0]}, "lambda_void must be a number >= 0 or 3 numbers"),
    ({"gamma": [1.0, 2.0]}, "gamma must be a number >= 0 or 1 numbers >= 0 \\(one per parameter"),
    ({"gamma": "big"}, "gamma must be"),
    ({"lambda_prob": np.nan}, "lambda_prob must be a finite number"),
    ({"lambda_pos": True}, "lambda_pos must be a finite number"),
    ({"max_log_scale": 0}, "max_log_scale"),
    ({"startup_images": 1.5}, "startup_images must be an int"),
    ({"lambda_coord": 5.0}, "no option 'lambda_coord'.*called lambda_pos"),
    ({"lambda_noobj": 0.5}, "no option 'lambda_noobj'.*called lambda_void"),
    ({"objectness_target": "iou"}, "no option 'objectness_target'.*called fiou"),
    ({"lambda_nothing": 1}, "no option 'lambda_nothing'"),
]


@pytest.mark.parametrize("kwargs, message", CONFIG_CASES, ids=[str(c[0]) for c in CONFIG_CASES])
def test_bad_configuration(kwargs, message):
    args = {"priors": PRIORS, "n_classes": 2, "n_params": 1, **kwargs}
    with pytest.raises(nn.errors.ConfigError, match=f"YOLOLoss: {message}"):
        YOLOLoss(**args)


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
        for rule in ("best", "prior"):
            loss = YOLOLoss(PRIORS, 2, 4, stride=16, association=rule)
            _, sky = nn.data.make_radio_sky(3, size=64, seed=1, sources_per_image=6)
            raw = B.asarray(rng.normal(size=(3, loss.channels, 4, 4)))
            value = loss.forward(raw, sky)
            grad = loss.backward()
            assert type(grad) is type(raw) and math.isfinite(float(value))
            with backends.using(backend_name, "fp64"):
                expected, _, expected_grad, _ = reference(loss, host(raw), sky)
            assert float(value) == pytest.approx(expected, rel=1e-5)
            assert rel_error(host(grad), expected_grad) < 1e-4
            boxes, scores, classes, params = loss.decode(raw, 0.3)
            assert all(isinstance(b, np.ndarray) for b in boxes) and params[0].shape[1] == 4


# -- with a network ------------------------------------------------------------------------------------
def test_config_round_trip_and_parts():
    loss = YOLOLoss(PRIORS, 2, 3, stride=8, gamma=[1.0, 0.5, 2.0], good_iou=0.4,
                    fiou="(1+iou)/2", class_activation="sigmoid", association="prior",
                    lambda_void=[0.1, 0.2, 0.3], startup_images=100)
    rebuilt = from_dict(json.loads(json.dumps(to_dict(loss))))
    assert isinstance(rebuilt, YOLOLoss) and rebuilt.config() == loss.config()
    assert "YOLOLoss(priors=" in repr(loss) and "association='prior'" in repr(loss)
    assert loss.channels == 3 * (6 + 2 + 3)


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
    net = nn.Network([L.Conv2D(1, 8, 3, padding=1, init="he"), L.ReLU(), L.MaxPool2D(2),
                      L.Conv2D(8, 16, 3, padding=1, init="he"), L.ReLU(), L.MaxPool2D(2),
                      L.Conv2D(16, loss.channels, 1)], loss)
    history = net.fit(x, np.array(targets, dtype=object), epochs=50, batch_size=8,
                      optimizer=nn.optim.Adam(1e-2), seed=0, progress=False)
    assert history["train_loss"][-1] < 0.1 * history["train_loss"][0]
    boxes, scores, _, _ = loss.decode(net.predict(x[:8]), 0.0)
    hits = [nn.detection.box_iou(boxes[i][:1], targets[i]["boxes"])[0, 0] for i in range(8)]
    assert np.mean(hits) > 0.5


def test_network_with_yolo_loss_saves_and_loads(tmp_path):
    nn.use("numpy", "fp32", seed=0)
    loss = YOLOLoss(PRIORS, 2, 1, stride=4, good_iou=0.45, fiou="(1+iou)/2",
                    lambda_void=[0.2, 0.3, 0.4])
    net = nn.Network([nn.layers.Conv2D(1, 4, 3, padding=1), nn.layers.MaxPool2D(4),
                      nn.layers.Conv2D(4, loss.channels, 1)], loss)
    path = net.save(tmp_path / "yolo")
    loaded = nn.Network.load(path)
    assert isinstance(loaded.loss, YOLOLoss) and loaded.loss.config() == loss.config()
    x = np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
