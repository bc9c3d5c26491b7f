"""Object detection: boxes and IoU, non-maximum suppression, average precision, YOLO.

>>> import numpy as np
>>> from nn.detection import box_iou, nms
>>> boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
>>> box_iou(boxes[:1], boxes).round(3)
array([[1.   , 0.681, 0.   ]])
>>> nms(boxes, np.array([0.9, 0.8, 0.7]), iou_threshold=0.5)
array([0, 2])

Boxes are ``(x1, y1, x2, y2)`` in pixels. Modules: ``boxes`` (conversions, IoU, GIoU,
DIoU), ``nms``, ``ap`` (precision-recall, AP, mAP as in the VOC devkit), ``yolo`` (the
YOLO activation, association and loss), ``plot`` (matplotlib figures, loaded lazily).

:class:`YOLOLoss` is the course's loss, equation (14) of the detection chapter: per prior
the channels ``t_x, t_y, t_w, t_h, t_P, t_O``, the classes and the extra parameters;
targets are associated, in order, to the best *predicted* box of their cell still free
(``association="best"``; ``"prior"`` is YOLOv2's rule by prior shape); the matched box
learns its position, size, classes, parameters (weights ``gamma``), ``P = 1`` and
``O = fIoU``; "good but not best" boxes are left out; the others learn ``P = O = 0`` with a
weight per prior (``lambda_void``).

Bad input policy: every function refuses NaN and inf in boxes and scores with a
:class:`~nn.errors.DataError` naming the first bad index, wrong shapes with a
:class:`~nn.errors.ShapeError`, bad options with a :class:`~nn.errors.ConfigError`; AP
refuses a detection whose image id is not among the targets; ``YOLOLoss`` names the image
and the key of a bad target.
"""
from __future__ import annotations

from .ap import average_precision, interpolated_ap, mean_average_precision, precision_recall_curve
from .boxes import (box_area, box_iou, centers_to_corners, corners_to_centers, diou,
                    distance_box_iou, generalized_box_iou, giou, iou)
from .nms import nms
from .plot import plot_detections, plot_precision_recall
from .yolo import Association, YOLOLoss

__all__ = ["corners_to_centers", "centers_to_corners", "box_area", "iou", "box_iou",
           "generalized_box_iou", "giou", "distance_box_iou", "diou", "nms",
           "average_precision", "mean_average_precision", "precision_recall_curve",
           "interpolated_ap", "plot_precision_recall", "plot_detections", "YOLOLoss",
           "Association"]
