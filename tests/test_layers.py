"""Layers: gradient checks, hand-computed values, shape errors, configuration, initialisation.

Gradient checks run in float64 (the ``fp64`` fixture) with a random upstream gradient, through
:func:`nn.gradcheck.check_layer`, over several shapes with odd sizes; a layer passes below a
relative error of 1e-6.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import nn
from nn import backends
from nn.layers import (Dense, Dropout, Flatten, Unflatten, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step,
                       Tanh, from_dict)

from helpers import assert_passes, assert_round_trips, host


# shapes for element-wise layers: 2-D to 5-D, odd sizes, a batch of 1
ELEMENTWISE_SHAPES = [(1, 1), (3, 7), (2, 3, 5), (1, 3, 2, 3), (2, 1, 3, 2, 3)]


# -- gradient checks ------------------------------------------------------------------------------
@pytest.mark.parametrize("n_in, n_out", [(1, 1), (3, 7), (7, 3), (5, 1), (1, 4)])
@pytest.mark.parametrize("batch", [1, 3, 7])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_gradient(fp64, n_in, n_out, batch, bias):
    layer = Dense(n_in, n_out, bias=bias)
    errors = assert_passes(layer, (batch, n_in))
    assert ("b" in errors) == bias


ELEMENTWISE = {
    "sigmoid-0.5": lambda: Sigmoid(beta=0.5),
    "sigmoid-1": lambda: Sigmoid(beta=1.0),
    "sigmoid-2.5": lambda: Sigmoid(beta=2.5),
    "tanh": Tanh,
    "relu": ReLU,
    "leaky-0.01": lambda: LeakyReLU(alpha=0.01),
    "leaky-0.1": lambda: LeakyReLU(alpha=0.1),
    "leaky-0.3": lambda: LeakyReLU(alpha=0.3),
    "identity": Identity,
}


@pytest.mark.parametrize("make", ELEMENTWISE.values(), ids=ELEMENTWISE.keys())
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_elementwise_gradient(fp64, make, shape):
    assert_passes(make(), shape)


@pytest.mark.parametrize("shape", [(1, 2), (3, 5), (4, 1), (2, 3, 7), (3, 4, 1), (1, 3, 2, 3)])
def test_softmax_gradient(fp64, shape):
    """2-D logits, and (N, C, L) / (N, C, H, W) inputs where axis 1 is the channel axis."""
    assert_passes(Softmax(), shape)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_softmax_gradient_other_axis(fp64, seed):
    assert_passes(Softmax(axis=-1), (2, 3, 5), seed=seed)


@pytest.mark.parametrize("rate", [0.2, 0.5])
@pytest.mark.parametrize("shape", [(1, 7), (3, 5), (2, 3, 5), (2, 1, 3, 3)])
def test_dropout_gradient_in_training(fp64, rate, shape):
    assert_passes(Dropout(rate), shape, train=True)


@pytest.mark.parametrize("shape", [(3, 5)])
def test_dropout_gradient_at_test_time(fp64, shape):
    assert_passes(Dropout(0.5), shape, train=False)


@pytest.mark.parametrize("shape", [(1, 3, 1), (3, 2, 5), (2, 3, 1, 3), (2, 1, 3, 2, 3)])
def test_flatten_gradient(fp64, shape):
    assert_passes(Flatten(), shape)


@pytest.mark.parametrize("n, shape", [(3, (2, 5)), (2, (3, 1, 4)), (1, (6,)), (4, (2, 3, 2, 1))])
def test_unflatten_gradient_and_inverse_of_flatten(fp64, n, shape):
    assert_passes(Unflatten(shape), (n, int(np.prod(shape))))
    x = np.random.default_rng(0).normal(size=(n, *shape))
    np.testing.assert_array_equal(host(Unflatten(shape).forward(Flatten().forward(fp64.asarray(x)))),
                                  x)


def test_unflatten_rejects_a_wrong_size_and_a_bad_shape():
    with pytest.raises(ValueError, match=r"Unflatten.*\(N, 12\), got \(2, 10\)"):
        Unflatten((3, 4)).forward(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"\(N, 12\)"):
        Unflatten((3, 4)).output_shape((10,))
    with pytest.raises(ValueError, match="positive ints"):
        Unflatten((3, 0))


def test_stacked_check_in_a_network_order(fp64):
    """Dense -> Sigmoid -> Dense, checked layer by layer on the shapes a network gives them."""
    for layer, shape in [(Dense(5, 3), (4, 5)), (Sigmoid(beta=2.0), (4, 3)),
                         (Dense(3, 2), (4, 3))]:
        assert_passes(layer, shape, seed=7)


# -- Dense against a hand computation -------------------------------------------------------------
def test_dense_hand_computed(fp64):
    """x (2, 2), W (2, 3), b (3,): every number below was worked out on paper."""
    B = fp64
    layer = Dense(2, 3)
    layer.params["W"] = B.asarray(np.array([[1.0, 0.0, -1.0],
                                            [2.0, 1.0, 0.0]]))
    layer.params["b"] = B.asarray(np.array([1.0, -1.0, 2.0]))
    x = B.asarray(np.array([[1.0, 2.0],
                            [3.0, -1.0]]))
    # row 0: [1*1 + 2*2, 1*0 + 2*1, 1*(-1) + 2*0] + b = [5, 2, -1] + [1, -1, 2]
    # row 1: [3*1 - 1*2, 3*0 - 1*1, 3*(-1) - 1*0] + b = [1, -1, -3] + [1, -1, 2]
    y = layer.forward(x)
    np.testing.assert_array_equal(host(y), [[6.0, 1.0, 1.0],
                                            [2.0, -2.0, -1.0]])

    dy = B.asarray(np.array([[1.0, 0.0, 2.0],
                             [-1.0, 1.0, 0.0]]))
    dx = layer.backward(dy)
    # dW[i, j] = sum_n x[n, i] dy[n, j]
    #   i=0 (x column [1, 3]):  j0: 1 - 3 = -2   j1: 0 + 3 = 3    j2: 2 + 0 = 2
    #   i=1 (x column [2, -1]): j0: 2 + 1 = 3    j1: 0 - 1 = -1   j2: 4 + 0 = 4
    np.testing.assert_array_equal(host(layer.grads["W"]), [[-2.0, 3.0, 2.0],
                                                           [3.0, -1.0, 4.0]])
    # db[j] = sum_n dy[n, j]
    np.testing.assert_array_equal(host(layer.grads["b"]), [0.0, 1.0, 2.0])
    # dx[n, i] = sum_j dy[n, j] W[i, j]
    #   n=0 (dy [1, 0, 2]):  i0: 1 - 2 = -1   i1: 2 + 0 = 2
    #   n=1 (dy [-1, 1, 0]): i0: -1 + 0 = -1  i1: -2 + 1 = -1
    np.testing.assert_array_equal(host(dx), [[-1.0, 2.0],
                                             [-1.0, -1.0]])


def test_dense_without_bias_has_no_b(fp64):
    layer = Dense(3, 2, bias=False)
    assert set(layer.params) == {"W"}
    layer.params["W"] = fp64.asarray(np.array([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.0]]))
    y = layer.forward(fp64.asarray(np.array([[1.0, 1.0, 1.0]])))
    np.testing.assert_array_equal(host(y), [[0.0, 3.0]])
    layer.backward(fp64.asarray(np.ones((1, 2))))
    assert set(layer.grads) == {"W"}


# -- layers never modify their inputs -------------------------------------------------------------
def _all_layers():
    return [
        (Dense(3, 4), (5, 3)),
        (Sigmoid(beta=2.5), (5, 3)),
        (Tanh(), (5, 3)),
        (ReLU(), (5, 3)),
        (LeakyReLU(0.3), (5, 3)),
        (Softmax(), (5, 3, 2)),
        (Identity(), (5, 3)),
        (Dropout(0.5), (5, 3)),
        (Flatten(), (5, 3, 2)),
        (Unflatten((2, 3)), (5, 6)),
    ]


each_layer_in_both_modes = pytest.mark.parametrize(
    "index, train", [(i, t) for i in range(len(_all_layers())) for t in (False, True)],
    ids=[f"{type(layer).__name__}-{'train' if t else 'eval'}"
         for layer, _ in _all_layers() for t in (False, True)])


@each_layer_in_both_modes
def test_layers_never_modify_x_or_dy(fp32, index, train):
    B = fp32
    layer, shape = _all_layers()[index]
    layer.to_backend()
    rng = np.random.default_rng(index)
    x = B.asarray(rng.standard_normal(shape))
    x_saved = x.copy()
    y = layer.forward(x, train=train)
    dy = B.asarray(rng.standard_normal(tuple(y.shape)))
    dy_saved = dy.copy()
    dx = layer.backward(dy)
    # a backward written as `dy *= ...` or a forward as `x *= ...` would fail here
    np.testing.assert_array_equal(host(x), host(x_saved))
    np.testing.assert_array_equal(host(dy), host(dy_saved))
    assert dx.shape == x.shape
    # and a second backward with the same dy gives the same dx (no state consumed in place)
    np.testing.assert_array_equal(host(layer.backward(dy)), host(dx))


# -- shape errors ---------------------------------------------------------------------------------
def test_dense_wrong_feature_count_names_layer_and_shapes(fp32):
    layer = Dense(4, 3)
    with pytest.raises(ValueError) as info:
        layer.forward(fp32.asarray(np.zeros((5, 3))))
    message = str(info.value)
    assert "Dense(4->3)" in message
    assert "(N, 4)" in message
    assert "(5, 3)" in message


def test_dense_1d_input_raises(fp32):
    with pytest.raises(ValueError) as info:
        Dense(4, 3).forward(fp32.asarray(np.zeros(4)))
    message = str(info.value)
    assert "Dense(4->3)" in message and "(N, 4)" in message and "(4,)" in message


@pytest.mark.parametrize("make", [Flatten, Softmax], ids=["Flatten", "Softmax"])
def test_1d_input_raises_for_layers_needing_a_batch_axis(fp32, make):
    layer = make()
    with pytest.raises(ValueError) as info:
        layer.forward(fp32.asarray(np.zeros(6)))
    message = str(info.value)
    assert repr(layer) in message
    assert "(6,)" in message
    assert "(N," in message


def test_flatten_output_shape_rejects_a_missing_feature_axis():
    with pytest.raises(ValueError, match="Flatten"):
        Flatten().output_shape(())


@each_layer_in_both_modes
def test_backward_with_wrong_dy_shape_raises(fp32, index, train):
    """dy of (1, ...) would broadcast silently against (N, ...): it must be refused."""
    B = fp32
    layer, shape = _all_layers()[index]
    layer.to_backend()
    y = layer.forward(B.asarray(np.ones(shape)), train=train)
    wrong = (1, *y.shape[1:])
    with pytest.raises(ValueError) as info:
        layer.backward(B.zeros(wrong))
    message = str(info.value)
    assert repr(layer) in message
    assert str(tuple(y.shape)) in message
    assert str(wrong) in message


# -- bad configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: Dense(0, 3),
    lambda: Dense(3, 0),
    lambda: Dense(2.5, 3),
    lambda: Dense(3, -1),
    lambda: Dense(3, 2, init="glorot"),
    lambda: Dropout(1.0),
    lambda: Dropout(-0.1),
    lambda: Dropout(float("nan")),
    lambda: LeakyReLU(1.5),
    lambda: LeakyReLU(-0.1),
    lambda: Sigmoid(beta=0),
    lambda: Sigmoid(beta=-1.0),
    lambda: Sigmoid(beta=float("nan")),
    lambda: Dense(True, 3),
], ids=["dense-in-0", "dense-out-0", "dense-float", "dense-negative", "dense-init",
        "dropout-1", "dropout-negative", "dropout-nan", "leaky-1.5", "leaky-negative",
        "sigmoid-0", "sigmoid-negative", "sigmoid-nan", "dense-bool"])
def test_bad_configuration_raises(make):
    with pytest.raises(ValueError) as info:
        make()
    # the message names the layer
    assert re.match(r"(Dense|Dropout|LeakyReLU|Sigmoid)\b", str(info.value))


def test_unknown_init_lists_the_choices():
    with pytest.raises(ValueError, match="xavier"):
        Dense(3, 2, init="glorot")


# -- Dropout --------------------------------------------------------------------------------------
def test_dropout_is_identity_at_test_time(fp32):
    x = fp32.asarray(np.random.default_rng(0).standard_normal((4, 5)))
    layer = Dropout(0.5)
    y = layer.forward(x, train=False)
    np.testing.assert_array_equal(host(y), host(x))
    dy = fp32.asarray(np.random.default_rng(1).standard_normal((4, 5)))
    np.testing.assert_array_equal(host(layer.backward(dy)), host(dy))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_statistics_in_training(fp32, rate):
    shape = (200, 500)
    n = math.prod(shape)
    x = fp32.asarray(np.full(shape, 2.0))
    y = host(Dropout(rate).forward(x, train=True))
    dropped = np.mean(y == 0)
    # the number of zeros is Binomial(n, rate): allow 5 standard deviations
    assert abs(dropped - rate) < 5 * math.sqrt(rate * (1 - rate) / n)
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 2.0 / (1 - rate), rtol=1e-6)
    # inverted dropout keeps the mean: each element is 0 or 2/(1-rate), variance 4 rate/(1-rate)
    assert abs(y.mean() - 2.0) < 5 * math.sqrt(4 * rate / (1 - rate) / n)


def test_dropout_backward_uses_the_forward_mask(fp32):
    rng = np.random.default_rng(3)
    x = fp32.asarray(rng.uniform(1.0, 2.0, (6, 9)))  # no zeros: a zero in y is a dropped unit
    layer = Dropout(0.3)
    y = host(layer.forward(x, train=True))
    dy = rng.standard_normal((6, 9))
    dx = host(layer.backward(fp32.asarray(dy)))
    dropped = y == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_array_equal(dx[dropped], 0.0)
    np.testing.assert_allclose(dx[~dropped], dy[~dropped].astype(np.float32) / np.float32(0.7),
                               rtol=1e-6)


def test_dropout_masks_differ_between_calls(fp32):
    layer = Dropout(0.5)
    x = fp32.asarray(np.ones((10, 20)))
    first = host(layer.forward(x, train=True))
    second = host(layer.forward(x, train=True))
    assert not np.array_equal(first == 0, second == 0)


# -- Step -----------------------------------------------------------------------------------------
def test_step_forward_is_strictly_greater_than_threshold(fp32):
    x = fp32.asarray(np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]]))
    np.testing.assert_array_equal(host(Step().forward(x)), [[0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(host(Step(threshold=1.0).forward(x)), [[0, 0, 0, 0, 1]])


def test_step_backward_explains_why_it_has_no_gradient(fp32):
    layer = Step()
    y = layer.forward(fp32.asarray(np.ones((2, 3))))
    with pytest.raises(RuntimeError, match="perceptron") as info:
        layer.backward(y)
    assert "Sigmoid" in str(info.value)


# -- Sigmoid --------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.5])
def test_sigmoid_values(fp64, beta):
    x = np.linspace(-6.0, 6.0, 25).reshape(5, 5)
    y = host(Sigmoid(beta=beta).forward(fp64.asarray(x)))
    np.testing.assert_allclose(y, 1.0 / (1.0 + np.exp(-beta * x)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.5])
def test_sigmoid_saturates_without_overflow_warning(fp32, beta):
    x = fp32.asarray(np.array([[-1000.0, 1000.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = host(Sigmoid(beta=beta).forward(x))
    assert y[0, 0] == 0.0
    assert y[0, 1] == 1.0


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.5])
def test_sigmoid_derivative_at_zero_is_beta_over_4(fp64, beta):
    layer = Sigmoid(beta=beta)
    layer.forward(fp64.asarray(np.zeros((1, 3))))
    dx = host(layer.backward(fp64.asarray(np.ones((1, 3)))))
    np.testing.assert_allclose(dx, beta / 4, rtol=1e-15)


# -- Softmax --------------------------------------------------------------------------------------
def test_softmax_rows_sum_to_one_and_ignore_a_constant(fp64):
    x = np.random.default_rng(0).standard_normal((4, 7))
    layer = Softmax()
    y = host(layer.forward(fp64.asarray(x)))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-14)
    assert (y > 0).all()
    shifted = host(layer.forward(fp64.asarray(x + 100.0)))
    np.testing.assert_allclose(shifted, y, rtol=1e-12)
    naive = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, naive, rtol=1e-12)


def test_softmax_channel_axis_of_a_spectrum(fp64):
    """(N, C, L): the probabilities over the C channels sum to one at every position."""
    x = np.random.default_rng(1).standard_normal((2, 3, 5))
    y = host(Softmax().forward(fp64.asarray(x)))
    np.testing.assert_allclose(y.sum(axis=1), np.ones((2, 5)), rtol=1e-14)


def test_softmax_large_logits_stay_finite(fp32):
    x = fp32.asarray(np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 0.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = host(Softmax().forward(x))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], atol=1e-7)


# -- weight initialisation ------------------------------------------------------------------------
def test_uniform_init_is_the_course_range(fp32):
    W = host(Dense(300, 200, init="uniform").params["W"])
    assert np.abs(W).max() <= 0.01
    assert np.abs(W).max() > 0.0099  # it fills the range, not a narrower one
    assert abs(W.std() - 0.01 / math.sqrt(3)) < 0.02 * 0.01 / math.sqrt(3)


@pytest.mark.parametrize("init", ["xavier", "auto"])
def test_xavier_init_bound_and_std(fp32, init):
    n_in, n_out = 400, 300
    W = host(Dense(n_in, n_out, init=init).params["W"])
    bound = math.sqrt(6 / (n_in + n_out))
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.99 * bound
    assert abs(W.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
    assert abs(W.mean()) < 0.01 * bound


def test_he_init_std(fp32):
    n_in, n_out = 500, 300
    W = host(Dense(n_in, n_out, init="he").params["W"])
    expected = math.sqrt(2 / n_in)
    assert abs(W.std() - expected) < 0.02 * expected
    assert abs(W.mean()) < 0.01 * expected


def test_zeros_init_and_zero_bias(fp32):
    layer = Dense(4, 3, init="zeros")
    np.testing.assert_array_equal(host(layer.params["W"]), np.zeros((4, 3)))
    np.testing.assert_array_equal(host(Dense(4, 3).params["b"]), np.zeros(3))


@pytest.mark.parametrize("init", ["xavier", "he", "uniform"])
def test_same_seed_same_weights(init):
    backends.use("numpy", "fp32", seed=3)
    first = host(Dense(6, 5, init=init).params["W"])
    backends.use("numpy", "fp32", seed=3)
    second = host(Dense(6, 5, init=init).params["W"])
    np.testing.assert_array_equal(first, second)
    backends.use("numpy", "fp32", seed=4)
    other = host(Dense(6, 5, init=init).params["W"])
    assert not np.array_equal(first, other)


def test_params_are_float32_by_default(fp32):
    layer = Dense(3, 2)
    assert layer.params["W"].dtype == np.float32
    assert layer.params["b"].dtype == np.float32


def test_init_he_draws_he_weights(fp32):
    n_in = 500
    dense = Dense(n_in, 400, init="he")
    W = host(dense.params["W"])
    expected = math.sqrt(2 / n_in)
    assert abs(W.std() - expected) < 0.02 * expected
    # He weights are normal, so they exceed the Xavier bound somewhere on a layer this big
    assert np.abs(W).max() > math.sqrt(6 / (n_in + 400))


@pytest.mark.parametrize("activation", [ReLU(), LeakyReLU(0.3), Sigmoid()], ids=repr)
def test_a_network_never_changes_the_weights_it_is_given(fp32, activation):
    d = Dense(4, 4)
    d.params["W"] = fp32.param(np.eye(4))
    before = {k: host(v).copy() for k, v in d.params.items()}
    nn.Network([d, activation, Dense(4, 2)], nn.losses.MSE())
    nn.Network([d, activation])
    for k, v in before.items():
        np.testing.assert_array_equal(host(d.params[k]), v)



def test_a_second_network_of_the_same_layers_keeps_their_weights(fp32):
    """The encoder half of an autoencoder, made after training, must not be redrawn."""
    first, second = Dense(30, 20), Dense(20, 2)
    net = nn.Network([first, ReLU(), second, Dense(2, 30)], nn.losses.MSE())
    net.fit(np.random.default_rng(0).normal(size=(16, 30)).astype(np.float32),
            np.zeros((16, 30), np.float32), epochs=1, batch_size=8, progress=False)
    trained = [host(layer.params["W"]).copy() for layer in (first, second)]
    nn.Network([first, ReLU(), second])             # the encoder
    nn.Network([second, ReLU(), Dense(2, 5)])       # now followed by a ReLU: still kept
    for layer, W in zip((first, second), trained):
        np.testing.assert_array_equal(host(layer.params["W"]), W)

def test_network_keeps_xavier_before_sigmoid(fp32):
    n_in, n_out = 500, 400
    dense = Dense(n_in, n_out)
    last = Dense(n_out, 2)
    nn.Network([dense, Sigmoid(), last], nn.losses.MSE())
    for layer in (dense, last):
        W = host(layer.params["W"])
        bound = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert np.abs(W).max() <= bound


def test_network_never_changes_an_explicit_init(fp32):
    dense = Dense(500, 400, init="uniform")
    before = host(dense.params["W"]).copy()
    nn.Network([dense, ReLU(), Dense(400, 2)], nn.losses.MSE())
    np.testing.assert_array_equal(host(dense.params["W"]), before)
    assert np.abs(before).max() <= 0.01


# -- repr, output_shape, to_dict / from_dict ------------------------------------------------------
@pytest.mark.parametrize("layer, expected", [
    (Dense(4, 8), "Dense(4->8)"),
    (Dense(4, 8, bias=False), "Dense(4->8, bias=False)"),
    (Tanh(), "Tanh()"),
    (ReLU(), "ReLU()"),
    (Identity(), "Identity()"),
    (Flatten(), "Flatten()"),
    (Softmax(), "Softmax()"),
])
def test_repr_exact(layer, expected):
    assert repr(layer) == expected


@pytest.mark.parametrize("layer, fragment", [
    (Sigmoid(beta=2.0), "beta=2.0"),
    (LeakyReLU(alpha=0.3), "alpha=0.3"),
    (Dropout(0.25), "rate=0.25"),
    (Step(threshold=0.5), "threshold=0.5"),
    (Softmax(axis=2), "axis=2"),
])
def test_repr_shows_the_configuration(layer, fragment):
    text = repr(layer)
    assert text.startswith(type(layer).__name__ + "(")
    assert fragment in text


@pytest.mark.parametrize("layer, input_shape", [
    (Dense(4, 8), (4,)),
    (Dense(1, 3, bias=False), (1,)),
    (Sigmoid(beta=2.0), (3,)),
    (Tanh(), (2, 5)),
    (ReLU(), (3, 4, 2)),
    (LeakyReLU(0.1), (7,)),
    (Softmax(), (3, 5)),
    (Identity(), (2, 3)),
    (Dropout(0.5), (6,)),
    (Step(), (4,)),
    (Flatten(), (3, 4, 5)),
    (Flatten(), (2, 3, 4, 5)),
    (Flatten(), (7,)),
    (Unflatten((4, 3)), (12,)),
    (Unflatten(5), (5,)),
], ids=lambda v: repr(v) if not isinstance(v, tuple) else str(v))
def test_output_shape_matches_forward(fp32, layer, input_shape):
    layer.to_backend()
    y = layer.forward(fp32.asarray(np.ones((2, *input_shape))))
    assert layer.output_shape(input_shape) == tuple(y.shape[1:])


def test_dense_output_shape_and_wrong_input():
    assert Dense(4, 8).output_shape((4,)) == (8,)
    with pytest.raises(ValueError, match=r"Dense\(4->8\).*\(N, 4\)"):
        Dense(4, 8).output_shape((5,))


@pytest.mark.parametrize("layer", [
    Dense(4, 8), Dense(3, 2, bias=False, init="uniform"), Sigmoid(beta=2.5), Tanh(), ReLU(),
    LeakyReLU(alpha=0.3), Softmax(), Softmax(axis=2), Identity(), Step(threshold=0.5),
    Dropout(0.2), Flatten(),
], ids=repr)
def test_to_dict_from_dict_round_trip(layer):
    assert_round_trips(layer)


def test_from_dict_unknown_type():
    with pytest.raises(ValueError, match="Conv9D"):
        from_dict({"type": "Conv9D", "config": {}})


# -- mixed precision ------------------------------------------------------------------------------
def test_dense_mixed_dtypes(mixed):
    B = mixed
    layer = Dense(6, 4)
    x = B.asarray(np.random.default_rng(0).standard_normal((5, 6)))
    assert x.dtype == np.float16
    y = layer.forward(x)
    assert y.dtype == np.float16
    assert layer.params["W"].dtype == np.float32  # master weights
    assert layer.params["b"].dtype == np.float32
    layer.backward(B.asarray(np.ones((5, 4))))
    assert layer.grads["W"].dtype == np.float32
    assert layer.grads["b"].dtype == np.float32
    assert layer.params["W"].dtype == np.float32


def test_dense_mixed_product_is_fp16_rounding_of_exact_product(mixed):
    B = mixed
    rng = np.random.default_rng(1)
    layer = Dense(33, 9, bias=False)
    x = rng.standard_normal((7, 33))
    y = host(layer.forward(B.asarray(x))).astype(np.float64)
    x16 = x.astype(np.float16).astype(np.float64)
    W16 = host(layer.params["W"]).astype(np.float16).astype(np.float64)
    exact = (x16 @ W16).astype(np.float16).astype(np.float64)
    # float32 accumulation then float16 rounding: at most one float16 step (< 2**-10) apart
    np.testing.assert_allclose(y, exact, rtol=1e-3, atol=1e-6)
    # and far from what the unrounded float64 operands would give in some element
    assert not np.allclose(y, x @ host(layer.params["W"]).astype(np.float64), rtol=1e-5, atol=0)


def test_dense_mixed_gradients_match_fp64_to_fp16_accuracy(mixed):
    B = mixed
    rng = np.random.default_rng(2)
    layer = Dense(5, 3)
    x = rng.standard_normal((4, 5))
    dy = rng.standard_normal((4, 3))
    layer.forward(B.asarray(x))
    dx = layer.backward(B.asarray(dy))
    W = host(layer.params["W"]).astype(np.float64)
    np.testing.assert_allclose(host(layer.grads["W"]), x.T @ dy, rtol=5e-3, atol=5e-3)
    np.testing.assert_allclose(host(layer.grads["b"]), dy.sum(axis=0), rtol=5e-3, atol=5e-3)
    assert dx.dtype == np.float16
    np.testing.assert_allclose(host(dx).astype(np.float64), dy @ W.T, rtol=5e-3, atol=5e-3)


def test_sigmoid_saturates_in_float16_without_warning(mixed):
    x = mixed.asarray(np.array([[-1000.0, -20.0, 0.0, 20.0, 1000.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = host(Sigmoid().forward(x))
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, [[0.0, 0.0, 0.5, 1.0, 1.0]])


def test_dense_accepts_numpy_integers(fp32):
    y = np.array([0, 2, 1])
    layer = Dense(np.int64(4), y.max() + 1)
    assert layer.params["W"].shape == (4, 3) and type(layer.out_features) is int


def test_backward_before_forward_says_to_call_forward():
    with pytest.raises(AttributeError, match="call forward"):
        Dense(3, 2).backward(np.ones((1, 2), dtype=np.float32))
