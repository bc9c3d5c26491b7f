# %% [markdown]
# # The YOLO loss by hand: activation, association of targets to boxes, and its gradient
#
# A YOLO network ends with a convolution. For an image, its output is a grid of
# `Gh x Gw` cells, each `stride` pixels wide; each cell predicts one box per **prior** (a
# typical box size `(p_w, p_h)`, chosen from the data). For prior `a` the output holds
# `D = 5 + C + P` channels, `a*D` to `a*D + D - 1` (C classes, P extra parameters):
#
# | channel | activation | meaning |
# |---|---|---|
# | `t_x, t_y` | `x = (gx + sigmoid(t_x)) * stride` | box centre, pixels, inside cell `(gy, gx)` |
# | `t_w, t_h` | `w = p_w * exp(t_w)` (t clipped to ±4) | box size, pixels |
# | `t_o` | `sigmoid(t_o)` | objectness: "there is an object here" |
# | `c_1..c_C` | softmax | class probabilities |
# | `q_1..q_P` | none (linear) | parameters (flux, axes, angle of a radio source...) |
#
# **Association.** Each target goes to the cell that holds its centre, and there to the
# prior whose shape matches it best (the IoU of the two boxes put on the same centre). If an
# earlier target of the cell already holds that prior, it takes its best free prior; if all
# are taken, it is dropped. Any *other* box whose prediction already overlaps a target by an
# IoU above `good_iou` is left out of the loss: it is good, just not the best one, and
# punishing it would fight against the matched box. All remaining boxes are background.
#
# **Loss** (one image; the library divides by the batch size):
#
# * matched box, target centre `(x^, y^)` inside its cell (in [0, 1]), size `(w^, h^)`:
#   `lambda_coord [(sigmoid(t_x) - x^)² + (sigmoid(t_y) - y^)²]`
#   `+ lambda_size [(t_w - log(w^/p_w))² + (t_h - log(h^/p_h))²]`
#   `+ lambda_obj (sigmoid(t_o) - o^)²` where `o^` is the IoU of the predicted box with its
#   target (or the course's `(1 + IoU)/2`, or 1), a constant for the gradient,
#   `+ lambda_class * cross-entropy(softmax(c), class)` `+ sum_k lambda_param (q_k - q^_k)²`;
# * background box: `lambda_noobj sigmoid(t_o)²`;
# * ignored box: nothing.
#
# You write each piece for one image, with loops where they make the rule clearer, and
# compare with `nn.detection.YOLOLoss`, which does the same for a batch with arrays only.
# The loss object is only read for its settings (`loss.priors`, `loss.stride`,
# `loss.lambda_coord`, ...).

# %%
import math

import numpy as np


def sigmoid(z):
    """The logistic function ``1 / (1 + exp(-z))``, element-wise."""
    return 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


