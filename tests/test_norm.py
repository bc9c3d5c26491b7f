"""Normalisation layers (BatchNorm, GroupNorm, LayerNorm, InstanceNorm), buffers, frozen
layers, load_weights and Monte Carlo dropout.

Gradients are checked in float64 with a random upstream gradient over 1D, 2D and 3D inputs,
odd sizes, batches of two and several group counts; values against closed forms written
here with plain NumPy, and against PyTorch where it is installed.
"""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network, backends
from nn.errors import ConfigError, DataError, ShapeError
from nn.layers import (BatchNorm, Conv2D, Dense, Dropout, Flatten, GroupNorm, InstanceNorm,
                       LayerNorm, ReLU, Residual, Tanh)
from nn.losses import MSE, SoftmaxCrossEntropy
from nn.optim import SGD, Adam

from helpers import (assert_leaves_x_and_dy_alone, assert_passes, assert_rejects_wrong_dy,
                     assert_round_trips, host)


def made(value):
    """A test id that is the same in every process: the layer a factory makes, by its repr
    (a lambda's own repr holds its address, which pytest-xdist's workers would not share)."""
    return repr(value()) if callable(value) and getattr(value, "__name__", "") == "<lambda>" \
        else repr(value)


def randomise_affine(layer, rng):
    """W = 1, b = 0 would hide a swapped or missing scale: draw them."""
    B = backends.current()
    C = layer.num_channels
    layer.params["W"] = B.param(rng.uniform(0.5, 1.5, C))
    layer.params["b"] = B.param(rng.standard_normal(C))
    return layer


def reference(x, axes, eps):
    """The normalisation written out: (x - mean) / sqrt(biased var + eps) over ``axes``."""
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


# -- gradients --------------------------------------------------------------------------------------
# with only two values per channel (a (2, C) batch) x̂ = ±1 whatever x is, and the input
# gradient is nearly zero: nothing to check. Batches of two are checked with positions.
@pytest.mark.parametrize("shape", [(3, 3), (5, 4), (2, 3, 7), (3, 2, 5, 4), (2, 3, 3, 2, 5)],
                         ids=["dense-batch3", "dense", "1d-batch2", "2d", "3d"])
def test_batchnorm_gradient_in_training(fp64, shape):
    layer = randomise_affine(BatchNorm(shape[1]), np.random.default_rng(1))
    assert_passes(layer, shape, train=True, seed=2)


@pytest.mark.parametrize("shape", [(1, 3), (4, 3, 5), (2, 3, 4, 3)], ids=["one-example", "1d", "2d"])
def test_batchnorm_gradient_at_inference(fp64, shape):
    rng = np.random.default_rng(3)
    layer = randomise_affine(BatchNorm(shape[1]), rng)
    layer.buffers["running_mean"] = fp64.param(rng.standard_normal(shape[1]))
    layer.buffers["running_var"] = fp64.param(rng.uniform(0.5, 2.0, shape[1]))
    assert_passes(layer, shape, train=False, seed=4)


@pytest.mark.parametrize("groups, channels, shape", [
    (1, 4, (2, 4, 5)), (2, 4, (2, 4, 3, 3)), (4, 4, (3, 4, 7)), (3, 6, (2, 6, 2, 3, 3)),
    (2, 6, (1, 6, 5, 3)), (2, 6, (3, 6)),
], ids=["layer-1d", "two-groups-2d", "instance-1d", "three-groups-3d", "batch-of-one",
        "dense-input"])
def test_groupnorm_gradient(fp64, groups, channels, shape):
    layer = randomise_affine(GroupNorm(groups, channels), np.random.default_rng(5))
    assert_passes(layer, shape, seed=6)
    assert_passes(layer, shape, train=True, seed=8)     # the same in training


@pytest.mark.parametrize("make, shape", [(lambda: LayerNorm(3), (2, 3, 5)),
                                         (lambda: InstanceNorm(3), (2, 3, 4, 3))],
                         ids=["layernorm", "instancenorm"])
def test_layer_and_instance_norm_gradient(fp64, make, shape):
    assert_passes(randomise_affine(make(), np.random.default_rng(8)), shape, seed=9)


