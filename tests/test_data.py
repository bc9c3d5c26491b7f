"""Bundled tables, the one-hot helper, the data folders and the download cache."""
from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nn.data import (IRIS_CLASSES, PIMA_CLASSES, PIMA_FEATURES, WINE_CLASSES, WINE_FEATURES,
                     ChecksumError, DownloadError, Resource, cache_dir, datasets_dir, fetch,
                     load_iris, load_pima, load_wine, one_hot)
from nn.data import download
from nn.data.download import extract_tar


# -- Iris ------------------------------------------------------------------------------------
def test_load_iris_shapes_and_dtypes():
    x, y = load_iris()
    assert x.shape == (150, 4) and y.shape == (150,)
    assert x.dtype == np.float64 and y.dtype == np.int64


def test_load_iris_has_50_examples_of_each_class():
    _, y = load_iris()
    assert set(np.unique(y)) == {0, 1, 2}
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50])
    assert len(IRIS_CLASSES) == 3


def test_load_iris_values_are_plausible_lengths_in_cm():
    x, y = load_iris()
    # Fisher's table: sepal length 4.3-7.9, sepal width 2.0-4.4, petal length 1.0-6.9,
    # petal width 0.1-2.5 cm
    np.testing.assert_allclose(x.min(axis=0), [4.3, 2.0, 1.0, 0.1])
    np.testing.assert_allclose(x.max(axis=0), [7.9, 4.4, 6.9, 2.5])
    # setosa (class 0) has by far the shortest petals
    assert x[y == 0, 2].max() < x[y != 0, 2].min()


def test_load_iris_rows_are_not_sorted_by_class():
    _, y = load_iris()
    assert not np.all(np.diff(y) >= 0)


def test_missing_iris_file_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    assert datasets_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="iris.csv") as info:
        load_iris()
    assert "NN_DATASETS" in str(info.value) and "pip install -e ." in str(info.value)


def test_damaged_iris_file_raises_value_error(monkeypatch, tmp_path):
    x, _ = load_iris()
    rows = "\n".join(",".join(f"{v:g}" for v in row) for row in x)  # the class column lost
    (tmp_path / "iris.csv").write_text("a,b,c,d\n" + rows + "\n")
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    with pytest.raises(ValueError, match=r"damaged.*\(150, 4\)"):
        load_iris()


def test_truncated_iris_file_raises_value_error(monkeypatch, tmp_path):
    x, y = load_iris()
    rows = "\n".join(",".join(f"{v:g}" for v in [*row, t]) for row, t in zip(x[:100], y[:100]))
    (tmp_path / "iris.csv").write_text("a,b,c,d,class\n" + rows + "\n")
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    with pytest.raises(ValueError, match="150 rows"):
        load_iris()


# -- one-hot ---------------------------------------------------------------------------------
def test_one_hot_values():
    out = one_hot(np.array([2, 0, 1, 0]))
    np.testing.assert_array_equal(out, [[0, 0, 1],
                                        [1, 0, 0],
                                        [0, 1, 0],
                                        [1, 0, 0]])
    assert out.dtype == np.float64


def test_one_hot_with_more_classes_and_a_dtype():
    out = one_hot(np.array([1, 0]), n_classes=4, dtype=np.float32)
    assert out.shape == (2, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 1, 0, 0], [1, 0, 0, 0]])


def test_one_hot_round_trips_through_argmax():
    _, y = load_iris()
    np.testing.assert_array_equal(one_hot(y).argmax(axis=1), y)


@pytest.mark.parametrize("ids, n_classes", [
    ([0, 3], 3),     # id 3 does not fit 3 classes
    ([0, -1], 3),    # negative id
])
def test_one_hot_rejects_ids_out_of_range(ids, n_classes):
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(np.array(ids), n_classes)


@pytest.mark.parametrize("ids", [
    np.array([0.0, 1.0]),          # floats, even integer-valued
    np.array([True, False]),
    np.array([[0, 1], [1, 0]]),    # 2-D (already one-hot?)
])
def test_one_hot_rejects_non_integer_or_2d_input(ids):
    with pytest.raises(ValueError, match=r"integer class ids of shape \(N,\)"):
        one_hot(ids)


# -- Pima and Wine -----------------------------------------------------------------------------
def test_load_pima_shapes_counts_and_units():
    x, y = load_pima()
    assert x.shape == (768, 8) and y.shape == (768,)
    assert x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [500, 268])
    assert len(PIMA_FEATURES) == 8 and len(PIMA_CLASSES) == 2
    # the first record of the UCI file: 6 pregnancies, glucose 148, ..., age 50, diabetic
    np.testing.assert_allclose(x[0], [6, 148, 72, 35, 0, 33.6, 0.627, 50])
    assert y[0] == 1
    assert 21 <= x[:, 7].min() and x[:, 7].max() <= 81  # ages of the study


def test_load_wine_is_the_course_exam_split_with_0_based_classes():
    wine = load_wine()
    assert set(wine) == {"train", "test"}
    (x_train, y_train), (x_test, y_test) = wine["train"], wine["test"]
    assert x_train.shape == (100, 13) and x_test.shape == (78, 13)
    assert y_train.dtype == np.int64 and x_train.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(y_train), [30, 40, 30])
    np.testing.assert_array_equal(np.bincount(y_test), [29, 31, 18])
    assert len(WINE_FEATURES) == 13 and len(WINE_CLASSES) == 3
    # first training row of the course's file: class 1, alcohol 14.23, ..., proline 1065
    assert y_train[0] == 0
    np.testing.assert_allclose(x_train[0, [0, 8, 12]], [14.23, 2.29, 1065])


