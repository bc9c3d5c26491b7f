"""Precision across backends: every layer, loss and a whole training step under "fp32" and
"mixed" against a float64 NumPy reference, on each backend; float32 master weights under
"mixed"; float16 gradient underflow and its repair by loss scaling; the dynamic scale.

Tolerances, as ``max |a - ref| / max |ref|`` over each output and gradient (``ref``: NumPy
in float64, same weights, same inputs):

========  ===========  =====================================================================
fp64      1e-12        only the order of the sums differs (CuPy against NumPy)
fp32      1e-5         float32 roundings (unit roundoff 6e-8) over sums of a few hundred terms
mixed     1e-2         twenty float16 roundings (unit roundoff 2**-11 = 4.9e-4): the operands
                       and results of every product and activation are float16, and a few
                       formulas lose more, e.g. tanh's 1 - y² where y is near ±1, or a
                       bias gradient whose sum cancels
========  ===========  =====================================================================

Measured on NumPy: fp32 at most 2.3e-7 per layer; mixed at most 1.5e-3 per layer, 7e-3 for
the bias gradient of a convolution followed by a tanh inside a Concat block.
"""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network, backends
from nn.layers import (AvgPool2D, Concat, Conv1D, Conv2D, Conv3D, ConvTranspose2D, Dense,
                       Dropout, Flatten, GlobalAvgPool, GlobalMaxPool, LeakyReLU, MaxPool2D,
                       ReLU, Residual, Sigmoid, Softmax, Tanh)
from nn.layers.base import named_layers
from nn.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from nn.optim import SGD, Adam

from helpers import distinct_values

TOLERANCE = {"fp64": 1e-12, "fp32": 1e-5, "mixed": 1e-2}
FP16_TINY = 2.0**-24          # the smallest float16 subnormal; half of it rounds to zero

LAYERS = {
    "Dense": (lambda: Dense(7, 5), (6, 7)),
    "Conv1D-stride-pad": (lambda: Conv1D(3, 4, 3, stride=2, padding=1), (2, 3, 11)),
    "Conv2D-dilation": (lambda: Conv2D(2, 3, 3, padding=1, dilation=2), (2, 2, 7, 6)),
    "Conv3D": (lambda: Conv3D(2, 2, 2), (2, 2, 4, 3, 5)),
    "ConvTranspose2D": (lambda: ConvTranspose2D(3, 2, 3, stride=2, output_padding=1),
                        (2, 3, 4, 5)),
    "MaxPool2D": (lambda: MaxPool2D(2), (2, 3, 6, 8)),
    "AvgPool2D-overlap": (lambda: AvgPool2D(3, stride=2), (2, 3, 7, 7)),
    "GlobalAvgPool": (lambda: GlobalAvgPool(), (3, 4, 5, 5)),
    "GlobalMaxPool": (lambda: GlobalMaxPool(), (3, 4, 5, 5)),
    "Sigmoid": (lambda: Sigmoid(beta=2.0), (5, 9)),
    "Tanh": (lambda: Tanh(), (5, 9)),
    "ReLU": (lambda: ReLU(), (5, 9)),
    "LeakyReLU": (lambda: LeakyReLU(0.2), (5, 9)),
    "Softmax": (lambda: Softmax(), (5, 9)),
    "Flatten": (lambda: Flatten(), (3, 2, 4)),
    "Residual": (lambda: Residual([Conv2D(3, 3, 3, padding=1), Tanh()]), (2, 3, 5, 5)),
    "Concat": (lambda: Concat([Conv2D(3, 2, 3, padding=1), Tanh()]), (2, 3, 5, 5)),
}


