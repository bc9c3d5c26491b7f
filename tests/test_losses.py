"""Losses: gradient checks in float64, values against closed forms, errors, predicted classes."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from nn import backends
from nn.gradcheck import check_loss
from nn.losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy, from_dict, to_dict
from nn.optim import SGD

TOL = 1e-6
SHAPES = [(1, 1), (1, 3), (3, 5), (7, 3), (4, 7)]
CLASS_SHAPES = [(1, 2), (1, 3), (3, 5), (7, 3), (4, 7)]


def host(a):
    return backends.current().to_host(a)


def random_ids(n, c, seed):
    return np.random.default_rng(seed).integers(0, c, size=n)


def soft_targets(shape, seed):
    e = np.exp(np.random.default_rng(seed).standard_normal(shape))
    return e / e.sum(axis=1, keepdims=True)


# -- gradient checks ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_mse_gradient_float_targets(fp64, shape):
    target = np.random.default_rng(1).standard_normal(shape)
    assert check_loss(MSE(), shape, target) < TOL


@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_mse_gradient_class_ids(fp64, shape):
    assert check_loss(MSE(), shape, random_ids(shape[0], shape[1], 2)) < TOL


@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_sce_gradient_class_ids(fp64, shape):
    assert check_loss(SoftmaxCrossEntropy(), shape, random_ids(shape[0], shape[1], 3)) < TOL


@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_sce_gradient_one_hot(fp64, shape):
    onehot = np.eye(shape[1])[random_ids(shape[0], shape[1], 4)]
    assert check_loss(SoftmaxCrossEntropy(), shape, onehot) < TOL


@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_sce_gradient_soft_targets(fp64, shape):
    assert check_loss(SoftmaxCrossEntropy(), shape, soft_targets(shape, 5)) < TOL


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("soft", [False, True])
def test_bce_gradient_probabilities(fp64, shape, soft):
    rng = np.random.default_rng(6)
    pred = rng.uniform(0.1, 0.9, shape)  # well inside (eps, 1 - eps): no clipping
    target = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape).astype(float)
    assert check_loss(BinaryCrossEntropy(), shape, target, pred=pred) < TOL


@pytest.mark.parametrize("shape", SHAPES)
def test_bce_gradient_from_logits(fp64, shape):
    target = np.random.default_rng(7).integers(0, 2, shape).astype(float)
    assert check_loss(BinaryCrossEntropy(from_logits=True), shape, target) < TOL


@pytest.mark.parametrize("loss", [MSE(), BinaryCrossEntropy(from_logits=True)], ids=repr)
@pytest.mark.parametrize("n", [1, 5])
def test_single_output_gradient_with_integer_labels(fp64, loss, n):
    """One output per example (a binary classifier) with labels 0/1 of shape (N,)."""
    labels = np.arange(n) % 2
    assert check_loss(loss, (n, 1), labels) < TOL


# -- values ---------------------------------------------------------------------------------------
def test_mse_closed_form(fp64):
    pred = fp64.asarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
    target = fp64.asarray(np.array([[0.0, 2.0], [1.0, 1.0]]))
    loss = MSE()
    # differences [1, 0] and [2, 3]: 0.5 * (1 + 0 + 4 + 9) / 2 examples
    assert float(loss(pred, target)) == 3.5
    np.testing.assert_array_equal(host(loss.backward()), [[0.5, 0.0], [1.0, 1.5]])


def test_mse_class_ids_are_one_hot_rows(fp64):
    pred = fp64.asarray(np.array([[0.2, 0.7, 0.1], [0.5, 0.0, 0.5]]))
    ids = fp64.asarray(np.array([1, 0]))
    onehot = fp64.asarray(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    loss = MSE()
    assert float(loss(pred, ids)) == pytest.approx(0.5 * (0.04 + 0.09 + 0.01 + 0.25 + 0.25) / 2,
                                                   rel=1e-14)
    grad_ids = host(loss.backward())
    assert float(loss(pred, onehot)) == pytest.approx(float(loss(pred, ids)), rel=1e-15)
    np.testing.assert_array_equal(host(loss.backward()), grad_ids)


@pytest.mark.parametrize("shape", [(1, 2), (5, 3), (4, 10)])
def test_sce_equals_naive_formula(fp64, shape):
    rng = np.random.default_rng(8)
    z = rng.standard_normal(shape) * 3
    t = random_ids(shape[0], shape[1], 9)
    expected = -np.mean([math.log(math.exp(z[i, t[i]]) / sum(math.exp(v) for v in z[i]))
                         for i in range(shape[0])])
    loss = SoftmaxCrossEntropy()
    assert float(loss(fp64.asarray(z), fp64.asarray(t))) == pytest.approx(expected, rel=1e-12)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(host(loss.backward()), (probs - np.eye(shape[1])[t]) / shape[0],
                               rtol=1e-12, atol=1e-15)


def test_sce_large_logits_finite_and_correct(fp32):
    z = fp32.asarray(np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]]))
    t = fp32.asarray(np.array([0, 0]))
    loss = SoftmaxCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = float(loss(z, t))
        grad = host(loss.backward())
    # example 0 is certain and right (loss 0), example 1 is certain and wrong by 1000
    assert value == pytest.approx(500.0, rel=1e-6)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0.0, 0.0, 0.0], [-0.5, 0.5, 0.0]], atol=1e-7)


def test_sce_one_hot_and_ids_agree(fp64):
    rng = np.random.default_rng(10)
    z = fp64.asarray(rng.standard_normal((6, 4)))
    ids = random_ids(6, 4, 11)
    loss = SoftmaxCrossEntropy()
    with_ids = float(loss(z, fp64.asarray(ids)))
    grad_ids = host(loss.backward())
    with_onehot = float(loss(z, fp64.asarray(np.eye(4)[ids])))
    grad_onehot = host(loss.backward())
    assert with_ids == with_onehot
    np.testing.assert_array_equal(grad_ids, grad_onehot)


def test_bce_closed_form(fp64):
    p = fp64.asarray(np.array([[0.2], [0.7]]))
    t = fp64.asarray(np.array([[0.0], [1.0]]))
    loss = BinaryCrossEntropy()
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert float(loss(p, t)) == pytest.approx(expected, rel=1e-14)
    # dL/dp = (p - t) / (p (1 - p)) / N
    np.testing.assert_allclose(host(loss.backward()),
                               [[0.2 / (0.2 * 0.8) / 2], [-0.3 / (0.7 * 0.3) / 2]], rtol=1e-14)


def test_bce_integer_labels_equal_float_labels(fp64):
    """A binary classifier's (N, 1) output with labels 0/1 of shape (N,), as loaders give them."""
    p = fp64.asarray(np.array([[0.2], [0.7], [0.4]]))
    loss = BinaryCrossEntropy()
    with_ints = float(loss(p, fp64.asarray(np.array([0, 1, 1]))))
    grad_ints = host(loss.backward())
    with_floats = float(loss(p, fp64.asarray(np.array([[0.0], [1.0], [1.0]]))))
    assert with_ints == with_floats
    np.testing.assert_array_equal(grad_ints, host(loss.backward()))


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (4, 3)])
def test_bce_from_logits_equals_bce_on_sigmoid(fp64, shape):
    rng = np.random.default_rng(12)
    z = rng.uniform(-4, 4, shape)
    t = rng.integers(0, 2, shape).astype(float)
    p = 1 / (1 + np.exp(-z))
    fused, plain = BinaryCrossEntropy(from_logits=True), BinaryCrossEntropy()
    value_fused = float(fused(fp64.asarray(z), fp64.asarray(t)))
    value_plain = float(plain(fp64.asarray(p), fp64.asarray(t)))
    assert value_fused == pytest.approx(value_plain, rel=1e-12)
    # chain rule through the sigmoid: dL/dz = dL/dp * p (1 - p)
    np.testing.assert_allclose(host(fused.backward()), host(plain.backward()) * p * (1 - p),
                               rtol=1e-10)


