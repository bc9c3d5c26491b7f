"""The GPU and mixed-precision practical: float16 underflow, backpropagation of a scaled
loss, the dynamic loss scale, and 8-bit quantization of weights. Everything runs on the
CPU (the "mixed" arithmetic is emulated by the NumPy backend)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import nn
from nn import backends
from nn.backends import LossScaler
from nn.data import CenterMaxAbs, load_wine
from nn.layers import Dense, Tanh
from nn.losses import SoftmaxCrossEntropy
from nn.optim import Adam

PRACTICAL = "mixed_precision"


# -- fp16_lost_fraction -----------------------------------------------------------------------
@pytest.mark.student("fp16_lost_fraction")
def test_fp16_lost_fraction_of_hand_picked_values(module):
    # float16 flushes to zero what lies below 2**-25 (half its smallest subnormal, 2.98e-8)
    values = np.array([1e-3, 1e-6, 1e-8, -1e-9, 0.0, 3e-8, 2.9e-8, 65504.0, 0.0])
    # nonzero: 7; lost: 1e-8, -1e-9, 2.9e-8 (3e-8 rounds up to 2**-24, 6e-8)
    assert module.fp16_lost_fraction(values) == pytest.approx(3 / 7)
    assert module.fp16_lost_fraction(np.array([1.0, -2.0, 1e-4])) == 0.0
    assert module.fp16_lost_fraction(np.array([1e-12, -1e-20], dtype=np.float32)) == 1.0


@pytest.mark.student("fp16_lost_fraction")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fp16_lost_fraction_matches_the_threshold(module, dtype):
    rng = np.random.default_rng(0)
    values = (10.0 ** rng.uniform(-12, 0, size=5000) * rng.choice([-1, 1], 5000)).astype(dtype)
    expected = np.mean(np.abs(values) < 2.0**-25)
    assert 0.3 < expected < 0.5      # the test data straddle the limit
    assert module.fp16_lost_fraction(values) == pytest.approx(expected, abs=1e-12)


# -- scaled_backward -----------------------------------------------------------------------------
def tiny_gradient_network():
    """A small network with small weights and inputs: its gradients fall below float16."""
    net = nn.Network([Dense(20, 32), Tanh(), Dense(32, 32), Tanh(), Dense(32, 5)],
                     SoftmaxCrossEntropy())
    for layer in net.layers[::2]:
        layer.params["W"] *= 0.02
    return net


def batch():
    rng = np.random.default_rng(8)
    return 0.02 * rng.normal(size=(64, 20)), rng.integers(0, 5, size=64)


def library_backward(net, x, y):
    """The reference: the library's own backward, every dy and every gradient, in float64."""
    B = backends.current()
    net.loss.forward(net.forward(x), B.asarray(y))
    dy, dys = net.loss.backward(), []
    for layer in reversed(net.layers):
        dys.append(B.to_host(dy).ravel())
        dy = layer.backward(dy)
    grads = [B.to_host(layer.grads[name]).ravel() for layer, name in net.parameters()]
    return np.concatenate(dys), np.concatenate(grads)


@pytest.mark.student("scaled_backward")
@pytest.mark.parametrize("scale", [1.0, 2.0**10])
def test_scaled_backward_in_float64_is_the_plain_backward(module, report, scale):
    with backends.using("numpy", "fp64", seed=0):
        net = tiny_gradient_network()
        x, y = batch()
        ref_dys, ref_grads = library_backward(net, x, y)
        dys, grads = module.scaled_backward(net, x, y, loss_scale=scale)
    assert dys.dtype == grads.dtype == np.float64
    assert dys.shape == ref_dys.shape, "dys: the dy entering each layer, last layer first"
    assert grads.shape == ref_grads.shape, "grads: every parameter, net.parameters() order"
    error = max(nn.gradcheck.rel_error(dys, ref_dys), nn.gradcheck.rel_error(grads, ref_grads))
    report(rel_error=error, limit=1e-12)
    assert error < 1e-12


@pytest.mark.student("scaled_backward")
def test_loss_scaling_repairs_float16_underflow(module, report):
    x, y = batch()
    with backends.using("numpy", "fp64", seed=0):
        exact_dys, exact_grads = library_backward(tiny_gradient_network(), x, y)
    with backends.using("numpy", "mixed", seed=0):
        dys_1, grads_1 = module.scaled_backward(tiny_gradient_network(), x, y, loss_scale=1.0)
    with backends.using("numpy", "mixed", seed=0):
        dys_s, grads_s = module.scaled_backward(tiny_gradient_network(), x, y,
                                                loss_scale=2.0**15)
    nonzero = exact_grads != 0
    lost_1 = np.mean(grads_1[nonzero] == 0)
    lost_s = np.mean(grads_s[nonzero] == 0)
    error = float(np.max(np.abs(grads_s - exact_grads)) / np.max(np.abs(exact_grads)))
    report(rel_error=error, limit=1e-2)
    assert lost_1 > 0.1, "without scaling, float16 should lose many of these tiny gradients"
    assert lost_s < 0.01, "scaled by 2**15 they should survive: did you unscale at the end?"
    assert error < 1e-2
    assert np.mean(dys_1[exact_dys != 0] == 0) > np.mean(dys_s[exact_dys != 0] == 0)


