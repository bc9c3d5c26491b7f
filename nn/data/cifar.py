"""CIFAR-10 from its binary distribution (``cifar-10-binary.tar.gz``), never its pickles.

Each ``.bin`` file of the archive is a run of 3073-byte records: one label byte (0-9),
then the 32x32 red plane, the green plane and the blue plane (1024 bytes each, row by
row), which is already the channels-first layout ``(3, 32, 32)``. The archive is read in
place with :mod:`tarfile`; a folder ``cifar-10-batches-bin/`` extracted by hand into the
cache works too.
"""
from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import messages
from .download import Resource, fetch, file_error
from .images import as_images, check_dtype, check_split
from .paths import cache_dir, is_file

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# sha256 as registered by TensorFlow Datasets for this file (the page publishes its md5,
# c32a1d4ab5d03f1284b67883e8d87530)
CIFAR10_RESOURCE = Resource(
    "cifar-10-binary.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171)
FOLDER = "cifar-10-batches-bin"
BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
RECORD = 1 + 3 * 32 * 32


def _read_batches(cache: Path, names, progress: bool) -> dict[str, bytes]:
    """The bytes of each batch file: from an extracted folder, else from the archive."""
    folder = cache / FOLDER
    if all(is_file(folder / name) for name in names):
        found = {}
        for name in names:
            try:
                found[name] = (folder / name).read_bytes()
            except OSError as exc:
                raise file_error(folder / name, exc) from exc
        messages.found("CIFAR-10", f"{folder} (extracted by hand, structure checked)")
        return found
    archive = fetch(CIFAR10_RESOURCE, cache, progress)
    found = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # one pass: a .tar.gz has no random access
                name = Path(member.name).name
                if member.isfile() and Path(member.name).parent.name == FOLDER and name in names:
                    found[name] = tar.extractfile(member).read()
    except (PermissionError, IsADirectoryError) as exc:
        raise file_error(archive, exc) from exc
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive} is not a readable .tar.gz ({type(exc).__name__}: {exc}); it "
                        "is truncated or corrupt: delete it and load again") from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"{archive} has no {FOLDER}/{missing[0]}: it is not the CIFAR-10 binary "
                        "archive; delete it and load again")
    messages.found("CIFAR-10", f"{archive} (sha256 checked)")
    return found


def _parse(name: str, data: bytes):
    if len(data) == 0 or len(data) % RECORD:
        raise DataError(f"CIFAR-10 {name}: {len(data)} bytes is not a whole number of "
                        f"{RECORD}-byte records; the file is truncated or corrupt, delete it "
                        "and load again")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    if records[:, 0].max() > 9:
        raise DataError(f"CIFAR-10 {name}: a label byte is above 9; this is not a CIFAR-10 "
                        "batch file (CIFAR-100's records are longer), delete it and load again")
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0]


def load_cifar10(split: str = "train", dtype=np.float32, progress: bool = True):
    """Krizhevsky's CIFAR-10: 32x32 colour images of 10 classes (50 000 train, 10 000 test).

    Downloads ``cifar-10-binary.tar.gz`` (162 MiB) into ``cache_dir("cifar10")`` the first
    time, and reads it in place afterwards.

    Returns
    -------
    x : (N, 3, 32, 32) RGB images, float in [0, 1] (or ``dtype=np.uint8``: 0-255)
    y : (N,) int64 class ids, names in :data:`CIFAR10_CLASSES`
    """
    check_split("load_cifar10", split)
    check_dtype("load_cifar10", dtype)
    names = BATCHES[split]
    batches = _read_batches(cache_dir("cifar10"), names, progress)
    parts = [_parse(name, batches[name]) for name in names]
    pixels = np.concatenate([p for p, _ in parts])
    labels = np.concatenate([t for _, t in parts]).astype(np.int64)
    return as_images(pixels, dtype), labels
