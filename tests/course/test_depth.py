"""The depth practical: the initialisation scales, the activations of a deep stack, the
per-layer gradient norms of an nn network, and deep networks that still train (the
exploration)."""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network
from nn.layers import Dense, ReLU, Residual, Sigmoid
from nn.losses import MSE

PRACTICAL = "depth"


# --- init_std --------------------------------------------------------------------------------

@pytest.mark.student("init_std")
@pytest.mark.parametrize("fan_in,fan_out", [(100, 50), (1, 1)])
def test_init_std_values(module, report, fan_in, fan_out):
    got = {s: float(module.init_std(s, fan_in, fan_out)) for s in ("small", "large", "xavier", "he")}
    want = {"small": 0.01, "large": 1.0, "xavier": np.sqrt(2 / (fan_in + fan_out)),
            "he": np.sqrt(2 / fan_in)}
    err = max(abs(got[s] - want[s]) / want[s] for s in want)
    report(rel_error=err, limit=1e-12, case=f"fan_in {fan_in}, fan_out {fan_out}")
    assert err < 1e-12, f"got {got}, expected {want}"


@pytest.mark.student("init_std")
def test_init_std_agrees_with_the_library_draws(module, report):
    from nn.layers import init

    rng = np.random.default_rng(0)
    for scheme in ("xavier", "he"):
        drawn = init.draw(scheme, (400, 300), 400, 300, rng)
        std = float(module.init_std(scheme, 400, 300))
        err = abs(drawn.std() - std) / std
        report(rel_error=err, limit=0.01, case=scheme)
        assert err < 0.01, f"{scheme}: nn draws weights of std {drawn.std():.4f}, you say {std:.4f}"


# --- stack_activations -----------------------------------------------------------------------

def _reference_stack(x, n_layers, std, f, seed):
    rng = np.random.default_rng(seed)
    out, a = [], x
    for _ in range(n_layers):
        a = f(a @ rng.normal(0.0, std, (x.shape[1], x.shape[1])))
        out.append(a)
    return out


@pytest.mark.student("stack_activations")
def test_stack_activations_by_hand(module, report):
    x = np.random.default_rng(3).normal(size=(20, 7))
    got = module.stack_activations(x, 5, 0.4, np.tanh, seed=2)
    ref = _reference_stack(x, 5, 0.4, np.tanh, 2)
    assert len(got) == 5
    err = max(np.max(np.abs(np.asarray(g) - r)) for g, r in zip(got, ref))
    report(abs_error=err, limit=1e-12)
    assert err < 1e-12, "draw each layer's (D, D) weights in order from one generator"


@pytest.mark.student("stack_activations")
def test_stack_activations_of_one_layer_and_one_example(module):
    x = np.array([[1.0, -2.0, 0.5]])
    relu = lambda h: np.maximum(h, 0.0)      # noqa: E731
    got = module.stack_activations(x, 1, 1.0, relu, seed=0)
    ref = _reference_stack(x, 1, 1.0, relu, 0)
    assert len(got) == 1 and np.shape(got[0]) == (1, 3)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)


# --- gradient_norms --------------------------------------------------------------------------

@pytest.mark.student("gradient_norms")
def test_gradient_norms_of_a_small_network_by_hand(module, report):
    with nn.backends.using("numpy", "fp64", seed=4):
        net = Network([Dense(3, 5), Sigmoid(), Dense(5, 2)], MSE())
        rng = np.random.default_rng(5)
        x, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
        W1, b1 = net.layers[0].params["W"].copy(), net.layers[0].params["b"].copy()
        W2, b2 = net.layers[2].params["W"].copy(), net.layers[2].params["b"].copy()
        norms = np.asarray(module.gradient_norms(net, x, t))
        np.testing.assert_array_equal(net.layers[0].params["W"], W1, err_msg="weights changed")
    a = 1 / (1 + np.exp(-(x @ W1 + b1)))
    y = a @ W2 + b2
    dy = 2 * (y - t) / y.size                     # MSE: the mean over all elements
    dW2 = a.T @ dy
    dW1 = x.T @ ((dy @ W2.T) * a * (1 - a))
    ref = np.array([np.linalg.norm(dW1), np.linalg.norm(dW2)])
    assert norms.shape == (2,)
    err = np.max(np.abs(norms - ref) / ref)
    report(rel_error=err, limit=1e-10)
    assert err < 1e-10, f"got {norms}, expected {ref} (first layer first)"


@pytest.mark.student("gradient_norms")
def test_gradient_norms_see_inside_residual_blocks_with_a_batch_of_one(module):
    with nn.backends.using("numpy", "fp64", seed=1):
        net = Network([Dense(4, 6, init="he"), ReLU(),
                       Residual([Dense(6, 6, init="he"), ReLU(), Dense(6, 6, init="he")]),
                       Dense(6, 3)], nn.losses.SoftmaxCrossEntropy())
        x, y = np.random.default_rng(2).normal(size=(1, 4)), np.array([2])
        norms = np.asarray(module.gradient_norms(net, x, y))
        assert norms.shape == (4,), "four Dense layers, two of them inside the block"
        ref = [np.linalg.norm(layer.grads["W"]) for layer in module.dense_layers(net)]
    np.testing.assert_allclose(norms, ref, rtol=1e-12)
    assert np.all(norms > 0)


# --- deep networks (the exploration) ---------------------------------------------------------

def _data(module):
    x, y = module.make_spirals(n=400, seed=0)
    return (x - x.mean(axis=0)) / x.std(axis=0), y


@pytest.mark.student("deep_network")
def test_deep_networks_at_initialisation(module, report):
    """First over last layer's gradient norm: < 1 % for 20 sigmoid layers, > 10 % for the
    remedies (measured: 1e-13, and 0.16 / 0.28 / 9 with the solution)."""
    x, y = _data(module)
    ratios = {}
    for kind in module.KINDS:
        net = module.deep_network(kind, depth=20, width=32, seed=0)
        assert len(module.dense_layers(net)) >= 21, f"{kind}: at least 20 hidden Dense layers"
        norms = np.asarray(module.gradient_norms(net, x, y))
        ratios[kind] = norms[0] / norms[-1]
    report(**{f"ratio_{k}": v for k, v in ratios.items()})
    assert ratios["sigmoid"] < 0.01, "20 sigmoid layers must show the vanishing gradient"
    for kind in ("relu", "residual", "norm"):
        assert ratios[kind] > 0.1, f"{kind}: the first layer's gradient vanishes ({ratios[kind]:.2g})"


@pytest.mark.student("deep_network")
def test_deep_networks_train(module, report):
    """15 epochs of SGD with momentum on 400 spiral points: the three remedies reach 85 %
    (measured 100 % for all three with the solution); equal seeds give equal networks."""
    x, y = _data(module)
    a, b = module.deep_network("relu", seed=3), module.deep_network("relu", seed=3)
    np.testing.assert_array_equal(nn.backends.to_host(a.layers[0].params["W"]),
                                  nn.backends.to_host(b.layers[0].params["W"]))
    acc = {}
    for kind in ("relu", "residual", "norm"):
        net = module.deep_network(kind, depth=20, width=32, seed=0)
        history = net.fit(x, y, epochs=15, batch_size=32, seed=0, progress=False,
                          optimizer=nn.optim.SGD(lr=0.03, momentum=0.9))
        acc[kind] = history["train_accuracy"][-1]
    report(**{f"accuracy_{k}": v for k, v in acc.items()}, threshold=0.85)
    for kind, value in acc.items():
        assert value >= 0.85, f"{kind}: training accuracy {value:.1%} < 85 %"
