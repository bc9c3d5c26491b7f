# %% [markdown]
# # The YOLO loss by hand: activation, association of targets to boxes, and its gradient
#
# **What you will learn:** how a YOLO network's raw output becomes boxes (the YOLO
# activation), how each target is given to one box (the slides' training procedure), the
# loss of equation (14) term by term, and its gradient, derived by hand and checked against
# `nn.detection.YOLOLoss` and finite differences. **Estimated time:** 2 to 3 hours.
#
# Read first the detection slides, `shared/course/001_597c6f3b4d88b483.txt`: "The YOLO
# activation / Loss function" (equation (14)) and "Training procedure" (also in
# `004_3d9df880d40eb3ff.txt`).
#
# A YOLO network ends with a convolution. For an image, its output is a grid of
# `Gh x Gw` cells, each `stride` pixels wide; each cell predicts one box per **prior** (a
# typical box size `(p_w, p_h)`, chosen from the data). For prior `a` the output holds
# `D = 6 + C + P` channels, `a*D` to `a*D + D - 1` (C classes, P extra parameters). The
# activation of each channel (the slides' "YOLO activation"):
#
# | channel | activation | meaning |
# |---|---|---|
# | `t_x, t_y` | sigmoid, plus the cell's column (row), times the stride | box centre, pixels, inside cell `(gy, gx)` |
# | `t_w, t_h` | the prior's size times the exponential of `t` (t clipped to ±`max_log_scale`) | box size, pixels |
# | `t_P` | sigmoid | `P`, probability: "there is an object here" |
# | `t_O` | sigmoid | `O`, objectness: the expected IoU of the box with its object |
# | `c_1..c_C` | softmax | class probabilities |
# | `q_1..q_P` | none (linear) | parameters (flux, axes, angle of a radio source...) |
#
# **Association** (the slides' training procedure; `loss.association_rule == "best"`, the
# library's default). Each target goes to the cell that holds its centre, and there to the
# **best predicted box**: the box of the cell whose current prediction overlaps the target
# most (IoU) among those that no earlier target of the cell holds (targets in order). At the
# start of training predictions are random and a poor box could win; so when no free box
# overlaps the target by an IoU above `loss.min_iou`, the free box whose *prior* has the
# target's shape best wins instead. `association_rule == "prior"` (YOLOv2's rule) always
# goes by prior shape. A target finding every box of its cell taken is dropped. Any
# *other* box whose prediction already overlaps a target by an IoU above `good_iou` is left
# out of the loss ("good but not best": punishing it would fight the matched box). All
# remaining boxes are *void* (background).
#
# **Loss**: equation (14), one image (the library divides by the batch size). Its terms, in
# the slides' words: for the matched box of each target, the squared errors of the centre
# inside its cell (target: the target centre's offset in its cell, in [0, 1]) and of the
# raw size channels (target: the log of the target's size over the prior's), the
# cross-entropy of the classes, the squared errors of the parameters weighted by `gamma_k`,
# the squared error of `P` (target 1) and of `O` (target fIoU); for a void box of prior `j`,
# `lambda_void^j` times the weighted squared errors of `P` and `O` with target 0. Each term
# has its weight `lambda_...` (`loss.lambda_pos`, ...). **fIoU**: the slides set the
# objectness target to the IoU of the matched prediction with its target (`fiou="iou"`); a
# common variant (CIANNA's) uses `(1 + IoU)/2`, never below 1/2 for a real object
# (`fiou="(1+iou)/2"`). Either way it is a *constant* for the gradient, as is the
# association. Two conventions of the library: a centre on a cell border belongs to the
# cell right of / below it, and the log-size target is clipped to ±`max_log_scale`.
#
# You write each piece for one image, with loops where they make the rule clearer, and
# compare with `nn.detection.YOLOLoss`, which does the same for a batch with arrays only.
# The loss object is only read for its settings (`loss.priors`, `loss.stride`,
# `loss.lambda_pos`, ...).

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
    """The predicted boxes of one image (★, the YOLO activation).

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
    raise NotImplementedError("★ the activation of the table for the centre and size channels of every box at once, then the corners, stacked on a last axis")
    return boxes


def prior_ranking(box, priors):
    """Prior indices from the best to the worst match of the shape of ``box`` (★).

    The match is the IoU of the box and the prior put on the same centre (only the widths
    and heights matter). Sort stably: on a tie the first prior wins.

    Returns
    -------
    (A,) int array
    """
    w, h = box[2] - box[0], box[3] - box[1]
    raise NotImplementedError("★ the shape IoU with each prior, then the prior indices by decreasing IoU with a stable sort")
    return ranking


def associate(boxes, predicted, loss):
    """The box (prior and cell) that learns each target of one image (★★, "Training
    procedure").

    Parameters
    ----------
    boxes : (n, 4) target boxes, pixels
    predicted : (A, Gh, Gw, 4) the predicted boxes (:func:`decode_boxes`)
    loss : YOLOLoss, read for ``priors``, ``stride``, ``association_rule`` ("best" or
        "prior") and ``min_iou``

    Returns
    -------
    list of n entries: ``(a, gy, gx)`` for a matched target, ``None`` for a dropped one.

    The cell holds the centre: the column is the integer part of the centre's x over the
    stride, kept inside the grid (a centre on a border goes right/below; a centre on or
    beyond the right edge belongs to the last cell). Targets are taken in order; each takes
    a box of its cell that no earlier target holds: with the rule "best", the free box of
    largest IoU with the target when that IoU is above ``min_iou`` (on a tie, the first
    prior), else (and always with "prior") the free box whose prior comes first in
    :func:`prior_ranking`.
    """
    A, Gh, Gw, _ = predicted.shape
    boxes = np.asarray(boxes, dtype=np.float64)     # float32 sums would round the centres
    taken = set()
    matches = []
    raise NotImplementedError("★★ for each target: its cell, the priors still free there, the choice of the rule among them, and the chosen box marked as taken")
    return matches


def yolo_loss(raw, boxes, classes, params, loss):
    """The YOLO loss of one image, equation (14), and its parts (★★; softmax classes).

    Parameters
    ----------
    raw : (A * D, Gh, Gw) raw output
    boxes : (n, 4) target boxes; classes : (n,) ints; params : (n, P) floats
    loss : YOLOLoss, for its settings: ``lambda_pos``, ``lambda_size``, ``lambda_prob``,
        ``lambda_obj``, ``lambda_void`` (one per prior here), ``lambda_class``,
        ``lambda_param``, ``gamma`` (one per parameter here), ``good_iou``, ``min_iou``,
        ``fiou`` ("iou" or "(1+iou)/2"), ``max_log_scale``, ``n_classes``

    Returns
    -------
    total : float
    parts : dict with the keys "position", "size", "probability", "objectness", "void",
        "classes", "params": the terms of equation (14), each summed over the boxes
        ("void" holds both void terms, of P and of O)
    """
    A, D, C = loss.n_priors, loss.channels_per_prior, loss.n_classes
    _, Gh, Gw = raw.shape
    t = np.asarray(raw, dtype=np.float64).reshape(A, D, Gh, Gw)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    params = np.asarray(params, dtype=np.float64).reshape(len(boxes), loss.n_params)
    predicted = decode_boxes(raw, loss)
    matches = associate(boxes, predicted, loss)
    void_weights = np.broadcast_to(np.asarray(loss.lambda_void, dtype=np.float64), (A,))
    gamma = np.broadcast_to(np.asarray(loss.gamma, dtype=np.float64), (loss.n_params,))
    parts = dict.fromkeys(["position", "size", "probability", "objectness", "void", "classes",
                           "params"], 0.0)
    raise NotImplementedError("★★ for each matched box, its targets (offset in the cell clipped to [0, 1], clipped log-size ratio, 1 for P, fIoU for O) and its terms; then each box neither matched nor good but not best adds its void terms")
    return sum(parts.values()), parts


def yolo_loss_gradient(raw, boxes, classes, params, loss):
    """``d yolo_loss / d raw`` for one image, an array shaped like ``raw`` (★★★).

    Derive it from equation (14) and the activation: the association, the good-but-not-best
    boxes and the objectness targets fIoU are constants (recomputed at every step, not
    differentiated). Go channel by channel: the centre, probability and objectness terms
    pass through a sigmoid (its derivative is the slides' logistic derivative, with
    β = 1), the size terms and the parameters act on the raw channels directly, and the
    softmax with its cross-entropy combine into a simple difference (as in the MLP chapter's
    output layer). A box that is not in the loss has a zero gradient.

    Returns
    -------
    (A * D, Gh, Gw) array
    """
    A, D, C = loss.n_priors, loss.channels_per_prior, loss.n_classes
    _, Gh, Gw = raw.shape
    t = np.asarray(raw, dtype=np.float64).reshape(A, D, Gh, Gw)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    params = np.asarray(params, dtype=np.float64).reshape(len(boxes), loss.n_params)
    predicted = decode_boxes(raw, loss)
    matches = associate(boxes, predicted, loss)
    void_weights = np.broadcast_to(np.asarray(loss.lambda_void, dtype=np.float64), (A,))
    gamma = np.broadcast_to(np.asarray(loss.gamma, dtype=np.float64), (loss.n_params,))
    grad = np.zeros_like(t)
    raise NotImplementedError("★★★ the derivative of each term of yolo_loss with respect to the raw channel it reads, written into the gradient at the prior, channel and cell of the box")
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
    # the slides' association ("best"); fIoU = IoU as in the slides; one void weight per
    # prior and one gamma per parameter
    loss = YOLOLoss([[6, 6], [11, 11], [20, 20]], n_classes=2, n_params=4, stride=8,
                    association="best", good_iou=0.5, lambda_param=0.01, fiou="iou",
                    lambda_void=[0.5, 0.5, 0.3], gamma=[1.0, 1.0, 1.0, 0.5])
    raw = np.random.default_rng(0).normal(0, 1, (loss.channels, 8, 8))
    boxes, classes, params = target["boxes"], target["classes"], target["params"]
    print("targets:", len(boxes), " association (prior, row, column):",
          associate(boxes, decode_boxes(raw, loss), loss))

# %%
if __name__ == "__main__":
    mine, parts = yolo_loss(raw, boxes, classes, params, loss)
    library = loss.forward(raw[None], [target])
    print(f"loss by hand {mine:.10f}   library {library:.10f}")
    for name, value in parts.items():
        print(f"  {name:<11} {value:12.6f}   library {loss.parts[name]:12.6f}")
    grad = yolo_loss_gradient(raw, boxes, classes, params, loss)
    print(f"gradient: relative error to the library's {rel_error(grad, loss.backward()[0]):.2e}")

# %%
if __name__ == "__main__":
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
