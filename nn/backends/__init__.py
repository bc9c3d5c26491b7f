"""Array backends: where arrays live, which dtypes they use, and the kernels layers call.

>>> import nn
>>> B = nn.backends.use("numpy", precision="fp64")   # gradient checks
>>> B.xp.__name__, B.dtype
('numpy', dtype('float64'))
>>> nn.backends.use()                                # back to the default: NumPy, fp32
NumpyBackend(precision='fp32')

Layers never import NumPy or CuPy: they ask ``nn.backends.current()`` for ``xp`` and the
kernels. CuPy is imported only when ``use("cupy")`` is called. Every option of a backend is
an argument of :func:`use` (and of :func:`using`, for a block of code): nothing is switched
by editing a class or module attribute.
"""
from __future__ import annotations

import contextlib

from ..checks import is_device_array
from ..errors import ConfigError
from .base import PRECISIONS, Backend, BackendUnavailableError
from .numpy_backend import NumpyBackend

NAMES = ("numpy", "cupy")

_current: Backend | None = None


def _make(name: str, precision: str, seed, options: dict) -> Backend:
    if name == "numpy":
        return NumpyBackend(precision, seed, **options)
    if name == "cupy":
        if "numba" in options:
            raise ConfigError("the numba option applies to the 'numpy' backend only (the 'cupy' "
                              "backend runs its own CUDA kernels)")
        from .cupy_backend import CupyBackend
        return CupyBackend(precision, seed, **options)
    raise ConfigError(f"unknown backend {name!r}: choose one of {', '.join(map(repr, NAMES))}")


def use(name: str = "numpy", precision: str = "fp32", seed: int | None = None, *,
        workspace_bytes: int | None = None, numba: bool | None = None) -> Backend:
    """Make ``name`` with ``precision`` the current backend and return it.

    Parameters
    ----------
    name : {"numpy", "cupy"}
    precision : {"fp64", "fp32", "mixed"}
        See :mod:`nn.backends.base` for what each policy stores and computes in.
    seed : int or None
        Seeds weight initialisation and dropout.
    workspace_bytes : int, optional
        Bytes of im2col columns a convolution may hold at once (default 256 MiB).
    numba : bool, optional
        NumPy backend only: run col2im and max-pooling as numba kernels (default True; the
        NumPy strided-slice versions otherwise, also used when numba is not installed).

    Raises
    ------
    ConfigError
        Unknown name, precision or option.
    BackendUnavailableError
        ``"cupy"`` without CuPy or without a GPU; the original error is kept as ``__cause__``.
    nn.errors.StateError
        Called while the backend is :func:`locked`, e.g. from a ``fit`` callback.
    """
    global _current
    _check_not_training("use")
    options = {k: v for k, v in (("workspace_bytes", workspace_bytes), ("numba", numba))
               if v is not None}
    _current = _make(name, precision, seed, options)
    return _current


def current() -> Backend:
    """The backend in use (NumPy, fp32 unless :func:`use` said otherwise)."""
    if _current is None:
        use()
    return _current


@contextlib.contextmanager
def using(name=None, precision: str | None = None, seed: int | None = None, **options):
    """Temporarily switch backend: ``with using(precision="fp64"): ...``.

    Omitted arguments keep those of the current backend (options included); the previous
    backend object (with its random state) is restored on exit. ``name`` may also be a
    :class:`Backend` object made beforehand (e.g. a test's instrumented subclass), used as it
    is.
    """
    global _current
    previous = current()
    if isinstance(name, Backend):
        if precision is not None or seed is not None or options:
            raise ConfigError("using: give a Backend object alone, or a name with its options")
        made = name
    else:
        name = name or previous.name
        kept = previous.options() if name == previous.name else {}
        made = _make(name, precision or previous.precision, seed, {**kept, **options})
    _current = made
    try:
        yield made
    finally:
        _current = previous


def to_host(a):
    """``a`` as a NumPy array in host memory, whatever backend made it (a copy from a GPU)."""
    import numpy as np
    return a.get() if is_device_array(a) else np.asarray(a)


def available(name: str) -> bool:
    """True when backend ``name`` can be used on this machine (e.g. CuPy with a GPU)."""
    try:
        _make(name, "fp32", 0, {})
    except BackendUnavailableError:
        return False
    return True


#: why the backend may not change now (set by :func:`locked`, e.g. while ``fit`` trains)
_locks: list[str] = []


@contextlib.contextmanager
def locked(reason: str):
    """While the block runs, :func:`use` refuses to switch backend and says ``reason``.

    ``Network.fit`` trains inside ``locked(...)``: a callback that switched the precision in
    the middle of training would mix dtypes and leave the loss scaling behind.
    """
    _locks.append(reason)
    try:
        yield current()
    finally:
        _locks.pop()


def _check_not_training(what: str) -> None:
    if _locks:
        from ..errors import StateError
        raise StateError(f"nn.{what}() was called {_locks[-1]}; changing the backend or the "
                         "precision there would mix dtypes (and drop loss scaling): call it "
                         "before or after")


__all__ = ["Backend", "BackendUnavailableError", "PRECISIONS", "NAMES", "use", "current",
           "using", "locked", "available", "to_host", "is_device_array"]