# -- values against closed forms ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batchnorm_training_forward_is_the_batch_normalisation(fp64, shape):
    rng = np.random.default_rng(10)
    layer = randomise_affine(BatchNorm(shape[1], eps=1e-3), rng)
    x = rng.standard_normal(shape) * 3 + 2
    axes = (0,) + tuple(range(2, len(shape)))
    bshape = (1, shape[1]) + (1,) * (len(shape) - 2)
    expected = (reference(x, axes, 1e-3) * host(layer.params["W"]).reshape(bshape)
                + host(layer.params["b"]).reshape(bshape))
    np.testing.assert_allclose(host(layer.forward(fp64.asarray(x), train=True)), expected,
                               rtol=1e-12, atol=1e-12)


def test_batchnorm_inference_uses_the_running_estimates(fp64):
    rng = np.random.default_rng(11)
    layer = randomise_affine(BatchNorm(3), rng)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    layer.buffers["running_mean"], layer.buffers["running_var"] = fp64.param(mean), fp64.param(var)
    x = rng.standard_normal((5, 3, 4))
    W, b = host(layer.params["W"]), host(layer.params["b"])
    expected = ((x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5)) * W[:, None] + b[:, None]
    np.testing.assert_allclose(host(layer.forward(fp64.asarray(x))), expected, rtol=1e-12)
    # an example's output does not depend on the rest of its batch
    np.testing.assert_allclose(host(layer.forward(fp64.asarray(x[:1]))), expected[:1], rtol=1e-12)


def test_batchnorm_running_estimates_follow_the_closed_form(fp64):
    """After k steps: running = (1 - m)^k init + sum_j m (1 - m)^(k-1-j) batch_j, with the
    unbiased variance of each batch."""
    rng = np.random.default_rng(12)
    layer = BatchNorm(2, momentum=0.3)
    mean, var = np.zeros(2), np.ones(2)
    for step in range(5):
        x = rng.standard_normal((4, 2, 3)) * (step + 1) + step
        layer.forward(fp64.asarray(x), train=True)
        batch_mean = x.mean(axis=(0, 2))
        batch_var = x.var(axis=(0, 2), ddof=1)
        mean = 0.7 * mean + 0.3 * batch_mean
        var = 0.7 * var + 0.3 * batch_var
    np.testing.assert_allclose(host(layer.buffers["running_mean"]), mean, rtol=1e-12)
    np.testing.assert_allclose(host(layer.buffers["running_var"]), var, rtol=1e-12)


def test_batchnorm_at_inference_leaves_the_running_estimates_alone(fp64):
    layer = BatchNorm(3)
    layer.forward(fp64.asarray(np.random.default_rng(0).normal(size=(4, 3))), train=False)
    np.testing.assert_array_equal(host(layer.buffers["running_mean"]), 0)
    np.testing.assert_array_equal(host(layer.buffers["running_var"]), 1)


@pytest.mark.parametrize("groups, shape", [(1, (2, 4, 6)), (2, (3, 4, 3, 3)), (4, (2, 4, 5))])
def test_groupnorm_forward_normalises_each_group_of_each_example(fp64, groups, shape):
    rng = np.random.default_rng(13)
    layer = randomise_affine(GroupNorm(groups, shape[1]), rng)
    x = rng.standard_normal(shape) * 2 - 1
    grouped = x.reshape(shape[0], groups, -1)
    expected = reference(grouped, (2,), 1e-5).reshape(shape)
    bshape = (1, shape[1]) + (1,) * (len(shape) - 2)
    expected = expected * host(layer.params["W"]).reshape(bshape) + host(layer.params["b"]).reshape(bshape)
    np.testing.assert_allclose(host(layer.forward(fp64.asarray(x))), expected, rtol=1e-12,
                               atol=1e-12)


def test_layernorm_and_instancenorm_are_groupnorm(fp64):
    x = fp64.asarray(np.random.default_rng(14).normal(size=(2, 4, 5)))
    np.testing.assert_allclose(host(LayerNorm(4).forward(x)), host(GroupNorm(1, 4).forward(x)))
    np.testing.assert_allclose(host(InstanceNorm(4).forward(x)), host(GroupNorm(4, 4).forward(x)))


