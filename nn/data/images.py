"""Image helpers shared by the image loaders, and the generic image-folder loader.

Images are returned channels first, ``(N, C, H, W)``, float32 in [0, 1] (``dtype=np.uint8``
keeps the stored 0-255 values and takes four times less memory).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, MissingFileError
from ._args import as_path, check_memory
from .download import file_error

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def check_split(owner: str, split: str, allowed=("train", "test")) -> str:
    """``split`` itself, or a :class:`~nn.errors.ConfigError` (a ``ValueError``) listing the
    split names ``owner`` knows."""
    if not isinstance(split, str) or split not in allowed:
        names = " or ".join(repr(s) for s in allowed)
        raise ConfigError(f"{owner}: split must be {names}, got {split!r}; make a validation set "
                          "with nn.data.train_valid_test_split")
    return split


def check_dtype(owner: str, dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype if it is a float type or ``np.uint8``, else a ConfigError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not (dt == np.uint8 or dt.kind == "f") or dtype is None:
        raise ConfigError(f"{owner}: dtype must be a float type such as np.float32 (values in "
                          f"[0, 1]) or np.uint8 (0-255), got {dtype!r}")
    return dt


def as_images(pixels: np.ndarray, dtype=np.float32) -> np.ndarray:
    """uint8 pixels as ``dtype``: floats are scaled to [0, 1], ``np.uint8`` is left as stored."""
    dtype = check_dtype("images", dtype)
    if dtype == np.uint8:
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    images = pixels.astype(dtype)
    images /= dtype.type(255)  # in place: CIFAR's training set is 600 MB in float32
    return images


def image_size(size, owner: str | None = None) -> tuple[int, int]:
    """``size`` (an int, or a ``(height, width)`` pair) as ``(H, W)``."""
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size) \
        if isinstance(size, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in pair):
        raise ConfigError(f"{owner + ': ' if owner else ''}size must be a positive int or a "
                          f"(height, width) pair of positive ints, got {size!r}")
    return int(pair[0]), int(pair[1])


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading images needs Pillow, which comes with matplotlib: "
                          'pip install -e . (or pip install pillow)') from exc
    return Image


def read_image(path, size=None, mode: str = "RGB") -> np.ndarray:
    """One image file as uint8 ``(C, H, W)``, converted to ``mode`` and resized if asked.

    ``mode`` is a Pillow mode: ``"RGB"`` (C = 3) or ``"L"`` (grey levels, C = 1). Resizing
    stretches to ``size`` (no crop) with Pillow's antialiased bilinear filter.
    """
    Image = _pillow()
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None:
                height, width = image_size(size)
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise file_error(path, exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for bad files
        raise DataError(f"cannot read the image {path} ({type(exc).__name__}: {exc}); it is "
                        "damaged or not an image: fix it or remove it") from exc
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def image_folder_classes(path) -> list[str]:
    """Class names of an image folder: its sub-folders, sorted; class id i is item i."""
    path = as_path(path, "path", "image folder")
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:
        raise file_error(path.parent, exc, "look into") from exc
    if not is_dir:
        what = "is a file, not a folder" if exists else "does not exist"
        raise MissingFileError(f"no image folder at {path} (it {what}); give a folder with one "
                               "sub-folder of images per class (e.g. cats/ and dogs/)")
    classes = sorted(p.name for p in _entries(path) if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{path} has no sub-folder; put the images of each class in a "
                        "sub-folder named after the class (e.g. cats/ and dogs/)")
    return classes


def _entries(folder: Path) -> list[Path]:
    """The entries of ``folder``, or an nn error naming it when it cannot be listed."""
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise file_error(folder, exc, "list") from exc


def load_image_folder(path, size, mode: str = "RGB", dtype=np.float32):
    """Images sorted into one sub-folder per class (ASIRRA, Galaxy Zoo cut-outs, your own).

    Parameters
    ----------
    path : str or Path
        A folder such as ``pets/cats/*.jpg`` and ``pets/dogs/*.jpg``. Class ids follow the
        sorted sub-folder names (:func:`image_folder_classes`); hidden files and files
        without an image extension (:data:`IMAGE_EXTENSIONS`) are ignored.
    size : int or (int, int)
        Every image is resized (stretched) to ``size x size`` or ``(height, width)``.
    mode : str
        ``"RGB"`` (C = 3) or ``"L"`` (grey levels, C = 1).
    dtype : float type or np.uint8
        float: values in [0, 1]; ``np.uint8``: the 0-255 values.

    Returns
    -------
    x : (N, C, H, W) array, ordered by class then file name (not shuffled)
    y : (N,) int64 class ids
    """
    path = as_path(path, "path", "load_image_folder")
    height, width = image_size(size, "load_image_folder")
    if not isinstance(mode, str) or mode not in ("RGB", "L"):
        raise ConfigError(f"load_image_folder: mode must be 'RGB' or 'L', got {mode!r}")
    dtype = check_dtype("load_image_folder", dtype)
    files, labels = [], []
    for class_id, name in enumerate(image_folder_classes(path)):
        members = sorted(p for p in _entries(Path(path) / name)
                         if p.is_file() and not p.name.startswith(".")
                         and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not members:
            raise DataError(f"the class folder {Path(path) / name} holds no image (looked for "
                            f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
        files += members
        labels += [class_id] * len(members)
    channels = 3 if mode == "RGB" else 1
    check_memory(len(files) * channels * height * width * (1 + np.dtype(dtype).itemsize),
                 "load_image_folder", f"{len(files)} images of {channels}x{height}x{width}: "
                 "ask for a smaller size, or dtype=np.uint8")
    pixels = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for i, file in enumerate(files):
        pixels[i] = read_image(file, (height, width), mode)
    return as_images(pixels, dtype), np.array(labels, dtype=np.int64)
