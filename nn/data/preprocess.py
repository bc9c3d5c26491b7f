"""Normalisation fitted on training data, train/valid/test splits, class rebalancing.

The rule behind the normalisers: statistics come from the **training** data only, and the
same numbers are then applied, unchanged, to the validation and test data and to every new
example at prediction time. Fit once, transform everywhere::

    norm = CenterMaxAbs().fit(x_train)      # the course's normalisation
    x_train, x_test = norm.transform(x_train), norm.transform(x_test)
    norm.save("norm.npz"); same = Normalizer.load("norm.npz")
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np


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
        self.axis = axis
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _statistics(self, x: np.ndarray):
        """``(shift, scale)`` of the training data (keepdims arrays)."""
        raise NotImplementedError

    def fit(self, x) -> "Normalizer":
        """Take the statistics of the training data ``x``; returns ``self``."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            raise ValueError(f"{type(self).__name__}.fit: x is empty; fit on the training data")
        if not np.isfinite(x).all():
            raise ValueError(f"{type(self).__name__}.fit: x holds NaN or inf; remove or impute "
                             "those values first")
        shift, scale = self._statistics(x)
        # a constant feature has no spread to divide by: leave its scale at 1
        self.shift, self.scale = shift, np.where(scale > 0, scale, 1.0)
        return self

    def _check(self, x, what):
        if self.shift is None:
            raise ValueError(f"{type(self).__name__}.{what}: call fit(x_train) first")
        x = np.asarray(x)
        fits = x.ndim == self.shift.ndim and all(
            s == 1 or s == n for s, n in zip(self.shift.shape, x.shape))
        if not fits:
            raise ValueError(f"{type(self).__name__}.{what}: fitted on data of shape "
                             f"(N, {', '.join(map(str, self.shift.shape[1:]))}) with axis="
                             f"{self.axis}, got shape {x.shape}; transform data of the same kind")
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
        if self.shift is None:
            raise ValueError(f"{type(self).__name__}.save: call fit(x_train) first")
        path = Path(path)
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
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @staticmethod
    def load(path) -> "Normalizer":
        """A normaliser written by :meth:`save`, ready to transform."""
        with np.load(path, allow_pickle=False) as f:
            missing = {"kind", "axis", "axis_is_none", "shift", "scale"} - set(f.files)
            kind = str(f["kind"]) if "kind" in f.files else None
            if missing or kind not in NORMALIZERS:
                raise ValueError(f"{path} was not written by Normalizer.save (missing "
                                 f"{sorted(missing)} or unknown kind {kind!r}); save the fitted "
                                 "normaliser again")
            axis = None if bool(f["axis_is_none"]) else tuple(int(a) for a in f["axis"])
            norm = NORMALIZERS[kind](axis=axis[0] if axis is not None and len(axis) == 1 else axis)
            norm.shift, norm.scale = f["shift"], f["scale"]
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
def _class_ids(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot rows
        return y.argmax(axis=1)
    if y.ndim != 1 or (y.dtype.kind == "f" and not np.all(y == np.round(y))) or \
            y.dtype.kind not in "iubf":
        raise ValueError(f"stratifying needs class ids (N,) or one-hot rows (N, C), got "
                         f"{y.dtype} {y.shape}")
    return y.astype(np.int64)


def split_indices(n: int, valid: float = 0.0, test: float = 0.2, seed: int = 0, y=None) -> dict:
    """Sorted example indices of each part, ``{"train", "valid", "test"}``.

    Each part is a random subset (``seed``) of ``round(fraction * n)`` examples; with class
    labels ``y`` it is stratified: the fractions apply to every class, so a rare class
    (the 12 O stars) is found in each part. Parts of fraction 0 are left out.
    """
    for name, fraction in (("valid", valid), ("test", test)):
        if not 0 <= fraction < 1:
            raise ValueError(f"split: {name} must be a fraction in [0, 1), got {fraction!r}")
    if valid + test >= 1:
        raise ValueError(f"split: valid + test = {valid + test:g} leaves no training data; "
                         "make them smaller")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if y is None else \
        [np.flatnonzero(ids == c) for ids in [_class_ids(y)] for c in np.unique(ids)]
    parts = {"train": [], "valid": [], "test": []}
    for members in groups:
        members = rng.permutation(members)
        n_test = round(test * len(members))
        n_valid = min(round(valid * len(members)), len(members) - n_test)
        parts["test"].append(members[:n_test])
        parts["valid"].append(members[n_test:n_test + n_valid])
        parts["train"].append(members[n_test + n_valid:])
    out = {name: np.sort(np.concatenate(p)).astype(np.int64) for name, p in parts.items()}
    return {name: idx for name, idx in out.items()
            if name == "train" or {"valid": valid, "test": test}[name] > 0}


def take(a, idx):
    """``a[idx]`` for arrays, a list for lists (the per-image targets of detection data)."""
    return a[idx] if isinstance(a, np.ndarray) else [a[i] for i in idx]


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
    if len(x) != len(y):
        raise ValueError(f"train_valid_test_split: x has {len(x)} examples but y has {len(y)}")
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
    ids = _class_ids(y)
    classes, counts = np.unique(ids, return_counts=True)
    if isinstance(n_per_class, str):
        if n_per_class not in ("max", "min"):
            raise ValueError(f"rebalance: n_per_class must be an int, 'max' or 'min', got "
                             f"{n_per_class!r}")
        n_per_class = int(counts.max() if n_per_class == "max" else counts.min())
    elif isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) \
            or n_per_class < 1:
        raise ValueError(f"rebalance: n_per_class must be an int >= 1, 'max' or 'min', got "
                         f"{n_per_class!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        members = rng.permutation(np.flatnonzero(ids == c))
        repeats, extra = divmod(n_per_class, len(members))
        chosen += [np.tile(members, repeats), members[:extra]]
    return rng.permutation(np.concatenate(chosen)).astype(np.int64)


def rebalance(x, y, n_per_class="max", seed: int = 0):
    """``(x, y)`` resampled to the same number of examples per class (see
    :func:`balanced_indices`); rebalance the training part only, never the test part."""
    if len(x) != len(y):
        raise ValueError(f"rebalance: x has {len(x)} examples but y has {len(y)}")
    idx = balanced_indices(y, n_per_class, seed)
    return take(x, idx), take(y, idx)
