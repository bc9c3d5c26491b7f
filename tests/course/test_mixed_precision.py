"""The GPU and mixed-precision practical: float16 underflow, a tensor core's product,
backpropagation of a scaled loss, float32 master weights, the dynamic loss scale, 8-bit
quantization of weights, and the exploration (2-bit weights that keep the accuracy, graded
by the accuracy reached). Everything runs on the CPU (the "mixed" arithmetic is emulated by
the NumPy backend)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import nn
from nn import backends
from nn.data import CenterMaxAbs, load_fashion_mnist, load_wine
from nn.layers import Dense, Flatten, ReLU, Tanh
from nn.losses import SoftmaxCrossEntropy
from nn.optim import Adam

try:                                      # the loss scaler lives beside the training step
    from nn.training import LossScaler
except ImportError:                       # (before the core's split: in the backends)
    from nn.backends import LossScaler

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
    assert module.fp16_lost_fraction(np.zeros(4)) == 0.0       # nothing nonzero: nothing lost


@pytest.mark.student("fp16_lost_fraction")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fp16_lost_fraction_matches_the_threshold(module, dtype):
    rng = np.random.default_rng(0)
    values = (10.0 ** rng.uniform(-12, 0, size=5000) * rng.choice([-1, 1], 5000)).astype(dtype)
    expected = np.mean(np.abs(values) < 2.0**-25)
    assert 0.3 < expected < 0.5      # the test data straddle the limit
    assert module.fp16_lost_fraction(values) == pytest.approx(expected, abs=1e-12)


# -- tensor_core_product ---------------------------------------------------------------------
def exact_of_float16(a, b):
    return a.astype(np.float16).astype(np.float64) @ b.astype(np.float16).astype(np.float64)


@pytest.mark.student("tensor_core_product")
@pytest.mark.parametrize("shape", [(5, 300, 4), (1, 7, 1), (3, 1, 6)])
def test_tensor_core_product_with_a_float32_accumulator(module, report, shape):
    m, k, n = shape
    rng = np.random.default_rng(k)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    out = np.asarray(module.tensor_core_product(a, b))
    assert out.shape == (m, n) and out.dtype == np.float32
    exact = exact_of_float16(a, b)
    err = float(np.abs(out - exact).max() / np.abs(exact).max())
    report(rel_error=err, limit=1e-6)
    assert err < 1e-6, f"float32 sums of the float16 inputs' products: relative error {err:.1e}"
    far = float(np.abs(out - a @ b).max() / np.abs(a @ b).max())
    assert far > 1e-5, "the inputs must first be rounded to float16"


@pytest.mark.student("tensor_core_product")
def test_tensor_core_product_rounding_steps(module):
    # inputs rounded to float16: 1 + 2**-12 is not a float16 number, it becomes 1
    assert module.tensor_core_product([[1 + 2.0**-12]], [[1.0]])[0, 0] == 1.0
    # exact products: (1 + 2**-10)² = 1 + 2**-9 + 2**-20 needs 21 bits, more than float16's 11
    one = 1 + 2.0**-10
    assert module.tensor_core_product([[one]], [[one]])[0, 0] == np.float32(one * one), \
        "the product of two float16 numbers is exact (full precision product)"
    # sums: 4096 ones; float16 stops at 2048, where its step becomes 2
    a, b = np.ones((2, 4096)), np.ones((4096, 3))
    np.testing.assert_array_equal(module.tensor_core_product(a, b, np.float32), 4096.0)
    np.testing.assert_array_equal(module.tensor_core_product(a, b, np.float16), 2048.0)


@pytest.mark.student("tensor_core_product")
def test_tensor_core_product_float16_sums_in_order(module):
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=(3, 500)), rng.uniform(size=(500, 2))
    a16, b16 = (v.astype(np.float16).astype(np.float32) for v in (a, b))
    expected = np.zeros((3, 2), dtype=np.float16)
    for k in range(500):
        expected = (expected + np.outer(a16[:, k], b16[k])).astype(np.float16)
    out = np.asarray(module.tensor_core_product(a, b, np.float16))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=2.0**-10,
                               err_msg="float16 sums, k = 0, 1, ... in order, rounded each time")
    assert np.abs(out - exact_of_float16(a, b)).max() > 0.05, "float16 sums lose precision"


# -- scaled_backward -----------------------------------------------------------------------------
def tiny_gradient_network():
    """A small network with small weights and inputs: its gradients fall below float16."""
    net = nn.Network([Dense(20, 32), Tanh(), Dense(32, 32), Tanh(), Dense(32, 5)],
                     SoftmaxCrossEntropy())
    for layer in net.layers[::2]:
        layer.params["W"] *= 0.02
    return net


def batch(n=64):
    rng = np.random.default_rng(8)
    return 0.02 * rng.normal(size=(n, 20)), rng.integers(0, 5, size=n)


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
@pytest.mark.parametrize("scale, n", [(1.0, 64), (2.0**10, 64), (2.0**7, 1)])
def test_scaled_backward_in_float64_is_the_plain_backward(module, report, scale, n):
    with backends.using("numpy", "fp64", seed=0):
        net = tiny_gradient_network()
        x, y = batch(n)
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


# -- master_weight_updates -----------------------------------------------------------------------
@pytest.mark.student("master_weight_updates")
def test_master_copy_keeps_the_small_updates(module):
    w = np.array([1.0, 0.01, 100.0, -3.0])
    updates = np.full((1000, 4), -1e-4).astype(np.float16)
    alone, master = module.master_weight_updates(w, updates)
    assert alone.dtype == master.dtype == np.float16
    assert alone.shape == master.shape == (4,)
    # near 1, 100 and -3 a float16 step is 2**-10, 2**-4, 2**-9: -1e-4 rounds away every time
    np.testing.assert_array_equal(alone[[0, 2, 3]], np.float16([1.0, 100.0, -3.0]))
    expected = (w + updates.astype(np.float64).sum(axis=0)).astype(np.float16)
    np.testing.assert_allclose(master.astype(np.float64), expected.astype(np.float64),
                               rtol=2.0**-10, err_msg="the float32 master copy accumulates them")
    assert master[0] < np.float16(0.91), "1 - 1000 x 1e-4 = 0.9"


@pytest.mark.student("master_weight_updates")
def test_master_weight_updates_against_step_by_step_rounding(module):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(3, 2))
    updates = (rng.normal(size=(50, 3, 2)) * 10.0 ** rng.uniform(-5, -1, (50, 3, 2))
               ).astype(np.float16)
    alone, master = module.master_weight_updates(w, updates)
    a, m = w.astype(np.float16), w.astype(np.float32)
    for u in updates:
        a = (a + u).astype(np.float16)
        m = (m + u.astype(np.float32)).astype(np.float32)
    np.testing.assert_array_equal(alone, a, err_msg="float16 alone: rounded after every step")
    np.testing.assert_array_equal(master, m.astype(np.float16))
    # no update at all: both are w in float16
    none = np.zeros((0, 3, 2), dtype=np.float16)
    for got in module.master_weight_updates(w, none):
        np.testing.assert_array_equal(got, w.astype(np.float16))


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


@pytest.mark.student("dequantize")
def test_dequantize_keeps_the_shape_and_the_extremes(module):
    q = np.arange(-127, 128, dtype=np.int8).reshape(5, 3, 17)
    w = module.dequantize(q, 2 / 127)
    assert w.shape == q.shape and w.dtype == np.float32
    assert w.min() == pytest.approx(-2.0) and w.max() == pytest.approx(2.0)
    empty = module.dequantize(np.zeros((0, 4), dtype=np.int8), 0.5)
    assert empty.shape == (0, 4) and empty.dtype == np.float32


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


# -- the exploration: low_bit_copy ---------------------------------------------------------------
def columns_within_budget(net, bits):
    """Every Dense W: at most 2**bits - 1 distinct values in each column (output neuron)."""
    for layer in net.layers:
        if isinstance(layer, Dense):
            W = np.asarray(layer.params["W"])
            worst = max(len(np.unique(W[:, j])) for j in range(W.shape[1]))
            assert worst <= 2**bits - 1, \
                f"{layer!r}: a column holds {worst} distinct values, the budget is {2**bits - 1}"


def biases_and_original_kept(net, twin, before):
    for k, layer, n in net.named_parameters():               # the original is left alone
        np.testing.assert_array_equal(np.asarray(layer.params[n]), before[k])
    for (k, layer, n), (_, twin_layer, _) in zip(net.named_parameters(), twin.named_parameters()):
        if n == "b":
            np.testing.assert_array_equal(np.asarray(twin_layer.params[n]), before[k],
                                          err_msg="the biases stay as they are")


@functools.lru_cache(maxsize=None)
def fashion_mlp():
    """A 784-64-10 ReLU MLP trained on the bundled Fashion-MNIST sample (83 % test accuracy)."""
    x, y = load_fashion_mnist("train", source="sample")
    x_test, y_test = load_fashion_mnist("test", source="sample")
    with backends.using("numpy", "fp32", seed=0):
        net = nn.Network([Flatten(), Dense(784, 64, init="he"), ReLU(), Dense(64, 10)],
                         SoftmaxCrossEntropy())
        net.fit(x, y, epochs=8, batch_size=32, optimizer=Adam(2e-3), seed=0, progress=False)
    return net, x, y, x_test, y_test


@pytest.mark.student("low_bit_copy")
def test_two_bit_weights_keep_the_accuracy(module, report):
    net, x, y, x_test, y_test = fashion_mlp()
    before = {k: np.array(layer.params[n]) for k, layer, n in net.named_parameters()}
    with backends.using("numpy", "fp32", seed=0):
        twin = module.low_bit_copy(net, 2, x, y)
        accuracy = twin.evaluate(x_test, y_test)["accuracy"]
        base = net.evaluate(x_test, y_test)["accuracy"]
        per_tensor = module.quantized_copy(net, 2).evaluate(x_test, y_test)["accuracy"]
    columns_within_budget(twin, 2)
    biases_and_original_kept(net, twin, before)
    report(accuracy=accuracy, threshold=0.65)
    assert accuracy >= 0.65, (f"2-bit weights: test accuracy {accuracy:.1%} < 65 % (float32 "
                              f"{base:.1%}, one step per tensor {per_tensor:.1%}; the solution "
                              "reaches 79.6 %)")


@pytest.mark.student("low_bit_copy")
def test_eight_bit_weights_and_a_dead_neuron(module, report):
    """8 bits on the Wine MLP, one of whose hidden neurons has all its weights at zero: the
    copy stays finite and within the budget, and loses at most 3 points."""
    x_train, y_train, x_test, y_test = wine()
    with backends.using("numpy", "fp32", seed=0):
        net = nn.Network([Dense(13, 16), Tanh(), Dense(16, 3)], SoftmaxCrossEntropy())
        net.fit(x_train, y_train, epochs=150, batch_size=16, optimizer=Adam(1e-2), seed=0,
                progress=False)
        net.layers[0].params["W"][:, 5] = 0.0
        base = net.evaluate(x_test, y_test)["accuracy"]
        before = {k: np.array(layer.params[n]) for k, layer, n in net.named_parameters()}
        twin = module.low_bit_copy(net, 8, x_train, y_train)
        accuracy = twin.evaluate(x_test, y_test)["accuracy"]
    for layer, name in twin.parameters():
        assert np.all(np.isfinite(np.asarray(layer.params[name]))), f"{name} holds NaN or inf"
    columns_within_budget(twin, 8)
    biases_and_original_kept(net, twin, before)
    report(accuracy=accuracy, threshold=base - 0.03)
    assert accuracy >= base - 0.03, f"8-bit weights: {accuracy:.1%} against {base:.1%}"
