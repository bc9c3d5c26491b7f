"""The lenet practical: the slides' LeNet (layers, shapes, parameter counts), random flips,
and a short seeded training on the bundled Fashion-MNIST sample."""
from __future__ import annotations

import numpy as np
import pytest

from nn.data import Standardize, load_fashion_mnist
from nn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D
from nn.losses import SoftmaxCrossEntropy

PRACTICAL = "lenet"
SEED = 0

# (layer type, constructor settings, output shape for a 1x28x28 input, parameters)
LAYERS = [
    (Conv2D, dict(in_channels=1, out_channels=6, kernel_size=(5, 5), padding=(2, 2)), (6, 28, 28), 6 * 25 + 6),
    (LeakyReLU, dict(alpha=0.1), (6, 28, 28), 0),
    (MaxPool2D, dict(kernel_size=(2, 2), stride=(2, 2)), (6, 14, 14), 0),
    (Conv2D, dict(in_channels=6, out_channels=16, kernel_size=(5, 5), padding=(0, 0)), (16, 10, 10), 16 * 6 * 25 + 16),
    (LeakyReLU, dict(alpha=0.1), (16, 10, 10), 0),
    (MaxPool2D, dict(kernel_size=(2, 2), stride=(2, 2)), (16, 5, 5), 0),
    (Conv2D, dict(in_channels=16, out_channels=48, kernel_size=(3, 3), padding=(0, 0)), (48, 3, 3), 48 * 16 * 9 + 48),
    (LeakyReLU, dict(alpha=0.1), (48, 3, 3), 0),
    (Flatten, {}, (432,), 0),
    (Dense, dict(in_features=432, out_features=1024), (1024,), 432 * 1024 + 1024),
    (LeakyReLU, dict(alpha=0.1), (1024,), 0),
    (Dropout, dict(rate=0.5), (1024,), 0),
    (Dense, dict(in_features=1024, out_features=256), (256,), 1024 * 256 + 256),
    (LeakyReLU, dict(alpha=0.1), (256,), 0),
    (Dropout, dict(rate=0.2), (256,), 0),
    (Dense, dict(in_features=256, out_features=10), (10,), 256 * 10 + 10),
]
N_PARAMS = sum(row[3] for row in LAYERS)      # 717 894


@pytest.mark.student("lenet")
def test_lenet_has_the_layers_of_the_slides(module):
    net = module.lenet()
    got = [type(layer).__name__ for layer in net.layers]
    assert got == [row[0].__name__ for row in LAYERS], f"layers {got}"
    for i, (layer, (_, settings, _, _)) in enumerate(zip(net.layers, LAYERS)):
        for name, value in settings.items():
            have = getattr(layer, name)
            have = tuple(have) if isinstance(have, (list, tuple)) else have
            assert have == value, f"layer {i} ({layer!r}): {name} is {have}, expected {value}"
        if isinstance(layer, Conv2D):
            assert tuple(layer.stride) == (1, 1), f"layer {i} ({layer!r}): stride 1"
    assert isinstance(net.loss, SoftmaxCrossEntropy), "the softmax goes in the loss"


@pytest.mark.student("lenet")
def test_lenet_output_shapes_and_parameter_counts(module):
    net = module.lenet()
    shape = (1, 28, 28)
    for i, (layer, (_, _, expected, n_params)) in enumerate(zip(net.layers, LAYERS)):
        shape = layer.output_shape(shape)
        assert tuple(shape) == expected, f"output of layer {i} ({layer!r}): {shape}, expected {expected}"
        assert layer.n_params() == n_params, f"layer {i} ({layer!r}) has {layer.n_params()} parameters"
    assert net.n_params() == N_PARAMS == 717_894
    assert "717,894" in net.summary((1, 28, 28))


@pytest.mark.student("lenet")
@pytest.mark.parametrize("n_classes", [10, 3])
def test_lenet_forward_gives_one_logit_per_class(module, n_classes):
    net = module.lenet(n_classes=n_classes)
    x = np.random.default_rng(0).uniform(size=(5, 1, 28, 28)).astype(np.float32)
    out = net.predict(x)
    assert out.shape == (5, n_classes)
    assert np.all(np.isfinite(out))
    assert not np.allclose(out[0], out[1]), "different images, different logits"
    assert net.n_params() == N_PARAMS - (10 - n_classes) * 257


