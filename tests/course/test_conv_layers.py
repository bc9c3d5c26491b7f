"""The conv_layers practical: convolution and max-pooling forward (equal to nn's layers) and
backward (against finite differences in float64, random upstream gradients, several shapes,
non-square kernels, odd sizes, strides, paddings, overlapping pools), the tie rule, the
layer classes (check_layer), and a Network built with them: it learns the Fashion-MNIST
sample, and in float64 it follows nn's layers step by step from the same weights."""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn.data import Standardize, load_fashion_mnist
from nn.gradcheck import check_layer, numerical_gradient, rel_error
from nn.layers import Conv2D, MaxPool2D
from nn.optim import SGD

PRACTICAL = "conv_layers"
TOL = 1e-6
SEED = 0

# x shape (N, C, H, W), W shape (O, C, kh, kw), stride, padding
CONV_CASES = [
    ((2, 1, 5, 5), (3, 1, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 2), 2, 1),      # non-square kernel, stride 2, odd sizes
    ((1, 2, 9, 8), (2, 2, 5, 3), 1, 2),      # "same"-like padding, wide kernel
    ((3, 2, 8, 7), (3, 2, 2, 2), 3, 1),      # stride 3
    ((2, 4, 6, 6), (5, 4, 1, 1), 1, 0),      # 1x1 convolution: a dense layer per pixel
    ((1, 2, 4, 5), (2, 2, 4, 5), 1, 0),      # the kernel covers the whole image
]
CONV_IDS = [f"x{c[0]}-W{c[1]}-s{c[2]}-p{c[3]}" for c in CONV_CASES]

# x shape, size, stride
POOL_CASES = [
    ((2, 3, 4, 4), 2, 2),
    ((2, 2, 9, 9), 3, 2),       # overlapping windows
    ((1, 3, 7, 5), 2, 2),       # odd sizes: the last row is in no window
    ((2, 1, 6, 7), 2, 1),       # stride 1: every inner pixel is in 4 windows
    ((1, 2, 9, 6), 3, 3),
]
POOL_IDS = [f"x{c[0]}-size{c[1]}-s{c[2]}" for c in POOL_CASES]


def conv_problem(case, seed):
    x_shape, w_shape, _, _ = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
            rng.standard_normal(w_shape[0]))


