"""Checks of the arguments of the data functions (one message style for all of them)."""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import ConfigError


def whole(value, name: str, owner: str, minimum: int = 0) -> int:
    """``value`` as an int if it is a whole number ``>= minimum`` (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def number(value, name: str, owner: str, low=None, high=None, low_open=False,
           high_open=False) -> float:
    """``value`` as a finite float in ``[low, high]`` (an open end with ``*_open``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    v = float(value) if ok else math.nan
    ok = ok and math.isfinite(v) and (
        (low is None or (v > low if low_open else v >= low))
        and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        if low is not None and high is not None:
            where = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            where = f" {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            where = f" {'<' if high_open else '<='} {high:g}"
        else:
            where = ""
        raise ConfigError(f"{owner}: {name} must be a finite number{where}, got {value!r}")
    return v


def pair(value, name: str, owner: str, low=None, strict: bool = False) -> tuple[float, float]:
    """``(a, b)`` of finite numbers with ``a <= b`` (``a < b`` if ``strict``) and ``low < a``."""
    try:
        a, b = value
        a, b = number(a, name, owner), number(b, name, owner)
    except (TypeError, ValueError):
        a = b = None
    if a is None or a > b or (strict and a == b) or (low is not None and a <= low):
        bound = "" if low is None else f"{low:g} < "
        raise ConfigError(f"{owner}: {name} must be a pair (low, high) of finite numbers with "
                          f"{bound}low {'<' if strict else '<='} high, got {value!r}")
    return a, b


def seed(value, owner: str) -> int:
    """A seed: an int >= 0 (what NumPy's generators take), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{owner}: seed must be an int >= 0 (same seed, same data), got "
                          f"{value!r}")
    return int(value)


def available_memory() -> int | None:
    """Bytes of memory available now (Linux: ``MemAvailable``; elsewhere the physical
    memory), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - other systems
        return None


def check_memory(n_bytes: int, owner: str, hint: str) -> None:
    """Refuse, before allocating, an output larger than the memory available."""
    free = available_memory()
    if free is not None and n_bytes > free:
        raise ConfigError(f"{owner}: the result would take {n_bytes / 2**30:.1f} GiB, more than "
                          f"the {free / 2**30:.1f} GiB of memory available; {hint}")


def as_path(value, name: str, owner: str):
    """``value`` as a :class:`pathlib.Path` (a str or an ``os.PathLike``), else a ConfigError."""
    from pathlib import Path
    if isinstance(value, (str, os.PathLike)) and str(value) != "":
        return Path(value)
    raise ConfigError(f"{owner}: {name} must be a path (a str or a pathlib.Path), got {value!r}")


def shown(value) -> str:
    """A bad number as a message shows it: ``NaN``, ``inf``, ``-inf`` (as nn.checks does)."""
    v = float(value)
    return "NaN" if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}")
