"""Optimizers and learning-rate schedules against formulas written out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nn import backends
from nn.layers import Dense
from nn.optim import (SGD, Adagrad, Adam, ConstantLR, ExponentialDecayLR, LinearDecayLR, RMSprop,
                      as_schedule)


class FakeLayer:
    """The least an optimizer needs: ``params`` and ``grads`` dicts of arrays."""

    def __init__(self, **params):
        B = backends.current()
        self.params = {name: B.xp.asarray(np.array(v, dtype=B.param_dtype))
                       for name, v in params.items()}
        self.grads = {}

    def set_grad(self, name, g):
        B = backends.current()
        self.grads[name] = B.xp.asarray(np.array(g, dtype=B.param_dtype))

    def __repr__(self):
        return "FakeLayer()"


def host(a):
    return backends.current().to_host(a)


P0 = [1.0, -2.0, 0.5, 3.0]
GRADS = [[0.5, -1.0, 0.25, 2.0], [-0.3, 0.4, 1.5, -2.0], [0.1, 0.0, -0.7, 1.0]]


# -- SGD ------------------------------------------------------------------------------------------
def test_sgd_one_step(fp64):
    layer = FakeLayer(W=P0)
    layer.set_grad("W", GRADS[0])
    SGD(lr=0.1).step([(layer, "W")])
    np.testing.assert_allclose(host(layer.params["W"]), [0.95, -1.9, 0.475, 2.8], rtol=1e-15)


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 0.1), (0.9, 0.0), (0.0, 0.0)])
def test_sgd_does_not_modify_the_gradient(fp64, momentum, weight_decay):
    layer = FakeLayer(W=P0)
    layer.set_grad("W", GRADS[0])
    for _ in range(2):
        SGD(lr=0.1, momentum=momentum, weight_decay=weight_decay).step([(layer, "W")])
    np.testing.assert_array_equal(host(layer.grads["W"]), GRADS[0])


@pytest.mark.parametrize("precision", ["fp32", "fp64"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_in_place_gives_the_bits_of_the_formula(precision, momentum, monkeypatch):
    """The CPU's in-place SGD step writes what :meth:`SGD._update` returns, bit for bit,
    parameter and velocity, over several steps."""
    backends.use("numpy", precision, seed=0)
    rng = np.random.default_rng(5)
    start = rng.standard_normal((7, 13))
    grads = [rng.standard_normal((7, 13)) for _ in range(3)]
    results = []
    for in_place in (True, False):
        if not in_place:
            monkeypatch.setattr(SGD, "_update_in_place", lambda self, p, g, state: False)
        layer, opt = FakeLayer(W=start), SGD(lr=0.03, momentum=momentum)
        for g in grads:
            layer.set_grad("W", g)
            opt.step([(layer, "W")])
        state = opt.state[layer]["W"]
        results.append([host(layer.params["W"])] + [host(v) for v in state.values()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_sgd_momentum_three_steps(fp64):
    lr, mu = 0.1, 0.9
    layer = FakeLayer(W=P0)
    opt = SGD(lr=lr, momentum=mu)
    for g in GRADS:
        layer.set_grad("W", g)
        opt.step([(layer, "W")])
    g1, g2, g3 = (np.array(g) for g in GRADS)
    # PyTorch's convention, unrolled: v1 = g1, v2 = mu g1 + g2, v3 = mu² g1 + mu g2 + g3
    v1 = g1
    v2 = mu * g1 + g2
    v3 = mu**2 * g1 + mu * g2 + g3
    expected = np.array(P0) - lr * (v1 + v2 + v3)
    np.testing.assert_allclose(host(layer.params["W"]), expected, rtol=1e-14)


def test_sgd_weight_decay(fp64):
    lr, wd = 0.1, 0.01
    layer = FakeLayer(W=P0)
    layer.set_grad("W", GRADS[0])
    SGD(lr=lr, weight_decay=wd).step([(layer, "W")])
    p, g = np.array(P0), np.array(GRADS[0])
    np.testing.assert_allclose(host(layer.params["W"]), p - lr * (g + wd * p), rtol=1e-15)


def test_sgd_weight_decay_alone_shrinks_weights(fp64):
    layer = FakeLayer(W=P0)
    layer.set_grad("W", np.zeros(4))
    SGD(lr=0.5, weight_decay=0.2).step([(layer, "W")])
    np.testing.assert_allclose(host(layer.params["W"]), np.array(P0) * 0.9, rtol=1e-15)


OPTIMIZERS = {
    "SGD": lambda: SGD(lr=0.1),
    "SGD-momentum": lambda: SGD(lr=0.1, momentum=0.5, weight_decay=0.01),
    "Adam": lambda: Adam(lr=0.01, betas=(0.8, 0.9), eps=1e-3),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grad_scale_divides_the_gradient(fp64, name):
    scale = 1024.0
    scaled, plain = FakeLayer(W=P0), FakeLayer(W=P0)
    opt_scaled, opt_plain = OPTIMIZERS[name](), OPTIMIZERS[name]()
    for g in GRADS:
        scaled.set_grad("W", np.array(g) * scale)
        plain.set_grad("W", g)
        opt_scaled.step([(scaled, "W")], grad_scale=scale)
        opt_plain.step([(plain, "W")])
    np.testing.assert_allclose(host(scaled.params["W"]), host(plain.params["W"]), rtol=1e-14)
    assert not np.allclose(host(plain.params["W"]), P0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grad_scale_may_be_a_device_scalar(fp64, name):
    scaled, plain = FakeLayer(W=P0), FakeLayer(W=P0)
    opt_scaled, opt_plain = OPTIMIZERS[name](), OPTIMIZERS[name]()
    scale = fp64.asarray(np.array(256.0))            # a 0-d array, as the loss scaler gives
    for g in GRADS:
        scaled.set_grad("W", np.array(g) * 256.0)
        plain.set_grad("W", g)
        opt_scaled.step([(scaled, "W")], grad_scale=scale)
        opt_plain.step([(plain, "W")])
    np.testing.assert_allclose(host(scaled.params["W"]), host(plain.params["W"]), rtol=1e-14)


def _state(opt):
    return {(id(layer), name, key): host(value).copy()
            for layer, states in opt.state.items() for name, state in states.items()
            for key, value in state.items()}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_found_inf_skips_the_step_on_the_device(fp64, name, bad):
    """A skipped step leaves parameters and state alone, and the run continues as if the
    step had never been asked for."""
    skipping, plain = FakeLayer(W=P0), FakeLayer(W=P0)
    opt_skipping, opt_plain = OPTIMIZERS[name](), OPTIMIZERS[name]()
    skipping.set_grad("W", GRADS[0])
    opt_skipping.step([(skipping, "W")], found_inf=fp64.asarray(np.array(False)))
    before, state_before = host(skipping.params["W"]).copy(), _state(opt_skipping)
    overflowed = np.array(GRADS[1])
    overflowed[2] = bad
    skipping.set_grad("W", overflowed)
    opt_skipping.step([(skipping, "W")], found_inf=fp64.asarray(np.array(True)))
    np.testing.assert_array_equal(host(skipping.params["W"]), before)
    after = _state(opt_skipping)
    assert after.keys() == state_before.keys()
    for key in after:
        np.testing.assert_array_equal(after[key], state_before[key], err_msg=str(key))
    # then two real steps: the same as an optimizer that never saw the skipped one
    for g in GRADS[1:]:
        skipping.set_grad("W", g)
        opt_skipping.step([(skipping, "W")], found_inf=fp64.asarray(np.array(False)))
    for g in [GRADS[0], *GRADS[1:]]:
        plain.set_grad("W", g)
        opt_plain.step([(plain, "W")])
    np.testing.assert_allclose(host(skipping.params["W"]), host(plain.params["W"]), rtol=1e-14)


def test_a_skipped_first_step_leaves_the_optimizer_as_new(fp64):
    """Skipped before any real step, momentum starts from the next gradient, as in PyTorch."""
    a, b = FakeLayer(W=P0), FakeLayer(W=P0)
    opt_a, opt_b = SGD(0.1, momentum=0.9), SGD(0.1, momentum=0.9)
    a.set_grad("W", [np.inf] * 4)
    opt_a.step([(a, "W")], grad_scale=8.0, found_inf=fp64.asarray(np.array(True)))
    np.testing.assert_array_equal(host(a.params["W"]), P0)
    for g in GRADS:
        a.set_grad("W", g)
        b.set_grad("W", g)
        opt_a.step([(a, "W")])
        opt_b.step([(b, "W")])
    np.testing.assert_allclose(host(a.params["W"]), host(b.params["W"]), rtol=1e-15)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_missing_gradient_raises(fp64, name):
    layer = FakeLayer(W=P0, b=[0.0])
    layer.set_grad("W", GRADS[0])
    with pytest.raises(RuntimeError, match=r"'b'.*backward\(\)"):
        OPTIMIZERS[name]().step([(layer, "W"), (layer, "b")])


def test_sgd_updates_a_real_dense_layer(fp64):
    layer = Dense(3, 2)
    x = fp64.asarray(np.random.default_rng(0).standard_normal((4, 3)))
    layer.forward(x)
    layer.backward(fp64.asarray(np.ones((4, 2))))
    W, b = host(layer.params["W"]).copy(), host(layer.params["b"]).copy()
    dW, db = host(layer.grads["W"]).copy(), host(layer.grads["b"]).copy()
    SGD(lr=0.5).step([(layer, "W"), (layer, "b")])
    np.testing.assert_allclose(host(layer.params["W"]), W - 0.5 * dW, rtol=1e-15)
    np.testing.assert_allclose(host(layer.params["b"]), b - 0.5 * db, rtol=1e-15)
    np.testing.assert_array_equal(db, [4.0, 4.0])


# -- Adam -----------------------------------------------------------------------------------------
def test_adam_first_step_is_lr_times_sign(fp64):
    lr = 1e-3
    layer = FakeLayer(W=P0)
    layer.set_grad("W", GRADS[0])
    Adam(lr=lr).step([(layer, "W")])
    moved = host(layer.params["W"]) - np.array(P0)
    # bias correction makes m̂ = g and v̂ = g², so the step is lr * g / (|g| + eps)
    np.testing.assert_allclose(moved, -lr * np.sign(GRADS[0]), rtol=1e-6)


def _adam_reference(p, grads, lr, b1, b2, eps):
    """Adam written out element by element, in plain Python floats."""
    p = list(p)
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        for i in range(len(p)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("lr, betas, eps", [(1e-3, (0.9, 0.999), 1e-8), (0.1, (0.5, 0.8), 1e-2)])
def test_adam_three_steps_match_reference(fp64, lr, betas, eps):
    layer = FakeLayer(W=P0)
    opt = Adam(lr=lr, betas=betas, eps=eps)
    for g in GRADS:
        layer.set_grad("W", g)
        opt.step([(layer, "W")])
    expected = _adam_reference(P0, GRADS, lr, *betas, eps)
    np.testing.assert_allclose(host(layer.params["W"]), expected, rtol=1e-13)


def test_adam_keeps_state_per_parameter(fp64):
    """Two parameters updated by one Adam equal two separate runs."""
    a, b = FakeLayer(W=P0), FakeLayer(W=P0[::-1])
    opt = Adam(lr=0.1)
    for g in GRADS:
        a.set_grad("W", g)
        b.set_grad("W", g[::-1])
        opt.step([(a, "W"), (b, "W")])
    expected_a = _adam_reference(P0, GRADS, 0.1, 0.9, 0.999, 1e-8)
    expected_b = _adam_reference(P0[::-1], [g[::-1] for g in GRADS], 0.1, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(host(a.params["W"]), expected_a, rtol=1e-13)
    np.testing.assert_allclose(host(b.params["W"]), expected_b, rtol=1e-13)


# -- RMSprop and Adagrad ----------------------------------------------------------------------------
def _rmsprop_reference(p, grads, lr, alpha, eps, weight_decay=0.0):
    """RMSprop written out element by element (PyTorch's rule)."""
    p, v = list(p), [0.0] * len(p)
    for g in grads:
        for i in range(len(p)):
            gi = g[i] + weight_decay * p[i]
            v[i] = alpha * v[i] + (1 - alpha) * gi**2
            p[i] -= lr * gi / (math.sqrt(v[i]) + eps)
    return p


def _adagrad_reference(p, grads, lr, eps, weight_decay=0.0):
    """Adagrad written out element by element (PyTorch's rule)."""
    p, s = list(p), [0.0] * len(p)
    for g in grads:
        for i in range(len(p)):
            gi = g[i] + weight_decay * p[i]
            s[i] += gi**2
            p[i] -= lr * gi / (math.sqrt(s[i]) + eps)
    return p


@pytest.mark.parametrize("lr, alpha, eps, wd", [(1e-2, 0.99, 1e-8, 0.0), (0.1, 0.5, 1e-3, 0.1)])
def test_rmsprop_three_steps_match_reference(fp64, lr, alpha, eps, wd):
    layer = FakeLayer(W=P0)
    opt = RMSprop(lr=lr, alpha=alpha, eps=eps, weight_decay=wd)
    for g in GRADS:
        layer.set_grad("W", g)
        opt.step([(layer, "W")])
    expected = _rmsprop_reference(P0, GRADS, lr, alpha, eps, wd)
    np.testing.assert_allclose(host(layer.params["W"]), expected, rtol=1e-13)


@pytest.mark.parametrize("lr, eps, wd", [(1e-2, 1e-10, 0.0), (0.3, 1e-2, 0.05)])
def test_adagrad_three_steps_match_reference(fp64, lr, eps, wd):
    layer = FakeLayer(W=P0)
    opt = Adagrad(lr=lr, eps=eps, weight_decay=wd)
    for g in GRADS:
        layer.set_grad("W", g)
        opt.step([(layer, "W")])
    expected = _adagrad_reference(P0, GRADS, lr, eps, wd)
    np.testing.assert_allclose(host(layer.params["W"]), expected, rtol=1e-13)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_steps_equal_torch_optim_from_the_same_state(fp64, name):
    torch = pytest.importorskip("torch")
    kwargs = {"SGD": dict(lr=0.1, momentum=0.9, weight_decay=0.01),
              "Adam": dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6),
              "RMSprop": dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01),
              "Adagrad": dict(lr=0.1, eps=1e-8)}[name]
    layer = FakeLayer(W=P0)
    mine = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop, "Adagrad": Adagrad}[name](**kwargs)
    w = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    theirs = getattr(torch.optim, name)([w], **kwargs)
    for g in GRADS:
        layer.set_grad("W", g)
        mine.step([(layer, "W")])
        w.grad = torch.tensor(g, dtype=torch.float64)
        theirs.step()
    np.testing.assert_allclose(host(layer.params["W"]), w.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: RMSprop(0.1), lambda: Adagrad(0.1)],
                         ids=["RMSprop", "Adagrad"])