def rel(a, ref) -> float:
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def run_layer(make, shape, name, precision):
    """Forward and backward of a fresh layer (weights from seed 0) as host float64 arrays."""
    with backends.using(name, precision, seed=0) as B:
        layer = make()
        x = 2 * distinct_values(shape, seed=1)       # no ties, nothing near a kink
        y = layer.forward(B.asarray(x))
        dy = np.random.default_rng(2).standard_normal(tuple(y.shape))
        dx = layer.backward(B.asarray(dy))
        out = {"y": y, "dx": dx}
        for prefix, sub in named_layers(layer):
            out.update({f"d{prefix}{k}": g for k, g in sub.grads.items()})
        return {k: B.to_host(v).astype(np.float64) for k, v in out.items()}


@pytest.mark.parametrize("precision", ["fp64", "fp32", "mixed"])
@pytest.mark.parametrize("case", LAYERS)
def test_layer_matches_the_float64_reference(backend_name, precision, case):
    make, shape = LAYERS[case]
    ref = run_layer(make, shape, "numpy", "fp64")
    got = run_layer(make, shape, backend_name, precision)
    assert got.keys() == ref.keys()
    for key in ref:
        err = rel(got[key], ref[key])
        assert err <= TOLERANCE[precision], f"{case} {key}: {err:.2e} > {TOLERANCE[precision]}"


LOSSES = {
    "MSE": (MSE, lambda rng: rng.normal(size=(6, 4))),
    "SCE-ids": (SoftmaxCrossEntropy, lambda rng: rng.integers(0, 4, size=6)),
    "SCE-onehot": (SoftmaxCrossEntropy, lambda rng: np.eye(4)[rng.integers(0, 4, size=6)]),
    "BCE": (BinaryCrossEntropy, lambda rng: (rng.random((6, 4)) > 0.5).astype(float)),
    "BCE-logits": (lambda: BinaryCrossEntropy(from_logits=True),
                   lambda rng: (rng.random((6, 4)) > 0.5).astype(float)),
}


def run_loss(make, target, pred, name, precision):
    with backends.using(name, precision, seed=0) as B:
        loss = make()
        value = loss.forward(B.asarray(pred), B.asarray(target))
        return value, B.to_host(loss.backward()).astype(np.float64)


@pytest.mark.parametrize("precision", ["fp64", "fp32", "mixed"])
@pytest.mark.parametrize("case", LOSSES)
def test_loss_matches_the_float64_reference(backend_name, precision, case):
    make, targets = LOSSES[case]
    rng = np.random.default_rng(3)
    target = targets(rng)
    pred = rng.uniform(0.05, 0.95, size=(6, 4))       # valid probabilities for BCE too
    ref_value, ref_grad = run_loss(make, target, pred, "numpy", "fp64")
    value, grad = run_loss(make, target, pred, backend_name, precision)
    assert isinstance(value, float)
    assert abs(value - ref_value) <= TOLERANCE[precision] * abs(ref_value)
    assert rel(grad, ref_grad) <= TOLERANCE[precision]


def small_lenet():
    return [Conv2D(1, 4, 3, padding=1), LeakyReLU(), MaxPool2D(2), Conv2D(4, 6, 3), Tanh(),
            Flatten(), Dense(6 * 2 * 2, 12), Tanh(), Dense(12, 3)]


def train_small_lenet(name, precision, optimizer):
    rng = np.random.default_rng(4)
    x = 2 * distinct_values((24, 1, 8, 8), seed=5)
    y = rng.integers(0, 3, size=24)
    with backends.using(name, precision, seed=0) as B:
        net = Network(small_lenet(), SoftmaxCrossEntropy())
        start = {k: B.to_host(layer.params[name_]).astype(np.float64)
                 for k, layer, name_ in net.named_parameters()}
        history = net.fit(x, y, epochs=2, batch_size=8, optimizer=optimizer(), shuffle=False,
                          progress=False)
        moved = {k: B.to_host(layer.params[name_]).astype(np.float64) - start[k]
                 for k, layer, name_ in net.named_parameters()}
    return history, moved


