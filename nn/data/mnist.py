"""MNIST and Fashion-MNIST: 28x28 grey-level images of 10 classes, in the IDX format.

Where the files are looked for, in order:

1. the system folders (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist/``, installed by
   Debian's ``dataset-fashion-mnist`` package), trusted as installed by the package manager;
2. the cache folder (``cache_dir("mnist")`` or ``cache_dir("fashion-mnist")``), where a
   ``.gz`` file is checked against its sha256 and an uncompressed file (as a user may have
   extracted it) is only checked for its IDX structure;
3. the web, into the cache (:func:`nn.data.download.fetch`).

The sha256 values are those registered for these exact files (same names and byte sizes as
the original distributions) by TensorFlow Datasets; the mirrors serve identical bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import messages
from .download import DownloadError, Resource, fetch
from .idx import read_idx
from .images import as_images, check_dtype, check_split
from .paths import bundled, cache_dir, is_file

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal",
                         "shirt", "sneaker", "bag", "ankle boot")

FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION_MIRRORS = ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")


def _resources(mirrors, table):
    return {name: Resource(name, tuple(m + name for m in mirrors), sha256, size)
            for name, (sha256, size) in table.items()}


MNIST_RESOURCES = _resources(_MNIST_MIRRORS, {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
})
FASHION_MNIST_RESOURCES = _resources(_FASHION_MIRRORS, {
    "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
})
# Debian's dataset-fashion-mnist re-compressed the files (other bytes, same content), so
# they are not checked against the sha256 of the downloads
SAMPLE_FILE = "fashion-mnist-sample.npz"
FASHION_MNIST_SYSTEM_DIRS_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_SYSTEM_DIRS = (FASHION_MNIST_SYSTEM_DIRS_DEBIAN,)


def _locate(resource: Resource, cache: Path, system_dirs, progress: bool):
    """The file of ``resource`` and where it came from: system copy, cached copy (gzip or
    not), else downloaded."""
    plain = resource.filename.removesuffix(".gz")
    for folder in system_dirs:
        for name in (resource.filename, plain):
            if is_file(folder / name):
                return folder / name, "system"
    if is_file(cache / plain) and not is_file(cache / resource.filename):
        return cache / plain, "plain"  # extracted by hand: read_idx still checks its structure
    return fetch(resource, cache, progress), "cache"


ORIGINS = {"system": "system package", "plain": "uncompressed files, structure checked",
           "cache": "sha256 checked"}


def _load(owner, name, split, resources, cache, system_dirs, dtype, progress):
    check_split(owner, split)
    check_dtype(owner, dtype)
    image_file, label_file = FILES[split]
    image_path, origin = _locate(resources[image_file], cache, system_dirs, progress)
    label_path, _ = _locate(resources[label_file], cache, system_dirs, progress)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{owner}: the {split} images should be uint8 images of 28x28, the "
                        f"file {image_path} holds {images.dtype} {images.shape}; it is not the "
                        "right file: delete it and load again")
    if labels.shape != (len(images),) or labels.dtype != np.uint8 or labels.max(initial=0) > 9:
        raise DataError(f"{owner}: the {split} labels should be {len(images)} digits 0-9 (one "
                        f"per image), the file {label_path} holds {labels.dtype} "
                        f"{labels.shape}; it is not the right file: delete it and load again")
    if origin == "system" and image_path.parent == FASHION_MNIST_SYSTEM_DIRS_DEBIAN:
        where = f"{image_path.parent} (Debian package dataset-fashion-mnist)"
    else:
        where = f"{image_path.parent} ({ORIGINS[origin]})"
    messages.found(name, where)
    return as_images(images[:, None], dtype), labels.astype(np.int64)


def load_mnist(split: str = "train", dtype=np.float32, progress: bool = True):
    """LeCun, Cortes and Burges' handwritten digits (60 000 train, 10 000 test).

    Parameters
    ----------
    split : "train" or "test"
    dtype : float type (values in [0, 1]) or np.uint8 (0-255)
    progress : bool
        Show a progress bar while downloading (about 11 MB in all).

    Returns
    -------
    x : (N, 1, 28, 28) images, white digit on black
    y : (N,) int64 digits 0-9
    """
    return _load("load_mnist", "MNIST", split, MNIST_RESOURCES, cache_dir("mnist"), (), dtype,
                 progress)


def load_fashion_mnist(split: str = "train", dtype=np.float32, progress: bool = True,
                       source: str = "auto"):
    """Zalando's Fashion-MNIST: 28x28 images of 10 kinds of clothing, MNIST's format.

    Looks first in ``/usr/share/datasets/fashion-mnist/`` (``sudo apt-get install
    dataset-fashion-mnist`` on Debian/Ubuntu), then in the cache, then downloads (30 MB).

    Parameters
    ----------
    split : "train" or "test"
    dtype : float type (values in [0, 1]) or np.uint8 (0-255)
    progress : bool
        Show a progress bar while downloading.
    source : "auto", "full" or "sample"
        ``"full"``: the whole set (an error if it can be neither found nor downloaded);
        ``"sample"``: the subset bundled with nn (``datasets/fashion-mnist-sample.npz``: the
        first 200 training and 100 test images of every class, in the files' order), for
        tests and machines without the data; ``"auto"``: the whole set when it can be had,
        else the sample. Either way one line, once per process, on the logger ``"nn.data"``
        says what is used: where the whole set was found, or that the sample stands in for
        it and how to get the whole set (:mod:`nn.data.messages`).

    Returns
    -------
    x : (N, 1, 28, 28) images (60 000 train and 10 000 test; the sample: 2 000 and 1 000)
    y : (N,) int64 class ids, names in :data:`FASHION_MNIST_CLASSES`
    """
    if not isinstance(source, str) or source not in ("auto", "full", "sample"):
        raise ConfigError(f"load_fashion_mnist: source must be 'auto', 'full' or 'sample', "
                          f"got {source!r}")
    check_split("load_fashion_mnist", split)
    check_dtype("load_fashion_mnist", dtype)
    if source == "sample":
        return _load_sample("load_fashion_mnist", split, dtype)
    try:
        return _load("load_fashion_mnist", "Fashion-MNIST", split, FASHION_MNIST_RESOURCES,
                     cache_dir("fashion-mnist"), FASHION_MNIST_SYSTEM_DIRS, dtype, progress)
    except DownloadError as exc:
        if source == "full":
            raise
        messages.logger.debug("Fashion-MNIST: the whole set could not be had: %s", exc)
        messages.standing_in(
            "Fashion-MNIST", f"using the sample bundled with nn ({SAMPLE_FILE}: 2 000 train, "
            "1 000 test images); for the whole set: sudo apt-get install "
            "dataset-fashion-mnist, or run once online (source='full' says what failed)")
        return _load_sample("load_fashion_mnist", split, dtype)


def _load_sample(owner, split, dtype):
    check_split(owner, split)
    path = bundled(SAMPLE_FILE)
    keys = (f"x_{split}", f"y_{split}")
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = data[keys[0]], data[keys[1]]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{owner}: the bundled sample {path} cannot be read ({type(exc).__name__}"
                        f": {exc}); it is damaged: restore it from the repository (git checkout "
                        f"-- datasets/{SAMPLE_FILE})") from exc
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) \
            or labels.shape != (len(images),):
        raise DataError(f"{owner}: the bundled sample {path} holds {images.dtype} "
                        f"{images.shape} images and {labels.shape} labels, not uint8 28x28 "
                        f"images with one label each; restore it from the repository")
    return as_images(images[:, None], dtype), labels.astype(np.int64)