# -- update_scale ----------------------------------------------------------------------------------
@pytest.mark.student("update_scale")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_update_scale_follows_the_dynamic_rule(module, seed):
    """Step by step against the library's LossScaler, on a random run of overflows."""
    rng = np.random.default_rng(seed)
    flags = rng.random(200) > 0.15
    flags[50:70] = False                               # a long run: down to min_scale
    oracle = LossScaler(init_scale=2.0**10, growth_interval=3, min_scale=4.0)
    scale, clean = 2.0**10, 0
    for i, finite in enumerate(flags):
        used = scale
        scale, clean, apply = module.update_scale(scale, bool(finite), clean, growth_interval=3,
                                                  min_scale=4.0)
        assert bool(oracle.update(bool(finite))) == apply, f"step {i}: apply"
        assert scale == oracle.scale, f"step {i}: scale {used:g} -> {scale:g}, expected {oracle.scale:g}"
        assert clean == oracle.clean_steps, f"step {i}: clean steps"


@pytest.mark.student("update_scale")
def test_update_scale_defaults(module):
    assert module.update_scale(2.0**15, False, 17) == (2.0**14, 0, False)
    assert module.update_scale(1.0, False, 0) == (1.0, 0, False)
    assert module.update_scale(2.0**15, True, 1998) == (2.0**15, 1999, True)
    assert module.update_scale(2.0**15, True, 1999) == (2.0**16, 0, True)


# -- quantize and dequantize -----------------------------------------------------------------------
@pytest.mark.student("quantize")
@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 3, 2, 2)])
def test_quantize_is_symmetric_and_rounds_to_the_nearest_step(module, bits, shape):
    w = np.random.default_rng(bits).normal(size=shape).astype(np.float32)
    levels = 2 ** (bits - 1) - 1
    q, s = module.quantize(w, bits)
    assert q.dtype == np.int8 and q.shape == w.shape
    assert s == pytest.approx(np.max(np.abs(w)) / levels, rel=1e-6)
    assert np.max(np.abs(q)) == levels                 # the largest weight uses the last level
    np.testing.assert_array_equal(q, np.round(w.astype(np.float64) / s))
    assert np.max(np.abs(q * s - w)) <= s / 2 * (1 + 1e-6)


@pytest.mark.student("quantize")
def test_quantize_edge_cases(module):
    q, s = module.quantize(np.zeros((3, 2), dtype=np.float32))
    assert s == 1.0 and not q.any()
    q, s = module.quantize(np.array([-2.0, 0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(q, [-127, 0, 64, 127])   # 63.5 rounds to even, 64
    assert s == pytest.approx(2 / 127)


@pytest.mark.student("dequantize")
def test_dequantize_multiplies_by_the_step(module):
    q = np.array([[-127, 0, 5], [127, -3, 64]], dtype=np.int8)
    w = module.dequantize(q, 0.25)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, q.astype(np.float32) * 0.25)


@functools.lru_cache(maxsize=None)
def wine():
    data = load_wine()
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    norm = CenterMaxAbs().fit(x_train)
    return norm.transform(x_train), y_train, norm.transform(x_test), y_test


@pytest.mark.student("quantize")
def test_8_bit_weights_keep_the_accuracy_of_a_trained_network(module, report):
    x_train, y_train, x_test, y_test = wine()
    with backends.using("numpy", "fp32", seed=0):
        net = nn.Network([Dense(13, 16), Tanh(), Dense(16, 3)], SoftmaxCrossEntropy())
        net.fit(x_train, y_train, epochs=150, batch_size=16, optimizer=Adam(1e-2), seed=0,
                progress=False)
        base = net.evaluate(x_test, y_test)["accuracy"]
        before = {k: np.array(layer.params[n]) for k, layer, n in net.named_parameters()}
        int8 = module.quantized_copy(net, 8)
        accuracy = int8.evaluate(x_test, y_test)["accuracy"]
        two_bits = module.quantized_copy(net, 2)
    report(accuracy=accuracy, threshold=base - 0.03)
    assert base >= 0.9
    assert accuracy >= base - 0.03
    for k, layer, n in net.named_parameters():               # the original is left alone
        np.testing.assert_array_equal(np.asarray(layer.params[n]), before[k])
    W = np.asarray(two_bits.layers[0].params["W"])
    assert len(np.unique(W)) <= 3                             # 2 bits: -s, 0, +s