def test_bce_from_logits_large_logits_finite(fp32):
    z = fp32.asarray(np.array([[1000.0], [-1000.0], [1000.0]]))
    t = fp32.asarray(np.array([[1.0], [0.0], [0.0]]))
    loss = BinaryCrossEntropy(from_logits=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = float(loss(z, t))
    assert value == pytest.approx(1000.0 / 3, rel=1e-6)
    np.testing.assert_allclose(host(loss.backward()), [[0.0], [0.0], [1 / 3]], atol=1e-7)


def test_bce_clips_probabilities_of_zero_and_one(fp64):
    p = fp64.asarray(np.array([[0.0], [1.0]]))
    t = fp64.asarray(np.array([[1.0], [0.0]]))
    loss = BinaryCrossEntropy(eps=1e-7)
    assert float(loss(p, t)) == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert np.isfinite(host(loss.backward())).all()


def test_loss_gradient_is_in_the_accumulation_dtype_under_mixed(mixed):
    z = mixed.asarray(np.random.default_rng(13).standard_normal((4, 3)))
    assert z.dtype == np.float16
    for loss, target in [(SoftmaxCrossEntropy(), np.array([0, 1, 2, 1])),
                         (MSE(), np.zeros((4, 3), dtype=np.float32))]:
        value = float(loss(z, mixed.asarray(target, dtype=target.dtype)))
        assert math.isfinite(value)
        assert loss.backward().dtype == np.float32


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy(), BinaryCrossEntropy()], ids=repr)
def test_mismatched_shapes_name_both(fp32, loss):
    pred = fp32.asarray(np.full((3, 2), 0.5))
    target = fp32.asarray(np.zeros((3, 4)))
    with pytest.raises(ValueError) as info:
        loss(pred, target)
    message = str(info.value)
    assert "(3, 2)" in message and "(3, 4)" in message
    assert type(loss).__name__ in message