def distinct(shape, seed):
    """Values in [-0.5, 0.5), all different and ``1 / size`` apart (> 1e-3 here): no tie in
    any window, and a finite-difference step (1e-5) never changes which pixel is the maximum."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) - n / 2) / n


def lib_conv(case, W, b):
    _, w_shape, stride, padding = case
    conv = Conv2D(w_shape[1], w_shape[0], w_shape[2:], stride=stride, padding=padding)
    conv.params = {"W": W.copy(), "b": b.copy()}
    return conv


# -- convolution ------------------------------------------------------------------------------
@pytest.mark.student("conv_forward")
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_forward_equals_nn_conv2d(module, case):
    x, W, b = conv_problem(case, seed=1)
    stride, padding = case[2], case[3]
    y, _ = module.conv_forward(x, W, b, stride, padding)
    with nn.backends.using("numpy", "fp64"):
        expected = lib_conv(case, W, b).forward(x)
    assert np.shape(y) == expected.shape, f"y of shape {np.shape(y)}, expected {expected.shape}"
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.student("conv_backward")
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_backward_matches_finite_differences(module, report, case):
    x, W, b = conv_problem(case, seed=2)
    stride, padding = case[2], case[3]
    y, cache = module.conv_forward(x, W, b, stride, padding)
    dy = np.random.default_rng(3).standard_normal(np.shape(y))
    dy_before = dy.copy()
    dx, dW, db = module.conv_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before, err_msg="conv_backward must not modify dy")

    def f(x_, W_, b_):
        return np.sum(module.conv_forward(x_, W_, b_, stride, padding)[0] * dy)

    numeric = {"dx": numerical_gradient(lambda v: f(v, W, b), x.copy()),
               "dW": numerical_gradient(lambda v: f(x, v, b), W.copy()),
               "db": numerical_gradient(lambda v: f(x, W, v), b.copy())}
    analytic = {"dx": dx, "dW": dW, "db": db}
    for name in analytic:
        assert np.shape(analytic[name]) == numeric[name].shape, \
            f"{name} has shape {np.shape(analytic[name])}, expected {numeric[name].shape}"
    errors = {name: rel_error(analytic[name], numeric[name]) for name in analytic}
    report(rel_error=max(errors.values()), limit=TOL)
    for name, err in errors.items():
        assert err < TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.student("conv_backward")
@pytest.mark.parametrize("case", CONV_CASES[1:4], ids=CONV_IDS[1:4])
def test_conv_backward_equals_nn_conv2d(module, case):
    x, W, b = conv_problem(case, seed=4)
    stride, padding = case[2], case[3]
    y, cache = module.conv_forward(x, W, b, stride, padding)
    dy = np.random.default_rng(5).standard_normal(np.shape(y))
    dx, dW, db = module.conv_backward(dy, cache)
    with nn.backends.using("numpy", "fp64"):
        conv = lib_conv(case, W, b)
        conv.forward(x)
        expected_dx = conv.backward(dy)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-10, atol=1e-12, err_msg="dx")
    np.testing.assert_allclose(dW, conv.grads["W"], rtol=1e-10, atol=1e-12, err_msg="dW")
    np.testing.assert_allclose(db, conv.grads["b"], rtol=1e-10, atol=1e-12, err_msg="db")


# -- max-pooling --------------------------------------------------------------------------------
@pytest.mark.student("maxpool_forward")
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_maxpool_forward_equals_nn_maxpool2d(module, case):
    shape, size, stride = case
    x = np.random.default_rng(6).standard_normal(shape)
    y, _ = module.maxpool_forward(x, size, stride)
    with nn.backends.using("numpy", "fp64"):
        expected = MaxPool2D(size, stride).forward(x)
    assert np.shape(y) == expected.shape, f"y of shape {np.shape(y)}, expected {expected.shape}"
    np.testing.assert_array_equal(y, expected)


@pytest.mark.student("maxpool_forward")
def test_maxpool_stride_defaults_to_the_size(module):
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 6))
    y, _ = module.maxpool_forward(x, 2)
    np.testing.assert_array_equal(y, x.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)))


@pytest.mark.student("maxpool_forward")
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2)])
def test_maxpool_forward_remembers_the_first_maximum_on_ties(module, size, stride):
    """The cache's argmax is the window offset of the maximum, the first one on ties (as nn's)."""
    x = np.random.default_rng(14).integers(0, 3, (2, 3, 7, 8)).astype(np.float64)
    _, cache = module.maxpool_forward(x, size, stride)
    with nn.backends.using("numpy", "fp64") as B:
        _, expected = B.maxpool(x, (size, size), (stride, stride))
    argmax = np.ravel(cache[1])
    assert argmax.size == expected.size, f"{argmax.size} argmax values, expected one per window ({expected.size})"
    np.testing.assert_array_equal(argmax, expected.ravel(),
                                  err_msg="on a tie the first maximum in reading order wins (np.argmax)")


@pytest.mark.student("maxpool_backward")
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_maxpool_backward_matches_finite_differences(module, report, case):
    shape, size, stride = case
    x = distinct(shape, seed=8)
    y, cache = module.maxpool_forward(x, size, stride)
    dy = np.random.default_rng(9).standard_normal(np.shape(y))
    dy_before = dy.copy()
    dx = module.maxpool_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before, err_msg="maxpool_backward must not modify dy")
    numeric = numerical_gradient(lambda v: np.sum(module.maxpool_forward(v, size, stride)[0] * dy),
                                 x.copy())
    assert np.shape(dx) == shape, f"dx has shape {np.shape(dx)}, expected {shape}"
    err = rel_error(dx, numeric)
    report(rel_error=err, limit=TOL)
    assert err < TOL, f"relative error {err:.2e}"


@pytest.mark.student("maxpool_backward")
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2), (2, 1)])
def test_maxpool_ties_go_to_the_first_maximum(module, size, stride):
    """With ties (values rounded to a few levels), dy goes to the first maximum of each
    window in reading order, as in nn and PyTorch."""
    rng = np.random.default_rng(10)
    x = rng.integers(0, 3, (2, 2, 7, 7)).astype(np.float64)
    x[0, 0] = 1.0                                       # a flat channel: all ties
    y, cache = module.maxpool_forward(x, size, stride)
    dy = rng.standard_normal(np.shape(y))
    dx = module.maxpool_backward(dy, cache)
    with nn.backends.using("numpy", "fp64"):
        pool = MaxPool2D(size, stride)
        pool.forward(x)
        expected = pool.backward(dy)
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sum(dx), np.sum(dy), rtol=1e-10,
                               err_msg="each window passes all of its dy to one pixel")


# -- the layer classes ------------------------------------------------------------------------------
@pytest.mark.student("conv_backward")
@pytest.mark.parametrize("args, kwargs, shape", [
    ((2, 3, 3), dict(), (2, 2, 6, 5)),
    ((3, 2, (3, 4)), dict(stride=2, padding=1), (2, 3, 8, 9)),
])
def test_conv_by_hand_passes_check_layer(module, report, args, kwargs, shape):
    layer = module.ConvByHand(*args, **kwargs)
    assert layer.params["W"].shape == Conv2D(*args, **kwargs).params["W"].shape
    errors = check_layer(layer, shape, seed=11)
    report(rel_error=max(errors.values()), limit=TOL)
    assert set(errors) == {"x", "W", "b"}
    assert layer.output_shape(shape[1:]) == Conv2D(*args, **kwargs).output_shape(shape[1:])


@pytest.mark.student("maxpool_backward")
@pytest.mark.parametrize("size, stride", [(2, None), (3, 2)])
def test_maxpool_by_hand_passes_check_layer(module, report, size, stride):
    layer = module.MaxPoolByHand(size, stride)
    shape = (2, 3, 9, 8)
    errors = check_layer(layer, shape, seed=12, x=distinct(shape, seed=13))
    report(rel_error=errors["x"], limit=TOL)
    assert layer.output_shape(shape[1:]) == MaxPool2D(size, stride).output_shape(shape[1:])


# -- in a Network ---------------------------------------------------------------------------------
_samples: dict = {}


def fashion_sample():
    """The bundled Fashion-MNIST sample, standardised with the training images' statistics."""
    if not _samples:
        x, y = load_fashion_mnist("train", source="sample")
        x_test, y_test = load_fashion_mnist("test", source="sample")
        norm = Standardize(axis=None).fit(x)
        _samples["data"] = norm.transform(x), y, norm.transform(x_test), y_test
    return _samples["data"]


