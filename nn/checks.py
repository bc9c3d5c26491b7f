"""Checks of user data, shared by layers, losses, ``fit``, ``predict`` and detection.

NaN policy
==========
nn refuses NaN and inf where data enter it from the user and a check costs little next to
the work that follows: the inputs and targets of ``fit``, ``evaluate`` and ``predict``, the
targets of a loss called directly, the boxes and scores of the detection functions, and the
weights of a model file. The error gives the index of the first bad value. Inside a
training step nothing is checked (it would cost a pass over every activation, and on a GPU a
synchronisation): a loss that becomes NaN stops ``fit`` with :class:`nn.NonFiniteLossError`.

Dtypes
======
Numbers only: floating arrays are used as they are, integer arrays are converted to the
compute dtype where a layer needs floats, Python lists become arrays. Complex numbers (their
imaginary part would be dropped), booleans, strings, dates and Python objects are refused.
"""
from __future__ import annotations

import numpy as np

from .errors import DataError

#: dtype kinds that hold real numbers
NUMERIC = "iuf"
_KIND_NAMES = {"b": "booleans", "c": "complex numbers", "O": "Python objects",
               "S": "bytes", "U": "strings", "V": "raw records", "M": "dates", "m": "durations"}


def is_device_array(a) -> bool:
    """True for a CuPy (or any CUDA) array, without importing CuPy."""
    return hasattr(a, "__cuda_array_interface__")


def as_array(a, name: str, owner: str, kinds: str = NUMERIC):
    """``a`` as an array (a list becomes a NumPy array; device arrays are left alone).

    Raises :class:`~nn.errors.DataError` for a ragged list, or a dtype whose kind is not in
    ``kinds`` (by default real numbers: ints and floats).
    """
    if not is_device_array(a) and not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except ValueError as exc:   # NumPy >= 1.24: a ragged nested list
            raise DataError(f"{owner}: {name} is a ragged list (its rows have different "
                            f"lengths) ({exc}); give a rectangular array") from None
    kind = a.dtype.kind
    if kind not in kinds:
        what = _KIND_NAMES.get(kind, f"dtype {a.dtype}")
        hint = ("encode them as numbers (labels as integer class ids, e.g. with "
                "np.unique(y, return_inverse=True))" if kind in "USO" else
                "take the real part or the magnitude yourself (np.real, np.abs)" if kind == "c"
                else "convert to float, e.g. x.astype(np.float32)")
        raise DataError(f"{owner}: {name} holds {what} (dtype {a.dtype}); nn computes with real "
                        f"numbers: {hint}")
    return a


def first_nonfinite(a):
    """Index (a tuple) of the first NaN or inf of a floating array, or None."""
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    bad = ~np.isfinite(a.get() if is_device_array(a) else a)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(bad.argmax()), a.shape))


def check_finite(a, name: str, owner: str, hint: str = "remove or impute those values"):
    """Raise :class:`~nn.errors.DataError` naming the first NaN/inf of ``a``; return ``a``."""
    where = first_nonfinite(a)
    if where is not None:
        value = float(a[where])
        shown = "NaN" if value != value else ("inf" if value > 0 else "-inf")
        raise DataError(f"{owner}: {name} holds {shown} at index {where} (NaN and inf are "
                        f"refused); {hint}")
    return a


def check_batch(a, name: str, owner: str):
    """Raise :class:`~nn.errors.DataError` when ``a`` has no batch axis or no example."""
    if a.ndim == 0:
        raise DataError(f"{owner}: {name} must be an array with a batch axis first, got a "
                        f"scalar ({a!r})")
    if a.shape[0] == 0:
        raise DataError(f"{owner}: {name} holds no example (its batch axis has length 0, shape "
                        f"{tuple(a.shape)}); give at least one")
    return a


__all__ = ["as_array", "check_finite", "first_nonfinite", "check_batch", "is_device_array",
           "NUMERIC"]
