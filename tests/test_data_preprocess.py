"""Normalisers, splits, rebalancing and the augmentation adapter (no network, no download)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nn.errors import DataError, StateError
from nn.data import (Augment, Center, CenterMaxAbs, MinMax, Normalizer, Standardize,
                     balanced_indices, load_iris, one_hot, rebalance, split_indices,
                     train_valid_test_split)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 10.0, 0.01, 1000.0])
    train = rng.normal(5.0, 1.0, (200, 4)) * scale
    test = rng.normal(6.0, 2.0, (50, 4)) * scale
    return train, test


# -- normalisers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, shift, scale", [
    (Center, lambda x: x.mean(0), lambda x: np.ones(x.shape[1])),
    (Standardize, lambda x: x.mean(0), lambda x: x.std(0)),
    (MinMax, lambda x: x.min(0), lambda x: x.max(0) - x.min(0)),
    (CenterMaxAbs, lambda x: x.mean(0), lambda x: np.abs(x - x.mean(0)).max(0)),
])
def test_normalizers_reuse_the_training_statistics(data, cls, shift, scale):
    train, test = data
    norm = cls().fit(train)
    # the test data is transformed with the training numbers, never its own
    np.testing.assert_allclose(norm.transform(test), (test - shift(train)) / scale(train))
    np.testing.assert_allclose(norm.inverse_transform(norm.transform(test)), test)
    np.testing.assert_allclose(norm.fit_transform(train), norm.transform(train))


def test_normalizer_ranges_on_the_training_data(data):
    train, _ = data
    z = Standardize().fit_transform(train)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1)
    z = MinMax().fit_transform(train)
    np.testing.assert_allclose([z.min(0), z.max(0)], [np.zeros(4), np.ones(4)], atol=1e-12)
    z = CenterMaxAbs().fit_transform(train)
    np.testing.assert_allclose(np.abs(z).max(0), 1)


def test_center_max_abs_is_the_demo_normalisation():
    x, _ = load_iris()
    mean = x[:100].mean(axis=0)
    expected = (x - mean) / np.abs(x[:100] - mean).max(axis=0)
    np.testing.assert_allclose(CenterMaxAbs().fit(x[:100]).transform(x), expected)


def test_normalizer_per_channel_of_images_keeps_float32():
    rng = np.random.default_rng(1)
    images = (rng.random((8, 3, 5, 6)) * np.array([1, 10, 100])[None, :, None, None]).astype(np.float32)
    norm = Standardize(axis=(0, 2, 3)).fit(images)
    assert norm.shift.shape == (1, 3, 1, 1)
    out = norm.transform(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, rtol=1e-4)
    assert norm.transform(images[:2]).shape == (2, 3, 5, 6)  # any batch size
    with pytest.raises(ValueError, match=r"fitted on data of shape \(N, 3, 1, 1\)"):
        norm.transform(images[:, :2])


def test_constant_feature_is_left_finite():
    x = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    for cls in (Standardize, MinMax, CenterMaxAbs):
        out = cls().fit_transform(x)
        assert np.isfinite(out).all() and np.all(out[:, 1] == 0)


def test_normalizer_errors_say_what_to_do(data):
    train, _ = data
    with pytest.raises(StateError, match=r"call fit\(x_train\) first"):
        Standardize().transform(train)
    with pytest.raises(ValueError, match=r"fitted on data of shape \(N, 4\)"):
        Standardize().fit(train).transform(train[:, :3])
    bad = train.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN at index \(3, 1\).*NaN and inf are refused"):
        Center().fit(bad)


@pytest.mark.parametrize("axis", [0, (0, 2), None])
def test_normalizer_save_and_load(tmp_path, axis):
    x = np.random.default_rng(2).normal(size=(10, 3, 4))
    norm = MinMax(axis=axis).fit(x)
    path = norm.save(tmp_path / "norm")
    assert path == tmp_path / "norm.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["norm.npz"]  # no temporary file left
    same = Normalizer.load(path)
    assert type(same) is MinMax and same.axis == axis
    np.testing.assert_array_equal(same.transform(x), norm.transform(x))


def test_loading_another_npz_as_a_normalizer_fails_clearly(tmp_path):
    np.savez(tmp_path / "weights.npz", W=np.zeros(3))
    with pytest.raises(ValueError, match="not written by Normalizer.save"):
        Normalizer.load(tmp_path / "weights.npz")


# -- splits ------------------------------------------------------------------------------------------
def test_split_indices_partition_sizes_and_seed():
    parts = split_indices(100, valid=0.1, test=0.2, seed=3)
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [70, 10, 20]
    everything = np.concatenate(list(parts.values()))
    np.testing.assert_array_equal(np.sort(everything), np.arange(100))
    again = split_indices(100, valid=0.1, test=0.2, seed=3)
    other = split_indices(100, valid=0.1, test=0.2, seed=4)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["test"], other["test"])
    assert set(split_indices(10, test=0.3)) == {"train", "test"}  # no empty validation part


def test_stratified_split_keeps_every_class_in_every_part():
    y = np.repeat(np.arange(7), [12, 134, 109, 192, 300, 327, 41])  # the spectra's imbalance
    parts = split_indices(len(y), valid=0.15, test=0.15, seed=0, y=y)
    for name in ("valid", "test"):
        counts = np.bincount(y[parts[name]], minlength=7)
        np.testing.assert_array_equal(counts, np.round(0.15 * np.bincount(y)))
    # one-hot targets stratify the same way
    same = split_indices(len(y), valid=0.15, test=0.15, seed=0, y=one_hot(y))
    np.testing.assert_array_equal(same["test"], parts["test"])


def test_train_valid_test_split_arrays_and_lists():
    x = np.arange(40).reshape(20, 2)
    y = np.arange(20) % 2
    parts = train_valid_test_split(x, y, valid=0.2, test=0.2, seed=0, stratify=True)
    for xs, ys in parts.values():
        np.testing.assert_array_equal(xs[:, 0] // 2 % 2, ys)  # rows stay with their labels
    targets = [{"boxes": np.zeros((i, 4))} for i in range(20)]  # detection targets: a list
    parts = train_valid_test_split(x, targets, valid=0, test=0.25, seed=1)
    xs, ts = parts["test"]
    assert isinstance(ts, list) and [len(t["boxes"]) for t in ts] == list(xs[:, 0] // 2)


@pytest.mark.parametrize("valid, test, match", [
    (0.5, 0.5, "leaves no training data"), (-0.1, 0.2, "valid must be a fraction"),
    (0.1, 1.0, "test must be a fraction"),
])
def test_split_rejects_bad_fractions(valid, test, match):
    with pytest.raises(ValueError, match=match):
        split_indices(10, valid=valid, test=test)


def test_split_rejects_mismatched_lengths_and_unstratifiable_labels():
    with pytest.raises(ValueError, match="x has 3 examples but y has 2"):
        train_valid_test_split(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="class ids"):
        split_indices(3, y=np.array([0.5, 1.5, 2.0]), test=0.3)


# -- rebalancing ------------------------------------------------------------------------------------
def test_rebalance_oversamples_every_example_evenly():
    y = np.array([0] * 10 + [1] * 3 + [2] * 1)
    x = np.arange(14)[:, None] * np.ones((1, 2))
    xb, yb = rebalance(x, y, seed=0)
    np.testing.assert_array_equal(np.bincount(yb), [10, 10, 10])
    np.testing.assert_array_equal(xb[:, 0].astype(int), np.arange(14)[xb[:, 0].astype(int)])
    np.testing.assert_array_equal(y[xb[:, 0].astype(int)], yb)  # rows moved with their labels
    uses = np.bincount(xb[:, 0].astype(int), minlength=14)
    assert np.all(uses[:10] == 1) and set(uses[10:13]) <= {3, 4} and uses[13] == 10
    assert not np.all(np.diff(yb) >= 0)  # shuffled


def test_rebalance_undersamples_and_takes_counts():
    y = np.array([0] * 10 + [1] * 3)
    idx = balanced_indices(y, "min", seed=1)
    np.testing.assert_array_equal(np.bincount(y[idx]), [3, 3])
    assert len(set(idx.tolist())) == 6  # without repetition
    np.testing.assert_array_equal(np.bincount(y[balanced_indices(one_hot(y), 5)]), [5, 5])
    for bad in (0, "most", 2.5, True):
        with pytest.raises(ValueError, match="n_per_class"):
            balanced_indices(y, bad)


# -- augmentation ------------------------------------------------------------------------------------
class FlipPipeline:
    """Duck-typed Albumentations pipeline: horizontal flip of (H, W, C) images and of boxes;
    the box whose label is ``drop`` disappears, as a crop would remove it."""

    def __init__(self, drop=None, squeeze=False):
        self.drop, self.squeeze, self.seen = drop, squeeze, []

    def __call__(self, image, bboxes=None, labels=None):
        self.seen.append((image.shape, image.dtype, image.flags["C_CONTIGUOUS"]))
        out = {"image": image[:, ::-1, 0] if self.squeeze else image[:, ::-1]}
        if bboxes is not None:
            width = image.shape[1]
            keep = [i for i, label in enumerate(labels) if label != self.drop]
            out["bboxes"] = [(width - b[2], b[1], width - b[0], b[3]) for b in np.asarray(bboxes)[keep]]
            out["labels"] = [labels[i] for i in keep]
        return out


def test_augment_images_flips_every_image_and_keeps_labels():
    x = np.random.default_rng(0).random((5, 3, 4, 6))
    y = np.arange(5)
    pipeline = FlipPipeline()
    xa, ya = Augment(pipeline)(x, y)
    np.testing.assert_allclose(xa, x[..., ::-1], rtol=1e-6)
    assert xa.dtype == x.dtype and ya is y
    # the pipeline saw channels-last, contiguous float32 images (what Albumentations takes)
    assert pipeline.seen[0] == ((4, 6, 3), np.float32, True)


def test_augment_grey_images_that_come_back_2d():
    x = np.random.default_rng(1).random((2, 1, 5, 5)).astype(np.float32)
    xa, _ = Augment(FlipPipeline(squeeze=True))(x, None)
    assert xa.shape == (2, 1, 5, 5)
    np.testing.assert_array_equal(xa, x[..., ::-1])


def test_augment_with_boxes_moves_and_drops_boxes_with_their_rows():
    x = np.zeros((2, 1, 10, 20), dtype=np.float32)
    targets = np.empty(2, dtype=object)  # what Network.fit indexes: an object array
    targets[:] = [
        {"boxes": np.array([[0, 0, 5, 5], [10, 2, 12, 4], [1, 1, 2, 2]], np.float32),
         "classes": np.array([3, 4, 5]), "params": np.array([[1.0], [2.0], [3.0]]), "id": "a"},
        {"boxes": np.zeros((0, 4), np.float32), "classes": np.zeros(0, np.int64), "id": "b"},
    ]
    xa, ta = Augment(FlipPipeline(drop=1), boxes=True)(x, targets)
    assert isinstance(ta, np.ndarray) and ta.dtype == object and len(ta) == 2
    np.testing.assert_array_equal(ta[0]["boxes"], [[15, 0, 20, 5], [18, 1, 19, 2]])
    np.testing.assert_array_equal(ta[0]["classes"], [3, 5])
    np.testing.assert_array_equal(ta[0]["params"], [[1.0], [3.0]])
    assert ta[0]["id"] == "a" and ta[1]["boxes"].shape == (0, 4)
    assert targets[0]["boxes"].shape == (3, 4)  # the caller's targets are left alone
    _, as_list = Augment(FlipPipeline(), boxes=True)(x, list(targets))
    assert isinstance(as_list, list)


def test_augment_errors_say_what_to_do():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Augment(FlipPipeline())(np.zeros((2, 5, 5)), None)
    with pytest.raises(ValueError, match="one dict per image"):
        Augment(FlipPipeline(), boxes=True)(np.zeros((2, 1, 5, 5)), np.zeros((2, 3)))

    heights = iter([3, 4])

    def random_crop(image):  # a crop whose size changes from image to image
        return {"image": image[:next(heights)]}
    with pytest.raises(ValueError, match="images of different shapes"):
        Augment(random_crop)(np.zeros((2, 1, 8, 8)), None)
    with pytest.raises(TypeError, match="Albumentations Compose"):
        Augment("flip")


def test_augment_without_albumentations_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)  # as on a machine without it
    with pytest.raises(ImportError, match=r'pip install -e "\.\[augment\]"'):
        Augment([object()])


def test_importing_nn_loads_neither_albumentations_nor_pillow():
    code = ("import sys, nn, nn.data; "
            "print(sorted(m for m in ('albumentations', 'PIL', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_augment_with_the_real_albumentations():
    A = pytest.importorskip("albumentations")
    x = np.random.default_rng(2).random((3, 3, 8, 12)).astype(np.float32)
    xa, _ = Augment([A.HorizontalFlip(p=1.0)])(x, None)
    np.testing.assert_allclose(xa, x[..., ::-1], atol=1e-6)
    targets = [{"boxes": np.array([[1, 2, 4, 6]], np.float32), "classes": np.array([7])}] * 3
    xa, ta = Augment([A.HorizontalFlip(p=1.0)], boxes=True)(x, targets)
    np.testing.assert_allclose(xa, x[..., ::-1], atol=1e-6)
    np.testing.assert_allclose(ta[0]["boxes"], [[8, 2, 11, 6]], atol=1e-4)
    np.testing.assert_array_equal(ta[0]["classes"], [7])
