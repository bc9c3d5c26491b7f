"""Datasets: bundled tables (``datasets/`` at the repository root) and helpers.

>>> from nn.data import load_iris, one_hot
>>> x, y = load_iris()
>>> x.shape, y.shape, one_hot(y).shape
((150, 4), (150,), (150, 3))
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IRIS_CLASSES = ("setosa", "versicolor", "virginica")


def datasets_dir() -> Path:
    """The folder of the bundled data files: ``$NN_DATASETS`` or ``<repository>/datasets``."""
    return Path(os.environ.get("NN_DATASETS", Path(__file__).resolve().parents[2] / "datasets"))


def _bundled(name: str) -> Path:
    path = datasets_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {path} is missing; it ships with the nn repository: reinstall "
            "from a full checkout (pip install -e .) or point NN_DATASETS at a folder holding it")
    return path


def load_iris():
    """Fisher's Iris table: ``x (150, 4)`` float64 in cm, ``y (150,)`` int64 in {0, 1, 2}.

    Classes: :data:`IRIS_CLASSES`. Rows come in a fixed shuffled order (see
    ``datasets/README.md`` for the source and licence).
    """
    path = _bundled("iris.csv")
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    if table.shape != (150, 5):
        raise ValueError(f"{path} should hold 150 rows of 5 numbers, found shape {table.shape}; "
                         "the file is damaged, restore it from the repository")
    return table[:, :4], table[:, 4].astype(np.int64)


def one_hot(y, n_classes: int | None = None, dtype=np.float64) -> np.ndarray:
    """Class ids ``(N,)`` as one-hot rows ``(N, n_classes)``."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot: expected integer class ids of shape (N,), got {y.dtype} {y.shape}")
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"one_hot: class ids must lie in [0, {n_classes}), got {y.min()}..{y.max()}")
    out = np.zeros((y.size, n_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out


__all__ = ["load_iris", "one_hot", "datasets_dir", "IRIS_CLASSES"]