@pytest.mark.student("conv_backward")
def test_a_network_of_by_hand_layers_learns_fashion_mnist(module, report):
    """Two epochs of Adam (nn's fit) on the 2 000 sample images; accuracy on the 1 000 test images."""
    x, y, x_test, y_test = fashion_sample()
    with nn.backends.using("numpy", "fp32", seed=SEED):
        net = module.small_cnn(by_hand=True)
        assert any(isinstance(layer, module.ConvByHand) for layer in net.layers)
        history = net.fit(x, y, epochs=2, batch_size=32, optimizer=nn.optim.Adam(3e-3),
                          seed=SEED, progress=False)
        accuracy = net.evaluate(x_test, y_test)["accuracy"]
    report(accuracy=accuracy, threshold=0.70)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert accuracy >= 0.70, f"test accuracy {accuracy:.1%} < 70 % after 2 epochs on 2 000 images"


# -- train_by_hand ------------------------------------------------------------------------------
def tiny_net(seed=0):
    """A small library CNN on 1x6x6 images, 3 classes (float64 parameters)."""
    from nn import Network
    from nn.layers import Dense, Flatten, ReLU
    from nn.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(seed)
    net = Network([Conv2D(1, 3, 3, padding=1, init="he"), ReLU(), MaxPool2D(2), Flatten(),
                   Dense(3 * 3 * 3, 3)], SoftmaxCrossEntropy())
    for layer, name in net.parameters():
        layer.params[name] = rng.normal(0, 0.5, layer.params[name].shape)
    return net


def tiny_data(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 3, n)


@pytest.mark.student("train_by_hand")
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_train_by_hand_full_batch_is_gradient_descent_with_momentum(module, report, momentum):
    """One batch holding every example: the order does not matter, and each epoch must be
    exactly one step of v <- momentum v - lr g, w <- w + v (nn's SGD, the same rule)."""
    x, y = tiny_data(20)
    with nn.backends.using("numpy", "fp64", seed=SEED):
        mine, reference = tiny_net(), tiny_net()
        history = module.train_by_hand(mine, x, y, epochs=4, batch_size=64, lr=0.1,
                                       momentum=momentum, seed=3)
        optimizer, losses, accuracies = SGD(0.1, momentum=momentum), [], []
        for _ in range(4):
            out = reference.forward(x, train=True)
            losses.append(reference.loss.forward(out, y))
            accuracies.append(np.mean(np.argmax(out, axis=1) == y))
            reference.backward(reference.loss.backward())
            optimizer.step(reference.parameters())
    assert set(history) >= {"loss", "accuracy"} and len(history["loss"]) == 4, \
        "one loss and one accuracy per epoch"
    err = rel_error(np.array(history["loss"]), np.array(losses))
    report(rel_error=err, limit=1e-10)
    assert err < 1e-10, f"losses {history['loss']}, expected {losses}"
    np.testing.assert_allclose(history["accuracy"], accuracies, atol=1e-12)
    for (key, layer, name), (_, other, _) in zip(mine.named_parameters(), reference.named_parameters()):
        np.testing.assert_allclose(layer.params[name], other.params[name], rtol=1e-9, atol=1e-12,
                                   err_msg=f"parameter {key} after 4 epochs")