@pytest.mark.parametrize("precision", ["fp64", "fp32", "mixed"])
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(1e-2)],
                         ids=["SGD-momentum", "Adam"])
def test_training_steps_match_the_float64_reference(backend_name, precision, optimizer):
    """Six steps of fit: the weight changes and the losses under each precision, each backend."""
    ref_history, ref_moved = train_small_lenet("numpy", "fp64", optimizer)
    history, moved = train_small_lenet(backend_name, precision, optimizer)
    # training amplifies differences (each step starts from slightly different weights) and
    # Adam more than SGD (it divides by sqrt(v), so a small noisy gradient makes a full-size
    # step); measured on NumPy, SGD / Adam: fp32 5e-7 / 2e-5, mixed 3.5e-3 / 2e-2
    tol = {"fp64": 1e-10, "fp32": 1e-4, "mixed": 5e-2}[precision]
    for key in ref_moved:
        assert rel(moved[key], ref_moved[key]) <= tol, key
    np.testing.assert_allclose(history["train_loss"], ref_history["train_loss"], rtol=tol)
    if precision == "mixed":
        assert history["skipped_steps"] == [0, 0]


@pytest.mark.parametrize("shape", [(64, 300, 48), (5, 7, 3), (256, 1024, 128)])
def test_gpu_mixed_matmul_matches_the_cpu_emulation(backend_name, shape):
    """cuBLAS (float16 operands, float32 accumulation, float16 result) against the NumPy
    emulation of the same arithmetic: only the order of the float32 sums differs, so the
    results agree to one float16 rounding."""
    if backend_name == "numpy":
        pytest.skip("compares CuPy with the NumPy emulation: runs on a GPU only")
    n, k, m = shape
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(n, k)), rng.normal(size=(k, m))
    with backends.using("numpy", "mixed") as B:
        cpu = B.to_host(B.matmul(B.asarray(a), B.asarray(b))).astype(np.float64)
    with backends.using(backend_name, "mixed") as B:
        gpu = B.matmul(B.asarray(a), B.asarray(b))
        assert gpu.dtype == np.float16
        gpu = B.to_host(gpu).astype(np.float64)
    # one float16 ulp of the result, plus what a different order of float32 sums may move
    # it by where terms cancel (a float16 accumulation would be off by ~2**-11 |a| @ |b|)
    spacing = np.spacing(np.abs(cpu).astype(np.float16)).astype(np.float64)
    a16, b16 = np.abs(a.astype(np.float16)), np.abs(b.astype(np.float16))
    reorder = 4 * np.sqrt(k) * 2.0**-24 * (a16.astype(np.float64) @ b16.astype(np.float64))
    assert np.all(np.abs(gpu - cpu) <= spacing + reorder)


# -- float32 master weights, float16 activations -------------------------------------------------
@pytest.mark.parametrize("case", LAYERS)
def test_mixed_keeps_float32_parameters_and_float16_activations(mixed, case):
    make, shape = LAYERS[case]
    layer = make()
    y = layer.forward(mixed.asarray(distinct_values(shape, seed=1)))
    assert y.dtype == np.float16
    dx = layer.backward(mixed.asarray(np.ones(tuple(y.shape))))
    assert dx.dtype == np.float16
    for prefix, sub in named_layers(layer):
        for name in sub.params:
            assert sub.params[name].dtype == np.float32, prefix + name
            assert sub.grads[name].dtype == np.float32, prefix + name


def test_mixed_dropout_keeps_float16(mixed):
    layer = Dropout(0.5)
    y = layer.forward(mixed.asarray(np.ones((4, 6))), train=True)
    assert y.dtype == np.float16
    assert layer.backward(mixed.asarray(np.ones((4, 6)))).dtype == np.float16
    assert set(np.unique(mixed.to_host(y))) <= {0.0, 2.0}


