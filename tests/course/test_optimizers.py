"""The optimizers practical: the neuron's error and gradient, the error surface, the four
update rules against ``nn.optim``, the walk on the surface, and the comparison on Pima."""
from __future__ import annotations

import numpy as np
import pytest

from nn.functional import sigmoid
from nn.optim import SGD, Adagrad, Adam, RMSprop

PRACTICAL = "optimizers"


class _Param:
    """A stand-in layer holding one parameter, for ``nn.optim``'s ``step``."""

    def __init__(self, w):
        self.params = {"w": np.array(w, dtype=np.float64)}
        self.grads = {}


def reference_path(optimizer, w0, grads):
    """The weights after each of ``grads`` applied by an ``nn.optim`` optimizer."""
    p = _Param(w0)
    out = []
    for g in grads:
        p.grads = {"w": np.array(g, dtype=np.float64)}
        optimizer.step([(p, "w")])
        out.append(p.params["w"].copy())
    return np.array(out)


def student_path(step, w0, grads, **settings):
    state, w, out = {}, np.array(w0, dtype=np.float64), []
    for g in grads:
        before = w.copy()
        new = step(w, np.array(g, dtype=np.float64), state, **settings)
        np.testing.assert_array_equal(w, before, err_msg="the step must not change w in place")
        w = np.asarray(new, dtype=np.float64)
        out.append(w)
    return np.array(out)


def data(n=30, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) * np.array([2.0, 0.5])
    t = (rng.uniform(size=n) < sigmoid(x @ np.array([1.0, -2.0]))).astype(np.float64)
    return x, t


# --- error and gradient ----------------------------------------------------------------------

@pytest.mark.student("error_and_gradient")
@pytest.mark.parametrize("n", [30, 1])
def test_error_and_gradient_against_finite_differences(module, report, n):
    x, t = data(n)
    w = np.array([0.7, -0.4])
    E, g = module.error_and_gradient(w, x, t)
    y = sigmoid(x @ w)
    np.testing.assert_allclose(E, 0.5 * np.mean((y - t) ** 2), rtol=1e-12)
    h = 1e-6
    numeric = np.array([(module.error_and_gradient(w + h * e, x, t)[0]
                         - module.error_and_gradient(w - h * e, x, t)[0]) / (2 * h)
                        for e in np.eye(2)])
    err = np.max(np.abs(np.asarray(g) - numeric)) / max(np.max(np.abs(numeric)), 1e-12)
    report(rel_error=err, limit=1e-6, case=f"{n} examples")
    assert np.shape(g) == (2,)
    assert err < 1e-6, f"dE/dw is wrong: {g} against {numeric} (finite differences)"


@pytest.mark.student("error_and_gradient")
def test_error_and_gradient_is_zero_at_a_perfect_fit(module):
    x = np.array([[0.0, 0.0], [0.0, 0.0]])
    t = np.array([0.5, 0.5])
    E, g = module.error_and_gradient(np.array([3.0, -1.0]), x, t)
    assert E == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(g, 0.0, atol=1e-15)


# --- the surface -----------------------------------------------------------------------------

@pytest.mark.student("error_surface")
def test_error_surface_matches_the_error_at_each_point(module, report):
    x, t = data(25)
    w1, w2 = np.linspace(-3, 3, 7), np.linspace(-5, 1, 4)
    E = np.asarray(module.error_surface(x, t, w1, w2))
    assert E.shape == (4, 7), "rows follow w2, columns w1"
    ref = np.array([[0.5 * np.mean((sigmoid(x @ np.array([a, b])) - t) ** 2) for a in w1]
                    for b in w2])
    err = np.max(np.abs(E - ref))
    report(abs_error=err, limit=1e-12)
    assert err < 1e-12


@pytest.mark.student("error_surface")
def test_error_surface_of_a_single_point_and_example(module):
    x, t = np.array([[2.0, -1.0]]), np.array([1.0])
    E = np.asarray(module.error_surface(x, t, np.array([0.5]), np.array([1.0])))
    assert E.shape == (1, 1)
    np.testing.assert_allclose(E[0, 0], 0.5 * (0.5 - 1.0) ** 2, rtol=1e-12)


# --- the update rules against nn.optim -------------------------------------------------------

GRADS = np.random.default_rng(7).normal(size=(6, 2)) * np.array([[3.0, 0.01]])
W0 = np.array([0.3, -1.2])

CASES = {
    "sgd_step": [("plain", dict(lr=0.1), lambda: SGD(lr=0.1)),
                 ("momentum", dict(lr=0.05, momentum=0.9), lambda: SGD(lr=0.05, momentum=0.9))],
    "rmsprop_step": [("default", dict(lr=0.01), lambda: RMSprop(lr=0.01)),
                     ("alpha 0.5", dict(lr=0.2, alpha=0.5, eps=1e-3),
                      lambda: RMSprop(lr=0.2, alpha=0.5, eps=1e-3))],
    "adagrad_step": [("default", dict(lr=0.5), lambda: Adagrad(lr=0.5)),
                     ("eps 0.1", dict(lr=1.0, eps=0.1), lambda: Adagrad(lr=1.0, eps=0.1))],
    "adam_step": [("default", dict(lr=0.01), lambda: Adam(lr=0.01)),
                  ("betas 0.5, 0.6", dict(lr=0.3, betas=(0.5, 0.6), eps=1e-4),
                   lambda: Adam(lr=0.3, betas=(0.5, 0.6), eps=1e-4))],
}