def test_new_optimizers_skip_an_overflowed_step(fp64, make):
    layer = FakeLayer(W=P0)
    opt = make()
    layer.set_grad("W", GRADS[0])
    opt.step([(layer, "W")])
    after = host(layer.params["W"]).copy()
    state = {k: host(v).copy() for k, v in opt.state[layer]["W"].items()}
    layer.set_grad("W", [np.inf, 1.0, 2.0, 3.0])
    opt.step([(layer, "W")], found_inf=fp64.asarray(True))
    np.testing.assert_array_equal(host(layer.params["W"]), after)
    for k, v in opt.state[layer]["W"].items():
        np.testing.assert_array_equal(host(v), state[k])


@pytest.mark.parametrize("kwargs", [{"alpha": 1.0}, {"alpha": -0.1}, {"eps": 0.0},
                                    {"weight_decay": -1.0}])
def test_invalid_rmsprop_settings_raise(kwargs):
    with pytest.raises(ValueError, match="RMSprop"):
        RMSprop(**kwargs)


# -- gradient-norm clipping ------------------------------------------------------------------------
def test_clip_norm_scales_every_gradient_by_the_global_norm(fp64):
    a, b = FakeLayer(W=[0.0, 0.0]), FakeLayer(W=[0.0])
    a.set_grad("W", [3.0, 0.0])
    b.set_grad("W", [4.0])                       # global norm 5
    SGD(1.0, clip_norm=2.5).step([(a, "W"), (b, "W")])
    factor = 2.5 / (5.0 + 1e-6)                  # torch.nn.utils.clip_grad_norm_'s rule
    np.testing.assert_allclose(host(a.params["W"]), [-3.0 * factor, 0.0], rtol=1e-14)
    np.testing.assert_allclose(host(b.params["W"]), [-4.0 * factor], rtol=1e-14)


