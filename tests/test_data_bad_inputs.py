"""Every public function of nn.data given what a new user might give it: each mistake raises
an nn exception (nn.errors) whose message names the problem, and nothing is half-written.

CASES is one row per mistake: (the call, what it should raise, a pattern of its message).
Each row runs in a folder of small files that ``files`` writes (bad IDX headers, damaged
images, a fake download server); nothing touches the network.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import nn.data as D
from nn.data import download, mnist, preprocess
from nn.errors import (ConfigError, DataError, FileAccessError, MissingFileError, NNError,
                       ShapeError, StateError)

X = np.random.default_rng(0).normal(size=(20, 3))
Y = np.array([0, 1] * 10)
X_NAN = X.copy()
X_NAN[4, 2] = np.nan
X_INF = X.copy()
X_INF[1, 0] = np.inf
Y_NAN = Y.astype(float)
Y_NAN[3] = np.nan
BLOB = b"abcdef" * 100
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """A case that would reach for the web fails here instead (file:// URLs still work)."""
    real = urllib.request.urlopen

    def urlopen(request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        if not url.startswith("file:"):
            raise urllib.error.URLError(f"a test tried to reach {url}")
        return real(request, *args, **kwargs)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def idx_header(type_code, *sizes):
    return bytes([0, 0, type_code, len(sizes)]) + struct.pack(f">{len(sizes)}I", *sizes)


def files(tmp: Path) -> Path:
    """The small files the cases read, in ``tmp``."""
    (tmp / "overflow.idx").write_bytes(idx_header(8, *[2**32 - 1] * 4) + b"\0" * 16)
    (tmp / "huge.idx.gz").write_bytes(gzip.compress(idx_header(8, 60000, 2800, 2800)))
    (tmp / "trunc.idx").write_bytes(idx_header(8, 10) + b"\0" * 4)
    (tmp / "extra.idx.gz").write_bytes(gzip.compress(idx_header(8, 2) + b"\0" * 5))
    (tmp / "notidx.gz").write_bytes(gzip.compress(b"PK\x03\x04 a zip, not idx"))
    (tmp / "afile.txt").write_text("x")
    (tmp / "empty").mkdir()
    (tmp / "one" / "cats").mkdir(parents=True)
    (tmp / "two" / "cats").mkdir(parents=True)
    (tmp / "two" / "cats" / "broken.jpg").write_bytes(b"not an image")
    (tmp / "garbage.npz").write_bytes(b"garbage")
    np.savez(tmp / "weights.npz", W=np.zeros(3))
    common = dict(kind=np.array("Standardize"), axis=np.array([0]),
                  axis_is_none=np.array(False), scale=np.array([[1.0]]))
    np.savez(tmp / "nan_norm.npz", shift=np.array([[np.nan]]), **common)
    np.savez(tmp / "object_norm.npz", shift=np.array([None, 1], dtype=object), **common)
    spectra = tmp / "spectra_nan"
    spectra.mkdir()
    row = " ".join(["1.0"] * 3753)
    (spectra / "stellar_spectra.txt").write_text(row + "\n" + row.replace("1.0", "nan", 1) + "\n")
    (spectra / "stellar_spectra_targets.txt").write_text("1 0 0 0 0 0 0\n0 1 0 0 0 0 0\n")
    server = tmp / "server"
    server.mkdir()
    (server / "blob").write_bytes(BLOB)
    (server / "cut").write_bytes(BLOB[:300])       # a truncated copy
    (tmp / "c3").mkdir()
    (tmp / "c3" / "blob").write_bytes(BLOB[:3])    # a truncated file put in the cache by hand
    (tmp / "c4" / "blob").mkdir(parents=True)      # a folder where the file should go
    return tmp


def blob(tmp, name="blob"):
    return D.Resource("blob", ((tmp / "server" / name).as_uri(),), BLOB_SHA)


# (id, call, exception, pattern of the message)
CASES = [
    # -- read_idx ------------------------------------------------------------------------------
    ("read_idx(header whose sizes overflow int64)", lambda t: D.read_idx(t / "overflow.idx"),
     DataError, r"shape \(4294967295, 4294967295, 4294967295, 4294967295\), "
                r"340,282,366,.* bytes, more than the 2,147,483,648"),
    ("read_idx(.gz announcing 470 GB)", lambda t: D.read_idx(t / "huge.idx.gz"),
     DataError, r"470,400,000,000 bytes, more than .* max_bytes="),
    ("read_idx(truncated file)", lambda t: D.read_idx(t / "trunc.idx"),
     DataError, r"holds 12 bytes but its header announces .* truncated"),
    ("read_idx(.gz with bytes left over)", lambda t: D.read_idx(t / "extra.idx.gz"),
     DataError, r"holds more bytes .* than the 10 its header announces"),
    ("read_idx(a gzip that is not IDX)", lambda t: D.read_idx(t / "notidx.gz"),
     DataError, "is not an IDX file"),
    ("read_idx(missing file)", lambda t: D.read_idx(t / "nope.gz"),
     MissingFileError, r"nope\.gz does not exist"),
    ("read_idx(a folder)", lambda t: D.read_idx(t / "empty"),
     FileAccessError, "it is a folder, not a file"),
    ("read_idx(None)", lambda t: D.read_idx(None), ConfigError, "path must be a path"),
    ("read_idx(max_bytes=-1)", lambda t: D.read_idx(t / "trunc.idx", max_bytes=-1),
     ConfigError, "max_bytes must be an int >= 0"),
    # -- image loaders: split, dtype, source -------------------------------------------------
    ("load_mnist('valid')", lambda t: D.load_mnist("valid"),
     ConfigError, "split must be 'train' or 'test', got 'valid'; make a validation set"),
    ("load_mnist(0)", lambda t: D.load_mnist(0), ConfigError, "split must be .*got 0"),
    ("load_mnist(dtype=np.int32)", lambda t: D.load_mnist("train", dtype=np.int32),
     ConfigError, "dtype must be a float type .* or np.uint8"),
    ("load_mnist(dtype='abc')", lambda t: D.load_mnist("train", dtype="abc"),
     ConfigError, "dtype must be .*got 'abc'"),
    ("load_fashion_mnist(source='real')", lambda t: D.load_fashion_mnist(source="real"),
     ConfigError, "source must be 'auto', 'full' or 'sample', got 'real'"),
    ("load_fashion_mnist(['train'])", lambda t: D.load_fashion_mnist(["train"]),
     ConfigError, r"split must be .*got \['train'\]"),
    ("load_fashion_mnist(dtype=complex, source='sample')",
     lambda t: D.load_fashion_mnist("train", dtype=complex, source="sample"),
     ConfigError, "dtype must be"),
    ("load_cifar10('Train')", lambda t: D.load_cifar10("Train"),
     ConfigError, "split must be .*got 'Train'"),
    ("load_cifar10(dtype=bool)", lambda t: D.load_cifar10("train", dtype=bool),
     ConfigError, "dtype must be"),
    # -- image folders -------------------------------------------------------------------------
    ("load_image_folder(missing folder)", lambda t: D.load_image_folder(t / "nope", 32),
     MissingFileError, "no image folder at .*nope .*does not exist.*one sub-folder"),
    ("load_image_folder(a file)", lambda t: D.load_image_folder(t / "afile.txt", 32),
     MissingFileError, "is a file, not a folder"),
    ("load_image_folder(size=0)", lambda t: D.load_image_folder(t, 0),
     ConfigError, "load_image_folder: size must be a positive int .*got 0"),
    ("load_image_folder(size='64')", lambda t: D.load_image_folder(t, "64"),
     ConfigError, "size must be a positive int"),
    ("load_image_folder(size=(32, 32, 3))", lambda t: D.load_image_folder(t, (32, 32, 3)),
     ConfigError, r"\(height, width\) pair"),
    ("load_image_folder(mode='RGBA')", lambda t: D.load_image_folder(t, 32, mode="RGBA"),
     ConfigError, "mode must be 'RGB' or 'L', got 'RGBA'"),
    ("load_image_folder(dtype=np.int16)",
     lambda t: D.load_image_folder(t, 32, dtype=np.int16), ConfigError, "dtype must be"),
    ("load_image_folder(None, 32)", lambda t: D.load_image_folder(None, 32),
     ConfigError, "path must be a path"),
    ("load_image_folder(no sub-folder)", lambda t: D.load_image_folder(t / "empty", 32),
     DataError, "has no sub-folder; put the images of each class"),
    ("load_image_folder(an empty class folder)", lambda t: D.load_image_folder(t / "one", 32),
     DataError, "cats holds no image"),
    ("load_image_folder(a damaged image)", lambda t: D.load_image_folder(t / "two", 32),
     DataError, r"cannot read the image .*broken\.jpg .*fix it or remove it"),
    ("image_folder_classes(missing folder)", lambda t: D.image_folder_classes(t / "nope"),
     MissingFileError, "no image folder"),
    # -- one_hot -----------------------------------------------------------------------------
    ("one_hot(['a', 'b'])", lambda t: D.one_hot(["a", "b"]),
     DataError, r"holds strings .*np\.unique\(y, return_inverse=True\)"),
    ("one_hot([0.5, 1.0])", lambda t: D.one_hot(np.array([0.5, 1.0])),
     DataError, "integer class ids of shape"),
    ("one_hot([[0], [1]])", lambda t: D.one_hot(np.array([[0], [1]])),
     ShapeError, r"pass y\.ravel\(\)"),
    ("one_hot([0, 3], n_classes=3)", lambda t: D.one_hot([0, 3], 3),
     DataError, r"class ids must lie in \[0, 3\), got 0\.\.3"),
    ("one_hot([0, 1], n_classes=2.0)", lambda t: D.one_hot([0, 1], 2.0),
     ConfigError, "n_classes must be an int"),
    ("one_hot([[0, 1], [2]])", lambda t: D.one_hot([[0, 1], [2]]),
     DataError, "ragged list"),
    # -- normalisers -------------------------------------------------------------------------
    ("Standardize(axis='0')", lambda t: D.Standardize(axis="0"),
     ConfigError, "axis must be None, an int or a tuple of distinct ints"),
    ("Standardize(axis=(0, 0))", lambda t: D.Standardize(axis=(0, 0)),
     ConfigError, "tuple of distinct ints"),
    ("Standardize(axis=2).fit(x of shape (20, 3))", lambda t: D.Standardize(axis=2).fit(X),
     ShapeError, r"axis=2 does not exist for x of shape \(20, 3\)"),
    ("Standardize().fit([])", lambda t: D.Standardize().fit([]), DataError, "x is empty"),
    ("Standardize().fit(5.0)", lambda t: D.Standardize().fit(5.0),
     DataError, "a single number"),
    ("Standardize().fit(x with a NaN)", lambda t: D.Standardize().fit(X_NAN),
     DataError, r"holds NaN at index \(4, 2\)"),
    ("MinMax().fit(x with an inf)", lambda t: D.MinMax().fit(X_INF),
     DataError, r"holds inf at index \(1, 0\)"),
    ("Center().fit(strings)", lambda t: D.Center().fit([["a", "b"]]),
     DataError, "holds strings"),
    ("Center().fit(complex numbers)", lambda t: D.Center().fit(np.ones((3, 2)) * 1j),
     DataError, "holds complex numbers"),
    ("Center().fit(a ragged list)", lambda t: D.Center().fit([[1, 2], [3]]),
     DataError, "ragged list"),
    ("Standardize().transform(x) before fit", lambda t: D.Standardize().transform(X),
     StateError, r"call fit\(x_train\) first"),
    ("Standardize().fit(x).transform(x[:, :2])",
     lambda t: D.Standardize().fit(X).transform(X[:, :2]),
     ShapeError, r"fitted on data of shape \(N, 3\) .*got shape \(20, 2\)"),
    ("Standardize().fit(x).transform(x with a NaN)",
     lambda t: D.Standardize().fit(X).transform(X_NAN),
     DataError, r"transform: x holds NaN at index \(4, 2\)"),
    ("Standardize().save(path) before fit", lambda t: D.Standardize().save(t / "n.npz"),
     StateError, r"call fit\(x_train\) first"),
    ("Standardize().fit(x).save(into a missing folder)",
     lambda t: D.Standardize().fit(X).save(t / "no" / "n.npz"),
     MissingFileError, r"no does not exist .*create the folder first"),
    ("Standardize().fit(x).save(None)", lambda t: D.Standardize().fit(X).save(None),
     ConfigError, "path must be a path"),
    ("Normalizer.load(missing file)", lambda t: D.Normalizer.load(t / "missing.npz"),
     MissingFileError, r"missing\.npz does not exist"),
    ("Normalizer.load(a file of garbage)", lambda t: D.Normalizer.load(t / "garbage.npz"),
     DataError, "not a normaliser file written by Normalizer.save"),
    ("Normalizer.load(another .npz)", lambda t: D.Normalizer.load(t / "weights.npz"),
     DataError, "was not written by Normalizer.save"),
    ("Normalizer.load(a NaN shift)", lambda t: D.Normalizer.load(t / "nan_norm.npz"),
     DataError, "not finite arrays"),
    ("Normalizer.load(a pickled object array)",
     lambda t: D.Normalizer.load(t / "object_norm.npz"),
     DataError, "not a normaliser file"),
    # -- splits --------------------------------------------------------------------------------
    ("split_indices(0)", lambda t: D.split_indices(0), ConfigError, "must be an int >= 1"),
    ("split_indices(10.5)", lambda t: D.split_indices(10.5), ConfigError, "got 10.5"),
    ("split_indices(10, test=nan)", lambda t: D.split_indices(10, test=float("nan")),
     ConfigError, r"test must be a fraction in \[0, 1\), got nan"),
    ("split_indices(10, test='0.2')", lambda t: D.split_indices(10, test="0.2"),
     ConfigError, "test must be a fraction"),
    ("split_indices(10, valid=0.5, test=0.5)",
     lambda t: D.split_indices(10, valid=0.5, test=0.5),
     ConfigError, "leaves no training data"),
    ("split_indices(2, valid=0.4, test=0.4)",
     lambda t: D.split_indices(2, valid=0.4, test=0.4),
     DataError, "leave no training example once rounded"),
    ("split_indices(10, seed='abc')", lambda t: D.split_indices(10, seed="abc"),
     ConfigError, "seed must be an int >= 0"),
    ("split_indices(10, y of 9 labels)", lambda t: D.split_indices(10, y=np.zeros(9, int)),
     ShapeError, "y has 9 labels for 10 examples"),
    ("split_indices(3, y=[0.5, 1.5, 2.0])",
     lambda t: D.split_indices(3, y=np.array([0.5, 1.5, 2.0])),
     DataError, r"y\[0\] = 0\.5, not a whole number"),
    ("split_indices(20, y with a NaN)", lambda t: D.split_indices(20, y=Y_NAN),
     DataError, r"y holds NaN at index \(3,\)"),
    ("split_indices(2, y=['cat', 'dog'])", lambda t: D.split_indices(2, y=["cat", "dog"]),
     DataError, "holds strings .*class ids"),
    ("train_valid_test_split(x, y[:-1])", lambda t: D.train_valid_test_split(X, Y[:-1]),
     ShapeError, "x has 20 examples but y has 19"),
    ("train_valid_test_split([], [])", lambda t: D.train_valid_test_split([], []),
     DataError, "hold no example"),
    ("train_valid_test_split(5, y)", lambda t: D.train_valid_test_split(5, Y),
     DataError, "x must be an array or a list .*got int"),
    ("train_valid_test_split(x, 'labels')", lambda t: D.train_valid_test_split(X, "labels"),
     DataError, "y must be an array or a list .*got str"),
    ("train_valid_test_split(x, y with a NaN)",
     lambda t: D.train_valid_test_split(X, Y_NAN), DataError, r"y holds NaN at index \(3,\)"),
    ("train_valid_test_split(x, y, stratify='yes')",
     lambda t: D.train_valid_test_split(X, Y, stratify="yes"),
     ConfigError, "stratify must be True or False"),
    # -- rebalancing -------------------------------------------------------------------------
    ("rebalance(x, y with a NaN)", lambda t: D.rebalance(X, Y_NAN),
     DataError, r"rebalance: y holds NaN at index \(3,\)"),
    ("rebalance(x[:0], y[:0])", lambda t: D.rebalance(X[:0], Y[:0]),
     DataError, "y holds no label"),
    ("rebalance(x, y[:5])", lambda t: D.rebalance(X, Y[:5]),
     ShapeError, "x has 20 examples but y has 5"),
    ("rebalance(x, y, n_per_class=2.5)", lambda t: D.rebalance(X, Y, 2.5),
     ConfigError, "n_per_class must be an int >= 1"),
    ("rebalance(x, y, n_per_class='most')", lambda t: D.rebalance(X, Y, "most"),
     ConfigError, "n_per_class must be an int, 'max' or 'min'"),
    ("rebalance(x, y, seed=None)", lambda t: D.rebalance(X, Y, seed=None),
     ConfigError, "seed must be an int >= 0"),
    ("balanced_indices(y of shape (N, 1))", lambda t: D.balanced_indices(Y[:, None]),
     ShapeError, r"pass y\.ravel\(\)"),
    ("balanced_indices(['a', 'b', 'a'])", lambda t: D.balanced_indices(["a", "b", "a"]),
     DataError, "holds strings"),
    # -- generators ------------------------------------------------------------------------------
    ("make_radio_sky(0)", lambda t: D.make_radio_sky(0),
     ConfigError, "n_images must be an int >= 1, got 0"),
    ("make_radio_sky(2, size=2.5)", lambda t: D.make_radio_sky(2, size=2.5),
     ConfigError, "size must be an int >= 1, got 2.5"),
    ("make_radio_sky(2, flux_range=(5, 1))", lambda t: D.make_radio_sky(2, flux_range=(5, 1)),
     ConfigError, "0 < low < high"),
    ("make_radio_sky(2, flux_range=5)", lambda t: D.make_radio_sky(2, flux_range=5),
     ConfigError, r"flux_range must be a pair \(low, high\)"),
    ("make_radio_sky(2, beam=0)", lambda t: D.make_radio_sky(2, beam=0),
     ConfigError, "beam must be a finite number > 0, got 0"),
    ("make_radio_sky(2, noise=nan)", lambda t: D.make_radio_sky(2, noise=float("nan")),
     ConfigError, "noise must be a finite number >= 0, got nan"),
    ("make_radio_sky(2, flux_index=nan)",
     lambda t: D.make_radio_sky(2, flux_index=float("nan")),
     ConfigError, "flux_index must be a finite number, got nan"),
    ("make_radio_sky(2, sources_per_image=inf)",
     lambda t: D.make_radio_sky(2, sources_per_image=float("inf")),
     ConfigError, "sources_per_image must be a finite number"),
    ("make_radio_sky(2, seed='x')", lambda t: D.make_radio_sky(2, seed="x"),
     ConfigError, "seed must be an int >= 0"),
    ("make_radio_sky(10**6, 4096)", lambda t: D.make_radio_sky(10**6, 4096),
     ConfigError, r"would take 62500\.0 GiB, more than the .* memory available"),
    ("make_stellar_spectra(seed=1.5)", lambda t: D.make_stellar_spectra(seed=1.5),
     ConfigError, "seed must be an int >= 0"),
    ("make_stellar_spectra(counts=(1, 2))", lambda t: D.make_stellar_spectra(counts=(1, 2)),
     ConfigError, r"counts must be 7 integers >= 0 \(O, B, A, F, G, K, M\)"),
    ("make_stellar_spectra(counts=(0,) * 7)",
     lambda t: D.make_stellar_spectra(counts=(0,) * 7), ConfigError, "not all 0"),
    ("make_stellar_spectra(snr=(40, 8))",
     lambda t: D.make_stellar_spectra(counts=(1,) * 7, snr=(40, 8)),
     ConfigError, "snr must be a pair .*0 < low <= high"),
    ("make_stellar_spectra(snr=(-1, 5))",
     lambda t: D.make_stellar_spectra(counts=(1,) * 7, snr=(-1, 5)),
     ConfigError, "snr must be a pair"),
    ("make_stellar_spectra(counts=(10**8,) * 7)",
     lambda t: D.make_stellar_spectra(counts=(10**8,) * 7),
     ConfigError, "GiB, more than the .* memory available"),
    ("load_stellar_spectra('real')", lambda t: D.load_stellar_spectra("real"),
     ConfigError, "source must be 'auto', 'files' or 'synthetic', got 'real'"),
    ("load_stellar_spectra('files', path=an empty folder)",
     lambda t: D.load_stellar_spectra("files", path=t / "empty"),
     MissingFileError, "stellar_spectra.txt and stellar_spectra_targets.txt are not in"),
    ("load_stellar_spectra(path=an empty folder)",
     lambda t: D.load_stellar_spectra(path=t / "empty"),
     MissingFileError, "are not in .*copy them there"),
    ("load_stellar_spectra(seed=-3)", lambda t: D.load_stellar_spectra("synthetic", seed=-3),
     ConfigError, "seed must be an int >= 0"),
    ("load_stellar_spectra(files holding a NaN)",
     lambda t: D.load_stellar_spectra("files", path=t / "spectra_nan"),
     DataError, "holds NaN at row 2, column 1"),
    ("make_galaxies(0)", lambda t: D.make_galaxies(0),
     ConfigError, "n_images must be an int >= 1"),
    ("make_galaxies(10, size=8)", lambda t: D.make_galaxies(10, size=8),
     ConfigError, "size must be an int >= 16, got 8"),
    ("make_galaxies(10, size=64.0)", lambda t: D.make_galaxies(10, size=64.0),
     ConfigError, "size must be an int"),
    ("make_galaxies(10, seed=-1)", lambda t: D.make_galaxies(10, seed=-1),
     ConfigError, "seed must be an int >= 0"),
    ("make_galaxies(10, class_fractions=(1, 1))",
     lambda t: D.make_galaxies(10, class_fractions=(1, 1)),
     ConfigError, r"class_fractions must be 3 numbers >= 0 \(E, S, SB\)"),
    ("make_galaxies(10, class_fractions=(nan, 1, 1))",
     lambda t: D.make_galaxies(10, class_fractions=(float("nan"), 1, 1)),
     ConfigError, "class_fractions must be 3 numbers"),
    ("make_galaxies(10**7)", lambda t: D.make_galaxies(10**7),
     ConfigError, "GiB, more than the .* memory available"),
    ("load_galaxy_zoo2(a missing folder)", lambda t: D.load_galaxy_zoo2(t / "nope"),
     MissingFileError, r"no folder .*gz2_hart16\.csv\.gz .*zenodo"),
    ("load_galaxy_zoo2(an empty folder)", lambda t: D.load_galaxy_zoo2(t / "empty"),
     MissingFileError, "no Galaxy Zoo 2 catalogue in .*training_solutions_rev1.csv"),
    ("load_galaxy_zoo2(size=0)", lambda t: D.load_galaxy_zoo2(t, size=0),
     ConfigError, "load_galaxy_zoo2: size must be a positive int"),
    ("load_galaxy_zoo2(crop=0)", lambda t: D.load_galaxy_zoo2(t, crop=0),
     ConfigError, r"crop must be a finite number in \(0, 1\]"),
    ("load_galaxy_zoo2(n=0)", lambda t: D.load_galaxy_zoo2(t, n=0),
     ConfigError, "n must be an int >= 1"),
    ("load_galaxy_zoo2(answers='raw')", lambda t: D.load_galaxy_zoo2(t, answers="raw"),
     ConfigError, "answers must be 'debiased' or 'weighted_fraction'"),
    # -- files and downloads -------------------------------------------------------------------
    ("Resource(urls=())", lambda t: D.Resource("f.gz", (), "0" * 64),
     ConfigError, "urls must be a non-empty tuple"),
    ("Resource('../f.gz', ...)", lambda t: D.Resource("../f.gz", ("file:///x",), "0" * 64),
     ConfigError, "filename must be a plain file name"),
    ("Resource(sha256='abc')", lambda t: D.Resource("f.gz", ("file:///x",), "abc"),
     ConfigError, "sha256 must be 64 lower-case hex digits"),
    ("fetch('mnist', folder)", lambda t: D.fetch("mnist", t),
     ConfigError, "resource must be an nn.data.Resource"),
    ("fetch(a truncated download)",
     lambda t: D.fetch(blob(t, "cut"), t / "c1", progress=False),
     D.ChecksumError, "every download of blob had the wrong sha256 .*by hand"),
    ("fetch(offline: no URL answers)",
     lambda t: D.fetch(blob(t, "gone"), t / "c2", progress=False),
     D.DownloadError, "could not download blob .*put it at .*NN_DATA_DIR"),
    ("fetch(a truncated file put in the cache)",
     lambda t: D.fetch(blob(t), t / "c3", progress=False),
     D.ChecksumError, "does not have the published sha256 .*delete it"),
    ("fetch(a folder where the file goes)", lambda t: D.fetch(blob(t), t / "c4", progress=False),
     FileAccessError, "is in the way: it should be the file blob, it is a folder"),
    ("fetch(a cache folder that is a file)",
     lambda t: D.fetch(blob(t), t / "afile.txt", progress=False),
     D.DownloadError, "cannot create the cache folder .*NN_DATA_DIR"),
    ("cache_dir('../x')", lambda t: D.cache_dir("../x"),
     ConfigError, "name must be the plain name of a dataset folder"),
]


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_mistake_gets_an_nn_error_that_names_it(tmp_path, monkeypatch, call, error, pattern):
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(error, match=pattern) as info:
        call(files(tmp_path))
    assert isinstance(info.value, NNError)
    assert len(str(info.value).splitlines()) == 1


def test_the_case_ids_are_unique():
    assert len({c[0] for c in CASES}) == len(CASES)


def test_download_errors_are_nn_errors_and_keep_their_builtin_bases():
    assert issubclass(D.DownloadError, NNError) and issubclass(D.DownloadError, OSError)
    assert issubclass(D.ChecksumError, NNError) and issubclass(D.ChecksumError, ValueError)


def test_an_absurd_idx_header_is_refused_before_anything_is_allocated(tmp_path):
    files(tmp_path)
    tracemalloc.start()
    try:
        for name in ("overflow.idx", "huge.idx.gz"):
            with pytest.raises(DataError):
                D.read_idx(tmp_path / name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20   # bytes, not the gigabytes the headers announce


def test_a_damaged_gzip_stream_allocates_only_what_it_holds(tmp_path):
    """A header announcing 1.9 GB inside a gzip of 100 kB: read in chunks, refused."""
    path = tmp_path / "liar.idx.gz"
    path.write_bytes(gzip.compress(idx_header(8, 1000, 1400, 1400) + bytes(100_000)))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="holds only 100016 bytes"):
            D.read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_an_unreadable_cache_folder_is_named(tmp_path, monkeypatch):
    """As a folder without read permission (tests run as root, so the error is injected)."""
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path / "cache"))
    real = Path.is_file

    def is_file(self):
        if "cache" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)
    monkeypatch.setattr(Path, "is_file", is_file)
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIRS", ())
    with pytest.raises(FileAccessError, match=r"cannot look into .*cache.*permission denied"):
        D.load_mnist("test")
    with pytest.raises(FileAccessError, match="permission denied"):
        D.load_fashion_mnist("test", progress=False)   # not hidden behind the sample


