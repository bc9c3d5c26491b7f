"""Boxes and their overlaps: conversions, IoU, GIoU and DIoU.

A box is ``(x1, y1, x2, y2)`` in pixels: ``x`` along the columns of the image, ``y`` along
its rows, ``(x1, y1)`` the top-left corner and ``(x2, y2)`` the bottom-right one. The
"centres" form is ``(cx, cy, w, h)``. Coordinates are real numbers: a box from pixel 3 to
pixel 7 is 4 pixels wide (no "+1" as in the old integer-pixel VOC convention).

Every function works on NumPy arrays and on CuPy arrays (the result lives where the input
does) and computes in floating point: integer boxes are promoted, never truncated.

IoU of two boxes ``A``, ``B`` (``C`` the smallest box enclosing both)::

    IoU  = |A ∩ B| / |A ∪ B|
    GIoU = IoU - |C \\ (A ∪ B)| / |C|                  in [-1, 1]
    DIoU = IoU - d² / c²                               in [-1, 1]

with ``d`` the distance between the centres of ``A`` and ``B`` and ``c`` the diagonal of ``C``.
GIoU and DIoU still tell two disjoint boxes apart (IoU is 0 for both), so they make useful
regression losses; DIoU also suppresses boxes with a distant centre less in NMS.

Bad input: boxes must be real numbers (lists are converted; strings, booleans, complex
numbers and Python objects are refused with :class:`~nn.errors.DataError`), shaped
``(..., 4)`` (:class:`~nn.errors.ShapeError` otherwise), and finite: a NaN or inf coordinate
is refused with the index of the first one (a NaN box would silently overlap nothing). On a
GPU that check reads the boxes back to the host once per call. An inverted box
(``x2 < x1``) is allowed and has area 0.
"""
from __future__ import annotations

import numpy as np

from ..checks import as_array, check_finite
from ..errors import ShapeError


def array_module(*arrays):
    """NumPy, or CuPy when one of ``arrays`` lives on a GPU."""
    for a in arrays:
        if hasattr(a, "__cuda_array_interface__"):
            import cupy
            return cupy
    return np


def as_boxes(boxes, name: str = "boxes", xp=None, owner: str = "boxes"):
    """``boxes`` as a floating ``(n, 4)`` array (a single ``(4,)`` box becomes ``(1, 4)``).

    Integer coordinates become float64, float16 becomes float32; float32 and float64 are
    kept. Raises :class:`~nn.errors.ShapeError` for any other shape and
    :class:`~nn.errors.DataError` for non-numbers and NaN/inf (naming ``owner`` and ``name``).
    """
    xp = array_module(boxes) if xp is None else xp
    a = xp.asarray(as_array(boxes, name, owner))
    if a.ndim == 1 and a.shape[0] == 4:
        a = a[None]
    if a.ndim == 1 and a.shape[0] == 0:      # an empty list: no box
        a = a.reshape(0, 4)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ShapeError(f"{owner}: {name} must have shape (n, 4) = (x1, y1, x2, y2) per row, "
                         f"got shape {tuple(a.shape)}")
    check_finite(a, name, owner, "remove or fix those boxes")
    return a.astype(_float_dtype(a.dtype), copy=False)


def _any_boxes(boxes, name, owner, xp=None):
    """``(..., 4)`` boxes as a floating array of their module, checked like :func:`as_boxes`."""
    xp = array_module(boxes) if xp is None else xp
    b = xp.asarray(as_array(boxes, name, owner))
    if b.ndim == 0 or b.shape[-1] != 4:
        raise ShapeError(f"{owner}: {name} must have shape (..., 4) = (x1, y1, x2, y2) on the "
                         f"last axis, got shape {tuple(b.shape)}")
    check_finite(b, name, owner, "remove or fix those boxes")
    return xp, b.astype(_float_dtype(b.dtype), copy=False)


def _float_dtype(dtype):
    return np.result_type(dtype, np.float32) if np.dtype(dtype).kind in "fc" else np.float64


def corners_to_centers(boxes):
    """``(x1, y1, x2, y2)`` -> ``(cx, cy, w, h)``, on the last axis of ``(..., 4)``."""
    xp, b = _any_boxes(boxes, "boxes", "corners_to_centers")
    x1, y1, x2, y2 = (b[..., k] for k in range(4))
    return xp.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def centers_to_corners(boxes):
    """``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``, on the last axis of ``(..., 4)``."""
    xp, b = _any_boxes(boxes, "boxes", "centers_to_corners")
    cx, cy, w, h = (b[..., k] for k in range(4))
    return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def box_area(boxes):
    """Area ``(x2 - x1) * (y2 - y1)`` of each box of ``(..., 4)``; 0 for an inverted box."""
    xp, b = _any_boxes(boxes, "boxes", "box_area")
    return _area(xp, b)


