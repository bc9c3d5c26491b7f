"""The YOLO loss: activation, association of targets to boxes, and its gradient by hand.

A YOLO network ends with a convolution whose output, for an image, is a grid of
``Gh x Gw`` cells (each ``stride`` pixels wide); every cell predicts one box per *prior*
(a typical box size, "anchor"). :class:`YOLOLoss` turns that raw output into boxes, decides
which box should have found which target, and scores the boxes against the targets.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..losses import Loss
from .boxes import iou
from .nms import nms

OBJECTNESS_TARGETS = ("iou", "(1+iou)/2", "one")
CLASS_ACTIVATIONS = ("softmax", "sigmoid")
PARTS = ("position", "size", "objectness", "background", "classes", "params")


class Association:
    """Which box learns which target, for one batch (what :meth:`YOLOLoss.associate` returns).

    Attributes (arrays on the device; ``M`` matched boxes):

    ``index``      ``(n, a, :, gy, gx)`` with ``(M,)`` int arrays: image, prior and cell of
                   each matched box; ``raw5[index]`` is ``(M, D)`` for ``raw5`` of shape
                   ``(N, A, D, Gh, Gw)``;
    ``offsets``    ``(M, 2)`` target centre inside its cell, in [0, 1];
    ``log_sizes``  ``(M, 2)`` target ``log(w / prior_w), log(h / prior_h)``;
    ``boxes``      ``(M, 4)`` target boxes, pixels;
    ``classes``    ``(M,)`` int target classes;  ``params`` ``(M, n_params)``;
    ``objectness`` ``(M,)`` objectness target (from the IoU of the predicted box, held fixed);
    ``background`` ``(N, A, Gh, Gw)`` 1.0 for boxes that only learn "no object", 0.0 for
                   matched boxes and for "good but not best" boxes (ignored);
    ``n_targets``, ``n_matched``, ``n_dropped`` (ints): targets in the batch, matched, and
    dropped because every prior of their cell was taken; ``n_ignored`` (device scalar).
    """

    def __init__(self, shape, **fields):
        self.shape = tuple(shape)
        self.__dict__.update(fields)

    def __repr__(self):
        return (f"Association(raw shape {self.shape}, {self.n_targets} targets, "
                f"{self.n_matched} matched, {self.n_dropped} dropped, "
                f"{int(self.n_ignored)} boxes ignored)")


class YOLOLoss(Loss):
    """YOLO loss on the raw output ``(N, n_priors * (5 + n_classes + n_params), Gh, Gw)``.

    Channel layout. For prior ``a`` the channels ``a*D`` to ``a*D + D - 1``, with
    ``D = 5 + n_classes + n_params``, hold (cell ``(gy, gx)``, prior size ``(p_w, p_h)``):

    ======================  ======================================  =====================
    channel ``a*D + k``     activation                              meaning
    ======================  ======================================  =====================
    0, 1: ``t_x, t_y``      ``x = (gx + sigmoid(t_x)) * stride``    box centre, pixels
    2, 3: ``t_w, t_h``      ``w = p_w * exp(clip(t_w, ±max_log_scale))``   box size, pixels
    4: ``t_o``              ``sigmoid(t_o)``                        objectness
    5 .. 4+C                softmax (or sigmoid) over the classes   class probabilities
    5+C .. 4+C+P            linear                                  extra parameters
    ======================  ======================================  =====================

    Association (the course's rule, recomputed at every :meth:`forward`):

    * each target goes to the cell holding its centre, and in that cell to the prior whose
      shape best matches it (largest IoU of the two boxes put on the same centre); when an
      earlier target of the same cell already holds that prior, it takes its best free
      prior; with more targets than priors in a cell, the extra ones are dropped;
    * any other box whose predicted box overlaps some target of its image by an IoU above
      ``good_iou`` is **left out** of the loss: it is good, just not the best;
    * every remaining box is background.

    Loss, summed over boxes and divided by the batch size ``N``; ``^`` marks a target:

    * matched box: ``lambda_coord * [(sigmoid(t_x) - x^)² + (sigmoid(t_y) - y^)²]``
      with ``x^, y^`` the target centre inside the cell;
      ``+ lambda_size * [(t_w - log(w^/p_w))² + (t_h - log(h^/p_h))²]``;
      ``+ lambda_obj * (sigmoid(t_o) - o^)²`` with ``o^`` the IoU of the predicted box with
      its target (``objectness_target="iou"``), ``(1 + IoU) / 2`` (``"(1+iou)/2"``, the
      course's variant: never below 1/2 for a real object) or 1 (``"one"``), held constant;
      ``+ lambda_class * cross-entropy`` of the classes (softmax; with ``"sigmoid"`` the
      binary cross-entropy of each class); ``+ lambda_param * (p - p^)²`` for the params;
    * background box: ``lambda_noobj * sigmoid(t_o)²``;
    * ignored box: nothing.

    Parameters
    ----------
    priors : (A, 2) sequence
        Prior box sizes ``(w, h)`` in pixels.
    n_classes : int
        Number of classes (0: boxes and objectness only).
    n_params : int
        Extra real parameters per box (e.g. flux, axes, angle of a radio source).
    stride : float
        Pixels per grid cell (the network's total down-sampling factor).
    lambda_coord, lambda_size, lambda_obj, lambda_noobj, lambda_class : float
        Weights of the terms above; ``lambda_coord = 5`` and ``lambda_noobj = 0.5`` are those
        of the YOLO paper (many more background boxes than objects).
    lambda_param : float or sequence of n_params floats
    good_iou : float
        Above this IoU with a target, an unmatched box is not penalised (0.6 as in YOLOv2).
    objectness_target : {"iou", "(1+iou)/2", "one"}
    class_activation : {"softmax", "sigmoid"}
    max_log_scale : float
        ``t_w, t_h`` are clipped to ``[-max_log_scale, max_log_scale]`` in the box sizes (so
        ``exp`` cannot overflow); the size term itself uses the raw ``t``, and its target
        ``log(w^/p_w)`` clipped to the same range.

    After :meth:`forward`, :attr:`parts` holds each term (divided by ``N``) and
    :attr:`association` what was matched. ``forward`` returns the total like the other
    losses (a float; a device scalar on a GPU, to avoid a synchronisation per batch).
    """

    def __init__(self, priors, n_classes: int, n_params: int = 0, stride: float = 32, *,
                 lambda_coord: float = 5.0, lambda_size: float = 5.0, lambda_obj: float = 1.0,
                 lambda_noobj: float = 0.5, lambda_class: float = 1.0, lambda_param=1.0,
                 good_iou: float = 0.6, objectness_target: str = "iou",
                 class_activation: str = "softmax", max_log_scale: float = 4.0):
        priors = np.asarray(priors, dtype=np.float64)
        if priors.ndim != 2 or priors.shape[1] != 2 or len(priors) == 0 or not (priors > 0).all():
            raise ValueError(f"YOLOLoss: priors must be a non-empty (A, 2) list of positive "
                             f"(width, height) in pixels, got {priors.tolist()!r}")
        for name, value in (("n_classes", n_classes), ("n_params", n_params)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"YOLOLoss: {name} must be an int >= 0, got {value!r}")
        if not stride > 0:
            raise ValueError(f"YOLOLoss: stride (pixels per cell) must be > 0, got {stride!r}")
        if objectness_target not in OBJECTNESS_TARGETS:
            raise ValueError(f"YOLOLoss: objectness_target must be one of {OBJECTNESS_TARGETS}, "
                             f"got {objectness_target!r}")
        if class_activation not in CLASS_ACTIVATIONS:
            raise ValueError(f"YOLOLoss: class_activation must be one of {CLASS_ACTIVATIONS}, "
                             f"got {class_activation!r}")
        if not 0 <= good_iou <= 1:
            raise ValueError(f"YOLOLoss: good_iou must lie in [0, 1], got {good_iou!r}")
        if not max_log_scale > 0:
            raise ValueError(f"YOLOLoss: max_log_scale must be > 0, got {max_log_scale!r}")
        lambdas = dict(lambda_coord=lambda_coord, lambda_size=lambda_size, lambda_obj=lambda_obj,
                       lambda_noobj=lambda_noobj, lambda_class=lambda_class)
        for name, value in lambdas.items():
            if not (isinstance(value, (int, float, np.floating, np.integer)) and value >= 0):
                raise ValueError(f"YOLOLoss: {name} must be a number >= 0, got {value!r}")
        weights = np.broadcast_to(np.asarray(lambda_param, dtype=np.float64), (n_params,)) \
            if np.ndim(lambda_param) == 0 else np.asarray(lambda_param, dtype=np.float64)
        if weights.shape != (n_params,) or (weights < 0).any():
            raise ValueError(f"YOLOLoss: lambda_param must be a number >= 0 or {n_params} numbers "
                             f">= 0 (one per parameter), got {lambda_param!r}")
        self.priors = priors
        self.n_classes, self.n_params = int(n_classes), int(n_params)
        self.stride = float(stride)
        for name, value in lambdas.items():
            setattr(self, name, float(value))
        self.lambda_param = float(lambda_param) if np.ndim(lambda_param) == 0 else weights.tolist()
        self._param_weights = np.array(weights)
        self.good_iou = float(good_iou)
        self.objectness_target = objectness_target
        self.class_activation = class_activation
        self.max_log_scale = float(max_log_scale)
        self._constants = {}
        self._parts = {}
        self.association = None

    # -- description -----------------------------------------------------------------------------
    @property
    def n_priors(self) -> int:
        return len(self.priors)

    @property
    def channels_per_prior(self) -> int:
        """``D = 5 + n_classes + n_params``."""
        return 5 + self.n_classes + self.n_params

    @property
    def channels(self) -> int:
        """Channels the last convolution must output: ``n_priors * D``."""
        return self.n_priors * self.channels_per_prior

    def config(self) -> dict:
        return {"priors": self.priors.tolist(), "n_classes": self.n_classes,
                "n_params": self.n_params, "stride": self.stride,
                "lambda_coord": self.lambda_coord, "lambda_size": self.lambda_size,
                "lambda_obj": self.lambda_obj, "lambda_noobj": self.lambda_noobj,
                "lambda_class": self.lambda_class, "lambda_param": self.lambda_param,
                "good_iou": self.good_iou, "objectness_target": self.objectness_target,
                "class_activation": self.class_activation, "max_log_scale": self.max_log_scale}

    def __repr__(self):
        return (f"YOLOLoss(priors={self.priors.tolist()}, n_classes={self.n_classes}, "
                f"n_params={self.n_params}, stride={self.stride:g})")

    @property
    def parts(self) -> dict:
        """Each term of the last :meth:`forward`, divided by the batch size, as floats."""
        return {name: float(value) for name, value in self._parts.items()}

    # -- the pieces ---------------------------------------------------------------------------------
    def _grid(self, raw, owner):
        """``raw`` as ``(N, A, D, Gh, Gw)`` in the accumulation dtype (float32 under "mixed")."""
        B = backends.current()
        if raw.ndim != 4 or raw.shape[1] != self.channels:
            raise ValueError(
                f"{owner}: expected the raw output of shape (N, {self.channels}, Gh, Gw) "
                f"({self.n_priors} priors x (5 + {self.n_classes} classes + {self.n_params} "
                f"params)), got {tuple(raw.shape)}; make the last convolution output "
                f"{self.channels} channels")
        N, _, Gh, Gw = raw.shape
        r = raw.astype(B.acc_dtype, copy=False)
        return B, r.reshape(N, self.n_priors, self.channels_per_prior, Gh, Gw)

    def _constant(self, B, name, value, dtype):
        """Small constant arrays (priors, parameter weights) moved to the device once."""
        key = (name, B.name, np.dtype(dtype).str)
        if key not in self._constants:
            self._constants[key] = B.xp.asarray(np.asarray(value, dtype=dtype))
        return self._constants[key]

    @staticmethod
    def _sigmoid(xp, z):
        return 0.5 * (1 + xp.tanh(0.5 * z))   # = 1 / (1 + exp(-z)), without overflow

    def _boxes(self, B, r):
        """Predicted boxes ``(N, A, Gh, Gw, 4)`` (pixel corners) from ``r (N, A, D, Gh, Gw)``."""
        xp = B.xp
        Gh, Gw = r.shape[-2:]
        priors = self._constant(B, "priors", self.priors, r.dtype)
        cx = (self._sigmoid(xp, r[:, :, 0]) + xp.arange(Gw, dtype=r.dtype)) * self.stride
        cy = (self._sigmoid(xp, r[:, :, 1]) + xp.arange(Gh, dtype=r.dtype)[:, None]) * self.stride
        t = xp.clip(r[:, :, 2:4], -self.max_log_scale, self.max_log_scale)
        w = priors[:, 0, None, None] * xp.exp(t[:, :, 0])
        h = priors[:, 1, None, None] * xp.exp(t[:, :, 1])
        return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)

    def _read_targets(self, targets, n_images):
        """Concatenated host arrays of the batch's targets (image id, box, class, params)."""
        if isinstance(targets, np.ndarray) and targets.dtype == object:
            targets = list(targets)
        if not isinstance(targets, (list, tuple)) or len(targets) != n_images:
            got = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
            raise ValueError(f"YOLOLoss: expected a list of {n_images} targets (one per image, "
                             f"each a dict with 'boxes', 'classes' and 'params'), got {got}")
        boxes, classes, params = [], [], []
        for i, t in enumerate(targets):
            if isinstance(t, dict):
                b, c, p = t.get("boxes"), t.get("classes"), t.get("params")
            elif isinstance(t, (tuple, list)) and len(t) in (2, 3):
                b, c, p = t[0], t[1], (t[2] if len(t) == 3 else None)
            else:
                raise ValueError(f"YOLOLoss: target {i} must be a dict with 'boxes', 'classes' "
                                 f"(and 'params') or a tuple (boxes, classes[, params]), got "
                                 f"{type(t).__name__}")
            b = np.asarray(_host(b), dtype=np.float64).reshape(-1, 4)
            k = len(b)
            if c is None:
                if self.n_classes > 1:
                    raise ValueError(f"YOLOLoss: target {i} has no 'classes' ({self.n_classes} "
                                     "classes to learn)")
                c = np.zeros(k, np.int64)
            c = np.asarray(_host(c)).reshape(-1)
            if self.n_params and p is None:
                raise ValueError(f"YOLOLoss: target {i} has no 'params' but the loss learns "
                                 f"{self.n_params} parameters per box")
            p = np.zeros((k, 0)) if not self.n_params else np.asarray(_host(p), dtype=np.float64)
            if p.ndim == 1 and self.n_params:
                p = p.reshape(-1, self.n_params) if p.size == k * self.n_params else p[:, None]
            if len(c) != k or p.shape[1] != self.n_params:
                raise ValueError(f"YOLOLoss: target {i} has {k} boxes, {len(c)} classes and "
                                 f"params of shape {p.shape}; expected {k} classes and ({k}, "
                                 f"{self.n_params}) params")
            boxes.append(b)
            classes.append(c)
            params.append(p)
        image = np.repeat(np.arange(n_images), [len(b) for b in boxes])
        boxes, classes, params = (np.concatenate(boxes), np.concatenate(classes),
                                  np.concatenate(params))
        # checked once for the whole batch; the message names the first image at fault
        bad = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0])
                & (boxes[:, 3] > boxes[:, 1]))
        if bad.any():
            raise ValueError(f"YOLOLoss: target {image[bad.argmax()]} holds a box that is not "
                             f"finite or has x2 <= x1 or y2 <= y1: {boxes[bad.argmax()].tolist()}; "
                             "boxes are (x1, y1, x2, y2) in pixels")
        bad = (classes < 0) | (classes >= max(self.n_classes, 1)) | (classes != np.round(classes))
        if self.n_classes and bad.any():
            raise ValueError(f"YOLOLoss: target {image[bad.argmax()]} holds class ids outside "
                             f"[0, {self.n_classes}): {classes[bad.argmax()]!r}")
        return image, boxes, classes.astype(np.int64), params

    def _match(self, image, boxes, grid):
        """Host-side association: cell and prior of each target (-1 when dropped)."""
        Gh, Gw = grid
        A = self.n_priors
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 / self.stride
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 / self.stride
        gx = np.clip(np.floor(cx), 0, Gw - 1).astype(np.int64)
        gy = np.clip(np.floor(cy), 0, Gh - 1).astype(np.int64)
        # IoU of each target's shape with each prior's, both centred on the same point
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        inter = np.minimum(w, self.priors[:, 0]) * np.minimum(h, self.priors[:, 1])
        shape_iou = inter / (w * h + self.priors.prod(axis=1) - inter)
        rank = np.argsort(-shape_iou, axis=1, kind="stable")
        cell = (image * Gh + gy) * Gw + gx
        prior = np.full(len(boxes), -1)
        # most targets get their best prior at once; only those sharing it with an earlier
        # target of the same cell take the next free one, in a short Python loop
        keys = cell * A + rank[:, 0]
        _, first = np.unique(keys, return_index=True)
        prior[first] = rank[first, 0]
        taken = set(keys[first].tolist())
        for t in np.setdiff1d(np.arange(len(boxes)), first):
            for a in rank[t, 1:]:
                if cell[t] * A + a not in taken:
                    taken.add(cell[t] * A + a)
                    prior[t] = a
                    break
        offsets = np.clip(np.stack([cx - gx, cy - gy], axis=1), 0, 1)
        return gx, gy, prior, offsets

    def associate(self, raw, targets) -> Association:
        """Match the targets to boxes for the raw output ``raw`` (see the class docstring).

        The targets are read on the host (cheap) and moved to the device in three arrays;
        the comparison with the predicted boxes runs on the device.
        """
        B, r = self._grid(raw, "YOLOLoss")
        return self._associate(B, r, targets)

    def _associate(self, B, r, targets):
        xp = B.xp
        N, A, D, Gh, Gw = r.shape
        image, boxes, classes, params = self._read_targets(targets, N)
        gx, gy, prior, offsets = self._match(image, boxes, (Gh, Gw))
        m = prior >= 0
        safe = np.where(m, prior, 0)
        log_sizes = np.log((boxes[:, 2:] - boxes[:, :2]) / self.priors[safe])
        log_sizes = np.clip(log_sizes, -self.max_log_scale, self.max_log_scale)
        # one integer and one float array for the matches, one array of every target box
        ints = np.stack([image, safe, gy, gx, classes], axis=1)[m]
        floats = np.concatenate([offsets, log_sizes, boxes, params], axis=1)[m]
        per_image = np.bincount(image, minlength=N) if len(image) else np.zeros(N, np.int64)
        truth = np.zeros((N, int(per_image.max(initial=0)), 4))    # zero boxes overlap nothing
        slot = np.arange(len(image)) - np.repeat(np.cumsum(per_image) - per_image, per_image)
        truth[image, slot] = boxes
        ints_d = xp.asarray(ints)
        floats_d = xp.asarray(floats.astype(r.dtype))
        truth_d = xp.asarray(truth.astype(r.dtype))

        n, a, gy, gx = (ints_d[:, k] for k in range(4))
        predicted = self._boxes(B, r)                                # (N, A, Gh, Gw, 4)
        matched = xp.zeros((N, A, Gh, Gw), dtype=bool)
        matched[n, a, gy, gx] = True
        if truth.shape[1]:
            overlaps = iou(predicted.reshape(N, -1, 1, 4), truth_d[:, None])   # (N, A*Gh*Gw, T)
            good = (overlaps.max(axis=2) > self.good_iou).reshape(N, A, Gh, Gw)
            ignored = good & ~matched
        else:
            ignored = xp.zeros((N, A, Gh, Gw), dtype=bool)
        background = (~(matched | ignored)).astype(r.dtype)
        target_boxes = floats_d[:, 4:8]
        overlap = iou(predicted[n, a, gy, gx], target_boxes)
        if self.objectness_target == "iou":
            objectness = overlap
        elif self.objectness_target == "(1+iou)/2":
            objectness = (1 + overlap) / 2
        else:
            objectness = xp.ones_like(overlap)
        return Association(
            r.shape[:1] + (self.channels,) + r.shape[3:], index=(n, a, slice(None), gy, gx),
            offsets=floats_d[:, 0:2], log_sizes=floats_d[:, 2:4], boxes=target_boxes,
            params=floats_d[:, 8:], classes=ints_d[:, 4], objectness=objectness,
            background=background, n_targets=len(image), n_matched=int(m.sum()),
            n_dropped=int((~m).sum()), n_ignored=ignored.sum())

    # -- loss -----------------------------------------------------------------------------------------
    def forward(self, raw, targets, association: Association | None = None) -> float:
        """The loss of the raw output ``raw (N, A*D, Gh, Gw)`` for ``targets``, batch mean,
        as a Python float (:meth:`forward_device` is the same without a device sync)."""
        return float(self.forward_device(raw, targets, association))

    def forward_device(self, raw, targets, association: Association | None = None):
        """The loss of the raw output ``raw (N, A*D, Gh, Gw)`` for ``targets``, batch mean, as
        a 0-d array on the backend's device (what ``Network.fit`` sums without reading back).

        Parameters
        ----------
        raw : array
            Output of the network's last convolution (any precision; computed in float32 or
            float64).
        targets : list of N dicts ``{"boxes": (k, 4), "classes": (k,), "params": (k, P)}``
            (what :func:`nn.data.make_radio_sky` returns), or tuples ``(boxes, classes[,
            params])``; boxes in pixels.
        association : Association, optional
            Reuse this association (and its objectness targets) instead of computing it from
            ``raw``: a gradient check holds it fixed this way.
        """
        B, r = self._grid(raw, "YOLOLoss")
        if association is None:
            association = self._associate(B, r, targets)
        if association.shape != tuple(raw.shape):
            raise ValueError(f"YOLOLoss: the association was made for a raw output of shape "
                             f"{association.shape}, not {tuple(raw.shape)}")
        xp = B.xp
        N = r.shape[0]
        C = self.n_classes
        a = self.association = association
        self._r, self._n = r, N

        self._s_obj = self._sigmoid(xp, r[:, :, 4])                # (N, A, Gh, Gw)
        background = self.lambda_noobj * (a.background * self._s_obj ** 2).sum()

        m = self._m = r[a.index]                                   # (M, D)
        self._s_xy = self._sigmoid(xp, m[:, 0:2])
        position = self.lambda_coord * ((self._s_xy - a.offsets) ** 2).sum()
        size = self.lambda_size * ((m[:, 2:4] - a.log_sizes) ** 2).sum()
        self._s_o = self._sigmoid(xp, m[:, 4])
        objectness = self.lambda_obj * ((self._s_o - a.objectness) ** 2).sum()

        classes, self._probs, self._onehot = self._class_term(xp, m[:, 5:5 + C], a.classes)
        weights = self._constant(B, "param weights", self._param_weights, r.dtype)
        self._dparams = m[:, 5 + C:] - a.params
        params = (weights * self._dparams ** 2).sum()

        self._parts = {name: value / N for name, value in zip(
            PARTS, (position, size, objectness, background, classes, params))}
        return (position + size + objectness + background + classes + params) / N

    def _class_term(self, xp, logits, classes):
        """Class loss, probabilities and one-hot targets of the matched boxes ``(M, C)``."""
        onehot = xp.zeros(logits.shape, dtype=logits.dtype)
        if self.n_classes == 0:
            return xp.zeros((), dtype=logits.dtype), logits, onehot
        onehot[xp.arange(logits.shape[0]), classes] = 1
        if self.class_activation == "softmax":
            z = logits - logits.max(axis=1, keepdims=True)     # log-softmax without overflow
            e = xp.exp(z)
            s = e.sum(axis=1, keepdims=True)
            return -self.lambda_class * (onehot * (z - xp.log(s))).sum(), e / s, onehot
        bce = xp.maximum(logits, 0) - onehot * logits + xp.log1p(xp.exp(-xp.abs(logits)))
        return self.lambda_class * bce.sum(), self._sigmoid(xp, logits), onehot

    def backward(self):
        """``dL/d raw``, shaped like the raw output (accumulation dtype)."""
        B = backends.current()
        xp = B.xp
        a, r, N, C = self.association, self._r, self._n, self.n_classes
        grad = xp.zeros(r.shape, dtype=r.dtype)
        s = self._s_obj          # d(s²)/dt = 2 s * s (1 - s)
        grad[:, :, 4] = 2 * self.lambda_noobj * a.background * s * s * (1 - s)

        g = xp.empty(self._m.shape, dtype=r.dtype)
        s = self._s_xy
        g[:, 0:2] = 2 * self.lambda_coord * (s - a.offsets) * s * (1 - s)
        g[:, 2:4] = 2 * self.lambda_size * (self._m[:, 2:4] - a.log_sizes)
        s = self._s_o
        g[:, 4] = 2 * self.lambda_obj * (s - a.objectness) * s * (1 - s)
        # softmax + cross-entropy and sigmoid + binary cross-entropy share this gradient
        g[:, 5:5 + C] = self.lambda_class * (self._probs - self._onehot)
        weights = self._constant(B, "param weights", self._param_weights, r.dtype)
        g[:, 5 + C:] = 2 * weights * self._dparams
        grad[a.index] = g        # matched boxes: not background, their objectness is g's
        grad /= N
        return grad.reshape(a.shape)

    # -- inference ----------------------------------------------------------------------------------
    def decode(self, raw, objectness_threshold: float = 0.5, nms_threshold: float | None = None):
        """Detections of each image: boxes whose objectness is at least the threshold.

        Parameters
        ----------
        raw : (N, A*D, Gh, Gw) array
        objectness_threshold : float
        nms_threshold : float, optional
            When given, per-class :func:`~nn.detection.nms` with this IoU threshold.

        Returns
        -------
        boxes, scores, classes, params : lists of N host arrays
            ``(k, 4)`` pixel corners; ``(k,)`` score = objectness x probability of the class;
            ``(k,)`` int class (argmax); ``(k, n_params)``. Best score first.
        """
        B, r = self._grid(raw, "YOLOLoss.decode")
        xp = B.xp
        N, A, D, Gh, Gw = r.shape
        C = self.n_classes
        objectness = self._sigmoid(xp, r[:, :, 4])
        if C == 0:
            probs = xp.ones((N, A, 1, Gh, Gw), dtype=r.dtype)
        elif self.class_activation == "softmax":
            z = r[:, :, 5:5 + C]
            e = xp.exp(z - z.max(axis=2, keepdims=True))
            probs = e / e.sum(axis=2, keepdims=True)
        else:
            probs = self._sigmoid(xp, r[:, :, 5:5 + C])
        best = probs.argmax(axis=2)
        score = objectness * xp.take_along_axis(probs, best[:, :, None], axis=2)[:, :, 0]
        keep = objectness >= objectness_threshold
        # one transfer of the kept boxes to the host, split per image there
        image = xp.nonzero(keep)[0]
        fields = [self._boxes(B, r)[keep], score[keep], best[keep],
                  xp.moveaxis(r[:, :, 5 + C:], 2, -1)[keep], image]
        boxes, scores, classes, params, image = (B.to_host(f) for f in fields)
        out = ([], [], [], [])
        for i in range(N):
            sel = np.flatnonzero(image == i)
            sel = sel[np.argsort(-scores[sel], kind="stable")]
            if nms_threshold is not None and len(sel):
                sel = sel[nms(boxes[sel], scores[sel], nms_threshold, classes=classes[sel])]
            for lst, f in zip(out, (boxes, scores, classes, params)):
                lst.append(f[sel])
        return out


def _host(a):
    return a.get() if hasattr(a, "get") else a


__all__ = ["YOLOLoss", "Association", "OBJECTNESS_TARGETS", "CLASS_ACTIVATIONS", "PARTS"]