def test_clip_norm_leaves_small_gradients_alone_and_sees_through_the_loss_scale(fp64):
    a = FakeLayer(W=[1.0, 1.0])
    a.set_grad("W", [0.3 * 64, 0.4 * 64])       # norm 0.5 once the scale 64 is divided out
    SGD(1.0, clip_norm=1.0).step([(a, "W")], grad_scale=64.0)
    np.testing.assert_allclose(host(a.params["W"]), [0.7, 0.6], rtol=1e-12)


# -- state ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1, momentum=0.9), lambda: Adam(lr=0.1)],
                         ids=["SGD-momentum", "Adam"])
def test_state_persists_and_reset_clears_it(fp64, make):
    opt = make()
    layer = FakeLayer(W=P0)
    layer.set_grad("W", GRADS[0])
    opt.step([(layer, "W")])
    assert opt.state
    after_one = host(layer.params["W"]).copy()
    layer.set_grad("W", GRADS[1])
    opt.step([(layer, "W")])
    second_move = host(layer.params["W"]) - after_one
    # a fresh optimizer given the second gradient moves differently: the state carried over
    stateless = FakeLayer(W=after_one)
    stateless.set_grad("W", GRADS[1])
    make().step([(stateless, "W")])
    assert not np.allclose(second_move, host(stateless.params["W"]) - after_one, rtol=1e-6)

    opt.reset()
    assert not opt.state
    assert opt.steps == 0
    fresh = FakeLayer(W=P0)
    fresh.set_grad("W", GRADS[0])
    opt.step([(fresh, "W")])
    # after reset the first step is the first step again
    np.testing.assert_allclose(host(fresh.params["W"]), after_one, rtol=1e-15)


