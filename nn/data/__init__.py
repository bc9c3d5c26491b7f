"""Datasets: bundled tables, downloadable image sets, synthetic skies and spectra, and the
tools to prepare them (normalisation, splits, rebalancing, augmentation).

>>> from nn.data import load_iris, one_hot
>>> x, y = load_iris()
>>> x.shape, y.shape, one_hot(y).shape
((150, 4), (150,), (150, 3))

Conventions: loaders return NumPy arrays ``(x, y)`` with ``y`` int64 class ids (or a dict of
splits); images are ``(N, C, H, W)`` float32 in [0, 1]; boxes ``(x1, y1, x2, y2)`` in pixels.
Data files live in ``datasets/`` (``NN_DATASETS``), downloads in ``datasets/cache/``
(``NN_DATA_DIR``); ``datasets/README.md`` lists every dataset with its source and licence.

Modules, by family: ``tables`` (Iris, Pima, Wine), ``download`` (URL + sha256 cache),
``idx`` and ``mnist`` (MNIST, Fashion-MNIST), ``cifar`` (CIFAR-10), ``images`` (image
folders), ``voc`` (PASCAL VOC), ``spectra`` (stellar spectra), ``radio`` (synthetic radio
sky), ``galaxies`` (synthetic galaxies with Galaxy-Zoo-like votes) and ``gz2`` (the Galaxy
Zoo 2 decision tree and catalogue), ``preprocess`` (normalisers, splits, rebalancing),
``augment`` (Albumentations), ``messages`` (the one-line notes on where data come from).
Nothing here imports Pillow or Albumentations until a function needs them.

Every mistake a user can make here raises an :mod:`nn.errors` exception whose message says
what happened and what to do (a bad ``split``, a damaged or missing file, NaN labels...).
"""
from __future__ import annotations

from .augment import Augment, import_albumentations
from .cifar import CIFAR10_CLASSES, load_cifar10
from .download import ChecksumError, DownloadError, Resource, fetch
from .galaxies import GALAXY_PARAMS, make_galaxies
from .gz2 import GALAXY_CLASSES, GZ2_COLUMNS, GZ2_TASKS, load_galaxy_zoo2
from .idx import read_idx
from .images import image_folder_classes, load_image_folder
from .mnist import FASHION_MNIST_CLASSES, MNIST_CLASSES, load_fashion_mnist, load_mnist
from .paths import cache_dir, datasets_dir
from .preprocess import (Center, CenterMaxAbs, MinMax, Normalizer, Standardize,
                         balanced_indices, rebalance, split_indices, train_valid_test_split)
from .radio import RADIO_CLASSES, RADIO_PARAMS, make_radio_sky
from .spectra import (SPECTRAL_TYPES, WAVELENGTHS, load_stellar_spectra,
                      make_stellar_spectra)
from .tables import (IRIS_CLASSES, IRIS_FEATURES, PIMA_CLASSES, PIMA_FEATURES, WINE_CLASSES,
                     WINE_FEATURES, load_iris, load_pima, load_wine, one_hot)
from .voc import VOC_CLASSES, load_voc, parse_voc_annotation

__all__ = [
    # tables
    "load_iris", "load_pima", "load_wine", "one_hot", "IRIS_CLASSES", "IRIS_FEATURES",
    "PIMA_CLASSES", "PIMA_FEATURES", "WINE_CLASSES", "WINE_FEATURES",
    # images
    "load_mnist", "load_fashion_mnist", "load_cifar10", "load_image_folder",
    "image_folder_classes", "load_voc", "parse_voc_annotation", "read_idx",
    "MNIST_CLASSES", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES", "VOC_CLASSES",
    # synthetic and astrophysical
    "load_stellar_spectra", "make_stellar_spectra", "SPECTRAL_TYPES", "WAVELENGTHS",
    "make_radio_sky", "RADIO_CLASSES", "RADIO_PARAMS",
    "make_galaxies", "load_galaxy_zoo2", "GALAXY_CLASSES", "GALAXY_PARAMS", "GZ2_TASKS",
    "GZ2_COLUMNS",
    # preparation
    "Normalizer", "Center", "Standardize", "MinMax", "CenterMaxAbs", "split_indices",
    "train_valid_test_split", "balanced_indices", "rebalance", "Augment",
    "import_albumentations",
    # files
    "datasets_dir", "cache_dir", "fetch", "Resource", "DownloadError", "ChecksumError",
]
