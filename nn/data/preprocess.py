"""Normalisation fitted on training data, train/valid/test splits, class rebalancing.

The rule behind the normalisers: statistics come from the **training** data only, and the
same numbers are then applied, unchanged, to the validation and test data and to every new
example at prediction time. Fit once, transform everywhere::

    norm = CenterMaxAbs().fit(x_train)      # the course's normalisation
    x_train, x_test = norm.transform(x_train), norm.transform(x_test)
    norm.save("norm.npz"); same = Normalizer.load("norm.npz")

Bad data are refused with an nn error (:mod:`nn.errors`): NaN or inf given to a normaliser
(``fit`` and ``transform``: the index of the first one), class labels that are NaN,
fractions, strings or empty (splits with ``stratify``, rebalancing). A split does not look at
the values of ``x``, only at their number: splitting data with missing values and then
imputing them from the training part alone is the right order.
"""
from __future__ import annotations

import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from ..checks import as_array, check_finite
from ..errors import ConfigError, DataError, ShapeError, StateError
from ._args import as_path, seed as check_seed, whole
from .download import file_error


def _check_axis(axis, owner: str):
    """``axis`` as given if it is None, an int or a tuple of distinct ints."""
    ok = axis is None or (isinstance(axis, (int, np.integer)) and not isinstance(axis, bool))
    if not ok and isinstance(axis, (tuple, list)):
        ok = all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis) \
            and len(set(int(a) for a in axis)) == len(axis) and len(axis) > 0
    if not ok:
        raise ConfigError(f"{owner}: axis must be None, an int or a tuple of distinct ints "
                          f"(0 for one value per feature of (N, F) data, (0, 2, 3) per channel "
                          f"of (N, C, H, W) images), got {axis!r}")
    return tuple(axis) if isinstance(axis, list) else axis