# -- schedules ------------------------------------------------------------------------------------
def test_constant_lr():
    schedule = ConstantLR(0.05)
    assert [schedule(e) for e in (0, 1, 100)] == [0.05, 0.05, 0.05]


def test_linear_decay_lr():
    schedule = LinearDecayLR(0.1, 0.01, 10)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(5) == pytest.approx(0.055)
    assert schedule(10) == pytest.approx(0.01)
    assert schedule(25) == pytest.approx(0.01)


def test_exponential_decay_lr():
    schedule = ExponentialDecayLR(0.1, 0.5)
    assert [schedule(e) for e in (0, 1, 3)] == pytest.approx([0.1, 0.05, 0.0125])


@pytest.mark.parametrize("make", [lambda: LinearDecayLR(0.1, 0.01, 0),
                                  lambda: ExponentialDecayLR(0.1, 0.0),
                                  lambda: ExponentialDecayLR(0.1, 1.5)],
                         ids=["linear-0-epochs", "gamma-0", "gamma-1.5"])
def test_invalid_schedule_raises(make):
    with pytest.raises(ValueError):
        make()


def test_start_epoch_sets_lr_from_the_schedule():
    opt = SGD(lr=LinearDecayLR(0.1, 0.0, 4))
    assert opt.lr == pytest.approx(0.1)
    opt.start_epoch(2)
    assert opt.lr == pytest.approx(0.05)
    opt.start_epoch(9)
    assert opt.lr == pytest.approx(0.0)


