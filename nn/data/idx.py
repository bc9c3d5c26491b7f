"""The IDX format of MNIST and Fashion-MNIST (gzip-compressed or not).

An IDX file is a header, then the array in big-endian byte order::

    0x00 0x00  type  ndim  |  ndim sizes (uint32, big-endian)  |  data
               0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64

so ``train-images-idx3-ubyte`` is ``0x00000803``, then 60000, 28, 28, then 47 040 000 bytes.

The header is read first and the size it announces is checked before any array is
allocated: it is computed with Python integers (a product of four uint32 sizes can pass
2**64, where a NumPy int64 product would wrap around, to 0 for instance), refused above
``max_bytes``, and for an uncompressed file compared with the file's length. The data
are then read in chunks, so a damaged gzip stream cannot make ``read_idx`` allocate more
than the bytes it actually holds.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ._args import as_path
from .download import file_error

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
#: the largest array read_idx reads unless told otherwise (MNIST's largest file: 47 MB)
MAX_IDX_BYTES = 1 << 31
CHUNK = 1 << 22


def read_idx(path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or plain; recognised by content, not name).

    Parameters
    ----------
    path : str or Path
    max_bytes : int
        The largest array accepted (default 2 GiB); a header that announces more is
        refused before anything is allocated.

    Raises
    ------
    nn.DataError
        The file is not IDX, is truncated, has bytes left over, or announces an absurd
        size (the message says to delete and re-fetch it). It is a ``ValueError``.
    nn.errors.MissingFileError, nn.errors.FileAccessError
        The file does not exist or cannot be read.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) \
            or max_bytes < 0:
        raise ConfigError(f"read_idx: max_bytes must be an int >= 0, got {max_bytes!r}")
    path = as_path(path, "path", "read_idx")
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == GZIP_MAGIC
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            return _read(f, path, compressed, int(max_bytes))
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({type(exc).__name__}: {exc}); it "
                        "is truncated or corrupt: delete it and load the dataset again") from exc
    except OSError as exc:
        raise file_error(path, exc) from exc


def _read(f, path: Path, compressed: bool, max_bytes: int) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (it does not start with 00 00 and a known "
                        "type code); check that it is the dataset file, or delete it and load "
                        "the dataset again")
    dtype, ndim = np.dtype(IDX_TYPES[head[2]]), head[3]
    sizes = f.read(4 * ndim)
    header = 4 + 4 * ndim
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: the IDX header is cut short; the file is truncated, delete it "
                        "and load the dataset again")
    shape = struct.unpack(f">{ndim}I", sizes)
    n_bytes = math.prod(shape) * dtype.itemsize  # Python ints: never wraps around
    if n_bytes > max_bytes:
        raise DataError(f"{path}: its header announces an array of shape {shape}, "
                        f"{n_bytes:,} bytes, more than the {max_bytes:,} read_idx accepts; the "
                        "file is damaged or not a dataset file: delete it and load the dataset "
                        "again (or pass max_bytes= if you really mean to read that much)")
    if not compressed:
        held = os.fstat(f.fileno()).st_size
        if held != header + n_bytes:
            raise DataError(f"{path} holds {held} bytes but its header announces an array of "
                            f"shape {shape} ({header + n_bytes} bytes with the header); the file "
                            "is truncated or corrupt, delete it and load the dataset again")
    # in chunks, one byte more than announced: the bytes held are what is allocated
    data = bytearray()
    while len(data) <= n_bytes:
        chunk = f.read(min(CHUNK, n_bytes + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) != n_bytes:
        held = "more bytes" if len(data) > n_bytes else f"only {header + len(data)} bytes"
        raise DataError(f"{path} holds {held} (uncompressed) than the {header + n_bytes} its "
                        f"header announces for an array of shape {shape}; the file is "
                        "truncated or corrupt, delete it and load the dataset again")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
