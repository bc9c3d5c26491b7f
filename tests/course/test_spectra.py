"""The spectra practical: per-star flux normalisation, class-rebalanced epochs, recall per
class, and training on the synthetic spectra (accuracy, and the rarest type's recall)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from nn.data import make_stellar_spectra
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


@pytest.mark.student("recall_per_class")
def test_recall_per_class(module):
    cm = np.array([[5, 1, 0, 2], [0, 0, 0, 0], [3, 1, 7, 0], [0, 0, 1, 9]])
    got = np.asarray(module.recall_per_class(cm), dtype=np.float64)
    np.testing.assert_allclose(got, recall(cm), rtol=1e-12)   # NaN for the empty class 1
    assert np.isnan(got[1])


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


@pytest.mark.student("train")
def test_the_mlp_classifies_the_spectra(module, report):
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
