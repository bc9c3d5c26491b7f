"""Classification metrics and the course's confusion-matrix printout.

The confusion matrix ``M`` has one row per **target** class and one column per
**prediction**: ``M[i, j]`` counts the examples of class ``i`` predicted as ``j``.
Recall of class ``i`` is ``M[i, i] / sum_j M[i, j]`` (its row), precision of class ``j`` is
``M[j, j] / sum_i M[i, j]`` (its column). All functions take host (NumPy) arrays.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import backends
from .checks import as_array, check_finite
from .errors import ConfigError, DataError, ShapeError


def _class_ids(name, a, owner):
    a = as_array(backends.to_host(a) if not isinstance(a, (list, tuple)) else a, name, owner,
                 kinds="iubf")
    check_finite(a, name, owner)
    if a.ndim == 2 and a.shape[1] > 1:  # one-hot rows or scores
        return a.argmax(axis=1)
    if a.ndim > 2 or (a.ndim == 2 and a.shape[1] != 1):
        raise ShapeError(f"{owner}: {name} must be class ids (N,) or one-hot rows (N, C), got "
                         f"shape {a.shape}")
    a = a.reshape(-1)
    if a.dtype.kind in "fb":
        if not np.all(a == np.round(a)):
            raise DataError(f"{owner}: {name} must be integer class ids or one-hot rows, got "
                            f"non-integer values such as {a[a != np.round(a)][0]!r}")
        a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise DataError(f"{owner}: {name} holds a negative class id ({a.min()})")
    return a


def confusion_matrix(targets, predictions, n_classes: int | None = None) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = target class, columns = predicted class.

    ``targets`` and ``predictions`` are class ids ``(N,)`` or one-hot / score rows ``(N, C)``.
    """
    t = _class_ids("targets", targets, "confusion_matrix")
    p = _class_ids("predictions", predictions, "confusion_matrix")
    if t.shape != p.shape:
        raise ShapeError(f"confusion_matrix: {t.size} targets but {p.size} predictions")
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if n_classes is None:
        n_classes = seen
    elif isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
            or n_classes < 1:
        raise ConfigError(f"confusion_matrix: n_classes must be an int >= 1, got {n_classes!r}")
    elif seen > n_classes:
        raise DataError(f"confusion_matrix: class id {seen - 1} does not fit "
                        f"n_classes={n_classes}")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def accuracy(targets, predictions) -> float:
    """Fraction of examples whose predicted class is the target class."""
    t = _class_ids("targets", targets, "accuracy")
    p = _class_ids("predictions", predictions, "accuracy")
    if t.shape != p.shape:
        raise ShapeError(f"accuracy: {t.size} targets but {p.size} predictions")
    return float(np.mean(t == p)) if t.size else float("nan")


def _ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def _square(cm, owner):
    """``cm`` as a square matrix of non-negative counts, or a clear error."""
    cm = as_array(cm, "the confusion matrix", owner)
    check_finite(cm, "the confusion matrix", owner)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ShapeError(f"{owner}: expected a square confusion matrix (C, C), got shape "
                         f"{cm.shape}")
    if cm.size and cm.min() < 0:
        raise DataError(f"{owner}: a confusion matrix holds counts >= 0, got {cm.min()}")
    return cm


def recall(cm) -> np.ndarray:
    """Per-class recall from a confusion matrix (NaN for a class with no example)."""
    cm = _square(cm, "recall")
    return _ratio(np.diag(cm), cm.sum(axis=1))


def precision(cm) -> np.ndarray:
    """Per-class precision from a confusion matrix (NaN for a class never predicted)."""
    cm = _square(cm, "precision")
    return _ratio(np.diag(cm), cm.sum(axis=0))


def accuracy_from_confusion(cm) -> float:
    """Overall accuracy, the trace over the total."""
    cm = _square(cm, "accuracy_from_confusion")
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
    cm = _square(cm, "format_confusion").astype(np.int64)
    c = cm.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ConfigError(f"format_confusion: {len(names)} class names for {c} classes")

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


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features ``(N, D)``.

    With means ``m_a, m_b`` and covariances ``S_a, S_b``::

        d² = |m_a - m_b|² + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)

    the squared Wasserstein-2 distance of the two Gaussians. On the features of a trained
    classifier (Heusel et al.'s FID uses Inception; the course's practicals use their LeNet)
    it measures how far generated images are from real ones: 0 for the same distribution.
    The matrix square roots come from symmetric eigendecompositions (eigenvalues below 0,
    rounding noise, are set to 0).
    """
    a = check_finite(as_array(features_a, "features_a", "frechet_distance"), "features_a",
                     "frechet_distance").astype(np.float64)
    b = check_finite(as_array(features_b, "features_b", "frechet_distance"), "features_b",
                     "frechet_distance").astype(np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(f"frechet_distance: expected two feature arrays (N, D) with the same D, "
                         f"got shapes {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise DataError("frechet_distance: each set needs at least 2 examples to estimate a "
                        "covariance")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, V = np.linalg.eigh(cov_a)
    root_a = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(inner, 0, None)).sum()
    d2 = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(d2, 0.0))


__all__ = ["confusion_matrix", "accuracy", "recall", "precision", "accuracy_from_confusion",
           "format_confusion", "print_confusion", "frechet_distance"]
