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


def datasets_dir() -> Path:
    """The folder of the bundled data files: ``$NN_DATASETS`` or ``<repository>/datasets``."""
    return Path(os.environ.get("NN_DATASETS", Path(__file__).resolve().parents[2] / "datasets"))


def cache_dir(name: str | None = None) -> Path:
    """The download cache ``$NN_DATA_DIR`` (default ``datasets_dir() / "cache"``).

    With ``name``, the sub-folder of that dataset (not created here).
    """
    root = Path(os.environ["NN_DATA_DIR"]) if os.environ.get("NN_DATA_DIR") \
        else datasets_dir() / "cache"
    return root if name is None else root / name


def bundled(name: str) -> Path:
    """Path of a bundled table, or a ``FileNotFoundError`` that says how to get it back."""
    path = datasets_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {path} is missing; it ships with the nn repository: reinstall "
            "from a full checkout (pip install -e .) or point NN_DATASETS at a folder holding it")
    return path