class Record(nn.layers.Layer):
    """Identity that keeps the first pixel of every training batch (a test helper)."""

    def __init__(self):
        super().__init__()
        self.batches, self.train_flags = [], []

    def forward(self, x, train=False):
        self.batches.append(np.array(x[:, 0, 0, 0]))
        self.train_flags.append(train)
        return x

    def backward(self, dy):
        return dy


@pytest.mark.student("train_by_hand")
@pytest.mark.parametrize("n, batch_size", [(10, 4), (7, 1), (9, 9)])
def test_train_by_hand_visits_every_example_once_per_epoch(module, n, batch_size):
    """Batches of batch_size (the last one smaller), every example once per epoch, a new
    order every epoch, drawn from the seed; training mode."""
    x, y = tiny_data(n)
    x[:, 0, 0, 0] = np.arange(n)                       # the first pixel names the example
    with nn.backends.using("numpy", "fp64", seed=SEED):
        net = tiny_net()
        record = Record()
        net.layers.insert(0, record)
        module.train_by_hand(net, x, y, epochs=3, batch_size=batch_size, lr=0.01, seed=5)
    per_epoch = -(-n // batch_size)
    assert len(record.batches) == 3 * per_epoch, f"{len(record.batches)} batches for 3 epochs"
    assert all(record.train_flags), "the forward pass runs in training mode (train=True)"
    sizes = [len(b) for b in record.batches[:per_epoch]]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    orders = [np.concatenate(record.batches[e * per_epoch:(e + 1) * per_epoch]) for e in range(3)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(n), err_msg="each example once per epoch")
    if batch_size < n:
        assert not all(np.array_equal(orders[0], o) for o in orders[1:]), "a new order every epoch"
    with nn.backends.using("numpy", "fp64", seed=SEED):
        again = tiny_net()
        record2 = Record()
        again.layers.insert(0, record2)
        module.train_by_hand(again, x, y, epochs=3, batch_size=batch_size, lr=0.01, seed=5)
    np.testing.assert_array_equal(np.concatenate(record2.batches), np.concatenate(record.batches),
                                  err_msg="the same seed gives the same order")


@pytest.mark.student("train_by_hand")
def test_train_by_hand_trains_the_by_hand_cnn_on_fashion_mnist(module, report):
    """Two epochs of the slides' recipe (SGD with momentum 0.9; measured 77.6 % and 75.6 % with
    seeds 0 and 1) on the 2 000 sample images, with your layers; accuracy on the 1 000 test
    images."""
    x, y, x_test, y_test = fashion_sample()
    with nn.backends.using("numpy", "fp32", seed=SEED):
        net = module.small_cnn(by_hand=True)
        history = module.train_by_hand(net, x, y, epochs=2, batch_size=16, lr=0.01,
                                       momentum=0.9, seed=SEED)
        accuracy = net.evaluate(x_test, y_test)["accuracy"]
    report(accuracy=accuracy, threshold=0.70)
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] > history["accuracy"][0]
    assert accuracy >= 0.70, f"test accuracy {accuracy:.1%} < 70 % after 2 epochs on 2 000 images"


@pytest.mark.student("conv_backward")
def test_by_hand_network_follows_nn_layers_step_by_step_in_fp64(module, report):
    """Same weights, same batches, SGD with momentum: the same loss at every step."""
    x, y, _, _ = fashion_sample()
    with nn.backends.using("numpy", "fp64", seed=SEED):
        by_hand, library = module.small_cnn(by_hand=True), module.small_cnn(by_hand=False)
        assert [type(layer).__name__ for layer in by_hand.layers] != \
               [type(layer).__name__ for layer in library.layers], "small_cnn(by_hand=True) uses the by-hand layers"
        module.copy_weights(library, by_hand)
        losses = {}
        for name, net in (("by hand", by_hand), ("library", library)):
            optimizer, losses[name] = SGD(0.05, momentum=0.9), []
            for step in range(6):
                batch = slice(16 * step, 16 * step + 16)
                value = net.loss.forward(net.forward(x[batch], train=True), y[batch])
                net.backward(net.loss.backward())
                optimizer.step(net.parameters())
                losses[name].append(value)
    err = rel_error(np.array(losses["by hand"]), np.array(losses["library"]))
    report(rel_error=err, limit=1e-10)
    assert losses["library"][-1] < losses["library"][0], "the library network learns"
    assert err < 1e-10, f"losses by hand {losses['by hand']} vs library {losses['library']}"
    for (key, layer, name), (_, other, other_name) in zip(by_hand.named_parameters(),
                                                          library.named_parameters()):
        np.testing.assert_allclose(layer.params[name], other.params[other_name], rtol=1e-9,
                                   atol=1e-12, err_msg=f"parameter {key} after 6 steps")
