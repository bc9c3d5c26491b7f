"""The augmentation practical: an Albumentations pipeline that keeps the images' shape, type
and range, changes them (flips, small affine moves, brightness/contrast/gamma), is repeatable
with a seed; and the accuracy curves measured on clean training images."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import nn
from nn.data import load_fashion_mnist
from nn.optim import Adam

pytest.importorskip("albumentations")

PRACTICAL = "augmentation"
ROWS, COLS = np.indices((28, 28))


@functools.lru_cache(maxsize=None)
def sample(split):
    return load_fashion_mnist(split, source="sample")


def images(n=64):
    x, y = sample("train")
    pick = np.random.default_rng(0).choice(len(x), n, replace=False)
    return x[pick], y[pick]


def centre_of_mass(x):
    """``(column, row)`` of the centre of the intensity of each image ``(N, 1, H, W)``."""
    mass = x[:, 0].sum(axis=(1, 2))
    return ((x[:, 0] * COLS).sum(axis=(1, 2)) / mass, (x[:, 0] * ROWS).sum(axis=(1, 2)) / mass)


def correlation(a, b):
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1) + 1e-12)


# -- augmentation_pipeline -------------------------------------------------------------------
@pytest.mark.student("augmentation_pipeline")
def test_pipeline_keeps_shape_type_range_and_labels(module):
    x, y = images()
    augment = module.augmentation_pipeline(seed=0)
    out, labels = augment(x, y)
    assert out.shape == (64, 1, 28, 28)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(labels, y)
    changed = np.mean(np.any(out != x, axis=(1, 2, 3)))
    assert changed > 0.8, f"only {changed:.0%} of the images were changed"


@pytest.mark.student("augmentation_pipeline")
def test_pipeline_takes_a_batch_of_one(module):
    x, y = images(1)
    out, labels = module.augmentation_pipeline(seed=4)(x, y)
    assert out.shape == (1, 1, 28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(labels, y)


@pytest.mark.student("augmentation_pipeline")
def test_pipeline_is_repeatable_with_a_seed(module):
    x, y = images(32)
    first, _ = module.augmentation_pipeline(seed=7)(x, y)
    again, _ = module.augmentation_pipeline(seed=7)(x, y)
    np.testing.assert_array_equal(first, again, err_msg="same seed, different images: pass "
                                  "seed to A.Compose")
    other, _ = module.augmentation_pipeline(seed=8)(x, y)
    assert not np.array_equal(first, other), "another seed must draw other transforms"
    augment = module.augmentation_pipeline(seed=7)
    augment(x, y)
    second, _ = augment(x, y)
    assert not np.array_equal(first, second), "every call must draw new transforms"


@pytest.mark.student("augmentation_pipeline")
def test_pipeline_flips_horizontally_never_vertically(module):
    image = np.zeros((1, 28, 28), np.float32)       # an L in the top-left corner
    image[0, 3:11, 3:10] = 0.8
    image[0, 3:6, 10:20] = 0.6
    n = 300
    out, _ = module.augmentation_pipeline(seed=1)(np.repeat(image[None], n, axis=0),
                                                  np.zeros(n, dtype=np.int64))
    cx, cy = centre_of_mass(out)
    mirrored = np.mean(cx > 13.5)
    assert 0.3 <= mirrored <= 0.7, (f"{mirrored:.0%} of the draws mirrored left-right; "
                                    "HorizontalFlip with p=0.5 gives about half")
    assert cy.max() < 13.5, "an image came out upside down: no vertical flips"


@pytest.mark.student("augmentation_pipeline")
def test_pipeline_moves_the_images_a_little(module):
    x, y = images(200)
    out, _ = module.augmentation_pipeline(seed=2)(x, y)
    moved = np.mean(np.abs(centre_of_mass(out)[1] - centre_of_mass(x)[1]) > 0.5)
    assert moved > 0.2, f"only {moved:.0%} of the images moved vertically: add A.Affine"
    # mirror images or not, an augmented image must still look like its original
    alike = np.maximum(correlation(out, x), correlation(out, x[..., ::-1]))
    assert np.median(alike) > 0.6, (f"median correlation {np.median(alike):.2f} with the "
                                    "original: the transforms are too strong")


@pytest.mark.student("augmentation_pipeline")
def test_pipeline_changes_brightness_contrast_or_gamma(module):
    n = 300
    grey = np.full((n, 1, 28, 28), 0.5, np.float32)  # geometry leaves its centre at 0.5
    out, _ = module.augmentation_pipeline(seed=3)(grey, np.zeros(n, dtype=np.int64))
    centre = out[:, 0, 12:16, 12:16].mean(axis=(1, 2))
    brighter, darker = np.mean(centre > 0.52), np.mean(centre < 0.48)
    assert brighter > 0.05 and darker > 0.05, (
        f"the centre of a grey image became brighter in {brighter:.0%} and darker in "
        f"{darker:.0%} of the draws: add RandomBrightnessContrast and RandomGamma")


# -- accuracy_curves -------------------------------------------------------------------------
class Recorder:
    """A stand-in augmentation that records the batches it sees and returns them unchanged."""

    def __init__(self):
        self.sizes = []

    def __call__(self, x, y):
        self.sizes.append(len(x))
        return x, y


@pytest.mark.student("accuracy_curves")
def test_accuracy_curves_measure_clean_training_images(module):
    x, y = sample("train")
    x_test, y_test = sample("test")
    train, test = (x[:100], y[:100]), (x_test[:50], y_test[:50])
    recorder = Recorder()
    with nn.backends.using("numpy", "fp32", seed=0):
        net = module.small_cnn()
        curves = module.accuracy_curves(net, train, test, 2, Adam(1e-3), augment=recorder,
                                        seed=0, batch_size=25)
        assert recorder.sizes == [25] * 8, "the augmentation must be applied to every batch"
        assert set(curves) >= {"train", "fit_train", "test"}
        assert all(len(curves[k]) == 2 for k in ("train", "fit_train", "test"))
        assert curves["train"][-1] == pytest.approx(net.evaluate(*train)["accuracy"])
        assert curves["test"][-1] == pytest.approx(net.evaluate(*test)["accuracy"])


@pytest.mark.student("accuracy_curves")
def test_accuracy_curves_one_epoch_without_augmentation(module):
    """One epoch, no augmentation, a last batch smaller than the others (30 = 8 + 8 + 8 + 6)."""
    x, y = sample("train")
    x_test, y_test = sample("test")
    train, test = (x[:30], y[:30]), (x_test[:20], y_test[:20])
    with nn.backends.using("numpy", "fp32", seed=1):
        net = module.small_cnn()
        curves = module.accuracy_curves(net, train, test, 1, Adam(1e-3), seed=1, batch_size=8)
        assert all(len(curves[k]) == 1 for k in ("train", "fit_train", "test"))
        assert curves["train"][0] == pytest.approx(net.evaluate(*train)["accuracy"])
        assert curves["test"][0] == pytest.approx(net.evaluate(*test)["accuracy"])
        assert 0.0 <= curves["fit_train"][0] <= 1.0


# -- the experiment on the bundled sample ----------------------------------------------------
# Measured on seeds 0-7 (30 training images per class, 12 epochs): augmentation narrowed the
# final train - test gap by 3 to 11 points every time. The test accuracy itself is NOT
# asserted: after 12 epochs the augmented run is still learning and ends 1-7 points lower;
# the gain on the test set needs the practical's longer runs.
_runs: dict = {}


def gap(module, augmented, seed=0):
    """Final (clean training accuracy - test accuracy) of the small CNN trained on 300 sample
    images for 12 epochs, with or without augmentation."""
    key = (id(module), augmented, seed)
    if key not in _runs:
        x, y = sample("train")
        x_test, y_test = sample("test")
        keep = module.stratified_subset(y, 30, seed=seed)
        augment = module.augmentation_pipeline(seed=seed) if augmented else None
        with nn.backends.using("numpy", "fp32", seed=seed):
            curves = module.accuracy_curves(module.small_cnn(), (x[keep], y[keep]),
                                            (x_test, y_test), 12, Adam(1e-3), augment=augment,
                                            seed=seed)
        _runs[key] = curves["train"][-1] - curves["test"][-1]
    return _runs[key]


@pytest.mark.student("augmentation_pipeline")
def test_augmentation_narrows_the_gap_between_training_and_test(module, report):
    without, with_ = gap(module, augmented=False), gap(module, augmented=True)
    report(gap_without=without, gap_with=with_)
    assert with_ < without - 0.01, (f"train - test accuracy: {without:.1%} without "
                                    f"augmentation, {with_:.1%} with it")
