"""Figures for detection: precision-recall curves and boxes drawn over an image.

matplotlib is imported inside the functions, so importing :mod:`nn` never loads it.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .boxes import as_boxes


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    return plt


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def plot_precision_recall(precision, recall, ax=None, label=None, envelope: bool = True):
    """Precision against recall (from :func:`~nn.detection.precision_recall_curve`).

    With ``envelope=True`` the interpolated curve whose area is the AP is drawn too, as a
    step line over the raw curve. Returns the figure (draws into ``ax`` when given).
    """
    precision = np.asarray(precision, float).reshape(-1)
    recall = np.asarray(recall, float).reshape(-1)
    if precision.shape != recall.shape:
        raise ShapeError(f"plot_precision_recall: {precision.size} precisions but {recall.size} "
                         "recalls; give the two arrays of precision_recall_curve")
    fig, ax = _axes(ax, (4.5, 4))
    line, = ax.plot(recall, precision, lw=1, alpha=0.5 if envelope else 1,
                    label=None if envelope else label)
    if envelope:
        r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
        p = np.concatenate([[precision[0] if len(precision) else 0.0], precision, [0.0]])
        p = np.maximum.accumulate(p[::-1])[::-1]
        ax.step(r, p, where="pre", color=line.get_color(), lw=2, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    if label is not None:
        ax.legend(loc="lower left")
    return fig


def plot_detections(image, boxes=None, true_boxes=None, labels=None, ax=None,
                    cmap: str = "gray", title: str | None = None):
    """An image with predicted boxes (solid) and true boxes (dashed) drawn over it.

    Parameters
    ----------
    image : (H, W), (1, H, W) or (3, H, W) array
        Grey levels, or an RGB image channels first (values in [0, 1], or uint8), as
        :func:`nn.data.load_voc` gives them.
    boxes, true_boxes : (n, 4) arrays of ``(x1, y1, x2, y2)`` pixels, optional
    labels : list of str, optional
        One text per predicted box (e.g. class and score).

    Returns the figure. Pixel ``(row j, column i)`` covers ``[i, i+1) x [j, j+1)``, so box
    coordinates land on the pixel edges they name.
    """
    owner = "plot_detections"
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] == 3):
        raise ShapeError(f"{owner}: image must have shape (H, W), (1, H, W) or (3, H, W), got "
                         f"{image.shape}")
    true_boxes = as_boxes(np.zeros((0, 4)) if true_boxes is None else true_boxes, "true_boxes",
                          np, owner)
    boxes = as_boxes(np.zeros((0, 4)) if boxes is None else boxes, "boxes", np, owner)
    if labels is not None and len(labels) != len(boxes):
        raise ShapeError(f"{owner}: {len(boxes)} boxes but {len(labels)} labels; give one label "
                         "per predicted box")
    from matplotlib.patches import Rectangle

    fig, ax = _axes(ax, (5, 5))
    h, w = image.shape[:2]
    ax.imshow(image, cmap=cmap, origin="upper", extent=(0, w, h, 0), interpolation="nearest")
    for b in true_boxes:
        ax.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, ec="tab:green",
                               lw=1.2, ls="--"))
    for k, b in enumerate(boxes):
        ax.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, ec="tab:red", lw=1.2))
        if labels is not None:
            ax.text(b[0], b[1] - 1, labels[k], color="tab:red", fontsize=6, va="bottom")
    ax.set(xlim=(0, w), ylim=(h, 0), title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


__all__ = ["plot_precision_recall", "plot_detections"]