class Normalizer:
    """``x_norm = (x - shift) / scale``, with ``shift`` and ``scale`` fitted by :meth:`fit`.

    Parameters
    ----------
    axis : int or tuple of ints
        The axes the statistics are taken over: ``0`` gives one value per feature of
        ``(N, F)`` data; ``(0, 2, 3)`` one per channel of ``(N, C, H, W)`` images;
        ``None`` a single value for everything.
    """

    def __init__(self, axis=0):
        self.axis = _check_axis(axis, type(self).__name__)
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _statistics(self, x: np.ndarray):
        """``(shift, scale)`` of the training data (keepdims arrays)."""
        raise NotImplementedError

    def fit(self, x) -> "Normalizer":
        """Take the statistics of the training data ``x``; returns ``self``."""
        owner = f"{type(self).__name__}.fit"
        x = as_array(x, "x", owner)
        if x.ndim == 0:
            raise DataError(f"{owner}: x is a single number ({x.item()!r}), not an array of "
                            "examples; fit on the training data, shape (N, ...)")
        if x.size == 0:
            raise DataError(f"{owner}: x is empty (shape {x.shape}); fit on the training data, "
                            "an array with at least one example")
        axes = (self.axis,) if isinstance(self.axis, (int, np.integer)) else self.axis
        if axes is not None and any(not -x.ndim <= a < x.ndim for a in axes):
            raise ShapeError(f"{owner}: axis={self.axis!r} does not exist for x of shape "
                             f"{x.shape} ({x.ndim} axes); give axes in 0..{x.ndim - 1}")
        if axes is not None and len({a % x.ndim for a in axes}) != len(axes):
            raise ConfigError(f"{owner}: axis={self.axis!r} names the same axis twice for x of "
                              f"shape {x.shape}")
        check_finite(x, "x", owner)
        shift, scale = self._statistics(x.astype(np.float64, copy=False))
        # a constant feature has no spread to divide by: leave its scale at 1
        self.shift, self.scale = shift, np.where(scale > 0, scale, 1.0)
        return self

    def _check(self, x, what):
        owner = f"{type(self).__name__}.{what}"
        if self.shift is None:
            raise StateError(f"{owner}: call fit(x_train) first")
        x = as_array(x, "x", owner)
        fits = x.ndim == self.shift.ndim and all(
            s == 1 or s == n for s, n in zip(self.shift.shape, x.shape))
        if not fits:
            raise ShapeError(f"{owner}: fitted on data of shape "
                             f"(N, {', '.join(map(str, self.shift.shape[1:]))}) with axis="
                             f"{self.axis}, got shape {x.shape}; transform data of the same kind")
        check_finite(x, "x", owner)
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return x, dtype

    def transform(self, x) -> np.ndarray:
        """``(x - shift) / scale`` in the floating dtype of ``x`` (integers give float64)."""
        x, dtype = self._check(x, "transform")
        return ((x - self.shift) / self.scale).astype(dtype, copy=False)

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, x) -> np.ndarray:
        """Back to the original units: ``x * scale + shift``."""
        x, dtype = self._check(x, "inverse_transform")
        return (x * self.scale + self.shift).astype(dtype, copy=False)

    def save(self, path) -> Path:
        """Write the fitted statistics to an ``.npz`` file, atomically (no pickle).

        ``.npz`` is appended when ``path`` has no suffix. Returns the path.
        """
        owner = f"{type(self).__name__}.save"
        if self.shift is None:
            raise StateError(f"{owner}: call fit(x_train) first")
        path = as_path(path, "path", owner)
        if not path.suffix:
            path = path.with_suffix(".npz")
        axis = np.array([] if self.axis is None else np.atleast_1d(self.axis), dtype=np.int64)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            with open(tmp, "xb") as f:
                np.savez(f, kind=np.array(type(self).__name__), axis=axis,
                         axis_is_none=np.array(self.axis is None), shift=self.shift,
                         scale=self.scale)
            os.replace(tmp, path)  # a reader never sees a half-written file
        except OSError as exc:  # the user's path in the message, not our temporary file
            error = file_error(path, exc, "write")
            if isinstance(exc, FileNotFoundError):
                error = file_error(path.parent, exc, "write into")
            raise error from exc
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @staticmethod
    def load(path) -> "Normalizer":
        """A normaliser written by :meth:`save`, ready to transform."""
        path = as_path(path, "path", "Normalizer.load")
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = {"kind", "axis", "axis_is_none", "shift", "scale"} - set(f.files)
                kind = str(f["kind"]) if "kind" in f.files else None
                if missing or kind not in NORMALIZERS:
                    raise DataError(f"{path} was not written by Normalizer.save (missing "
                                    f"{sorted(missing)} or unknown kind {kind!r}); save the "
                                    "fitted normaliser again")
                axis = None if bool(f["axis_is_none"]) else tuple(int(a) for a in f["axis"])
                shift, scale = f["shift"], f["scale"]
        except OSError as exc:
            raise file_error(path, exc) from exc
        except (ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{path} is not a normaliser file written by Normalizer.save "
                            f"({type(exc).__name__}: {exc}); save the fitted normaliser "
                            "again") from exc
        ok = (shift.dtype.kind == "f" and scale.dtype.kind == "f" and shift.shape == scale.shape
              and np.isfinite(shift).all() and np.isfinite(scale).all() and (scale > 0).all())
        if not ok:
            raise DataError(f"{path}: its shift and scale are not finite arrays of one shape "
                            "with a positive scale; the file is damaged, save the normaliser "
                            "again")
        norm = NORMALIZERS[kind](axis=axis[0] if axis is not None and len(axis) == 1 else axis)
        norm.shift, norm.scale = shift, scale
        return norm

    def __repr__(self):
        state = "fitted" if self.shift is not None else "not fitted"
        return f"{type(self).__name__}(axis={self.axis!r}) [{state}]"


class Center(Normalizer):
    """Subtract the training mean: ``x - mean``."""

    def _statistics(self, x):
        mean = x.mean(axis=self.axis, keepdims=True)
        return mean, np.ones_like(mean)


class Standardize(Normalizer):
    """Zero mean, unit variance: ``(x - mean) / std``."""

    def _statistics(self, x):
        return x.mean(axis=self.axis, keepdims=True), x.std(axis=self.axis, keepdims=True)


class MinMax(Normalizer):
    """To [0, 1] on the training data: ``(x - min) / (max - min)``."""

    def _statistics(self, x):
        low = x.min(axis=self.axis, keepdims=True)
        return low, x.max(axis=self.axis, keepdims=True) - low


