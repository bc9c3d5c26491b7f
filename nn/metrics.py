"""Classification metrics and the course's confusion-matrix printout.

The confusion matrix ``M`` has one row per **target** class and one column per
**prediction**: ``M[i, j]`` counts the examples of class ``i`` predicted as ``j``.
Recall of class ``i`` is ``M[i, i] / sum_j M[i, j]`` (its row), precision of class ``j`` is
``M[j, j] / sum_i M[i, j]`` (its column). All functions take host (NumPy) arrays.
"""
from __future__ import annotations

import numpy as np


def _class_ids(name, a):
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[1] > 1:  # one-hot rows or scores
        return a.argmax(axis=1)
    a = a.reshape(-1)
    if a.dtype.kind == "f":
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name} must be integer class ids or one-hot rows, got "
                             f"non-integer values such as {a[a != np.round(a)][0]!r}")
        a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError(f"{name} holds a negative class id ({a.min()})")
    return a


def confusion_matrix(targets, predictions, n_classes: int | None = None) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = target class, columns = predicted class.

    ``targets`` and ``predictions`` are class ids ``(N,)`` or one-hot / score rows ``(N, C)``.
    """
    t = _class_ids("targets", targets)
    p = _class_ids("predictions", predictions)
    if t.shape != p.shape:
        raise ValueError(f"confusion_matrix: {t.size} targets but {p.size} predictions")
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if n_classes is None:
        n_classes = seen
    elif seen > n_classes:
        raise ValueError(f"confusion_matrix: class id {seen - 1} does not fit n_classes={n_classes}")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def accuracy(targets, predictions) -> float:
    """Fraction of examples whose predicted class is the target class."""
    t = _class_ids("targets", targets)
    p = _class_ids("predictions", predictions)
    if t.shape != p.shape:
        raise ValueError(f"accuracy: {t.size} targets but {p.size} predictions")
    return float(np.mean(t == p)) if t.size else float("nan")


def _ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def recall(cm) -> np.ndarray:
    """Per-class recall from a confusion matrix (NaN for a class with no example)."""
    cm = np.asarray(cm)
    return _ratio(np.diag(cm), cm.sum(axis=1))


def precision(cm) -> np.ndarray:
    """Per-class precision from a confusion matrix (NaN for a class never predicted)."""
    cm = np.asarray(cm)
    return _ratio(np.diag(cm), cm.sum(axis=0))


def accuracy_from_confusion(cm) -> float:
    """Overall accuracy, the trace over the total."""
    cm = np.asarray(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def format_confusion(cm, class_names=None, title: str | None = None) -> str:
    """The course's layout: rows = target, columns = prediction, recall at the end of each
    row, a precision row under the columns, then the overall accuracy.

    >>> print(format_confusion([[5, 1], [0, 4]], ["star", "galaxy"]))
    target \\ predicted    star  galaxy    recall
    star                     5       1    83.3 %
    galaxy                   0       4   100.0 %
    precision          100.0 %  80.0 %
    accuracy: 90.0 %  (9 / 10)
    """
    cm = np.asarray(cm, dtype=np.int64)
    c = cm.shape[0]
    if cm.shape != (c, c):
        raise ValueError(f"format_confusion: expected a square matrix, got shape {cm.shape}")
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"format_confusion: {len(names)} class names for {c} classes")

    def pct(v):
        return "-" if np.isnan(v) else f"{100 * v:.1f} %"

    rec, prec = recall(cm), precision(cm)
    corner = "target \\ predicted"
    left = max(len(corner), len("precision"), *(len(n) for n in names))
    width = max(7, *(len(n) for n in names), len(str(cm.max(initial=0))))
    lines = [] if title is None else [title]
    lines.append(f"{corner:<{left}} " + " ".join(f"{n:>{width}}" for n in names) + f" {'recall':>9}")
    for name, row, r in zip(names, cm, rec):
        lines.append(f"{name:<{left}} " + " ".join(f"{v:>{width}d}" for v in row) + f" {pct(r):>9}")
    lines.append(f"{'precision':<{left}} " + " ".join(f"{pct(p):>{width}}" for p in prec))
    total = int(cm.sum())
    lines.append(f"accuracy: {pct(accuracy_from_confusion(cm))}  ({int(np.trace(cm))} / {total})")
    return "\n".join(lines)


def print_confusion(cm, class_names=None, title: str | None = None) -> None:
    """Print :func:`format_confusion`."""
    print(format_confusion(cm, class_names, title))


__all__ = ["confusion_matrix", "accuracy", "recall", "precision", "accuracy_from_confusion",
           "format_confusion", "print_confusion"]
