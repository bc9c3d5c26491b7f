"""The perceptron practical: the neuron, the forward pass, the learning rule, training."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import split_table as split


PRACTICAL = "perceptron"


def ref_forward(w, xb):
    return (xb @ w > 0).astype(np.float64)


@pytest.mark.student("add_bias")
@pytest.mark.parametrize("shape", [(1, 1), (4, 2), (7, 5)])
def test_add_bias_appends_a_column_of_minus_one(module, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    xb = module.add_bias(x)
    assert xb.shape == (shape[0], shape[1] + 1)
    np.testing.assert_array_equal(xb[:, :-1], x)
    np.testing.assert_array_equal(xb[:, -1], -1.0)


@pytest.mark.student("step")
def test_step_fires_above_the_threshold_only(module):
    h = np.array([[-2.0, -1e-9, 0.0], [1e-9, 0.5, 3.0]])
    np.testing.assert_array_equal(module.step(h), [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(module.step(h, threshold=0.5), [[0, 0, 0], [0, 0, 1]])
    assert np.asarray(module.step(h)).dtype.kind == "f", "step should return 0.0 and 1.0 floats"


@pytest.mark.student("forward")
@pytest.mark.parametrize("n, f, k", [(1, 2, 1), (6, 4, 3), (9, 8, 1)])
def test_forward_is_the_step_of_the_weighted_sum(module, n, f, k):
    rng = np.random.default_rng(n + f + k)
    w = rng.standard_normal((f + 1, k))
    xb = np.concatenate([rng.standard_normal((n, f)), -np.ones((n, 1))], axis=1)
    a = module.forward(w, xb)
    assert a.shape == (n, k)
    np.testing.assert_array_equal(a, ref_forward(w, xb))


@pytest.mark.student("update")
@pytest.mark.parametrize("f, k", [(2, 1), (4, 3), (5, 2)])
def test_update_applies_the_perceptron_rule(module, f, k):
    rng = np.random.default_rng(10 * f + k)
    for trial in range(20):
        w = rng.uniform(-1, 1, (f + 1, k))
        xb = np.append(rng.standard_normal(f), -1.0)
        t = rng.integers(0, 2, k).astype(np.float64)
        lr = rng.uniform(0.05, 0.5)
        expected = w - lr * np.outer(xb, ref_forward(w, xb[None])[0] - t)
        got = module.update(w.copy(), xb, t, lr)
        assert got.shape == w.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12,
                                   err_msg=f"trial {trial}: w - lr (a - t) x expected")


@pytest.mark.student("update")
def test_update_leaves_a_correct_neuron_alone(module):
    w = np.array([[1.0], [1.0], [0.5]])          # fires where x1 + x2 > 0.5
    xb = np.array([0.0, 0.0, -1.0])              # h = -0.5: silent, as it should be
    np.testing.assert_array_equal(module.update(w.copy(), xb, np.array([0.0]), 0.3), w)
    xb = np.array([1.0, 1.0, -1.0])              # h = 1.5: fires, as it should
    np.testing.assert_array_equal(module.update(w.copy(), xb, np.array([1.0]), 0.3), w)
    xb = np.array([1.0, 0.0, -1.0])              # h = 0.5 but t = 0: w moves by -lr x
    np.testing.assert_allclose(module.update(w.copy(), xb, np.array([0.0]), 0.3),
                               w - 0.3 * xb[:, None])


@pytest.mark.student("predict")
def test_predict_one_neuron_gives_its_output(module):
    w = np.array([[2.0], [-1.0], [0.5]])
    x = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.0]])
    np.testing.assert_array_equal(module.predict(w, x), [1, 0, 1, 0])


@pytest.mark.student("predict")
def test_predict_several_neurons_takes_the_largest_sum(module):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 3))
    x = rng.standard_normal((11, 4))
    h = np.concatenate([x, -np.ones((11, 1))], axis=1) @ w
    np.testing.assert_array_equal(module.predict(w, x), h.argmax(axis=1))


@pytest.mark.student("train")
def test_train_learns_the_or_gate(module, report):
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 1])
    w, history = module.train(x, y[:, None].astype(np.float64), lr=0.25, epochs=10, seed=0)
    assert w.shape == (3, 1)
    acc = float(np.mean(ref_forward(w, np.concatenate([x, -np.ones((4, 1))], axis=1))[:, 0] == y))
    report(accuracy=acc, threshold=1.0)
    assert acc == 1.0, "the OR gate is separable: the perceptron must classify all four inputs"
    assert len(history) == 10


@pytest.mark.student("train")
def test_train_updates_online_in_a_shuffled_order(module):
    """One epoch = one update per example, in the order ``rng.permutation(N)`` drawn after
    the initial weights (with one epoch, the pocket holds the final weights)."""
    x, y, _, _ = split("iris")
    t = np.eye(3)[y]
    rng = np.random.default_rng(7)
    w = rng.uniform(-0.01, 0.01, (5, 3))
    xb = np.concatenate([x, -np.ones((len(x), 1))], axis=1)
    for i in rng.permutation(len(x)):
        w = w - 0.1 * np.outer(xb[i], ref_forward(w, xb[i:i + 1])[0] - t[i])
    got, history = module.train(x, t, lr=0.1, epochs=1, seed=7)
    np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12)
    assert len(history) == 1


@pytest.mark.student("train")
@pytest.mark.parametrize("name, n_classes, threshold", [("iris", 3, 0.80), ("pima", 2, 0.65)])
def test_train_reaches_the_course_accuracy(module, report, name, n_classes, threshold):
    x_train, y_train, x_test, y_test = split(name)
    t = y_train[:, None].astype(np.float64) if n_classes == 2 else np.eye(n_classes)[y_train]
    w, _ = module.train(x_train, t, lr=0.1, epochs=50, seed=0)
    h = np.concatenate([x_test, -np.ones((len(x_test), 1))], axis=1) @ w
    predicted = (h[:, 0] > 0).astype(int) if n_classes == 2 else h.argmax(axis=1)
    acc = float(np.mean(predicted == y_test))
    report(accuracy=acc, threshold=threshold)
    assert acc >= threshold, f"{name}: test accuracy {acc:.1%} < {threshold:.0%}"
