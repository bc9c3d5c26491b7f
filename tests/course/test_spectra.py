"""The spectra practical: per-star flux normalisation, the prepared split, class-rebalanced
epochs, recall per class, and training on the synthetic spectra (accuracy, and the rarest
type's recall)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from nn.data import CenterMaxAbs, make_stellar_spectra, train_valid_test_split
from nn.metrics import confusion_matrix, recall

PRACTICAL = "spectra"
SEED = 0


@functools.lru_cache(maxsize=None)
def spectra(seed=SEED):
    return make_stellar_spectra(seed)


@pytest.mark.student("normalise_flux")
def test_normalise_flux_divides_each_spectrum_by_its_mean(module):
    rng = np.random.default_rng(0)
    shape = rng.uniform(0.5, 1.5, (5, 17))
    brightness = np.array([[0.1], [1.0], [3.0], [20.0], [0.5]])
    out = module.normalise_flux(shape * brightness)
    assert out.shape == (5, 17)
    np.testing.assert_allclose(out.mean(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out, shape / shape.mean(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.student("normalise_flux")
def test_normalise_flux_of_one_flat_spectrum(module):
    x = np.full((1, 9), 4.0)
    out = module.normalise_flux(x)
    np.testing.assert_allclose(out, np.ones((1, 9)))
    np.testing.assert_array_equal(x, 4.0, err_msg="the input must not change")


@pytest.mark.student("prepare_spectra")
def test_prepare_spectra_normalises_with_the_training_part_only(module):
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], [5, 20, 15])
    x = rng.uniform(0.5, 2.0, (40, 6)) * rng.uniform(1, 50, (40, 1))
    x_train, y_train, x_test, y_test = module.prepare_spectra(x, y, seed=3, test=0.3)
    flux = x / x.mean(axis=1, keepdims=True)
    parts = train_valid_test_split(flux, y, valid=0.0, test=0.3, seed=3, stratify=True)
    (ref_x_train, ref_y_train), (ref_x_test, ref_y_test) = parts["train"], parts["test"]
    norm = CenterMaxAbs().fit(ref_x_train)
    np.testing.assert_array_equal(y_train, ref_y_train)
    np.testing.assert_array_equal(y_test, ref_y_test)
    assert np.bincount(y_test).tolist() == [2, 6, 4], "30 % of every class held out"
    np.testing.assert_allclose(x_train, norm.transform(ref_x_train), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_test, norm.transform(ref_x_test), rtol=1e-12, atol=1e-12,
                               err_msg="the test part uses the training part's statistics")


@pytest.mark.student("prepare_spectra")
def test_prepare_spectra_keeps_a_rare_class_in_both_parts(module):
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1], [4, 30])
    x = rng.uniform(1.0, 3.0, (34, 5))
    x_train, y_train, x_test, y_test = module.prepare_spectra(x, y, seed=0, test=0.25)
    assert len(y_train) + len(y_test) == 34 and x_train.shape == (len(y_train), 5)
    assert 0 in y_train and 0 in y_test, "a stratified split keeps the rare class in both parts"
    np.testing.assert_allclose(np.abs(x_train).max(axis=0), 1.0, rtol=1e-12)


@pytest.mark.student("balanced_order")
def test_balanced_order_draws_every_class_equally(module):
    y = np.repeat([0, 2, 5, 7], [3, 10, 25, 2])      # 40 examples, 4 classes: 10 each
    y = y[np.random.default_rng(1).permutation(len(y))]
    order = np.asarray(module.balanced_order(y, np.random.default_rng(2)))
    assert order.shape == (40,)
    assert order.min() >= 0 and order.max() < 40
    labels = y[order]
    np.testing.assert_array_equal(np.unique(labels, return_counts=True)[1], [10, 10, 10, 10])
    big = order[labels == 5]
    assert len(np.unique(big)) == 10, "a class with enough examples is subsampled, no repeats"
    changes = np.count_nonzero(labels[1:] != labels[:-1])
    assert changes > 10, "the epoch must be shuffled, not grouped by class"


@pytest.mark.student("balanced_order")
def test_balanced_order_uses_the_generator(module):
    y = np.repeat([0, 1, 2], [4, 30, 9])
    first = module.balanced_order(y, np.random.default_rng(3))
    again = module.balanced_order(y, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    rng = np.random.default_rng(3)
    module.balanced_order(y, rng)
    assert not np.array_equal(module.balanced_order(y, rng), first), \
        "every epoch must draw a new order from rng"


@pytest.mark.student("balanced_order")
def test_balanced_order_with_one_class_or_a_single_example(module):
    y = np.zeros(7, dtype=np.int64)
    order = np.asarray(module.balanced_order(y, np.random.default_rng(0)))
    np.testing.assert_array_equal(np.sort(order), np.arange(7), err_msg="one class: all, once")
    y = np.array([1, 0, 0, 0, 0, 0])                  # class 1 has a single example
    order = np.asarray(module.balanced_order(y, np.random.default_rng(0)))
    assert np.count_nonzero(order == 0) == 3, "the single example is repeated N // C times"
    assert len(order) == 6


@pytest.mark.student("recall_per_class")
def test_recall_per_class(module):
    cm = np.array([[5, 1, 0, 2], [0, 0, 0, 0], [3, 1, 7, 0], [0, 0, 1, 9]])
    got = np.asarray(module.recall_per_class(cm), dtype=np.float64)
    np.testing.assert_allclose(got, recall(cm), rtol=1e-12)   # NaN for the empty class 1
    assert np.isnan(got[1])


@pytest.mark.student("recall_per_class")
def test_recall_per_class_of_one_class(module):
    np.testing.assert_allclose(np.ravel(module.recall_per_class(np.array([[3]]))), [1.0])
    got = np.asarray(module.recall_per_class(np.array([[0, 2], [0, 5]])), dtype=np.float64)
    np.testing.assert_allclose(got, [0.0, 1.0])


_trained: dict = {}


def train_spectra(module, balanced):
    """Stochastic training (batches of 32, 40 epochs) on the prepared synthetic spectra;
    returns the test confusion matrix and the training labels (kept for the next test)."""
    key = (id(module), balanced)
    if key not in _trained:
        _trained[key] = _train_spectra(module, balanced)
    return _trained[key]


def _train_spectra(module, balanced):
    x_train, y_train, x_test, y_test = module.prepare_spectra(*spectra(), seed=SEED)
    sampler = (lambda rng: module.balanced_order(y_train, rng)) if balanced else None
    w1, w2, _ = module.train(x_train, np.eye(7)[y_train], n_hidden=16, lr=1.0, epochs=40,
                             batch_size=32, seed=SEED, sampler=sampler)
    return confusion_matrix(y_test, module.predict(w1, w2, x_test), 7), y_train


@pytest.mark.student("prepare_spectra")
def test_the_prepared_spectra_are_classified(module, report):
    """Your preparation and your MLP (mlp.py): 74.6 % measured with the solution."""
    cm, _ = train_spectra(module, balanced=False)
    acc = np.trace(cm) / cm.sum()
    report(accuracy=acc, threshold=0.70)
    assert acc >= 0.70, f"test accuracy {acc:.1%} < 70 %"


@pytest.mark.student("balanced_order")
def test_rebalancing_raises_the_recall_of_the_rarest_type(module, report):
    plain, y_train = train_spectra(module, balanced=False)
    balanced, _ = train_spectra(module, balanced=True)
    rarest = int(np.argmin(np.bincount(y_train, minlength=7)))
    before, after = recall(plain)[rarest], recall(balanced)[rarest]
    report(recall_without=before, recall_with=after)
    assert after > before, (f"recall of the rarest type: {before:.0%} without rebalancing, "
                            f"{after:.0%} with it")
    assert np.trace(balanced) / balanced.sum() >= 0.70