def _area(xp, b):
    return xp.maximum(b[..., 2] - b[..., 0], 0) * xp.maximum(b[..., 3] - b[..., 1], 0)


def _overlap(xp, a, b):
    """Intersection and union of ``a`` and ``b`` (any broadcastable ``(..., 4)``).

    Coordinates are taken one at a time: an operation over a last axis of length 2 (both
    corners at once) would make NumPy loop over pairs, several times slower.
    """
    w = xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0])
    h = xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1])
    inter = xp.maximum(w, 0) * xp.maximum(h, 0)
    union = _area(xp, a) + _area(xp, b) - inter
    return inter, union


def _ratio(xp, num, den):
    """``num / den``, and 0 where ``den`` is 0 (two empty boxes overlap by nothing)."""
    safe = xp.where(den > 0, den, 1)
    return xp.where(den > 0, num / safe, 0)


def iou(a, b):
    """Element-wise IoU of boxes ``a (..., 4)`` and ``b (..., 4)``, broadcast against each other.

    ``iou(a[:, None], b[None])`` is :func:`box_iou`; ``iou(pred, truth)`` of two ``(n, 4)``
    arrays compares row ``i`` with row ``i``.
    """
    xp = array_module(a, b)
    _, a = _any_boxes(a, "a", "iou", xp)
    _, b = _any_boxes(b, "b", "iou", xp)
    dtype = np.result_type(a.dtype, b.dtype)
    return _iou(xp, a.astype(dtype, copy=False), b.astype(dtype, copy=False))


def _iou(xp, a, b):
    """:func:`iou` without any check, for floating arrays already checked (YOLO, NMS)."""
    inter, union = _overlap(xp, a, b)
    return _ratio(xp, inter, union)


def box_iou(a, b):
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Parameters
    ----------
    a : (n, 4) array
    b : (m, 4) array
        Boxes ``(x1, y1, x2, y2)``; NumPy or CuPy, integer or floating.

    Returns
    -------
    (n, m) floating array, ``|a_i ∩ b_j| / |a_i ∪ b_j|`` in ``[0, 1]`` (0 when both are empty).
    """
    xp = array_module(a, b)
    a, b = as_boxes(a, "a", xp, "box_iou"), as_boxes(b, "b", xp, "box_iou")
    dtype = np.result_type(a.dtype, b.dtype)
    return _iou(xp, a.astype(dtype, copy=False)[:, None, :], b.astype(dtype, copy=False)[None])


def generalized_box_iou(a, b):
    """GIoU of every box of ``a (n, 4)`` with every box of ``b (m, 4)``: ``(n, m)`` in [-1, 1].

    ``GIoU = IoU - (|C| - |A ∪ B|) / |C|``, ``C`` the smallest box enclosing ``A`` and ``B``
    (Rezatofighi et al., 2019).
    """
    xp = array_module(a, b)
    a = as_boxes(a, "a", xp, "generalized_box_iou")[:, None, :]
    b = as_boxes(b, "b", xp, "generalized_box_iou")[None, :, :]
    inter, union = _overlap(xp, a, b)
    hull = _area(xp, _enclosing(xp, a, b))
    return _ratio(xp, inter, union) - _ratio(xp, hull - union, hull)


def distance_box_iou(a, b):
    """DIoU of every box of ``a (n, 4)`` with every box of ``b (m, 4)``: ``(n, m)`` in [-1, 1].

    ``DIoU = IoU - d² / c²``, ``d`` the distance between the two centres and ``c`` the
    diagonal of the smallest enclosing box (Zheng et al., 2020).
    """
    xp = array_module(a, b)
    a = as_boxes(a, "a", xp, "distance_box_iou")[:, None, :]
    b = as_boxes(b, "b", xp, "distance_box_iou")[None, :, :]
    inter, union = _overlap(xp, a, b)
    hull = _enclosing(xp, a, b)
    diagonal2 = (hull[..., 2] - hull[..., 0]) ** 2 + (hull[..., 3] - hull[..., 1]) ** 2
    dx = (a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) / 2
    dy = (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) / 2
    distance2 = dx * dx + dy * dy
    return _ratio(xp, inter, union) - _ratio(xp, distance2, diagonal2)


def _enclosing(xp, a, b):
    return xp.stack([xp.minimum(a[..., 0], b[..., 0]), xp.minimum(a[..., 1], b[..., 1]),
                     xp.maximum(a[..., 2], b[..., 2]), xp.maximum(a[..., 3], b[..., 3])],
                    axis=-1)


giou = generalized_box_iou
diou = distance_box_iou

__all__ = ["corners_to_centers", "centers_to_corners", "box_area", "iou", "box_iou",
           "generalized_box_iou", "distance_box_iou", "giou", "diou", "as_boxes",
           "array_module"]
