"""Where data lives: the bundled tables, the download cache, the system's data packages.

One story, two environment variables:

- ``NN_DATASETS`` moves the whole ``datasets/`` folder (the bundled tables, and by default
  the download cache inside it); default ``<repository>/datasets``.
- ``NN_DATA_DIR`` moves only the download cache (e.g. to a larger disk); default
  ``<datasets folder>/cache``. Files fetched by hand go there too, one sub-folder per
  dataset (``mnist/``, ``fashion-mnist/``, ``cifar10/``, ``voc/``, ``stellar_spectra/``).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError, MissingFileError
from .download import file_error


def datasets_dir() -> Path:
    """The folder of the bundled data files: ``$NN_DATASETS`` or ``<repository>/datasets``."""
    return Path(os.environ.get("NN_DATASETS", Path(__file__).resolve().parents[2] / "datasets"))


def cache_dir(name: str | None = None) -> Path:
    """The download cache ``$NN_DATA_DIR`` (default ``datasets_dir() / "cache"``).

    With ``name``, the sub-folder of that dataset (not created here).
    """
    root = Path(os.environ["NN_DATA_DIR"]) if os.environ.get("NN_DATA_DIR") \
        else datasets_dir() / "cache"
    if name is None:
        return root
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
            or "\\" in name:
        raise ConfigError(f"cache_dir: name must be the plain name of a dataset folder (such "
                          f"as 'mnist'), got {name!r}")
    return root / name


def is_file(path: Path) -> bool:
    """``path.is_file()``, but a folder on the way that cannot be looked into (permissions)
    raises an nn error naming it instead of a bare ``PermissionError``."""
    try:
        return path.is_file()
    except OSError as exc:
        raise file_error(path.parent, exc, "look into") from exc


def bundled(name: str) -> Path:
    """Path of a bundled table, or a :class:`~nn.errors.MissingFileError` (a
    ``FileNotFoundError``) that says how to get it back."""
    path = datasets_dir() / name
    if not is_file(path):
        raise MissingFileError(
            f"bundled data file {path} is missing; it ships with the nn repository: reinstall "
            "from a full checkout (pip install -e .) or point NN_DATASETS at a folder holding it")
    return path