def _check_rule(module, report, name, settings, make):
    got = student_path(getattr(module, name), W0, GRADS, **settings)
    ref = reference_path(make(), W0, GRADS)
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    report(rel_error=err, limit=1e-10)
    assert err < 1e-10, (f"{name}: after the steps your weights are\n{got}\nnn.optim's are\n"
                         f"{ref}")


@pytest.mark.parametrize("name,case", [
    pytest.param(n, i, marks=pytest.mark.student(n), id=f"{n}-{CASES[n][i][0]}")
    for n in CASES for i in range(2)])
def test_update_rule_matches_nn_optim(module, report, name, case):
    label, settings, make = CASES[name][case]
    _check_rule(module, report, name, settings, make)


@pytest.mark.student("adam_step")
def test_adam_first_step_has_the_length_of_the_learning_rate(module):
    """Bias correction: the first step of Adam is lr in every coordinate, whatever |g|."""
    w = module.adam_step(np.zeros(2), np.array([1e-3, -50.0]), {}, lr=0.1)
    np.testing.assert_allclose(w, [-0.1, 0.1], rtol=1e-4)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.student(n))
                                  for n in ("rmsprop_step", "adagrad_step")])
def test_a_zero_gradient_does_not_move_its_weight(module, name):
    """Edge case: the first step with one zero component (0 / (0 + eps) = 0)."""
    w = np.asarray(getattr(module, name)(np.array([1.0, 1.0]), np.array([0.0, 2.0]), {}, lr=0.1))
    assert w[0] == 1.0, f"{name}: a zero gradient must not move its weight"
    assert w[1] < 1.0


# --- the walk --------------------------------------------------------------------------------

def _sgd(w, g, state, lr):
    return w - lr * g


@pytest.mark.student("walk")
def test_walk_follows_the_gradient(module, report):
    x, t = data(40)
    path, errors = module.walk(_sgd, np.array([-1.0, 2.0]), x, t, 5, lr=0.5)
    path, errors = np.asarray(path), np.asarray(errors)
    assert path.shape == (6, 2) and errors.shape == (6,)
    w, ref = np.array([-1.0, 2.0]), [np.array([-1.0, 2.0])]
    for _ in range(5):
        y = sigmoid(x @ w)
        w = w - 0.5 * x.T @ ((y - t) * y * (1 - y)) / len(t)
        ref.append(w)
    ref = np.array(ref)
    err = np.max(np.abs(path - ref))
    report(abs_error=err, limit=1e-12)
    assert err < 1e-12
    ref_errors = [0.5 * np.mean((sigmoid(x @ p) - t) ** 2) for p in ref]
    np.testing.assert_allclose(errors, ref_errors, rtol=1e-12)


@pytest.mark.student("walk")
def test_walk_of_zero_steps_and_a_fresh_state(module):
    x, t = data(10)
    path, errors = module.walk(_sgd, np.array([0.5, 0.5]), x, t, 0, lr=1.0)
    np.testing.assert_array_equal(np.asarray(path), [[0.5, 0.5]])
    assert np.shape(errors) == (1,)
    seen = []

    def spy(w, g, state, lr):
        seen.append(dict(state))
        state["n"] = state.get("n", 0) + 1
        return w - lr * g
    module.walk(spy, np.zeros(2), x, t, 2, lr=0.1)
    module.walk(spy, np.zeros(2), x, t, 2, lr=0.1)
    assert seen == [{}, {"n": 1}, {}, {"n": 1}], "each walk starts from an empty state"


# --- Pima ------------------------------------------------------------------------------------

@pytest.mark.student("compare_optimizers")
def test_compare_optimizers_on_pima(module, report):
    """Your network with Adam: at least 72 % after 30 epochs (76.0 % with the solution);
    two equal optimisers give equal curves (same initial weights, same batches)."""
    x_train, y_train, valid = module.pima_split()
    histories = module.compare_optimizers(
        x_train, y_train, valid, {"Adam": Adam(lr=3e-3), "Adam again": Adam(lr=3e-3),
                                  "SGD": SGD(lr=0.05)}, epochs=30)
    assert set(histories) == {"Adam", "Adam again", "SGD"}
    np.testing.assert_allclose(histories["Adam"]["train_loss"],
                               histories["Adam again"]["train_loss"], rtol=1e-6,
                               err_msg="the same optimiser must give the same run: seed the "
                                       "initial weights and the batches")
    assert not np.allclose(histories["Adam"]["train_loss"], histories["SGD"]["train_loss"])
    acc = histories["Adam"]["valid_accuracy"][-1]
    report(accuracy=acc, threshold=0.72)
    assert acc >= 0.72