def test_a_cache_folder_that_cannot_be_written_is_named_not_blamed_on_the_network(tmp_path,
                                                                                  monkeypatch):
    files(tmp_path)

    def read_only(path, mode="r", *args, **kwargs):
        if "x" in mode or "w" in mode:
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, mode, *args, **kwargs)
    monkeypatch.setattr(download, "open", read_only, raising=False)
    with pytest.raises(FileAccessError, match=r"cannot write into .*c5: permission denied; "
                                              r".*NN_DATA_DIR") as info:
        D.fetch(blob(tmp_path), tmp_path / "c5", progress=False)
    assert "could not download" not in str(info.value)
    assert list((tmp_path / "c5").iterdir()) == []


def test_a_full_disk_during_a_download_leaves_nothing(tmp_path, monkeypatch):
    files(tmp_path)

    class Full(io.BytesIO):
        def write(self, data):
            raise OSError(28, "No space left on device")

    def full_disk(path, mode="r", *args, **kwargs):
        if "x" in mode:
            open(path, mode).close()  # the temporary file exists, as it would
            return Full()
        return open(path, mode, *args, **kwargs)
    monkeypatch.setattr(download, "open", full_disk, raising=False)
    with pytest.raises(FileAccessError, match="No space left on device"):
        D.fetch(blob(tmp_path), tmp_path / "c6", progress=False)
    assert list((tmp_path / "c6").iterdir()) == []   # the temporary file is gone


