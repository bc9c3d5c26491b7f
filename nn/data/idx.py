"""The IDX format of MNIST and Fashion-MNIST (gzip-compressed or not).

An IDX file is a header, then the array in big-endian byte order::

    0x00 0x00  type  ndim  |  ndim sizes (uint32, big-endian)  |  data
               0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64

so ``train-images-idx3-ubyte`` is ``0x00000803``, then 60000, 28, 28, then 47 040 000 bytes.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or plain; recognised by content, not name).

    Raises
    ------
    ValueError
        The file is not IDX, or is truncated (the message says to delete and re-fetch it).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == GZIP_MAGIC else open
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path} is not a readable gzip file ({type(exc).__name__}: {exc}); it "
                         "is truncated or corrupt: delete it and load the dataset again") from exc
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (it does not start with 00 00 and a known "
                         "type code); check that it is the dataset file, or delete it and load "
                         "the dataset again")
    dtype, ndim = np.dtype(IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: the IDX header is cut short; the file is truncated, delete it "
                         "and load the dataset again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path} holds {len(data)} bytes but its header announces an array of "
                         f"shape {shape} ({expected} bytes); the file is truncated or corrupt, "
                         "delete it and load the dataset again")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
