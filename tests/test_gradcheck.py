"""The gradient checker itself: it must be right on known functions and catch broken layers."""
from __future__ import annotations

import re

import numpy as np
import pytest

from nn import backends
from nn.gradcheck import (GradientCheckError, check_layer, check_loss, kink_free_normal,
                          numerical_gradient, rel_error)
from nn.layers import Dense, Dropout, ReLU, Sigmoid, Softmax, Tanh
from nn.losses import MSE


# -- numerical_gradient ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (3,), (2, 5), (3, 1, 2)])
def test_numerical_gradient_of_sum_of_squares(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    grad = numerical_gradient(lambda v: (v**2).sum(), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8, atol=1e-10)


def test_numerical_gradient_of_a_matrix_product():
    """f(W) = sum((x @ W) * G) has gradient x.T @ G."""
    rng = np.random.default_rng(1)
    x, W, G = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    grad = numerical_gradient(lambda w: ((x @ w) * G).sum(), W)
    np.testing.assert_allclose(grad, x.T @ G, rtol=1e-8, atol=1e-10)


def test_numerical_gradient_restores_x():
    x = np.random.default_rng(2).standard_normal((3, 4))
    saved = x.copy()
    seen = []
    numerical_gradient(lambda v: seen.append(v.copy()) or float(np.sin(v).sum()), x)
    np.testing.assert_array_equal(x, saved)  # bit for bit
    assert len(seen) == 2 * x.size  # two evaluations per element
    assert not np.array_equal(seen[0], saved)  # f did see the perturbed array


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_numerical_gradient_refuses_low_precision(dtype):
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: v.sum(), np.ones(3, dtype=dtype))


# -- rel_error ------------------------------------------------------------------------------------
def test_rel_error_of_equal_arrays_is_zero():
    a = np.random.default_rng(3).standard_normal((3, 4))
    assert rel_error(a, a.copy()) == 0.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_rel_error_known_values():
    assert rel_error(np.array([1.0]), np.array([3.0])) == 0.5  # |1-3| / (1+3)
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(0.2)  # the max
    assert rel_error(np.array([1.0]), np.array([-1.0])) == 1.0
    # tiny values are compared against the 1e-8 floor, not against each other
    assert rel_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-4)


def test_rel_error_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(3,\).*\(1, 3\)"):
        rel_error(np.zeros(3), np.zeros((1, 3)))


def test_kink_free_normal_keeps_away_from_zero():
    z = kink_free_normal(np.random.default_rng(4), (1000,), margin=0.1)
    assert np.abs(z).min() >= 0.1


# -- check_layer catches broken layers ------------------------------------------------------------
class SigmoidForgetsBeta(Sigmoid):
    def backward(self, dy):
        return dy * self.y * (1 - self.y)


class DenseWrongBiasElement(Dense):
    """db is right except element 2, which is off by one."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.true_db = backends.current().to_host(self.grads["b"]).copy()
        db = self.grads["b"].copy()
        db[2] += 1.0
        self.grads["b"] = db
        return dx


class DenseForgetsBias(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        del self.grads["b"]
        return dx


class DenseWrongGradShape(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] = self.grads["W"].T
        return dx


class ReLUInPlaceDy(ReLU):
    """The classic mistake: dy *= mask, which corrupts the caller's array."""

    def backward(self, dy):
        dy *= self.positive
        return dy


class TanhInPlaceX(Tanh):
    def forward(self, x, train=False):
        x *= 1.0 + 1e-3  # a "harmless" rescale of the caller's array
        return super().forward(x, train)


class SoftmaxMeanInsteadOfDot(Softmax):
    """Subtracts mean(dy) instead of sum(dy * y): right for an all-ones dy, wrong otherwise."""

    def backward(self, dy):
        return self.y * (dy - dy.mean(axis=1, keepdims=True))


class TanhNaN(Tanh):
    def backward(self, dy):
        return dy * np.nan


def test_catches_sigmoid_without_beta(fp64):
    with pytest.raises(GradientCheckError, match=r"\(beta=2\.5\): gradient of x is wrong") as info:
        check_layer(SigmoidForgetsBeta(beta=2.5), (3, 4))
    # every element is off by the factor beta: |1 - 2.5| / (1 + 2.5)
    reported = float(re.search(r"relative error (\S+) >", str(info.value)).group(1))
    assert reported == pytest.approx(1.5 / 3.5, rel=1e-2)


def test_message_names_tensor_worst_element_and_both_values(fp64):
    layer = DenseWrongBiasElement(3, 5)
    with pytest.raises(GradientCheckError) as info:
        check_layer(layer, (4, 3))
    message = str(info.value)
    assert "gradient of b is wrong" in message
    match = re.search(r"worst element \((\d+),\): analytic (\S+), numerical (\S+)", message)
    assert match, message
    assert int(match.group(1)) == 2
    analytic, numerical = float(match.group(2).rstrip(",")), float(match.group(3))
    true_value = layer.true_db[2]
    assert analytic == pytest.approx(true_value + 1.0, rel=1e-7, abs=1e-7)
    assert numerical == pytest.approx(true_value, rel=1e-6, abs=1e-7)
    # and the relative error it reports is the one of that element
    reported = float(re.search(r"relative error (\S+) >", message).group(1))
    assert reported == pytest.approx(1.0 / (abs(true_value + 1.0) + abs(true_value)), rel=1e-2)