def test_start_epoch_changes_the_step_size(fp64):
    opt = SGD(lr=ExponentialDecayLR(1.0, 0.5))
    opt.start_epoch(2)  # lr = 0.25
    layer = FakeLayer(W=[1.0])
    layer.set_grad("W", [1.0])
    opt.step([(layer, "W")])
    np.testing.assert_allclose(host(layer.params["W"]), [0.75], rtol=1e-15)


@pytest.mark.parametrize("lr", [0.1, 1, np.float64(0.3), np.float32(0.5)])
def test_number_lr_is_wrapped_in_constant_lr(lr):
    for opt in (SGD(lr=lr), Adam(lr=lr)):
        assert isinstance(opt.schedule, ConstantLR)
        assert opt.lr == float(lr)
        opt.start_epoch(7)
        assert opt.lr == float(lr)
    assert isinstance(as_schedule(lr), ConstantLR)


def test_callable_lr_is_used_as_schedule():
    opt = SGD(lr=lambda epoch: 1.0 / (epoch + 1))
    opt.start_epoch(3)
    assert opt.lr == 0.25


@pytest.mark.parametrize("lr", [0, 0.0, -0.1, float("nan"), float("inf"), "0.1", None, True])
@pytest.mark.parametrize("make", [SGD, Adam])
def test_invalid_lr_raises(make, lr):
    with pytest.raises(ValueError, match="learning rate"):
        make(lr=lr)