ELEMENTWISE = {   # layers whose float16 arithmetic the CPU runs in float32 (Backend.in_float32)
    "ReLU": (lambda: ReLU(), (6, 3, 5, 7)),
    "LeakyReLU": (lambda: LeakyReLU(0.1), (6, 3, 5, 7)),
    "Dropout": (lambda: Dropout(0.3), (6, 35)),
    "Dense-bias": (lambda: Dense(35, 9), (6, 35)),
    "Conv2D-bias": (lambda: Conv2D(3, 4, 1), (6, 3, 5, 7)),
}


@pytest.mark.parametrize("case", ELEMENTWISE)
def test_cpu_float16_formulas_computed_in_float32_give_numpys_float16_bits(case):
    """Under "mixed" on the CPU, an element-wise formula on float16 runs on the float32 values
    and is rounded once (the numba kernels convert): the bits must be those of NumPy's own
    float16 arithmetic (``numba=False``), forward and backward."""
    make, shape = ELEMENTWISE[case]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 3.0
    x.flat[::7] = 0.0                        # the kink of the rectifiers, and -0.0
    x.flat[1::11] = -0.0
    results = []
    for numba in (True, False):
        with backends.using("numpy", "mixed", seed=0, numba=numba) as B:
            layer = make()
            y = layer.forward(B.asarray(x), train=True)
            dy = B.asarray(np.random.default_rng(4).standard_normal(y.shape))
            dx = layer.backward(dy)
            assert y.dtype == dx.dtype == np.float16
            results.append([y.view(np.uint16), dx.view(np.uint16),
                            *(g.view(np.uint32) for g in layer.grads.values())])
    for fast, plain in zip(*results):
        np.testing.assert_array_equal(fast, plain)


def test_mixed_network_updates_float32_master_weights_below_float16_resolution(mixed):
    """An update of 1e-5 on a weight near 1 is lost in float16 (spacing 2**-10) but kept."""
    x = np.random.default_rng(0).normal(size=(16, 4))
    net = Network([Dense(4, 3)], MSE())
    W = net.layers[0].params["W"]
    W[...] = 1.0
    before = mixed.to_host(W).copy()
    history = net.fit(x, np.zeros((16, 3)), epochs=1, batch_size=16, optimizer=SGD(1e-6),
                      progress=False)
    after = mixed.to_host(net.layers[0].params["W"])
    assert history["skipped_steps"] == [0]
    assert after.dtype == np.float32
    assert np.all(after != before)                                  # every weight moved ...
    np.testing.assert_array_equal(after.astype(np.float16), before.astype(np.float16))  # ... by
    # less than float16 could have represented