def box_iou_pair(a, b):
    """IoU of two boxes ``(x1, y1, x2, y2)`` (0 when both are empty)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def decode_boxes(raw, loss):
    """The predicted boxes of one image.

    Parameters
    ----------
    raw : (A * D, Gh, Gw) array, the network's raw output for one image
    loss : YOLOLoss, read for ``priors`` (A, 2), ``stride``, ``channels_per_prior`` (D)
        and ``max_log_scale`` (the clip of ``t_w, t_h``)

    Returns
    -------
    (A, Gh, Gw, 4) array of ``(x1, y1, x2, y2)`` in pixels
    """
    A, D = loss.n_priors, loss.channels_per_prior
    _, Gh, Gw = raw.shape
    t = np.asarray(raw, dtype=np.float64).reshape(A, D, Gh, Gw)
    gx = np.arange(Gw)[None, None, :]            # broadcast over (A, Gh, Gw)
    gy = np.arange(Gh)[None, :, None]
    pw = loss.priors[:, 0][:, None, None]
    ph = loss.priors[:, 1][:, None, None]
    m = loss.max_log_scale
    # BEGIN SOLUTION centres (g + sigmoid(t)) * stride, sizes prior * exp(clip(t, -m, m)), then the corners stacked on a last axis
    cx = (gx + sigmoid(t[:, 0])) * loss.stride
    cy = (gy + sigmoid(t[:, 1])) * loss.stride
    w = pw * np.exp(np.clip(t[:, 2], -m, m))
    h = ph * np.exp(np.clip(t[:, 3], -m, m))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    # END SOLUTION
    return boxes


def prior_ranking(box, priors):
    """Prior indices from the best to the worst match of the shape of ``box``.

    The match is the IoU of the box and the prior put on the same centre:
    ``min(w, p_w) min(h, p_h) / (w h + p_w p_h - min(w, p_w) min(h, p_h))``.
    Sort stably (``np.argsort(-ious, kind="stable")``): on a tie the first prior wins.
    """
    w, h = box[2] - box[0], box[3] - box[1]
    # BEGIN SOLUTION the shape IoU with each prior, then the indices by decreasing IoU
    ious = []
    for pw, ph in priors:
        inter = min(w, pw) * min(h, ph)
        ious.append(inter / (w * h + pw * ph - inter))
    ranking = np.argsort(-np.array(ious), kind="stable")
    # END SOLUTION
    return ranking


def associate(boxes, loss, grid):
    """The cell and prior of each target box of one image.

    Parameters
    ----------
    boxes : (n, 4) target boxes, pixels
    loss : YOLOLoss (``priors``, ``stride``)
    grid : (Gh, Gw)

    Returns
    -------
    list of n entries: ``(a, gy, gx)`` for a matched target, ``None`` for a dropped one.
    The cell holds the centre: ``gx = floor(cx / stride)``, kept inside the grid (a centre
    on the right edge belongs to the last cell). Targets are taken in order; each takes its
    best prior still free in its cell.
    """
    Gh, Gw = grid
    boxes = np.asarray(boxes, dtype=np.float64)     # float32 sums would round the centres
    taken = set()
    matches = []
    # BEGIN SOLUTION for each box: its cell (clipped to the grid), then the first prior of prior_ranking not yet in taken
    for box in boxes:
        gx = min(max(int(math.floor((box[0] + box[2]) / 2 / loss.stride)), 0), Gw - 1)
        gy = min(max(int(math.floor((box[1] + box[3]) / 2 / loss.stride)), 0), Gh - 1)
        match = None
        for a in prior_ranking(box, loss.priors):
            if (a, gy, gx) not in taken:
                taken.add((a, gy, gx))
                match = (int(a), gy, gx)
                break
        matches.append(match)
    # END SOLUTION
    return matches


def yolo_loss(raw, boxes, classes, params, loss):
    """The YOLO loss of one image and its parts (softmax classes).

    Parameters
    ----------
    raw : (A * D, Gh, Gw) raw output
    boxes : (n, 4) target boxes; classes : (n,) ints; params : (n, P) floats
    loss : YOLOLoss, for its settings: ``lambda_coord``, ``lambda_size``, ``lambda_obj``,
        ``lambda_noobj``, ``lambda_class``, ``lambda_param`` (a number), ``good_iou``,
        ``objectness_target`` ("iou", "(1+iou)/2" or "one"), ``n_classes``

    Returns
    -------
    total : float
    parts : dict with the keys "position", "size", "objectness", "background", "classes",
        "params" (the terms of the markdown above, summed over the boxes)
    """
    A, D, C = loss.n_priors, loss.channels_per_prior, loss.n_classes
    _, Gh, Gw = raw.shape
    t = np.asarray(raw, dtype=np.float64).reshape(A, D, Gh, Gw)
    boxes = np.asarray(boxes, dtype=np.float64)
    params = np.asarray(params, dtype=np.float64).reshape(len(boxes), loss.n_params)
    predicted = decode_boxes(raw, loss)
    matches = associate(boxes, loss, (Gh, Gw))
    parts = dict.fromkeys(["position", "size", "objectness", "background", "classes", "params"], 0.0)
    # BEGIN SOLUTION the matched boxes' five terms (target offsets g - floor, log(w / p_w), objectness target from the IoU), then every unmatched box: background unless its IoU with some target is above good_iou
    matched = {}
    for k, match in enumerate(matches):
        if match is not None:
            matched[match] = k
    for (a, gy, gx), k in matched.items():
        b = boxes[k]
        v = t[a, :, gy, gx]
        x_hat = min((b[0] + b[2]) / 2 / loss.stride - gx, 1.0)
        y_hat = min((b[1] + b[3]) / 2 / loss.stride - gy, 1.0)
        parts["position"] += loss.lambda_coord * ((sigmoid(v[0]) - x_hat) ** 2
                                                  + (sigmoid(v[1]) - y_hat) ** 2)
        w_hat = math.log((b[2] - b[0]) / loss.priors[a][0])
        h_hat = math.log((b[3] - b[1]) / loss.priors[a][1])
        parts["size"] += loss.lambda_size * ((v[2] - w_hat) ** 2 + (v[3] - h_hat) ** 2)
        overlap = box_iou_pair(predicted[a, gy, gx], b)
        o_hat = {"iou": overlap, "(1+iou)/2": (1 + overlap) / 2, "one": 1.0}[loss.objectness_target]
        parts["objectness"] += loss.lambda_obj * (sigmoid(v[4]) - o_hat) ** 2
        if C:
            z = v[5:5 + C]
            log_softmax = z - z.max() - math.log(np.exp(z - z.max()).sum())
            parts["classes"] -= loss.lambda_class * log_softmax[classes[k]]
        parts["params"] += loss.lambda_param * float(((v[5 + C:] - params[k]) ** 2).sum())
    for a in range(A):
        for gy in range(Gh):
            for gx in range(Gw):
                if (a, gy, gx) in matched:
                    continue
                if any(box_iou_pair(predicted[a, gy, gx], b) > loss.good_iou for b in boxes):
                    continue
                parts["background"] += loss.lambda_noobj * sigmoid(t[a, 4, gy, gx]) ** 2
    # END SOLUTION
    return sum(parts.values()), parts


def yolo_loss_gradient(raw, boxes, classes, params, loss):
    """``d yolo_loss / d raw`` for one image, an array shaped like ``raw``.

    The association and the objectness targets are constants. With ``s = sigmoid(t)``,
    ``ds/dt = s (1 - s)``; ``d/dt (s - u)² = 2 (s - u) s (1 - s)``; the softmax with its
    cross-entropy gives ``softmax(c) - onehot``; the linear terms ``2 (t - u)``.
    """
    A, D, C = loss.n_priors, loss.channels_per_prior, loss.n_classes
    _, Gh, Gw = raw.shape
    t = np.asarray(raw, dtype=np.float64).reshape(A, D, Gh, Gw)
    boxes = np.asarray(boxes, dtype=np.float64)
    params = np.asarray(params, dtype=np.float64).reshape(len(boxes), loss.n_params)
    predicted = decode_boxes(raw, loss)
    matches = associate(boxes, loss, (Gh, Gw))
    grad = np.zeros_like(t)
    # BEGIN SOLUTION the derivative of each term of yolo_loss, written into grad[a, channel, gy, gx]
    matched = {}
    for k, match in enumerate(matches):
        if match is not None:
            matched[match] = k
    for (a, gy, gx), k in matched.items():
        b = boxes[k]
        v = t[a, :, gy, gx]
        g = grad[a, :, gy, gx]
        for c, offset in ((0, (b[0] + b[2]) / 2 / loss.stride - gx),
                          (1, (b[1] + b[3]) / 2 / loss.stride - gy)):
            s = sigmoid(v[c])
            g[c] = 2 * loss.lambda_coord * (s - min(offset, 1.0)) * s * (1 - s)
        g[2] = 2 * loss.lambda_size * (v[2] - math.log((b[2] - b[0]) / loss.priors[a][0]))
        g[3] = 2 * loss.lambda_size * (v[3] - math.log((b[3] - b[1]) / loss.priors[a][1]))
        overlap = box_iou_pair(predicted[a, gy, gx], b)
        o_hat = {"iou": overlap, "(1+iou)/2": (1 + overlap) / 2, "one": 1.0}[loss.objectness_target]
        s = sigmoid(v[4])
        g[4] = 2 * loss.lambda_obj * (s - o_hat) * s * (1 - s)
        if C:
            z = v[5:5 + C]
            p = np.exp(z - z.max())
            p /= p.sum()
            p[classes[k]] -= 1
            g[5:5 + C] = loss.lambda_class * p
        g[5 + C:] = 2 * loss.lambda_param * (v[5 + C:] - params[k])
    for a in range(A):
        for gy in range(Gh):
            for gx in range(Gw):
                if (a, gy, gx) in matched:
                    continue
                if any(box_iou_pair(predicted[a, gy, gx], b) > loss.good_iou for b in boxes):
                    continue
                s = sigmoid(t[a, 4, gy, gx])
                grad[a, 4, gy, gx] = 2 * loss.lambda_noobj * s * s * (1 - s)
    # END SOLUTION
    return grad.reshape(raw.shape)


# %% [markdown]
# ## The experiment
#
# One 64 x 64 image of the synthetic radio sky, a grid of 8 x 8 cells (stride 8) and three
# priors. The raw output is random, as from an untrained network. Your loss and gradient
# are compared with the library's; then gradient descent **on the raw output itself**
# (no network) shows what the loss asks for: boxes that sit on the sources, objectness
# high there and 0 elsewhere. A box left out of the loss ("good but not best") keeps the
# objectness it had: after training, NMS removes such duplicates.

# %%
if __name__ == "__main__":
    import nn
    from nn.course import show
    from nn.data import make_radio_sky
    from nn.detection import YOLOLoss, plot_detections
    from nn.gradcheck import rel_error

    nn.use("numpy", "fp64")
    images, targets = make_radio_sky(1, size=64, seed=3, sources_per_image=6,
                                     extended_fraction=0.5)
    target = targets[0]
    loss = YOLOLoss([[6, 6], [11, 11], [20, 20]], n_classes=2, n_params=4, stride=8,
                    good_iou=0.5, lambda_param=0.01, objectness_target="(1+iou)/2")
    raw = np.random.default_rng(0).normal(0, 1, (loss.channels, 8, 8))
    boxes, classes, params = target["boxes"], target["classes"], target["params"]
    print("targets:", len(boxes), " association (prior, row, column):",
          associate(boxes, loss, (8, 8)))

    # %%
    mine, parts = yolo_loss(raw, boxes, classes, params, loss)
    library = loss.forward(raw[None], [target])
    print(f"loss by hand {mine:.10f}   library {library:.10f}")
    for name, value in parts.items():
        print(f"  {name:<11} {value:12.6f}   library {loss.parts[name]:12.6f}")
    grad = yolo_loss_gradient(raw, boxes, classes, params, loss)
    print(f"gradient: relative error to the library's {rel_error(grad, loss.backward()[0]):.2e}")

    # %%
    # gradient descent on the raw output: what the loss wants the network to produce
    t = raw[None].copy()
    history = []
    for step in range(300):
        history.append(loss.forward(t, [target]))
        t -= 0.08 * loss.backward()     # above 0.2 the size term (curvature 2 lambda_size) diverges
    found, scores, _, _ = loss.decode(t, objectness_threshold=0.5)
    print(f"loss {history[0]:.3f} -> {history[-1]:.4f}; {len(found[0])} boxes with "
          f"objectness > 0.5 for {len(boxes)} sources")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    start, _, _, _ = loss.decode(raw[None], objectness_threshold=0.5)
    plot_detections(np.arcsinh(images[0, 0]), start[0], boxes, ax=axes[0],
                    title=f"random raw output: {len(start[0])} boxes")
    plot_detections(np.arcsinh(images[0, 0]), found[0], boxes, ax=axes[1],
                    title="after 300 gradient steps on the raw output")
    for ax in axes:
        for k in range(1, 8):
            ax.axhline(8 * k, color="w", lw=0.3)
            ax.axvline(8 * k, color="w", lw=0.3)
    show(fig, "descent")