def test_catches_missing_parameter_gradient(fp64):
    with pytest.raises(GradientCheckError, match=r"did not fill grads\['b'\]"):
        check_layer(DenseForgetsBias(3, 2), (2, 3))


def test_catches_gradient_of_the_wrong_shape(fp64):
    with pytest.raises(GradientCheckError, match=r"W has shape \(2, 3\), expected \(3, 2\)"):
        check_layer(DenseWrongGradShape(3, 2), (4, 3))


def test_catches_backward_modifying_dy(fp64):
    with pytest.raises(GradientCheckError, match="modified its upstream gradient dy in place"):
        check_layer(ReLUInPlaceDy(), (3, 4))


def test_catches_forward_modifying_x(fp64):
    with pytest.raises(GradientCheckError, match="modified the input x in place"):
        check_layer(TanhInPlaceX(), (3, 4))


def test_random_dy_catches_a_softmax_bug_that_all_ones_cannot(fp64):
    layer = SoftmaxMeanInsteadOfDot()
    x = fp64.asarray(np.random.default_rng(5).standard_normal((3, 4)))
    layer.forward(x)
    ones = fp64.asarray(np.ones((3, 4)))
    np.testing.assert_allclose(fp64.to_host(layer.backward(ones)), 0.0, atol=1e-15)  # looks right
    with pytest.raises(GradientCheckError, match="gradient of x"):
        check_layer(layer, (3, 4))


def test_catches_nan_gradient(fp64):
    with pytest.raises(GradientCheckError, match=r"relative error nan.*worst element \(0, 0\)"):
        check_layer(TanhNaN(), (2, 3))


def test_tolerance_is_respected(fp64):
    """A correct layer fails a tolerance below its true error, so tol is really used."""
    errors = check_layer(Sigmoid(), (3, 4))
    assert 0 < errors["x"] < 1e-6
    with pytest.raises(GradientCheckError):
        check_layer(Sigmoid(), (3, 4), tol=errors["x"] / 2)


def test_explicit_input_is_used(fp64):
    """With x given, a ReLU checked away from its kink passes; the same layer with a kink fails."""
    x = np.array([[0.5, -0.5, 1.0], [-2.0, 0.3, -0.3]])
    assert check_layer(ReLU(), x.shape, x=x)["x"] < 1e-6
    at_kink = np.array([[0.0, 1.0, -1.0]])
    with pytest.raises(GradientCheckError, match=r"worst element \(0, 0\)"):
        check_layer(ReLU(), at_kink.shape, x=at_kink)


# -- check_layer leaves things as it found them ---------------------------------------------------
def test_restores_float32_params_and_backend(fp32):
    before = fp32
    layer = Dense(4, 3)
    W, b = layer.params["W"], layer.params["b"]
    W_values = before.to_host(W).copy()
    errors = check_layer(layer, (2, 4))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-6
    assert layer.params["W"] is W and layer.params["b"] is b
    assert layer.params["W"].dtype == np.float32
    np.testing.assert_array_equal(before.to_host(layer.params["W"]), W_values)
    assert layer.grads == {}
    assert backends.current() is before
    assert backends.current().precision == "fp32"
    # the layer still works in float32 afterwards
    y = layer.forward(before.asarray(np.ones((2, 4))))
    assert y.dtype == np.float32


def test_restores_params_after_a_failure(fp32):
    layer = DenseWrongBiasElement(3, 5)
    W = layer.params["W"]
    with pytest.raises(GradientCheckError):
        check_layer(layer, (2, 3))
    assert layer.params["W"] is W and W.dtype == np.float32
    assert backends.current() is fp32


def test_deterministic_for_a_fixed_seed(fp64):
    layer = Sigmoid(beta=1.5)
    first = check_layer(layer, (4, 5), seed=11)
    assert check_layer(layer, (4, 5), seed=11) == first  # bit-identical errors
    # the seed does choose the input and dy: another seed gives other rounding errors
    assert check_layer(layer, (4, 5), seed=12) != first
    dense = Dense(5, 3)
    assert check_layer(dense, (4, 5), seed=3) == check_layer(dense, (4, 5), seed=3)


def test_dropout_check_is_deterministic(fp64):
    layer = Dropout(0.5)
    assert check_layer(layer, (3, 7), seed=5, train=True) == \
        check_layer(layer, (3, 7), seed=5, train=True)


# -- check_loss -----------------------------------------------------------------------------------
class MSEForgetsBatchMean(MSE):
    def backward(self):
        return self.diff


def test_check_loss_catches_a_missing_batch_mean(fp64):
    with pytest.raises(GradientCheckError, match="the prediction"):
        check_loss(MSEForgetsBatchMean(), (4, 3), np.zeros((4, 3)))


def test_check_loss_passes_and_keeps_the_backend(fp32):
    assert check_loss(MSE(), (3, 2), np.ones((3, 2))) < 1e-6
    assert backends.current() is fp32