# -- underflow, and its repair by loss scaling -----------------------------------------------------
def dense_gradients(B, dy_scale, loss_scale):
    """Weight gradient of a Dense layer for a tiny upstream gradient, unscaled, host float64."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(32, 64))
    dy = dy_scale * rng.normal(size=(32, 16))
    layer = Dense(64, 16)
    layer.forward(B.asarray(x))
    layer.backward(B.cast(B.asarray(dy, dtype=B.acc_dtype) * loss_scale))
    return B.to_host(layer.grads["W"]).astype(np.float64) / loss_scale


def test_small_gradients_underflow_in_float16_and_loss_scaling_repairs_them(backend_name):
    with backends.using(backend_name, "fp64", seed=0) as B:
        exact = dense_gradients(B, 1e-8, 1.0)
    with backends.using(backend_name, "mixed", seed=0) as B:
        unscaled = dense_gradients(B, 1e-8, 1.0)
        scaled = dense_gradients(B, 1e-8, 2.0**15)
    # the upstream gradient (about 1e-8) is below float16's smallest subnormal (6e-8)
    lost = np.mean((unscaled == 0) & (exact != 0))
    assert lost > 0.9
    assert np.mean((scaled == 0) & (exact != 0)) == 0
    assert rel(scaled, exact) < TOLERANCE["mixed"]
    assert rel(unscaled, exact) > 0.5


def test_network_without_loss_scaling_loses_gradients_that_scaling_keeps(backend_name):
    """The same batch through the same network: the fraction of weight gradients that are
    zero in mixed precision but not in float64, at scale 1 and at the default 2**15."""
    rng = np.random.default_rng(8)
    x = 0.02 * rng.normal(size=(64, 20))
    y = rng.integers(0, 5, size=64)

    def grads(precision, scale):
        with backends.using(backend_name, precision, seed=0) as B:
            net = Network([Dense(20, 32), Tanh(), Dense(32, 32), Tanh(), Dense(32, 5)],
                          SoftmaxCrossEntropy())
            for layer in net.layers[::2]:
                layer.params["W"] *= 0.02        # small weights and inputs: tiny gradients
            out = net.forward(x, train=True)
            net.loss.forward(out, B.asarray(y))
            net.backward(B.cast(net.loss.backward() * scale), input_grad=False)
            return np.concatenate([B.to_host(layer.grads[n]).ravel().astype(np.float64) / scale
                                   for layer, n in net.parameters()])

    exact = grads("fp64", 1.0)
    lost_unscaled = np.mean((grads("mixed", 1.0) == 0) & (exact != 0))
    lost_scaled = np.mean((grads("mixed", 2.0**15) == 0) & (exact != 0))
    assert np.mean(np.abs(exact[exact != 0]) < FP16_TINY) > 0.2   # many below float16's range
    assert lost_unscaled > 0.1           # measured: 0.14 of the gradients flush to zero ...
    assert lost_scaled < 0.01            # ... and none at 2**15


# -- the dynamic scale in a real fit -------------------------------------------------------------
def test_the_scale_falls_on_overflow_and_grows_back_after_clean_steps(mixed):
    x = np.random.default_rng(0).normal(size=(32, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    net = Network([Dense(4, 8), Tanh(), Dense(8, 2)], SoftmaxCrossEntropy())
    net.loss_scaler = nn.training.LossScaler(init_scale=2.0**30, growth_interval=4)
    history = net.fit(x, y, epochs=30, batch_size=8, optimizer=SGD(0.1), progress=False)
    scales = history["loss_scale"]
    low = int(np.argmin(scales))
    assert history["skipped_steps"][0] >= 1                  # 2**30 overflowed ...
    assert scales[low] < 2.0**30                             # ... the scale came down ...
    assert max(scales[low:]) > scales[low]                   # ... and grew back after clean steps
    assert sum(history["skipped_steps"]) == net.loss_scaler.skipped
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_a_skipped_step_changes_neither_weights_nor_optimizer_state(mixed):
    x = np.random.default_rng(0).normal(size=(16, 4))
    y = np.random.default_rng(1).integers(0, 3, size=16)
    net = Network([Dense(4, 8), Tanh(), Dense(8, 3)], SoftmaxCrossEntropy())
    optimizer = Adam(1e-2)
    net.fit(x, y, epochs=1, batch_size=16, optimizer=optimizer, progress=False)   # Adam has state
    weights = {k: mixed.to_host(layer.params[n]).copy() for k, layer, n in net.named_parameters()}
    state = {(id(layer), n): {k: mixed.to_host(v).copy() for k, v in s.items()}
             for layer, states in optimizer.state.items() for n, s in states.items()}
    net.loss_scaler = nn.training.LossScaler(init_scale=2.0**60)     # certain overflow
    history = net.fit(x, y, epochs=1, batch_size=16, optimizer=optimizer, progress=False)
    assert history["skipped_steps"] == [1]
    for k, layer, n in net.named_parameters():
        np.testing.assert_array_equal(mixed.to_host(layer.params[n]), weights[k], err_msg=k)
    for layer, states in optimizer.state.items():
        for n, s in states.items():
            for k, v in s.items():
                np.testing.assert_array_equal(mixed.to_host(v), state[(id(layer), n)][k])