def test_saving_a_normaliser_into_a_read_only_folder_names_the_users_path(tmp_path,
                                                                          monkeypatch):
    def read_only(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(preprocess, "open", read_only, raising=False)
    with pytest.raises(FileAccessError) as info:
        D.Standardize().fit(X).save(tmp_path / "norm.npz")
    message = str(info.value)
    assert str(tmp_path / "norm.npz") in message and ".tmp" not in message
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_normaliser_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = D.Standardize().fit(X).save(tmp_path / "norm.npz")
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(preprocess.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        D.MinMax().fit(X).save(path)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_a_truncated_archive_is_refused_and_leaves_no_folder(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("top/file.txt")
        info.size = 5000
        tar.addfile(info, io.BytesIO(bytes(5000)))
    archive.write_bytes(archive.read_bytes()[:1200])
    with pytest.raises(DataError, match="truncated or corrupt"):
        download.extract_tar(archive, tmp_path / "out", "top")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_archive_member_outside_the_folder_is_refused_by_name(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"!"))
    with pytest.raises(DataError, match="refusing a member that would land outside"):
        download.extract_tar(archive, tmp_path / "out", "top")
    assert not (tmp_path / "escaped.txt").exists()


def test_damaged_bundled_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    with pytest.raises(MissingFileError, match=r"iris\.csv is missing.*NN_DATASETS"):
        D.load_iris()
    x, y = np.loadtxt(Path(D.__file__).parents[2] / "datasets" / "iris.csv", delimiter=",",
                      skiprows=1)[:, :4], np.zeros(150)
    rows = [",".join(f"{v:g}" for v in (*r, c)) for r, c in zip(x, y)]
    rows[7] = rows[7].replace(rows[7].split(",")[2], "nan", 1)
    (tmp_path / "iris.csv").write_text("a,b,c,d,class\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="holds NaN at row 8, column 3"):
        D.load_iris()
    (tmp_path / "iris.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a table of numbers"):
        D.load_iris()


def test_damaged_dataset_files_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path))
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(D.ChecksumError, match="published sha256"):
        D.load_mnist("test")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_header(8, 10, 28, 28) + bytes(100))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_header(8, 10) + bytes(10))
    with pytest.raises(DataError, match="truncated"):
        D.load_mnist("test")
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_header(8, 2, 28, 28) + bytes(2 * 784))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_header(8, 3) + bytes(3))
    with pytest.raises(DataError, match="one per image"):
        D.load_mnist("test")
    batches = tmp_path / "cifar10" / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    (batches / "test_batch.bin").write_bytes(bytes(3073 * 2 + 7))
    with pytest.raises(DataError, match="not a whole number of 3073-byte records"):
        D.load_cifar10("test")


def test_the_sample_stands_in_only_for_an_unreachable_set(tmp_path, monkeypatch):
    """A corrupt file is the user's to fix: it is reported, not hidden behind the sample."""
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIRS", ())
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not the file")
    with pytest.raises(D.ChecksumError):
        D.load_fashion_mnist("test", progress=False)
