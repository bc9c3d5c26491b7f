"""The YOLO loss of the course: activation, association of targets to boxes, equation (14)
of the detection chapter, and its gradient by hand.

A YOLO network ends with a convolution whose output, for an image, is a grid of
``Gh x Gw`` cells (each ``stride`` pixels wide); every cell predicts one box per *prior*
(a typical box size, "anchor"). :class:`YOLOLoss` turns that raw output into boxes, decides
which box should have found which target (the *association*), and scores the boxes against
the targets with the slides' loss (``shared/course/001_...txt``, "The YOLO activation / Loss
function" and "Training procedure").

Bad targets are refused with a :class:`~nn.errors.DataError` (or :class:`~nn.errors.ShapeError`)
that names the image and the key: a missing key, a wrong shape or dtype, NaN or inf, a box
with ``x2 <= x1``, a class id out of range, a box lying wholly outside the image grid. The
raw output itself is not searched for NaN (a training step checks nothing on the device;
``Network.fit`` stops on a non-finite loss).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backends
from .. import functional as F
from ..checks import as_array, check_finite, is_device_array
from ..errors import ConfigError, DataError, ShapeError, StateError
from ..losses import Loss
from .boxes import _iou
from .nms import nms

ASSOCIATIONS = ("best", "prior")
FIOU = ("iou", "(1+iou)/2")
CLASS_ACTIVATIONS = ("softmax", "sigmoid")
PARTS = ("position", "size", "probability", "objectness", "void", "classes", "params")
#: the channels of a prior's block before its classes: centre, size, probability, objectness
TX, TY, TW, TH, TP, TO = range(6)
BOX_CHANNELS = 6
#: keyword names of nn's earlier YOLO loss, and what replaced them
RENAMED = {"lambda_coord": "lambda_pos", "lambda_noobj": "lambda_void (a weight per prior, "
           "applied to the void terms of both P and O)", "objectness_target": "fiou ('iou' or "
           "'(1+iou)/2'; the old 'one' is the probability term P, target 1)"}


class Association:
    """Which box learns which target, for one batch (what :meth:`YOLOLoss.associate` returns).

    Attributes (arrays on the device; ``M`` matched targets, in the order of the input):

    ``index``      ``(n, a, :, gy, gx)`` with ``(M,)`` int arrays: image, prior and cell of
                   each matched box; ``raw5[index]`` is ``(M, D)`` for ``raw5`` of shape
                   ``(N, A, D, Gh, Gw)``;
    ``offsets``    ``(M, 2)`` target centre inside its cell, in [0, 1];
    ``log_sizes``  ``(M, 2)`` target ``log(w / prior_w), log(h / prior_h)`` (clipped);
    ``boxes``      ``(M, 4)`` target boxes, pixels;
    ``classes``    ``(M,)`` int target classes;  ``params`` ``(M, n_params)``;
    ``iou``        ``(M,)`` IoU of each matched box's prediction with its target;
    ``fiou``       ``(M,)`` the objectness target (``iou`` or ``(1 + iou) / 2``), held fixed;
    ``void``       ``(N, A, Gh, Gw)`` 1.0 for the boxes that learn ``P = O = 0``, 0.0 for
                   matched boxes and for "good but not best" boxes (left out);
    ``rule``       ``"best"`` or ``"prior"``: the rule that made it;
    ``targets``    host ``(M,)`` int: position of each matched target in the batch's list of
                   all targets (image by image, in order);
    ``n_targets``, ``n_matched``, ``n_dropped`` (ints): targets in the batch, matched, and
    dropped because every box of their cell was taken; ``n_ignored`` (device scalar).
    """

    def __init__(self, shape, **fields):
        self.shape = tuple(shape)
        self.__dict__.update(fields)

    def __repr__(self):
        return (f"Association({self.rule!r}, raw shape {self.shape}, {self.n_targets} targets, "
                f"{self.n_matched} matched, {self.n_dropped} dropped, "
                f"{int(self.n_ignored)} boxes ignored)")


class YOLOLoss(Loss):
    r"""The course's YOLO loss, equation (14), on the raw output ``(N, A * D, Gh, Gw)``.

    **Channel layout.** For prior ``a`` (size ``(p_w, p_h)`` pixels) the channels ``a*D`` to
    ``a*D + D - 1``, with ``D = 6 + n_classes + n_params``, hold for cell ``(gy, gx)``:

    ======================  ============================================  ==================
    channel ``a*D + k``     activation                                    meaning
    ======================  ============================================  ==================
    0, 1: ``t_x, t_y``      ``x = (gx + sigmoid(t_x)) * stride``           box centre, pixels
    2, 3: ``t_w, t_h``      ``w = p_w * exp(clip(t_w, ±max_log_scale))``   box size, pixels
    4: ``t_P``              ``P = sigmoid(t_P)``                           probability that
                                                                           a target is here
    5: ``t_O``              ``O = sigmoid(t_O)``                           objectness: the
                                                                           expected fIoU
    6 .. 5+C                softmax (or sigmoid) over the classes          class probabilities
    6+C .. 5+C+n_params     linear                                         extra parameters
    ======================  ============================================  ==================

    **Association** (the slides' training procedure), recomputed at every :meth:`forward`:

    * each target goes to the cell holding its centre. Targets are taken in order; each goes
      to the *best predicted box* of its cell that no earlier target holds: the box whose
      current prediction has the largest IoU with the target (``association="best"``).
      When no free box of the cell overlaps the target by an IoU above ``min_iou`` (a poor
      prediction, as at the start of training), the free box whose prior has the target's
      shape best wins instead (CIANNA's ``low_IoU_best_box_assoc``). With
      ``association="prior"`` the rule is YOLOv2's: the free box whose *prior* has the best
      shape IoU with the target (both put on the same centre). Either way, a target finding
      every box of its cell taken is dropped (``n_dropped``);
    * any other box whose predicted box overlaps some target of its image by an IoU above
      ``good_iou`` is **left out** of the loss: it is good, just not the best;
    * every remaining box is *void*: it learns ``P = O = 0``.

    The association and the objectness target (from the IoU of the prediction) are held
    constant when differentiating: the gradient is that of (14) for a fixed matching.

    **Loss**, equation (14), summed over the boxes and divided by the batch size ``N``
    (``^`` marks a target, ``s = sigmoid``)::

        matched box:  lambda_pos  [(s(t_x) - x^)² + (s(t_y) - y^)²]
                    + lambda_size [(t_w - w^)² + (t_h - h^)²]
                    + lambda_class * cross-entropy(softmax(t_c), class^)
                    + lambda_param * sum_k gamma_k (t_k - p^_k)²
                    + lambda_prob (P - 1)²
                    + lambda_obj  (O - fIoU)²
        void box (prior a):  lambda_void[a] (lambda_prob P² + lambda_obj O²)
        good but not best:   nothing

    with ``x^, y^`` the target centre inside its cell, ``w^ = log(w / p_w)``,
    ``h^ = log(h / p_h)``, and ``fIoU`` the IoU of the matched prediction with its target
    (``fiou="iou"``, the slides) or ``(1 + IoU) / 2`` (``fiou="(1+iou)/2"``, never below
    1/2 for a real object, as CIANNA does). With ``class_activation="sigmoid"`` the class
    term is the binary cross-entropy of each class. The slides' indicators
    ``1^{C_good}, 1^{p_good}, 1^{P_good}, 1^{O_good}`` are all 1 here (CIANNA can gate each
    term by an IoU limit); a weight of 0 switches a term off.

    **Conventions** (what the code does at the edges):

    * a centre lying exactly on a cell border belongs to the cell right of it / below it
      (``gx = floor(cx / stride)``); the offset is then 0;
    * the cell is clipped to the grid and the offsets to [0, 1]: a centre on the right or
      bottom edge of the image (``cx = Gw * stride``) belongs to the last cell with offset 1,
      and a box that sticks out of the image keeps its centre in the border cell;
    * a box lying *wholly* outside the image grid ``[0, Gw*stride] x [0, Gh*stride]`` is an
      error (:class:`~nn.errors.DataError` naming the image and the box): crop or pad the
      images to a multiple of the stride, or drop such boxes;
    * the log-size target ``log(w / p_w)`` is clipped to ``±max_log_scale``, as are
      ``t_w, t_h`` in the predicted box (``exp`` cannot overflow); the size term itself uses
      the raw ``t_w, t_h``, so its gradient pulls a runaway value back.

    **The start of training.** With random weights, every predicted box is about its prior,
    centred in its cell, so "best predicted box" first means "best prior put at the centre
    of the cell": a small target near a corner of its cell then overlaps only the largest
    prior, which would win every such target, and the priors would never specialise. The
    same happens when a box drifts early (grows large, say). Two safeguards: a target that no
    free box overlaps by more than ``min_iou`` goes by prior shape (above), and
    ``startup_images`` uses the ``"prior"`` rule for the first images of training (counted
    by :meth:`backward`, so validation passes do not count), as CIANNA's ``rand_startup``
    forces another association (a random free box) for its first images (64,000 by
    default). For small sources in large cells the prior shape stays a good guide: CIANNA's
    configuration for the SKA data challenge forces the best-prior association for 90 % of
    the targets (``rand_prob_best_box_assoc = 0.9``), and ``association="prior"`` is a sound
    choice there.

    **Decoding.** :meth:`decode` keeps the boxes whose objectness ``O`` is at least the
    threshold (the slides: "a threshold in objectness"), and scores each
    ``P * O * p(class)``: ``P * O`` is the slides' ``Pr(object) * IoU``.

    Parameters
    ----------
    priors : (A, 2) sequence
        Prior box sizes ``(w, h)`` in pixels.
    n_classes : int
        Number of classes (0: boxes, probability and objectness only).
    n_params : int
        Extra real parameters per box (e.g. flux, axes, angle of a radio source); a target's
        ``"params"`` are ignored when 0.
    stride : float
        Pixels per grid cell (the network's total down-sampling factor).
    association : {"best", "prior"}
        The slides' rule (best predicted box) or YOLOv2's (best prior shape).
    lambda_pos, lambda_size, lambda_class, lambda_param, lambda_prob, lambda_obj : float >= 0
        The weights of equation (14).
    lambda_void : float or sequence of A floats >= 0
        Weight of the void terms, one per prior (a scalar: the same for all). Smaller than 1:
        there are many more void boxes than targets.
    gamma : float or sequence of n_params floats >= 0
        Weight of each extra parameter.
    good_iou : float in [0, 1]
        Above this IoU with a target, an unmatched box is left out of the loss.
    fiou : {"iou", "(1+iou)/2"}
        The objectness target of a matched box.
    min_iou : float in [0, 1)
        ``association="best"``: when no free box of the cell overlaps the target by more
        than this IoU, the best prior shape decides (0: only when none overlaps at all).
    class_activation : {"softmax", "sigmoid"}
    max_log_scale : float > 0
        Clip of ``t_w, t_h`` in the boxes and of the log-size targets.
    startup_images : int >= 0
        With ``association="best"``, use the ``"prior"`` rule until :meth:`backward` has
        seen this many images (``images_seen``; not saved with a model).

    Attributes
    ----------
    association : Association
        What the last :meth:`forward` matched (the rule itself is ``association_rule``).
    parts : dict
        Each term of the last :meth:`forward`, divided by ``N``.
    images_seen : int
        Images counted by :meth:`backward` (for ``startup_images``); set it to 0 to restart.

    ``forward`` returns the total like the other losses (a float; ``forward_device`` a
    device scalar, to avoid a synchronisation per batch on a GPU).
    """

    def __init__(self, priors, n_classes: int, n_params: int = 0, stride: float = 32, *,
                 association: str = "best", lambda_pos: float = 5.0, lambda_size: float = 5.0,
                 lambda_class: float = 1.0, lambda_param: float = 1.0, lambda_prob: float = 1.0,
                 lambda_obj: float = 1.0, lambda_void=0.5, gamma=1.0, good_iou: float = 0.6,
                 fiou: str = "iou", min_iou: float = 0.1, class_activation: str = "softmax",
                 max_log_scale: float = 4.0, startup_images: int = 0, **renamed):
        owner = "YOLOLoss"
        for name in renamed:
            new = RENAMED.get(name)
            raise ConfigError(f"{owner}: no option {name!r}" + (
                f"; since the loss follows equation (14) it is called {new}" if new else
                "; see help(nn.detection.YOLOLoss) for the options"))
        self.priors = _priors(priors)
        self.n_classes = _count(owner, "n_classes", n_classes)
        self.n_params = _count(owner, "n_params", n_params)
        self.stride = _real(owner, "stride", stride, positive=True)
        self.association_rule = _choice(owner, "association", association, ASSOCIATIONS)
        self.fiou = _choice(owner, "fiou", fiou, FIOU)
        self.class_activation = _choice(owner, "class_activation", class_activation,
                                        CLASS_ACTIVATIONS)
        for name, value in (("lambda_pos", lambda_pos), ("lambda_size", lambda_size),
                            ("lambda_class", lambda_class), ("lambda_param", lambda_param),
                            ("lambda_prob", lambda_prob), ("lambda_obj", lambda_obj)):
            setattr(self, name, _real(owner, name, value))
        self.lambda_void, self._void_weights = _weights(owner, "lambda_void", lambda_void,
                                                        len(self.priors), "prior")
        self.gamma, self._gamma = _weights(owner, "gamma", gamma, self.n_params, "parameter")
        self.good_iou = _real(owner, "good_iou", good_iou)
        if self.good_iou > 1:
            raise ConfigError(f"{owner}: good_iou must lie in [0, 1], got {good_iou!r}")
        self.min_iou = _real(owner, "min_iou", min_iou)
        if self.min_iou >= 1:
            raise ConfigError(f"{owner}: min_iou must lie in [0, 1), got {min_iou!r}")
        self.max_log_scale = _real(owner, "max_log_scale", max_log_scale, positive=True)
        self.startup_images = _count(owner, "startup_images", startup_images)
        self.images_seen = 0
        self.association = None
        self._constants = {}
        self._parts = {}
        self._cache = None

    # -- description -----------------------------------------------------------------------------
    @property
    def n_priors(self) -> int:
        return len(self.priors)

    @property
    def channels_per_prior(self) -> int:
        """``D = 6 + n_classes + n_params``."""
        return BOX_CHANNELS + self.n_classes + self.n_params

    @property
    def channels(self) -> int:
        """Channels the last convolution must output: ``n_priors * D``."""
        return self.n_priors * self.channels_per_prior

    def config(self) -> dict:
        return {"priors": self.priors.tolist(), "n_classes": self.n_classes,
                "n_params": self.n_params, "stride": self.stride,
                "association": self.association_rule, "lambda_pos": self.lambda_pos,
                "lambda_size": self.lambda_size, "lambda_class": self.lambda_class,
                "lambda_param": self.lambda_param, "lambda_prob": self.lambda_prob,
                "lambda_obj": self.lambda_obj, "lambda_void": self.lambda_void,
                "gamma": self.gamma, "good_iou": self.good_iou, "fiou": self.fiou,
                "min_iou": self.min_iou,
                "class_activation": self.class_activation, "max_log_scale": self.max_log_scale,
                "startup_images": self.startup_images}

    def __repr__(self):
        return (f"YOLOLoss(priors={self.priors.tolist()}, n_classes={self.n_classes}, "
                f"n_params={self.n_params}, stride={self.stride:g}, "
                f"association={self.association_rule!r})")

    @property
    def parts(self) -> dict:
        """Each term of the last :meth:`forward`, divided by the batch size, as floats."""
        return {name: float(value) for name, value in self._parts.items()}

    def current_rule(self) -> str:
        """The association rule the next :meth:`forward` uses (``"prior"`` during start-up)."""
        if self.association_rule == "best" and self.images_seen < self.startup_images:
            return "prior"
        return self.association_rule

    # -- the pieces ---------------------------------------------------------------------------------
    def _grid(self, raw, owner):
        """``raw`` as ``(N, A, D, Gh, Gw)`` in the accumulation dtype (float32 under "mixed")."""
        B = backends.current()
        raw = as_array(raw, "the raw output", owner)
        if raw.ndim != 4 or raw.shape[1] != self.channels:
            raise ShapeError(
                f"{owner}: expected the raw output of shape (N, {self.channels}, Gh, Gw) "
                f"({self.n_priors} priors x (6 + {self.n_classes} classes + {self.n_params} "
                f"params)), got {tuple(raw.shape)}; make the last convolution output "
                f"{self.channels} channels")
        N, _, Gh, Gw = raw.shape
        if N == 0 or Gh == 0 or Gw == 0:
            raise ShapeError(f"{owner}: the raw output {tuple(raw.shape)} holds no image or no "
                             "grid cell; give at least one image and a grid of at least 1 x 1")
        if B.name == "numpy" and is_device_array(raw):
            raw = B.to_host(raw)
        r = B.xp.asarray(raw, dtype=B.acc_dtype)
        return B, r.reshape(N, self.n_priors, self.channels_per_prior, Gh, Gw)

    def _constant(self, B, name, value, dtype):
        """Small constant arrays (priors, weights) moved to the device once."""
        key = (name, B.name, np.dtype(dtype).str)
        if key not in self._constants:
            self._constants[key] = B.xp.asarray(np.asarray(value, dtype=dtype))
        return self._constants[key]

    def _boxes(self, B, r):
        """Predicted boxes ``(N, A, Gh, Gw, 4)`` (pixel corners) from ``r (N, A, D, Gh, Gw)``."""
        xp = B.xp
        Gh, Gw = r.shape[-2:]
        priors = self._constant(B, "priors", self.priors, r.dtype)
        cx = (F.sigmoid(r[:, :, TX]) + xp.arange(Gw, dtype=r.dtype)) * self.stride
        cy = (F.sigmoid(r[:, :, TY]) + xp.arange(Gh, dtype=r.dtype)[:, None]) * self.stride
        t = xp.clip(r[:, :, TW:TH + 1], -self.max_log_scale, self.max_log_scale)
        w = priors[:, 0, None, None] * xp.exp(t[:, :, 0])
        h = priors[:, 1, None, None] * xp.exp(t[:, :, 1])
        return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)

    def _read_targets(self, targets, n_images, grid):
        """Validated host arrays of the batch's targets: image id, box, class, params."""
        owner = "YOLOLoss"
        if isinstance(targets, np.ndarray) and targets.dtype == object:
            targets = list(targets)
        if isinstance(targets, dict) or not isinstance(targets, (list, tuple)):
            raise DataError(f"{owner}: targets must be a list of {n_images} entries (one per "
                            "image, each a dict with 'boxes', 'classes' and 'params'), got "
                            f"{type(targets).__name__}")
        if len(targets) != n_images:
            raise ShapeError(f"{owner}: the raw output holds {n_images} images but targets has "
                             f"{len(targets)} entries; give one target dict per image")
        Gh, Gw = grid
        extent = (Gw * self.stride, Gh * self.stride)
        entries = [self._shaped(owner, i, *self._entry(owner, i, t)) for i, t in enumerate(targets)]
        boxes, classes, params = (np.concatenate(column) for column in zip(*entries))
        # the values are checked once for the whole batch; only when something is wrong are
        # the images checked one by one, to name the first image, box and key at fault
        if not self._values_ok(boxes, classes, params, extent):
            for i, entry in enumerate(entries):
                self._check_values(owner, i, *entry, extent)
        image = np.repeat(np.arange(n_images), [len(b) for b, _, _ in entries])
        classes = classes.astype(np.int64) if self.n_classes else np.zeros(len(boxes), np.int64)
        return image, boxes, classes, params

    def _entry(self, owner, i, t):
        """The (boxes, classes, params) of target ``i``, a dict or a tuple."""
        if isinstance(t, dict):
            if "boxes" not in t:
                raise DataError(f"{owner}: the target of image {i} has no 'boxes' (its keys: "
                                f"{sorted(map(str, t))}); give 'boxes' (k, 4) in pixels, "
                                "'classes' (k,) and 'params' (k, n_params)")
            return t["boxes"], t.get("classes"), t.get("params")
        if isinstance(t, (tuple, list)) and len(t) in (2, 3):
            return t[0], t[1], t[2] if len(t) == 3 else None
        raise DataError(f"{owner}: the target of image {i} must be a dict with 'boxes', "
                        "'classes' (and 'params') or a tuple (boxes, classes[, params]), got "
                        f"{type(t).__name__}")

    def _shaped(self, owner, i, b, c, p):
        """Boxes ``(k, 4)``, classes ``(k,)`` and params ``(k, n_params)`` of image ``i`` as
        host arrays of numbers, or an error naming the image and the key."""
        where = f"image {i}"
        b = np.asarray(_host(as_array(b, f"'boxes' of {where}", owner)), dtype=np.float64)
        if b.size == 0:
            b = b.reshape(0, 4)
        elif b.shape == (4,):
            b = b[None]
        if b.ndim != 2 or b.shape[1] != 4:
            raise ShapeError(f"{owner}: 'boxes' of {where} must have shape (k, 4) = (x1, y1, x2, "
                             f"y2) per row, got shape {b.shape}")
        k = len(b)
        if c is None:
            if self.n_classes > 1:
                raise DataError(f"{owner}: the target of {where} has no 'classes' "
                                f"({self.n_classes} classes to learn); give 'classes' (k,) ints")
            c = np.zeros(k, np.int64)
        c = np.asarray(_host(as_array(c, f"'classes' of {where}", owner)))
        if c.ndim > 1 or c.size != k:
            raise ShapeError(f"{owner}: 'classes' of {where} must have shape ({k},), one class id "
                             f"per box, got shape {c.shape}")
        c = c.reshape(k).astype(np.float64)
        if not self.n_params:
            return b, c, np.zeros((k, 0))
        if p is None:
            raise DataError(f"{owner}: the target of {where} has no 'params', but the loss "
                            f"learns {self.n_params} parameters per box; give 'params' "
                            f"({k}, {self.n_params})")
        p = np.asarray(_host(as_array(p, f"'params' of {where}", owner)), dtype=np.float64)
        if p.ndim == 1 and self.n_params == 1 and len(p) == k:
            p = p[:, None]
        if p.size == 0 and k == 0:
            p = p.reshape(0, self.n_params)
        if p.shape != (k, self.n_params):
            raise ShapeError(f"{owner}: 'params' of {where} must have shape ({k}, "
                             f"{self.n_params}) ({k} boxes, {self.n_params} parameters each), "
                             f"got shape {p.shape}")
        return b, c, p

    def _values_ok(self, b, c, p, extent):
        """True when every box, class and parameter of the batch is acceptable."""
        width, height = extent
        ok = np.isfinite(b).all() and np.isfinite(p).all() and np.isfinite(c).all()
        ok = ok and not ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any()
        ok = ok and not ((b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= width)
                         | (b[:, 1] >= height)).any()
        ok = ok and (c == np.round(c)).all()
        return ok and not (self.n_classes and len(c) and (c.min() < 0 or c.max() >= self.n_classes))

    def _check_values(self, owner, i, b, c, p, extent):
        """The error naming the first bad value of image ``i``, if it holds one."""
        where = f"image {i}"
        check_finite(b, f"'boxes' of {where}", owner, "remove those boxes")
        bad = np.flatnonzero((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]))
        if len(bad):
            raise DataError(f"{owner}: box {bad[0]} of {where}, {b[bad[0]].tolist()}, has x2 <= x1 "
                            "or y2 <= y1; boxes are (x1, y1, x2, y2) in pixels")
        width, height = extent
        out = np.flatnonzero((b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= width)
                             | (b[:, 1] >= height))
        if len(out):
            raise DataError(f"{owner}: box {out[0]} of {where}, {b[out[0]].tolist()}, lies wholly "
                            f"outside the image grid [0, {width:g}] x [0, {height:g}] pixels "
                            f"({extent[0] / self.stride:g} x {extent[1] / self.stride:g} cells of "
                            f"{self.stride:g} pixels); drop it, or give images whose size is a "
                            "multiple of the stride")
        check_finite(c, f"'classes' of {where}", owner)
        if (c != np.round(c)).any():
            j = int(np.flatnonzero(c != np.round(c))[0])
            raise DataError(f"{owner}: 'classes' of {where} must hold integer class ids, got "
                            f"{c[j].item()!r} at index {j}")
        if self.n_classes and len(c) and (c.min() < 0 or c.max() >= self.n_classes):
            j = int(np.flatnonzero((c < 0) | (c >= self.n_classes))[0])
            raise DataError(f"{owner}: 'classes' of {where} holds class ids outside "
                            f"[0, {self.n_classes}): {int(c[j])} at index {j}")
        check_finite(p, f"'params' of {where}", owner)

    def _cells(self, boxes, grid):
        """Cell of each target centre (a border belongs to the cell right/below, the grid's
        edges clip) and the centre's offset inside it, clipped to [0, 1]."""
        Gh, Gw = grid
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 / self.stride
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 / self.stride
        gx = np.clip(np.floor(cx), 0, Gw - 1).astype(np.int64)
        gy = np.clip(np.floor(cy), 0, Gh - 1).astype(np.int64)
        offsets = np.clip(np.stack([cx - gx, cy - gy], axis=1), 0, 1)
        return gx, gy, offsets

    def _shape_iou(self, boxes):
        """``(M, A)`` IoU of each target's shape with each prior's, both on the same centre."""
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        inter = np.minimum(w, self.priors[:, 0]) * np.minimum(h, self.priors[:, 1])
        return inter / (w * h + self.priors.prod(axis=1) - inter)

    def associate(self, raw, targets, rule: str | None = None) -> Association:
        """Match the targets to boxes for the raw output ``raw`` (see the class docstring).

        ``rule`` overrides the rule of this call (``"best"`` or ``"prior"``). The targets are
        read and checked on the host (cheap); the comparison with the predicted boxes runs
        on the device, without reading anything back.
        """
        B, r = self._grid(raw, "YOLOLoss.associate")
        if rule is not None:
            _choice("YOLOLoss.associate", "rule", rule, ASSOCIATIONS)
        return self._associate(B, r, targets, rule or self.current_rule())

    def _associate(self, B, r, targets, rule):
        xp = B.xp
        N, A, D, Gh, Gw = r.shape
        image, boxes, classes, params = self._read_targets(targets, N, (Gh, Gw))
        gx, gy, offsets = self._cells(boxes, (Gh, Gw))
        # which targets find a free box is known from the targets alone: the k-th target of
        # a cell (k from 0, in order) finds one while k < A; only *which* box depends on the
        # predictions. Those k-th targets of their cells are resolved together, round k.
        cell = (image * Gh + gy) * Gw + gx
        rank = _rank_in_group(cell)
        kept = np.flatnonzero(rank < A)
        M = len(kept)
        shape_iou = self._shape_iou(boxes[kept])
        # one transfer per kind: ints, floats, and every target box (for "good but not best")
        ints = np.stack([image, gy, gx, classes], axis=1)[kept]
        floats = np.concatenate([offsets, boxes, params], axis=1)[kept]
        per_image = np.bincount(image, minlength=N)
        truth = np.zeros((N, int(per_image.max(initial=0)), 4))    # zero boxes overlap nothing
        slot = np.arange(len(image)) - np.repeat(np.cumsum(per_image) - per_image, per_image)
        truth[image, slot] = boxes
        ints_d = xp.asarray(ints)
        floats_d = xp.asarray(floats.astype(r.dtype))
        n, gy_d, gx_d = ints_d[:, 0], ints_d[:, 1], ints_d[:, 2]
        target_boxes = floats_d[:, 2:6]

        predicted = self._boxes(B, r)                               # (N, A, Gh, Gw, 4)
        # IoU of each kept target with every box of its cell: (M, A)
        overlap = _iou(xp, predicted[n, :, gy_d, gx_d], target_boxes[:, None, :])
        if rule == "best":
            # a box that overlaps the target by more than min_iou beats any that does not;
            # among those that do not, the prior shape decides (shape IoU is in (0, 1],
            # overlap + 1 in (1, 2])
            score = xp.where(overlap > self.min_iou, overlap + 1,
                             xp.asarray(shape_iou.astype(r.dtype)))
            a = _greedy(xp, score, cell[kept], rank[kept], A)
        else:
            a = xp.asarray(_greedy(np, shape_iou, cell[kept], rank[kept], A))
        iou_matched = xp.take_along_axis(overlap, a[:, None], axis=1)[:, 0] if M else \
            xp.zeros(0, dtype=r.dtype)
        fiou = iou_matched if self.fiou == "iou" else (1 + iou_matched) / 2
        priors = self._constant(B, "priors", self.priors, r.dtype)
        wh = target_boxes[:, 2:4] - target_boxes[:, 0:2]
        log_sizes = xp.clip(xp.log(wh / priors[a]), -self.max_log_scale, self.max_log_scale)

        matched = xp.zeros((N, A, Gh, Gw), dtype=bool)
        matched[n, a, gy_d, gx_d] = True
        if truth.shape[1]:
            truth_d = xp.asarray(truth.astype(r.dtype))
            overlaps = _iou(xp, predicted.reshape(N, -1, 1, 4), truth_d[:, None])  # (N, AGG, T)
            good = (overlaps.max(axis=2) > self.good_iou).reshape(N, A, Gh, Gw)
            ignored = good & ~matched
        else:
            ignored = xp.zeros((N, A, Gh, Gw), dtype=bool)
        void = (~(matched | ignored)).astype(r.dtype)
        return Association(
            r.shape[:1] + (self.channels,) + r.shape[3:], index=(n, a, slice(None), gy_d, gx_d),
            offsets=floats_d[:, 0:2], log_sizes=log_sizes, boxes=target_boxes,
            params=floats_d[:, 6:], classes=ints_d[:, 3], iou=iou_matched, fiou=fiou, void=void,
            rule=rule, targets=kept, n_targets=len(image), n_matched=M,
            n_dropped=len(image) - M, n_ignored=ignored.sum())

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
            (what :func:`nn.data.make_radio_sky` and :func:`nn.data.load_voc` return; other
            keys are ignored), or tuples ``(boxes, classes[, params])``; boxes in pixels.
        association : Association, optional
            Reuse this association (and its objectness targets) instead of computing it from
            ``raw``: a gradient check holds it fixed this way. ``targets`` are then unused.
        """
        B, r = self._grid(raw, "YOLOLoss")
        if association is None:
            association = self._associate(B, r, targets, self.current_rule())
        elif not isinstance(association, Association):
            raise ConfigError(f"YOLOLoss: association must be an Association (loss.association "
                              f"after a forward), got {type(association).__name__}")
        if association.shape != tuple(r.shape[:1] + (self.channels,) + r.shape[3:]):
            raise ShapeError(f"YOLOLoss: the association was made for a raw output of shape "
                             f"{association.shape}, not {tuple(raw.shape)}")
        xp = B.xp
        N, A = r.shape[:2]
        C = self.n_classes
        a = self.association = association

        s_P, s_O = F.sigmoid(r[:, :, TP]), F.sigmoid(r[:, :, TO])      # (N, A, Gh, Gw)
        void_weights = self._constant(B, "void weights", self._void_weights, r.dtype)
        vw = a.void * void_weights[:, None, None]                        # λ_void^a, or 0
        void = (vw * (self.lambda_prob * s_P ** 2 + self.lambda_obj * s_O ** 2)).sum()

        m = r[a.index]                                                   # (M, D)
        s_xy = F.sigmoid(m[:, TX:TY + 1])
        position = self.lambda_pos * ((s_xy - a.offsets) ** 2).sum()
        size = self.lambda_size * ((m[:, TW:TH + 1] - a.log_sizes) ** 2).sum()
        sP, sO = F.sigmoid(m[:, TP]), F.sigmoid(m[:, TO])
        probability = self.lambda_prob * ((sP - 1) ** 2).sum()
        objectness = self.lambda_obj * ((sO - a.fiou) ** 2).sum()
        classes, probs, onehot = self._class_term(xp, m[:, BOX_CHANNELS:BOX_CHANNELS + C],
                                                  a.classes)
        gamma = self._constant(B, "gamma", self._gamma, r.dtype)
        dparams = m[:, BOX_CHANNELS + C:] - a.params
        params = self.lambda_param * (gamma * dparams ** 2).sum()

        self._cache = {"r": r, "s_P": s_P, "s_O": s_O, "vw": vw, "m": m, "s_xy": s_xy,
                       "sP": sP, "sO": sO, "probs": probs, "onehot": onehot,
                       "dparams": dparams, "gamma": gamma}
        terms = (position, size, probability, objectness, void, classes, params)
        self._parts = {name: value / N for name, value in zip(PARTS, terms)}
        return sum(terms) / N

    def _class_term(self, xp, logits, classes):
        """Class loss, probabilities and one-hot targets of the matched boxes ``(M, C)``."""
        onehot = xp.zeros(logits.shape, dtype=logits.dtype)
        if self.n_classes == 0:
            return xp.zeros((), dtype=logits.dtype), logits, onehot
        onehot[xp.arange(logits.shape[0]), classes] = 1
        if self.class_activation == "softmax":
            return (self.lambda_class * F.cross_entropy(logits, onehot, axis=1).sum(),
                    F.softmax(logits, axis=1), onehot)
        return (self.lambda_class * F.bce_with_logits(logits, onehot).sum(),
                F.sigmoid(logits), onehot)

    def backward(self):
        """``dL/d raw``, shaped like the raw output (accumulation dtype).

        Counts the batch's images in :attr:`images_seen` (the start-up association).
        """
        if self._cache is None:
            raise StateError("YOLOLoss.backward: call forward(raw, targets) first; backward "
                             "returns the gradient of the last forward")
        B = backends.current()
        xp = B.xp
        c, a, C = self._cache, self.association, self.n_classes
        r = c["r"]
        N = r.shape[0]
        grad = xp.zeros(r.shape, dtype=r.dtype)
        # void boxes: d/dt [λ_void λ (s - 0)²] = 2 λ_void λ s · s (1 - s)
        grad[:, :, TP] = F.sigmoid_grad(c["s_P"], 2 * self.lambda_prob * c["vw"] * c["s_P"])
        grad[:, :, TO] = F.sigmoid_grad(c["s_O"], 2 * self.lambda_obj * c["vw"] * c["s_O"])

        g = xp.empty(c["m"].shape, dtype=r.dtype)                        # matched boxes (M, D)
        g[:, TX:TY + 1] = F.sigmoid_grad(c["s_xy"], 2 * self.lambda_pos * (c["s_xy"] - a.offsets))
        g[:, TW:TH + 1] = 2 * self.lambda_size * (c["m"][:, TW:TH + 1] - a.log_sizes)
        g[:, TP] = F.sigmoid_grad(c["sP"], 2 * self.lambda_prob * (c["sP"] - 1))
        g[:, TO] = F.sigmoid_grad(c["sO"], 2 * self.lambda_obj * (c["sO"] - a.fiou))
        # softmax + cross-entropy and sigmoid + binary cross-entropy share this gradient
        g[:, BOX_CHANNELS:BOX_CHANNELS + C] = self.lambda_class * (c["probs"] - c["onehot"])
        g[:, BOX_CHANNELS + C:] = 2 * self.lambda_param * c["gamma"] * c["dparams"]
        grad[a.index] = g        # a matched box is not void: its P and O gradients are g's
        grad /= N
        self.images_seen += N
        return grad.reshape(a.shape)

    # -- inference ----------------------------------------------------------------------------------
    def decode(self, raw, objectness_threshold: float = 0.5, nms_threshold: float | None = None):
        """Detections of each image: boxes whose objectness ``O`` is at least the threshold.

        Parameters
        ----------
        raw : (N, A*D, Gh, Gw) array
        objectness_threshold : float in [0, 1]
        nms_threshold : float in [0, 1], optional
            When given, per-class :func:`~nn.detection.nms` with this IoU threshold.

        Returns
        -------
        boxes, scores, classes, params : lists of N host arrays
            ``(k, 4)`` pixel corners; ``(k,)`` score ``P * O * p(class)`` (the slides'
            ``Pr(object) * IoU`` times the probability of the class; ``P * O`` without
            classes); ``(k,)`` int class (argmax); ``(k, n_params)``. Best score first.
        """
        owner = "YOLOLoss.decode"
        objectness_threshold = _real(owner, "objectness_threshold", objectness_threshold)
        if nms_threshold is not None:
            nms_threshold = _real(owner, "nms_threshold", nms_threshold)
        for name, value in (("objectness_threshold", objectness_threshold),
                            ("nms_threshold", nms_threshold)):
            if value is not None and value > 1:
                raise ConfigError(f"{owner}: {name} must lie in [0, 1], got {value!r}")
        B, r = self._grid(raw, owner)
        xp = B.xp
        N, A, D, Gh, Gw = r.shape
        C = self.n_classes
        P, O = F.sigmoid(r[:, :, TP]), F.sigmoid(r[:, :, TO])
        if C == 0:
            probs = xp.ones((N, A, 1, Gh, Gw), dtype=r.dtype)
        elif self.class_activation == "softmax":
            probs = F.softmax(r[:, :, BOX_CHANNELS:BOX_CHANNELS + C], axis=2)
        else:
            probs = F.sigmoid(r[:, :, BOX_CHANNELS:BOX_CHANNELS + C])
        best = probs.argmax(axis=2)
        score = P * O * xp.take_along_axis(probs, best[:, :, None], axis=2)[:, :, 0]
        keep = O >= objectness_threshold
        # one transfer of the kept boxes to the host, split per image there
        image = xp.nonzero(keep)[0]
        fields = [self._boxes(B, r)[keep], score[keep], best[keep],
                  xp.moveaxis(r[:, :, BOX_CHANNELS + C:], 2, -1)[keep], image]
        boxes, scores, classes, params, image = (B.to_host(f) for f in fields)
        finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & np.isfinite(params).all(
            axis=1)
        if not finite.all():
            j = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{owner}: the raw output of image {image[j]} decodes to a box that "
                            f"is not finite ({boxes[j].tolist()}, score {scores[j]}): the "
                            "network's output holds NaN or inf (training diverged?)")
        out = ([], [], [], [])
        for i in range(N):
            sel = np.flatnonzero(image == i)
            sel = sel[np.argsort(-scores[sel], kind="stable")]
            if nms_threshold is not None and len(sel):
                sel = sel[nms(boxes[sel], scores[sel], nms_threshold, classes=classes[sel])]
            for lst, f in zip(out, (boxes, scores, classes, params)):
                lst.append(f[sel])
        return out


# -- helpers ------------------------------------------------------------------------------------------
def _rank_in_group(group):
    """For each item, how many earlier items share its group (0 for the first)."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    counts = np.diff(np.r_[starts, len(group)])
    rank = np.empty(len(group), np.int64)
    rank[order] = np.arange(len(group)) - np.repeat(starts, counts)
    return rank


def _greedy(xp, score, cell, rank, A):
    """Box of each target: targets in order, each takes the free box of its cell with the
    highest ``score (M, A)``; ``cell``, ``rank`` host arrays (every rank below ``A``).

    The k-th targets of all cells are resolved together (they are in different cells), so
    the loop runs once per rank, not once per target, and reads nothing back to the host.
    """
    M = len(rank)
    prior = xp.zeros(M, dtype=np.int64)
    if M == 0:
        return prior
    _, cell_id = np.unique(cell, return_inverse=True)
    order = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[order], np.arange(int(rank.max()) + 2))
    order_d, cell_d = xp.asarray(order), xp.asarray(cell_id.reshape(-1))
    taken = xp.zeros((int(cell_id.max()) + 1, A), dtype=bool)
    for k in range(len(bounds) - 1):
        sel = order_d[bounds[k]:bounds[k + 1]]
        c = cell_d[sel]
        s = score[sel]
        if k:
            s = xp.where(taken[c], -xp.inf, s)
        choice = s.argmax(axis=1)
        prior[sel] = choice
        taken[c, choice] = True
    return prior


def _host(a):
    return backends.to_host(a) if is_device_array(a) else a


def _real(owner, name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value < 0 or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        raise ConfigError(f"{owner}: {name} must be a finite number {need}, got {value!r}")
    return float(value)


def _count(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"{owner}: {name} must be an int >= 0, got {value!r}")
    return int(value)


def _choice(owner, name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got "
                          f"{value!r}")
    return value


def _weights(owner, name, value, n, what):
    """A weight per item: ``(value as given, (n,) float64 array)``; a scalar is repeated."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _real(owner, name, value), np.full(n, float(value))
    try:
        w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        w = None
    if w is None or w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise ConfigError(f"{owner}: {name} must be a number >= 0 or {n} numbers >= 0 (one per "
                          f"{what}), got {value!r}")
    return w.tolist(), w


def _priors(priors):
    try:
        p = np.asarray(priors, dtype=np.float64)
    except (TypeError, ValueError):
        p = None
    if p is None or p.ndim != 2 or p.shape[1] != 2 or len(p) == 0 or not np.isfinite(p).all() \
            or not (p > 0).all():
        raise ConfigError(f"YOLOLoss: priors must be a non-empty (A, 2) list of positive "
                          f"(width, height) in pixels, got {priors!r}")
    return p


__all__ = ["YOLOLoss", "Association", "ASSOCIATIONS", "FIOU", "CLASS_ACTIVATIONS", "PARTS",
           "BOX_CHANNELS"]
