"""Bundled datasets and the one-hot helper."""
from __future__ import annotations

import numpy as np
import pytest

from nn.data import IRIS_CLASSES, datasets_dir, load_iris, one_hot


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