@pytest.mark.parametrize("name, loader", [("pima-indians-diabetes.csv", load_pima),
                                          ("wine_train.csv", load_wine)])
def test_missing_table_names_the_file_and_the_fix(monkeypatch, tmp_path, name, loader):
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=name):
        loader()


def test_wine_file_with_a_bad_class_raises(monkeypatch, tmp_path):
    for split in ("train", "test"):
        text = (datasets_dir() / f"wine_{split}.csv").read_text()
        (tmp_path / f"wine_{split}.csv").write_text(text)
    lines = (tmp_path / "wine_test.csv").read_text().splitlines()
    lines[1] = "4" + lines[1][1:]  # cultivar 4 does not exist
    (tmp_path / "wine_test.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    with pytest.raises(ValueError, match=r"class column should hold integers 1\.\.\.3"):
        load_wine()


def test_table_with_text_in_it_raises_value_error(monkeypatch, tmp_path):
    (tmp_path / "pima-indians-diabetes.csv").write_text("a,b\n1,oops\n")
    monkeypatch.setenv("NN_DATASETS", str(tmp_path))
    with pytest.raises(ValueError, match="not a table of numbers"):
        load_pima()


# -- paths -------------------------------------------------------------------------------------
def test_cache_dir_follows_nn_datasets_then_nn_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("NN_DATA_DIR", raising=False)
    monkeypatch.setenv("NN_DATASETS", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data" / "cache"
    assert cache_dir("mnist") == tmp_path / "data" / "cache" / "mnist"
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path / "scratch"))
    assert cache_dir("mnist") == tmp_path / "scratch" / "mnist"
    assert datasets_dir() == tmp_path / "data"  # the bundled tables do not move with the cache


def test_the_default_cache_is_git_ignored():
    root = Path(__file__).resolve().parents[1]
    assert "datasets/cache/" in (root / ".gitignore").read_text().splitlines()


# -- downloads (file:// URLs: no test touches the network) ------------------------------------
def _resource(tmp_path, payload: bytes, name="blob.bin", sha256=None, n_urls=1):
    source = tmp_path / "server"
    source.mkdir(exist_ok=True)
    (source / name).write_bytes(payload)
    urls = tuple((source / name).as_uri() for _ in range(n_urls))
    return Resource(name, urls, sha256 or hashlib.sha256(payload).hexdigest(), len(payload))


def test_fetch_downloads_verifies_and_caches(tmp_path):
    payload = bytes(range(256)) * 1000
    resource = _resource(tmp_path, payload)
    path = fetch(resource, tmp_path / "cache", progress=False)
    assert path == tmp_path / "cache" / "blob.bin" and path.read_bytes() == payload
    (tmp_path / "server" / "blob.bin").unlink()  # a second call must not need the URL
    assert fetch(resource, tmp_path / "cache", progress=False) == path
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["blob.bin"]


def test_fetch_rejects_a_corrupt_download_and_keeps_nothing(tmp_path):
    resource = _resource(tmp_path, b"the real bytes", sha256="0" * 64)
    with pytest.raises(ChecksumError, match="wrong sha256") as info:
        fetch(resource, tmp_path / "cache", progress=False)
    assert "by hand" in str(info.value) and str(tmp_path / "cache" / "blob.bin") in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []  # no partial or temporary file left


def test_fetch_tries_the_next_mirror_after_a_bad_copy(tmp_path):
    good = b"good copy"
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "blob.bin").write_bytes(good[:4])  # a truncated mirror
    resource = _resource(tmp_path, good)
    resource = Resource(resource.filename, ((bad_dir / "blob.bin").as_uri(), *resource.urls),
                        resource.sha256)
    assert fetch(resource, tmp_path / "cache", progress=False).read_bytes() == good


def test_fetch_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    resource = Resource("t10k.gz", ("https://example.org/t10k.gz",), "0" * 64, 1234)
    with pytest.raises(DownloadError) as info:
        fetch(resource, tmp_path / "cache", progress=False)
    message = str(info.value)
    for part in ("https://example.org/t10k.gz", "name resolution", "by hand",
                 str(tmp_path / "cache" / "t10k.gz"), "NN_DATA_DIR"):
        assert part in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_keeps_an_interrupted_download_out_of_the_cache(tmp_path, monkeypatch):
    resource = _resource(tmp_path, b"x" * 5000)

    def interrupted(url, tmp, resource, progress):
        tmp.write_bytes(b"x" * 100)
        raise KeyboardInterrupt
    monkeypatch.setattr(download, "_download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(resource, tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_corrupt_file_already_in_the_cache_is_reported_not_deleted(tmp_path):
    resource = _resource(tmp_path, b"published bytes")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"published by")  # truncated copy put there by hand
    with pytest.raises(ChecksumError, match="delete it so that nn downloads it again"):
        fetch(resource, cache, progress=False)
    assert (cache / "blob.bin").read_bytes() == b"published by"


def test_fetch_shows_a_progress_bar(tmp_path, capsys):
    resource = _resource(tmp_path, b"y" * 3000)
    fetch(resource, tmp_path / "cache", progress=True)
    assert "blob.bin" in capsys.readouterr().err


def test_extract_tar_is_atomic_and_refuses_paths_outside(tmp_path):
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        data = b"hello"
        info = tarfile.TarInfo("top/sub/file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out = extract_tar(good, tmp_path / "out", "top")
    assert (out / "sub" / "file.txt").read_bytes() == b"hello"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["top"]  # no temporary folder

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"!"))
    with pytest.raises((ValueError, tarfile.TarError)):
        extract_tar(evil, tmp_path / "out2", "top")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out2" / "top").exists()