class CenterMaxAbs(Normalizer):
    """The course's normalisation: ``(x - mean) / max|x - mean|``, to [-1, 1] on training data."""

    def _statistics(self, x):
        mean = x.mean(axis=self.axis, keepdims=True)
        return mean, np.abs(x - mean).max(axis=self.axis, keepdims=True)


NORMALIZERS = {cls.__name__: cls for cls in (Center, Standardize, MinMax, CenterMaxAbs)}


# -- splits ----------------------------------------------------------------------------------
def _class_ids(y, owner: str = "split") -> np.ndarray:
    """``y`` as int64 class ids ``(N,)``: from ids (ints, whole floats, booleans) or one-hot
    rows ``(N, C)``; NaN, fractions, strings and empty labels are refused."""
    y = as_array(y, "y", owner, kinds="iufb")
    if y.ndim == 0 or len(y) == 0:
        raise DataError(f"{owner}: y holds no label (shape {y.shape}); give one class id per "
                        "example")
    if y.dtype.kind == "f":
        check_finite(y, "y", owner, hint="every example needs a class")
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot rows (or scores: the largest wins)
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim != 1:
        hint = "; for one column, pass y.ravel()" if y.ndim == 2 else ""
        raise ShapeError(f"{owner}: stratifying needs class ids (N,) or one-hot rows (N, C), "
                         f"got {y.dtype} {y.shape}{hint}")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(y != np.round(y))
        if len(bad):
            raise DataError(f"{owner}: stratifying needs class ids (N,) or one-hot rows (N, C), "
                            f"got y[{bad[0]}] = {y[bad[0]]}, not a whole number")
    return y.astype(np.int64)


def split_indices(n: int, valid: float = 0.0, test: float = 0.2, seed: int = 0, y=None) -> dict:
    """Sorted example indices of each part, ``{"train", "valid", "test"}``.

    Each part is a random subset (``seed``) of ``round(fraction * n)`` examples; with class
    labels ``y`` it is stratified: the fractions apply to every class, so a rare class
    (the 12 O stars) is found in each part. Parts of fraction 0 are left out.
    """
    n = whole(n, "n (the number of examples)", "split", minimum=1)
    for name, fraction in (("valid", valid), ("test", test)):
        if isinstance(fraction, bool) or not isinstance(
                fraction, (int, float, np.integer, np.floating)) or not 0 <= fraction < 1:
            raise ConfigError(f"split: {name} must be a fraction in [0, 1), got {fraction!r}")
    if valid + test >= 1:
        raise ConfigError(f"split: valid + test = {valid + test:g} leaves no training data; "
                          "make them smaller")
    rng = np.random.default_rng(check_seed(seed, "split"))
    if y is not None:
        ids = _class_ids(y)
        if len(ids) != n:
            raise ShapeError(f"split: y has {len(ids)} labels for {n} examples; give one label "
                             "per example")
    groups = [np.arange(n)] if y is None else [np.flatnonzero(ids == c) for c in np.unique(ids)]
    parts = {"train": [], "valid": [], "test": []}
    for members in groups:
        members = rng.permutation(members)
        n_test = round(test * len(members))
        n_valid = min(round(valid * len(members)), len(members) - n_test)
        parts["test"].append(members[:n_test])
        parts["valid"].append(members[n_test:n_test + n_valid])
        parts["train"].append(members[n_test + n_valid:])
    out = {name: np.sort(np.concatenate(p)).astype(np.int64) for name, p in parts.items()}
    if len(out["train"]) == 0:
        raise DataError(f"split: with {n} examples, valid={valid:g} and test={test:g} leave no "
                        "training example once rounded; give more examples or smaller fractions")
    return {name: idx for name, idx in out.items()
            if name == "train" or {"valid": valid, "test": test}[name] > 0}


def take(a, idx):
    """``a[idx]`` for arrays, a list for lists (the per-image targets of detection data)."""
    return a[idx] if isinstance(a, np.ndarray) else [a[i] for i in idx]


