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
