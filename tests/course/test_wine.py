"""The wine exam: preparing the data and a network that recognises the cultivars.

These tests use the 100 **training** wines only: a validation part carved from them stands
in for unseen wines. The exam's test set is never read here, so ``nn check wine`` cannot
show (or let anyone tune on) its accuracy.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest

from nn.data import CenterMaxAbs, load_wine, train_valid_test_split

PRACTICAL = "wine"
VALID_REFERENCE = 0.967  # validation accuracy of the solution's choices on the split below


@functools.lru_cache(maxsize=None)
def training_wines():
    """The exam's training wines only."""
    return load_wine()["train"]


def carved(seed=0, valid=0.3):
    """A stratified validation part carved from the training wines: (fit, valid) pairs."""
    parts = train_valid_test_split(*training_wines(), valid=0.0, test=valid, seed=seed,
                                   stratify=True)
    return parts["train"], parts["test"]


@pytest.mark.student("prepare_wine")
def test_prepare_wine_normalises_with_the_training_statistics(module):
    (x_fit, y_fit), (x_valid, y_valid) = carved()
    got = module.prepare_wine({"train": (x_fit, y_fit), "test": (x_valid, y_valid)})
    assert len(got) == 4
    norm = CenterMaxAbs().fit(x_fit)
    np.testing.assert_allclose(got[0], norm.transform(x_fit), rtol=1e-12, atol=1e-12,
                               err_msg="training inputs")
    np.testing.assert_allclose(got[2], norm.transform(x_valid), rtol=1e-12, atol=1e-12,
                               err_msg="other inputs, normalised with the training statistics")
    np.testing.assert_array_equal(got[1], np.eye(3)[y_fit])
    np.testing.assert_array_equal(got[3], np.eye(3)[y_valid])


@pytest.mark.student("prepare_wine")
def test_prepare_wine_with_a_single_other_wine(module):
    x, y = training_wines()
    x_one, y_one = x[:1].copy(), y[:1].copy()
    got = module.prepare_wine({"train": (x[1:], y[1:]), "test": (x_one, y_one)})
    norm = CenterMaxAbs().fit(x[1:])
    assert np.shape(got[2]) == (1, 13) and np.shape(got[3]) == (1, 3)
    np.testing.assert_allclose(got[2], norm.transform(x_one), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x_one, x[:1], err_msg="the inputs must not change")


def fit_part():
    (x_fit, y_fit), (x_valid, y_valid) = carved()
    norm = CenterMaxAbs().fit(x_fit)
    return norm.transform(x_fit), np.eye(3)[y_fit], norm.transform(x_valid), y_valid


def check_settings(module, settings):
    assert isinstance(settings, dict), "choose_settings returns a dict of train's arguments"
    known = set(inspect.signature(module.train).parameters) - {"x", "t", "seed", "test"}
    assert set(settings) <= known, f"unknown arguments of train: {set(settings) - known}"


@pytest.mark.student("choose_settings")
def test_choose_settings_generalise_to_held_out_training_wines(module, report):
    """Chosen on 70 % of the training wines, trained there, measured on the other 30 %."""
    x_fit, t_fit, x_valid, y_valid = fit_part()
    settings = module.choose_settings(x_fit, t_fit, seed=0)
    check_settings(module, settings)
    w1, w2, _ = module.train(x_fit, t_fit, seed=0, **settings)
    acc = float(np.mean(module.predict(w1, w2, x_valid) == y_valid))
    report(validation_accuracy=acc, threshold=0.9)
    assert acc >= 0.9, (f"accuracy {acc:.1%} < 90 % on training wines held out from your "
                        f"choice; the reference reaches {VALID_REFERENCE:.1%}")


@pytest.mark.student("choose_settings")
def test_choose_settings_is_repeatable_on_few_wines(module):
    x_fit, t_fit, _, _ = fit_part()
    few = np.concatenate([np.flatnonzero(t_fit[:, c])[:8] for c in range(3)])  # 24 wines
    first = module.choose_settings(x_fit[few], t_fit[few], seed=2)
    check_settings(module, first)
    assert module.choose_settings(x_fit[few], t_fit[few], seed=2) == first, \
        "the same wines and seed must give the same choice"


@pytest.mark.student("train_wine")
def test_train_wine_recognises_validation_wines(module, report):
    """Trained on 70 % of the training wines, measured on the other 30 % (30 wines)."""
    (x_fit, y_fit), (x_valid, y_valid) = carved()
    norm = CenterMaxAbs().fit(x_fit)
    w1, w2, _ = module.train_wine(norm.transform(x_fit), np.eye(3)[y_fit], seed=0)
    acc = float(np.mean(module.predict(w1, w2, norm.transform(x_valid)) == y_valid))
    report(validation_accuracy=acc, threshold=0.9)
    assert acc >= 0.9, (f"validation accuracy {acc:.1%} < 90 % (on a validation part of the "
                        f"training wines; the reference reaches {VALID_REFERENCE:.1%})")


@pytest.mark.student("train_wine")
def test_train_wine_is_repeatable_and_uses_its_seed(module):
    x_fit, t_fit, _, _ = fit_part()
    few = np.concatenate([np.flatnonzero(t_fit[:, c])[:8] for c in range(3)])  # 24 wines
    x, t = x_fit[few], t_fit[few]
    first, _, _ = module.train_wine(x, t, seed=0)
    again, _, _ = module.train_wine(x, t, seed=0)
    np.testing.assert_array_equal(again, first, err_msg="the same seed must give the same network")
    other, _, _ = module.train_wine(x, t, seed=1)
    assert not np.array_equal(other, first), "another seed must give another network"