@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy()], ids=repr)
def test_wrong_number_of_class_ids(fp32, loss):
    with pytest.raises(ValueError, match=r"3 predictions but 2 targets"):
        loss(fp32.asarray(np.zeros((3, 4))), np.array([0, 1]))


@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy()], ids=repr)
@pytest.mark.parametrize("ids", [[0, 3], [-1, 0]])
def test_class_id_out_of_range(loss, ids):
    """(On NumPy; the GPU backends skip this check to avoid a device sync per batch.)"""
    B = backends.current()
    with pytest.raises(ValueError, match=r"\[0, 3\)") as info:
        loss(B.asarray(np.zeros((2, 3))), np.array(ids))
    assert "(2, 3)" in str(info.value)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_sce_needs_2d_logits(fp32, shape):
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy") as info:
        SoftmaxCrossEntropy()(fp32.asarray(np.zeros(shape)), np.zeros(shape[0], dtype=np.int64))
    assert str(shape) in str(info.value)
    assert "(N, C)" in str(info.value)


# -- predict_classes ------------------------------------------------------------------------------
def test_predict_classes_argmax(fp32):
    pred = fp32.asarray(np.array([[0.1, 0.7, 0.2], [3.0, -1.0, 2.0], [0.0, 0.0, 5.0]]))
    for loss in (SoftmaxCrossEntropy(), MSE(), BinaryCrossEntropy()):
        np.testing.assert_array_equal(host(loss.predict_classes(pred)), [1, 0, 2])


def test_predict_classes_single_column_threshold_half(fp32):
    pred = fp32.asarray(np.array([[0.2], [0.5], [0.51], [0.9]]))
    for loss in (MSE(), BinaryCrossEntropy()):
        np.testing.assert_array_equal(host(loss.predict_classes(pred)), [0, 0, 1, 1])


def test_predict_classes_from_logits_threshold_zero(fp32):
    pred = fp32.asarray(np.array([[-0.3], [0.0], [0.2], [0.4]]))
    np.testing.assert_array_equal(
        host(BinaryCrossEntropy(from_logits=True).predict_classes(pred)), [0, 0, 1, 1])


# -- saving ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy(), BinaryCrossEntropy(),
                                  BinaryCrossEntropy(from_logits=True, eps=1e-5)], ids=repr)
def test_loss_to_dict_round_trip(loss):
    rebuilt = from_dict(to_dict(loss))
    assert type(rebuilt) is type(loss)
    assert rebuilt.config() == loss.config()


def test_loss_from_dict_unknown_type():
    with pytest.raises(ValueError, match="HingeLoss"):
        from_dict({"type": "HingeLoss"})


# -- device values -------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy(), BinaryCrossEntropy(),
                                  BinaryCrossEntropy(from_logits=True)], ids=repr)
def test_forward_is_a_float_and_forward_device_the_same_value_left_on_the_device(fp32, loss):
    rng = np.random.default_rng(0)
    pred = fp32.asarray(rng.uniform(0.1, 0.9, size=(5, 3)))
    target = fp32.asarray((rng.random((5, 3)) > 0.5).astype(np.float32))
    value = loss.forward(pred, target)
    device = loss.forward_device(pred, target)
    assert type(value) is float
    assert not isinstance(device, float) and device.shape == ()
    assert float(device) == value


def test_a_loss_that_only_writes_forward_still_trains(fp32):
    """Written against the contract (forward -> float): fit falls back on it."""
    from nn import Network
    from nn.layers import Dense

    class L1(Loss):
        def forward(self, pred, target):
            self.sign = fp32.xp.sign(pred - target) / pred.shape[0]
            return float(fp32.xp.abs(pred - target).sum() / pred.shape[0])

        def backward(self):
            return self.sign

    x = np.random.default_rng(0).normal(size=(20, 3))
    net = Network([Dense(3, 1)], L1())
    history = net.fit(x, x[:, :1], epochs=5, batch_size=5, optimizer=SGD(0.1), progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert L1().forward_device.__func__ is Loss.forward_device


def test_a_loss_with_neither_forward_says_what_to_write():
    class Empty(Loss):
        pass

    with pytest.raises(NotImplementedError, match="forward_device"):
        Empty().forward(np.zeros((1, 1)), np.zeros((1, 1)))