@pytest.mark.parametrize("precision", ["fp64", "fp32"])
@pytest.mark.parametrize("make, shape", [(lambda: BatchNorm(3), (4, 3, 5, 2)),
                                         (lambda: GroupNorm(2, 6), (3, 6, 7))], ids=made)
def test_numba_kernels_equal_the_array_formulas(precision, make, shape):
    """The numba loops (two passes) compute what the NumPy array version computes."""
    rng = np.random.default_rng(21)
    x, dy = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    results = []
    for numba in (True, False):
        with backends.using("numpy", precision, seed=0, numba=numba) as B:
            layer = randomise_affine(make(), np.random.default_rng(22))
            y = layer.forward(B.asarray(x), train=True)
            results.append([host(a) for a in (y, layer.backward(B.asarray(dy)),
                                              layer.grads["W"], layer.grads["b"])])
    rtol = 1e-12 if precision == "fp64" else 2e-5
    for fast, plain in zip(*results):
        np.testing.assert_allclose(fast, plain, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("make, shape", [(lambda: BatchNorm(3), (4, 3, 5)),
                                         (lambda: GroupNorm(3, 6), (2, 6, 3, 3))], ids=made)
def test_norm_layers_never_modify_x_or_dy(fp32, make, shape):
    assert_leaves_x_and_dy_alone(fp32, make(), shape)


# -- against PyTorch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["batch", "group"])
@pytest.mark.parametrize("shape", [(4, 6, 5), (3, 6, 4, 3)], ids=["1d", "2d"])
def test_matches_pytorch(fp64, kind, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    C = shape[1]
    if kind == "batch":
        mine = BatchNorm(C, momentum=0.2)
        theirs = {1: torch.nn.BatchNorm1d, 2: torch.nn.BatchNorm2d}[len(shape) - 2](
            C, momentum=0.2).double()
    else:
        mine, theirs = GroupNorm(3, C), torch.nn.GroupNorm(3, C).double()
    randomise_affine(mine, rng)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(host(mine.params["W"])))
        theirs.bias.copy_(torch.from_numpy(host(mine.params["b"])))
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    for _ in range(2):                                   # two training steps
        tx = torch.from_numpy(x).requires_grad_(True)
        theirs.train()
        out = theirs(tx)
        out.backward(torch.from_numpy(dy))
        y = mine.forward(fp64.asarray(x), train=True)
        dx = mine.backward(fp64.asarray(dy))
        np.testing.assert_allclose(host(y), out.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(host(dx), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(host(mine.grads["W"]), theirs.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(host(mine.grads["b"]), theirs.bias.grad.numpy(), rtol=1e-10)
        theirs.zero_grad()
    if kind == "batch":
        np.testing.assert_allclose(host(mine.buffers["running_mean"]),
                                   theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(host(mine.buffers["running_var"]),
                                   theirs.running_var.numpy(), rtol=1e-12)
        theirs.eval()
        np.testing.assert_allclose(host(mine.forward(fp64.asarray(x))),
                                   theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)


# -- mixed precision ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: BatchNorm(4), lambda: GroupNorm(2, 4)], ids=made)
def test_mixed_precision_keeps_float16_activations_and_float32_statistics(make):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((8, 4, 6, 6)) * 40 + 300       # a float16 sum of squares overflows
    dy = rng.standard_normal(x.shape)
    results = {}
    for precision in ("fp64", "mixed"):
        with backends.using("numpy", precision, seed=0) as B:
            layer = make()
            y = layer.forward(B.asarray(x), train=True)
            dx = layer.backward(B.asarray(dy))
            results[precision] = (y, dx, layer.grads["W"])
            if precision == "mixed":
                assert y.dtype == dx.dtype == np.float16
                assert layer.grads["W"].dtype == layer.params["W"].dtype == np.float32
                assert layer.xhat.dtype == np.float32                 # statistics in float32
    (y64, dx64, dW64), (y16, dx16, dW16) = results["fp64"], results["mixed"]
    # within float16 rounding of the inputs (x ~ 300 carries 3 significant digits) and outputs
    assert np.abs(y16.astype(np.float64) - y64).max() < 0.05
    assert np.abs(dx16.astype(np.float64) - dx64).max() < 0.01 * np.abs(dx64).max() + 1e-3
    np.testing.assert_allclose(dW16, dW64, rtol=0.02, atol=0.05)


# -- buffers, saving, the backend switch -------------------------------------------------------------
def norm_network():
    return Network([Conv2D(1, 4, 3, padding=1), BatchNorm(4), ReLU(),
                    Residual([Conv2D(4, 4, 3, padding=1), GroupNorm(2, 4)]), Flatten(),
                    Dense(4 * 4 * 4, 2)], SoftmaxCrossEntropy())


def test_buffers_are_saved_and_loaded_with_the_model(tmp_path):
    rng = np.random.default_rng(17)
    net = norm_network()
    x = rng.normal(size=(6, 1, 4, 4))
    net.fit(x, np.arange(6) % 2, epochs=3, batch_size=3, optimizer=SGD(0.1), seed=0,
            progress=False)
    bn = net.layers[1]
    assert not np.allclose(host(bn.buffers["running_mean"]), 0)
    path = net.save(tmp_path / "m.npz")
    with np.load(path) as archive:
        assert {"1.running_mean", "1.running_var", "1.W", "1.b", "3.1.W"} <= set(archive.files)
    loaded = Network.load(path)
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(host(loaded.layers[1].buffers[name]), host(bn.buffers[name]))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_buffers_move_with_the_backend_and_optimizers_ignore_them():
    net = norm_network()
    with backends.using("numpy", "fp64"):
        net.predict(np.zeros((2, 1, 4, 4)))
        assert net.layers[1].buffers["running_var"].dtype == np.float64
        assert all(name in ("W", "b") for _, name in net.parameters())
    net.fit(np.zeros((4, 1, 4, 4)), np.arange(4) % 2, epochs=1, batch_size=2, progress=False)
    assert net.layers[1].buffers["running_var"].dtype == np.float32


def test_summary_shows_buffers_apart_from_parameters():
    text = norm_network().summary((1, 4, 4))
    assert "BatchNorm(4)" in text and "GroupNorm(2, 4)" in text
    assert "buffers (not trained): 8" in text
    assert f"parameters: {norm_network().n_params():,}" in text


@pytest.mark.parametrize("layer", [BatchNorm(3, momentum=0.2, eps=1e-3), GroupNorm(2, 4, eps=1e-4),
                                   LayerNorm(5), InstanceNorm(2)], ids=made)
def test_norm_layers_round_trip_to_json(layer):
    assert_round_trips(layer)


# -- errors ---------------------------------------------------------------------------------------------
def test_batchnorm_refuses_one_value_per_channel_in_training(fp32):
    with pytest.raises(DataError, match="more than one value per channel"):
        BatchNorm(3).forward(fp32.asarray(np.ones((1, 3))), train=True)


@pytest.mark.parametrize("make, shape", [(lambda: BatchNorm(3), (2, 4, 5)),
                                         (lambda: GroupNorm(2, 4), (2, 3, 5)),
                                         (lambda: LayerNorm(4), (4,))], ids=made)
def test_wrong_channel_count_names_the_layer(fp32, make, shape):
    layer = make()
    with pytest.raises(ShapeError, match=repr(layer).replace("(", r"\(").replace(")", r"\)")):
        layer.forward(fp32.asarray(np.ones(shape)))


def test_norm_layers_reject_a_wrong_dy(fp32):
    x = fp32.asarray(np.ones((2, 3, 4)))
    assert_rejects_wrong_dy(fp32, BatchNorm(3), x, axis=2)
    assert_rejects_wrong_dy(fp32, GroupNorm(3, 3), x, axis=0)


@pytest.mark.parametrize("make, match", [
    (lambda: GroupNorm(3, 4), "multiple of num_groups"), (lambda: BatchNorm(0), "positive int"),
    (lambda: BatchNorm(3, momentum=1.5), "momentum"), (lambda: GroupNorm(2, 4, eps=0), "eps"),
], ids=["groups", "features", "momentum", "eps"])
def test_bad_norm_configurations(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# -- frozen layers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(1e-2)],
                         ids=["sgd", "adam"])
def test_a_frozen_layer_is_bit_identical_after_fit(optimizer):
    net = norm_network()
    frozen = [net.layers[0], net.layers[3]]           # a convolution and a residual block
    for layer in frozen:
        layer.trainable = False
    keys = [k for k, layer, _ in net.named_parameters()
            if layer in frozen or layer in net.layers[3].layers]
    before = {k: host(layer.params[n]).copy() for k, layer, n in net.named_parameters()}
    opt = optimizer()
    x = np.random.default_rng(18).normal(size=(8, 1, 4, 4))
    net.fit(x, np.arange(8) % 2, epochs=2, batch_size=4, optimizer=opt, progress=False)
    after = {k: host(layer.params[n]) for k, layer, n in net.named_parameters()}
    assert keys == ["0.W", "0.b", "3.0.W", "3.0.b", "3.1.W", "3.1.b"]
    for k in before:
        same = np.array_equal(before[k], after[k])
        assert same == (k in keys), k
    assert all(layer not in opt.state for layer in frozen + net.layers[3].layers)
    assert net.layers[0].grads == {}                   # its weight gradients were never computed


def test_summary_counts_trainable_and_frozen_parameters():
    net = Network([Dense(4, 8), Tanh(), Dense(8, 2)], MSE())
    net.layers[0].trainable = False
    text = net.summary()
    assert "(frozen)" in text
    assert "parameters: 58 (18 trainable, 40 frozen)" in text


# -- load_weights and predict_mc ------------------------------------------------------------------------
def test_load_weights_copies_exactly_the_first_n_layers(tmp_path):
    source = Network([Dense(4, 6), Tanh(), Dense(6, 5), Tanh(), Dense(5, 3)], MSE())
    path = source.save(tmp_path / "source.npz")
    target = Network([Dense(4, 6), Tanh(), Dense(6, 5), Tanh(), Dense(5, 2)], MSE())
    untouched = host(target.layers[4].params["W"]).copy()
    target.load_weights(path, n_layers=3)
    for i in (0, 2):
        for name in ("W", "b"):
            np.testing.assert_array_equal(host(target.layers[i].params[name]),
                                          host(source.layers[i].params[name]))
    np.testing.assert_array_equal(host(target.layers[4].params["W"]), untouched)


def test_load_weights_copies_buffers(tmp_path):
    source = norm_network()
    source.fit(np.random.default_rng(19).normal(size=(4, 1, 4, 4)), np.arange(4) % 2, epochs=1,
               batch_size=2, progress=False)
    path = source.save(tmp_path / "s.npz")
    target = norm_network()
    target.load_weights(path, n_layers=2)
    np.testing.assert_array_equal(host(target.layers[1].buffers["running_mean"]),
                                  host(source.layers[1].buffers["running_mean"]))


def test_predict_mc_is_seeded_and_spreads_only_with_dropout():
    x = np.random.default_rng(20).normal(size=(5, 4))
    net = Network([Dense(4, 16), ReLU(), Dropout(0.5), Dense(16, 2)], MSE())
    mean1, std1 = net.predict_mc(x, samples=20, seed=3)
    mean2, std2 = net.predict_mc(x, samples=20, seed=3)
    np.testing.assert_array_equal(mean1, mean2)
    np.testing.assert_array_equal(std1, std2)
    assert (std1 > 0).all()
    assert not net.layers[2].always_on                  # back to normal afterwards
    np.testing.assert_allclose(net.predict(x), Network(net.layers[:2] + net.layers[3:]).predict(x),
                               rtol=1e-6)
    plain = Network([Dense(4, 16), ReLU(), BatchNorm(16), Dense(16, 2)], MSE())
    mean, std = plain.predict_mc(x, samples=4, seed=0)
    np.testing.assert_array_equal(std, 0)
    np.testing.assert_allclose(mean, plain.predict(x), rtol=1e-6)   # BatchNorm: running stats