# -- random_flips --------------------------------------------------------------------------------
@pytest.mark.student("random_flips")
@pytest.mark.parametrize("shape", [(1000, 1, 6, 5), (400, 3, 4, 7)])
def test_random_flips_mirror_about_half_of_the_images(module, shape):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    before = x.copy()
    out = np.asarray(module.random_flips(x, np.random.default_rng(2)))
    np.testing.assert_array_equal(x, before, err_msg="x must not be modified")
    assert out.shape == x.shape and out.dtype == x.dtype
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored), "every image is either unchanged or mirrored left-right"
    n = len(x)
    assert 0.4 * n < mirrored.sum() < 0.6 * n, f"{mirrored.sum()} of {n} images mirrored"


@pytest.mark.student("random_flips")
def test_random_flips_draw_from_rng(module):
    x = np.random.default_rng(3).normal(size=(64, 1, 5, 5))
    first = module.random_flips(x, np.random.default_rng(4))
    np.testing.assert_array_equal(first, module.random_flips(x, np.random.default_rng(4)))
    rng = np.random.default_rng(4)
    module.random_flips(x, rng)
    assert not np.array_equal(module.random_flips(x, rng), first), \
        "every batch must draw new flips from rng"


# -- predict_with_flips ----------------------------------------------------------------------------
def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def small_net(scale=1.0, seed=0):
    """A small CNN on 2x6x7 images (4 classes), weights times ``scale``."""
    from nn import Network

    rng = np.random.default_rng(seed)
    net = Network([Conv2D(2, 3, 3), LeakyReLU(0.1), Flatten(), Dense(3 * 4 * 5, 4)],
                  SoftmaxCrossEntropy())
    for layer, name in net.parameters():
        layer.params[name] = (scale * rng.normal(0, 0.5, layer.params[name].shape)).astype(np.float32)
    return net


@pytest.mark.student("predict_with_flips")
def test_predict_with_flips_averages_the_probabilities_of_both_images(module):
    net = small_net()
    x = np.random.default_rng(5).normal(size=(9, 2, 6, 7)).astype(np.float32)
    before = x.copy()
    p = np.asarray(module.predict_with_flips(net, x, batch_size=4))
    np.testing.assert_array_equal(x, before, err_msg="x must not be modified")
    assert p.shape == (9, 4)
    expected = (softmax(net.predict(x)) + softmax(net.predict(x[:, :, :, ::-1].copy()))) / 2
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    alone = softmax(net.predict(x))
    assert not np.allclose(p, alone, atol=1e-3), "the mirrored images must count too"


@pytest.mark.student("predict_with_flips")
def test_predict_with_flips_survives_large_logits(module):
    net = small_net(scale=300.0)                    # logits of order 1e4: exp overflows
    x = np.random.default_rng(6).normal(size=(5, 2, 6, 7)).astype(np.float32)
    p = np.asarray(module.predict_with_flips(net, x))
    assert np.all(np.isfinite(p)), "subtract the largest logit of each row before exp"
    expected = (softmax(net.predict(x)) + softmax(net.predict(x[:, :, :, ::-1].copy()))) / 2
    np.testing.assert_allclose(p, expected, atol=1e-6)


# -- training ------------------------------------------------------------------------------------
_trained: dict = {}


def trained_on_sample(module):
    """Test accuracy of a LeNet trained (``train_lenet``: Adam, flips) for 4 epochs on the
    2 000 bundled training images, on the 1 000 bundled test images."""
    if id(module) not in _trained:
        x, y = load_fashion_mnist("train", source="sample")
        x_test, y_test = load_fashion_mnist("test", source="sample")
        norm = Standardize(axis=None).fit(x)
        net, history = module.train_lenet(norm.transform(x), y, None, epochs=4, batch_size=32,
                                          seed=SEED, progress=False)
        _trained[id(module)] = net.evaluate(norm.transform(x_test), y_test)["accuracy"], history
    return _trained[id(module)]


@pytest.mark.student("lenet")
def test_lenet_learns_fashion_mnist_sample(module, report):
    accuracy, history = trained_on_sample(module)
    report(accuracy=accuracy, threshold=0.75)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert accuracy >= 0.75, f"test accuracy {accuracy:.1%} < 75 % after 4 epochs on 2 000 images"
