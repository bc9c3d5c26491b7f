"""Array backends: where arrays live, which dtypes they use, and the kernels layers call.

>>> import nn
>>> B = nn.backends.use("numpy", precision="fp64")   # gradient checks
>>> B.xp.__name__, B.dtype
('numpy', dtype('float64'))
>>> nn.backends.use()                                # back to the default: NumPy, fp32
NumpyBackend(precision='fp32')

Layers never import NumPy or CuPy: they ask ``nn.backends.current()`` for ``xp`` and the
kernels. CuPy is imported only when ``use("cupy")`` is called.
"""
from __future__ import annotations

import contextlib

from ..checks import is_device_array
from .base import PRECISIONS, Backend, BackendUnavailableError
from .loss_scaling import LossScaler
from .numpy_backend import NumpyBackend

NAMES = ("numpy", "cupy")

_current: Backend | None = None


def _make(name: str, precision: str, seed) -> Backend:
    if name == "numpy":
        return NumpyBackend(precision, seed)
    if name == "cupy":
        from .cupy_backend import CupyBackend
        return CupyBackend(precision, seed)
    raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(map(repr, NAMES))}")


def use(name: str = "numpy", precision: str = "fp32", seed: int | None = None) -> Backend:
    """Make ``name`` with ``precision`` the current backend and return it.

    Parameters
    ----------
    name : {"numpy", "cupy"}
    precision : {"fp64", "fp32", "mixed"}
        See :mod:`nn.backends.base` for what each policy stores and computes in.
    seed : int or None
        Seeds weight initialisation and dropout.

    Raises
    ------
    ValueError
        Unknown name or precision.
    BackendUnavailableError
        ``"cupy"`` without CuPy or without a GPU; the original error is kept as ``__cause__``.
    """
    global _current
    _current = _make(name, precision, seed)
    return _current


def current() -> Backend:
    """The backend in use (NumPy, fp32 unless :func:`use` said otherwise)."""
    if _current is None:
        use()
    return _current


@contextlib.contextmanager
def using(name: str | None = None, precision: str | None = None, seed: int | None = None):
    """Temporarily switch backend: ``with using(precision="fp64"): ...``.

    Omitted arguments keep those of the current backend; the previous backend object (with
    its random state) is restored on exit.
    """
    global _current
    previous = current()
    _current = _make(name or previous.name, precision or previous.precision, seed)
    try:
        yield _current
    finally:
        _current = previous


def to_host(a):
    """``a`` as a NumPy array in host memory, whatever backend made it (a copy from a GPU)."""
    import numpy as np
    return a.get() if is_device_array(a) else np.asarray(a)


def available(name: str) -> bool:
    """True when backend ``name`` can be used on this machine (e.g. CuPy with a GPU)."""
    try:
        _make(name, "fp32", 0)
    except BackendUnavailableError:
        return False
    return True


__all__ = ["Backend", "BackendUnavailableError", "LossScaler", "PRECISIONS", "NAMES",
           "use", "current", "using", "available", "to_host", "is_device_array"]
