"""The bundled tables (Iris, Pima Indians Diabetes, Wine) and the one-hot helper.

The CSV files live in ``datasets/`` (see ``datasets/README.md`` for sources and licences);
each loader checks the shape and the class column, so a damaged file fails here, loudly.
"""
from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..errors import ConfigError, DataError, ShapeError
from ._args import shown as _shown
from .download import file_error
from .paths import bundled

IRIS_CLASSES = ("setosa", "versicolor", "virginica")
IRIS_FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                 "petal width (cm)")
PIMA_CLASSES = ("no diabetes", "diabetes")
PIMA_FEATURES = ("pregnancies", "plasma glucose (mg/dl, 2 h)", "diastolic blood pressure (mm Hg)",
                 "triceps skin-fold (mm)", "serum insulin (mu U/ml, 2 h)", "body mass index",
                 "diabetes pedigree", "age (years)")
WINE_CLASSES = ("cultivar 1", "cultivar 2", "cultivar 3")
WINE_FEATURES = ("alcohol", "malic acid", "ash", "alcalinity of ash", "magnesium",
                 "total phenols", "flavanoids", "nonflavanoid phenols", "proanthocyanins",
                 "colour intensity", "hue", "OD280/OD315 of diluted wines", "proline")


def _read_table(name: str, n_rows: int, n_columns: int) -> np.ndarray:
    """The numbers of a bundled CSV (one header line), checked to be ``(n_rows, n_columns)``."""
    path = bundled(name)
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except OSError as exc:
        raise file_error(path, exc) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a table of numbers ({exc}); the file is damaged, "
                        "restore it from the repository") from exc
    if table.shape != (n_rows, n_columns):
        raise DataError(f"{path} should hold {n_rows} rows of {n_columns} numbers, found shape "
                        f"{table.shape}; the file is damaged, restore it from the repository")
    bad = np.argwhere(~np.isfinite(table))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise DataError(f"{path} holds {_shown(table[row, column])} at row {row + 1}, column "
                        f"{column + 1} (NaN and inf are refused); the file is damaged, restore "
                        "it from the repository")
    return table


def _class_ids(name: str, column: np.ndarray, first: int, n_classes: int) -> np.ndarray:
    """The class column as int64 ids ``0 .. n_classes-1`` (the file stores ``first ..``)."""
    ids = column - first
    if not np.all((ids == np.round(ids)) & (ids >= 0) & (ids < n_classes)):
        raise DataError(f"{name}: the class column should hold integers {first}..."
                        f"{first + n_classes - 1}; the file is damaged, restore it from the "
                        "repository")
    return ids.astype(np.int64)


def load_iris():
    """Fisher's Iris table: ``x (150, 4)`` float64 in cm, ``y (150,)`` int64 in {0, 1, 2}.

    Classes: :data:`IRIS_CLASSES`, features: :data:`IRIS_FEATURES`. Rows come in a fixed
    shuffled order (see ``datasets/README.md`` for the source and licence).
    """
    table = _read_table("iris.csv", 150, 5)
    return table[:, :4], _class_ids("iris.csv", table[:, 4], 0, 3)


def load_pima():
    """Pima Indians Diabetes: ``x (768, 8)`` float64, ``y (768,)`` int64, 1 = diabetes.

    500 negative and 268 positive women of Pima heritage, aged 21 or more. Features:
    :data:`PIMA_FEATURES`, in their clinical units. A 0 in glucose, blood pressure,
    skin-fold, insulin or BMI means "not measured": impute or drop those values before
    trusting a model. There is no official split; make one with
    :func:`nn.data.train_valid_test_split`.
    """
    table = _read_table("pima-indians-diabetes.csv", 768, 9)
    return table[:, :8], _class_ids("pima-indians-diabetes.csv", table[:, 8], 0, 2)


def load_wine():
    """The Wine recognition data in the course's exam split.

    Returns
    -------
    dict
        ``{"train": (x, y), "test": (x, y)}`` with ``x (100, 13)`` / ``(78, 13)`` float64
        (the 13 chemical measures of :data:`WINE_FEATURES`) and ``y`` int64 class ids
        0, 1, 2 (the files number the cultivars 1, 2, 3, as the course's files do).

    >>> wine = load_wine()
    >>> x_train, y_train = wine["train"]
    >>> x_test, y_test = wine["test"]
    """
    out = {}
    for split, n_rows in (("train", 100), ("test", 78)):
        name = f"wine_{split}.csv"
        table = _read_table(name, n_rows, 14)
        out[split] = (table[:, 1:], _class_ids(name, table[:, 0], 1, 3))
    return out


def one_hot(y, n_classes: int | None = None, dtype=np.float64) -> np.ndarray:
    """Class ids ``(N,)`` (integers) as one-hot rows ``(N, n_classes)``."""
    y = as_array(y, "y", "one_hot", kinds="iufb")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        hint = ("; for one column, pass y.ravel()" if y.ndim == 2 and y.shape[1:] == (1,) else
                "; convert whole-number floats with y.astype(np.int64)" if y.dtype.kind == "f"
                else "")
        error = ShapeError if y.ndim != 1 else DataError
        raise error(f"one_hot: expected integer class ids of shape (N,), got {y.dtype} "
                    f"{y.shape}{hint}")
    if n_classes is not None and (isinstance(n_classes, bool)
                                  or not isinstance(n_classes, (int, np.integer))
                                  or n_classes < 0):
        raise ConfigError(f"one_hot: n_classes must be an int >= 0 or None, got {n_classes!r}")
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"one_hot: class ids must lie in [0, {n_classes}), got "
                        f"{y.min()}..{y.max()}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "fiu":
        raise ConfigError("one_hot: dtype must be a number type such as np.float32")
    out = np.zeros((y.size, n_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out
