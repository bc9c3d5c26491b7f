"""The wine exam: preparing the exam split, and a network that recognises the cultivars."""
from __future__ import annotations

import numpy as np
import pytest

from nn.data import CenterMaxAbs, load_wine

PRACTICAL = "wine"


@pytest.mark.student("prepare_wine")
def test_prepare_wine_normalises_with_the_training_statistics(module):
    wine = load_wine()
    (x_train, y_train), (x_test, y_test) = wine["train"], wine["test"]
    got = module.prepare_wine(load_wine())
    assert len(got) == 4
    norm = CenterMaxAbs().fit(x_train)
    np.testing.assert_allclose(got[0], norm.transform(x_train), rtol=1e-12, atol=1e-12,
                               err_msg="training inputs")
    np.testing.assert_allclose(got[2], norm.transform(x_test), rtol=1e-12, atol=1e-12,
                               err_msg="test inputs, normalised with the training statistics")
    np.testing.assert_array_equal(got[1], np.eye(3)[y_train])
    np.testing.assert_array_equal(got[3], np.eye(3)[y_test])


@pytest.mark.student("train_wine")
def test_train_wine_recognises_the_test_wines(module, report):
    wine = load_wine()
    (x_train, y_train), (x_test, y_test) = wine["train"], wine["test"]
    norm = CenterMaxAbs().fit(x_train)
    w1, w2, _ = module.train_wine(norm.transform(x_train), np.eye(3)[y_train], seed=0)
    acc = float(np.mean(module.predict(w1, w2, norm.transform(x_test)) == y_test))
    report(accuracy=acc, threshold=0.90)
    assert acc >= 0.90, f"test accuracy {acc:.1%} < 90 %"
    again, _, _ = module.train_wine(norm.transform(x_train), np.eye(3)[y_train], seed=0)
    np.testing.assert_array_equal(again, w1, err_msg="the same seed must give the same network")