@pytest.mark.parametrize("kwargs", [{"momentum": 1.0}, {"momentum": -0.1},
                                    {"momentum": float("nan")}, {"weight_decay": -0.1},
                                    {"weight_decay": float("nan")}])
def test_invalid_sgd_settings_raise(kwargs):
    with pytest.raises(ValueError, match="SGD"):
        SGD(lr=0.1, **kwargs)


@pytest.mark.parametrize("kwargs", [{"betas": (1.0, 0.999)}, {"betas": (0.9, 1.0)},
                                    {"betas": (-0.1, 0.999)}, {"betas": (0.9, float("nan"))},
                                    {"eps": 0.0}, {"eps": -1e-8}, {"weight_decay": -0.1}])
def test_invalid_adam_settings_raise(kwargs):
    with pytest.raises(ValueError, match="Adam"):
        Adam(**kwargs)


# -- mixed precision ------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: SGD(lr=1e-4), lambda: Adam(lr=1e-4)],
                         ids=["SGD", "Adam"])
def test_mixed_updates_float32_master_weights(mixed, make):
    """A step of 1e-4 on a weight of 1 is below float16's resolution (2**-11) but kept."""
    layer = FakeLayer(W=[1.0, 1.0])
    assert layer.params["W"].dtype == np.float32
    layer.set_grad("W", [1.0, -1.0])
    make().step([(layer, "W")])
    W = host(layer.params["W"])
    assert W.dtype == np.float32
    np.testing.assert_allclose(W, [1 - 1e-4, 1 + 1e-4], rtol=1e-6)
    # the same numbers rounded to float16 would have lost the update
    np.testing.assert_array_equal(W.astype(np.float16), [1.0, 1.0])


def test_mixed_dense_step_in_float32(mixed):
    layer = Dense(4, 3)
    layer.forward(mixed.asarray(np.random.default_rng(0).standard_normal((5, 4))))
    layer.backward(mixed.asarray(np.random.default_rng(1).standard_normal((5, 3))))
    W, dW = host(layer.params["W"]).copy(), host(layer.grads["W"]).copy()
    SGD(lr=1e-3).step([(layer, "W"), (layer, "b")], grad_scale=2.0)
    assert layer.params["W"].dtype == np.float32
    assert layer.params["b"].dtype == np.float32
    np.testing.assert_allclose(host(layer.params["W"]), W - np.float32(1e-3 / 2.0) * dW, rtol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_a_schedule_giving_a_bad_rate_raises_at_that_epoch(bad):
    opt = SGD(lr=lambda epoch: 0.1 if epoch < 3 else bad)
    opt.start_epoch(2)
    with pytest.raises(ValueError, match="epoch 3"):
        opt.start_epoch(3)


def test_linear_decay_to_zero_is_allowed():
    opt = SGD(lr=LinearDecayLR(0.1, 0.0, 4))
    opt.start_epoch(4)
    assert opt.lr == 0.0


def test_state_of_a_deleted_layer_is_dropped(fp64):
    import gc
    layer = Dense(3, 2)
    opt = SGD(0.1, momentum=0.9)
    layer.grads = {"W": layer.params["W"] * 0 + 1, "b": layer.params["b"] * 0 + 1}
    opt.step([(layer, "W"), (layer, "b")])
    assert len(opt.state) == 1
    del layer
    gc.collect()
    assert len(opt.state) == 0  # a new layer can never inherit stale momentum


def test_a_subclass_rewriting_sgds_rule_is_used(fp64):
    """SGD's in-place step does not bypass a subclass's own ``_update``."""
    class HalfSGD(SGD):
        def _update(self, p, g, state):
            return p - 0.5 * self.lr * g, {}
    layer = FakeLayer(W=P0)
    layer.set_grad("W", GRADS[0])
    HalfSGD(lr=0.1).step([(layer, "W")])
    np.testing.assert_allclose(host(layer.params["W"]), np.array(P0) - 0.05 * np.array(GRADS[0]),
                               rtol=1e-15)