def _length(a, name: str, owner: str) -> int:
    """``len(a)`` for an array or a list of examples, or an nn error saying what ``a`` is."""
    if isinstance(a, (str, bytes, dict)) or (isinstance(a, np.ndarray) and a.ndim == 0):
        raise DataError(f"{owner}: {name} must be an array or a list with one entry per "
                        f"example, got {type(a).__name__}")
    try:
        return len(a)
    except TypeError:
        raise DataError(f"{owner}: {name} must be an array or a list with one entry per "
                        f"example, got {type(a).__name__}") from None


def _examples(a, name: str, owner: str):
    """A list stays a list (detection targets: one dict per image); anything else becomes an
    array (a tuple, a range) that can be indexed by an index array."""
    _length(a, name, owner)
    if isinstance(a, (np.ndarray, list)):
        return a
    try:
        return np.asarray(a)
    except ValueError:  # a tuple of examples of different shapes
        return list(a)


def train_valid_test_split(x, y, valid: float = 0.15, test: float = 0.15, seed: int = 0,
                           stratify: bool = False) -> dict:
    """Split ``(x, y)`` into seeded random parts.

    Parameters
    ----------
    x, y : arrays (or lists, e.g. detection targets) of the same length N
    valid, test : float
        Fractions of the examples in each part (0 leaves the part out).
    stratify : bool
        Keep the class proportions of ``y`` (class ids or one-hot rows) in every part.

    Returns
    -------
    dict ``{"train": (x, y), "valid": (x, y), "test": (x, y)}``
    """
    owner = "train_valid_test_split"
    x, y = _examples(x, "x", owner), _examples(y, "y", owner)
    if len(x) != len(y):
        raise ShapeError(f"{owner}: x has {len(x)} examples but y has {len(y)}; give one label "
                         "per example")
    if len(x) == 0:
        raise DataError(f"{owner}: x and y hold no example; there is nothing to split")
    if not isinstance(stratify, (bool, np.bool_)):
        raise ConfigError(f"{owner}: stratify must be True or False, got {stratify!r}")
    if isinstance(y, np.ndarray) and y.dtype.kind == "f" and not stratify:
        check_finite(y, "y", owner, hint="every example needs its label")
    parts = split_indices(len(x), valid, test, seed, y if stratify else None)
    return {name: (take(x, idx), take(y, idx)) for name, idx in parts.items()}


# -- rebalancing -----------------------------------------------------------------------------
def balanced_indices(y, n_per_class="max", seed: int = 0) -> np.ndarray:
    """Indices that draw ``n_per_class`` examples of every class present in ``y``, shuffled.

    ``n_per_class``: an int, ``"max"`` (oversample the rare classes up to the largest) or
    ``"min"`` (undersample down to the smallest). A class with fewer examples than asked
    repeats each of them ``n // count`` or ``n // count + 1`` times (every example is used,
    none is favoured); a larger class contributes a random subset without repetition.
    """
    ids = _class_ids(y, "rebalance")
    classes, counts = np.unique(ids, return_counts=True)
    if isinstance(n_per_class, str):
        if n_per_class not in ("max", "min"):
            raise ConfigError(f"rebalance: n_per_class must be an int, 'max' or 'min', got "
                              f"{n_per_class!r}")
        n_per_class = int(counts.max() if n_per_class == "max" else counts.min())
    elif isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) \
            or n_per_class < 1:
        raise ConfigError(f"rebalance: n_per_class must be an int >= 1, 'max' or 'min', got "
                          f"{n_per_class!r}")
    rng = np.random.default_rng(check_seed(seed, "rebalance"))
    chosen = []
    for c in classes:
        members = rng.permutation(np.flatnonzero(ids == c))
        repeats, extra = divmod(n_per_class, len(members))
        chosen += [np.tile(members, repeats), members[:extra]]
    return rng.permutation(np.concatenate(chosen)).astype(np.int64)


def rebalance(x, y, n_per_class="max", seed: int = 0):
    """``(x, y)`` resampled to the same number of examples per class (see
    :func:`balanced_indices`); rebalance the training part only, never the test part."""
    x, y = _examples(x, "x", "rebalance"), _examples(y, "y", "rebalance")
    if len(x) != len(y):
        raise ShapeError(f"rebalance: x has {len(x)} examples but y has {len(y)}; give one "
                         "label per example")
    idx = balanced_indices(y, n_per_class, seed)
    return take(x, idx), take(y, idx)
