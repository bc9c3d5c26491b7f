"""The spectra_cnn practical: the output length of a 1D convolution, the preparation of
spectra for a CNN, the course's 1D CNN (layers, lengths, parameters), and a short training
on the synthetic spectra."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import nn
from nn.backends.im2col import output_size
from nn.data import make_stellar_spectra
from nn.layers import Conv1D, Dense, Dropout, Flatten, ReLU
from nn.losses import SoftmaxCrossEntropy
from nn.optim import Adam

PRACTICAL = "spectra_cnn"
SEED = 0


@functools.lru_cache(maxsize=None)
def spectra(seed=SEED):
    return make_stellar_spectra(seed)


# -- conv_output_length ----------------------------------------------------------------------
@pytest.mark.student("conv_output_length")
@pytest.mark.parametrize("args, expected", [((3753, 8, 4, 2), 938), ((938, 8, 4, 2), 234),
                                            ((234, 8, 4, 2), 58), ((28, 5, 1, 2), 28),
                                            ((10, 3, 2, 0), 4), ((7, 3, 3, 1), 3),
                                            ((8, 8, 4, 0), 1)])
def test_conv_output_length_examples(module, args, expected):
    assert module.conv_output_length(*args) == expected


@pytest.mark.student("conv_output_length")
def test_conv_output_length_matches_the_library(module):
    for length in (5, 9, 16, 33, 100):
        for kernel in (1, 2, 3, 8):
            for stride in (1, 2, 3, 4):
                for padding in (0, 1, 2):
                    if length + 2 * padding < kernel:
                        continue
                    got = module.conv_output_length(length, kernel, stride, padding)
                    want = output_size(length, kernel, stride, padding)
                    assert got == want, (f"length {length}, kernel {kernel}, stride {stride}, "
                                         f"padding {padding}: got {got}, expected {want}")


# -- prepare_for_cnn -------------------------------------------------------------------------
def raw_spectra(n, length, seed):
    """Positive spectra with a shape per bin and a brightness per star spanning 100x."""
    rng = np.random.default_rng(seed)
    shape = 1.0 + 0.5 * np.sin(np.linspace(0, 6, length)) + 0.2 * rng.random((n, length))
    return shape * rng.uniform(0.1, 10.0, (n, 1))


@pytest.mark.student("prepare_for_cnn")
def test_prepare_for_cnn_shapes_and_training_statistics(module):
    x_train, x_test = raw_spectra(40, 23, seed=1), raw_spectra(9, 23, seed=2)
    a_train, a_test = module.prepare_for_cnn(x_train, x_test)
    assert a_train.shape == (40, 1, 23) and a_test.shape == (9, 1, 23), \
        "a channel axis must be added: (N, L) -> (N, 1, L)"
    assert a_train.dtype == np.float32 and a_test.dtype == np.float32
    assert abs(a_train.mean()) < 1e-5 and abs(a_train.std() - 1.0) < 1e-4
    assert np.abs(a_train[:, 0].mean(axis=0)).max() > 0.5, \
        "one mean and one std for all the bins, not one per bin"

    flux_train = x_train / x_train.mean(axis=1, keepdims=True)
    flux_test = x_test / x_test.mean(axis=1, keepdims=True)
    mean, std = flux_train.mean(), flux_train.std()
    np.testing.assert_allclose(a_train[:, 0], (flux_train - mean) / std, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a_test[:, 0], (flux_test - mean) / std, rtol=1e-4, atol=1e-5,
                               err_msg="the test spectra use the mean and std of the training "
                                       "spectra, after dividing each by its mean flux")


@pytest.mark.student("prepare_for_cnn")
def test_prepare_for_cnn_ignores_the_brightness_of_each_star(module):
    x_train, x_test = raw_spectra(30, 17, seed=3), raw_spectra(5, 17, seed=4)
    rng = np.random.default_rng(5)
    a_train, a_test = module.prepare_for_cnn(x_train, x_test)
    b_train, b_test = module.prepare_for_cnn(x_train * rng.uniform(0.01, 100, (30, 1)),
                                             x_test * rng.uniform(0.01, 100, (5, 1)))
    np.testing.assert_allclose(b_train, a_train, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b_test, a_test, rtol=1e-4, atol=1e-5)


@pytest.mark.student("prepare_for_cnn")
def test_prepare_for_cnn_does_not_divide_by_a_zero_spread(module):
    x_train, x_test = raw_spectra(12, 11, seed=6), raw_spectra(4, 11, seed=7)
    flat = np.ones((12, 11)) * np.arange(1, 13)[:, None]   # flat spectra: no spread at all
    a_train, a_test = module.prepare_for_cnn(flat, x_test)
    assert np.isfinite(a_train).all() and np.isfinite(a_test).all()
    np.testing.assert_allclose(a_train, 0.0, atol=1e-6)
    expected = x_test / x_test.mean(axis=1, keepdims=True) - 1.0
    np.testing.assert_allclose(a_test[:, 0], expected, rtol=1e-4, atol=1e-5)
    x_train_before = x_train.copy()
    module.prepare_for_cnn(x_train, x_test)
    np.testing.assert_array_equal(x_train, x_train_before, err_msg="x_train was modified")


# -- spectra_cnn -----------------------------------------------------------------------------
def expected_layers(n_bins, n_classes):
    lengths = [n_bins]
    for _ in range(3):
        lengths.append(output_size(lengths[-1], 8, 4, 2))
    convs = [(1, 8), (8, 16), (16, 32)]
    return lengths, convs, 32 * lengths[-1]


@pytest.mark.student("spectra_cnn")
@pytest.mark.parametrize("n_bins, n_classes", [(3753, 7), (1001, 3)])
def test_spectra_cnn_layers(module, n_bins, n_classes):
    net = module.spectra_cnn(n_bins, n_classes)
    lengths, convs, flat = expected_layers(n_bins, n_classes)
    kinds = [type(layer) for layer in net.layers]
    expected = [Conv1D, ReLU, Conv1D, ReLU, Conv1D, ReLU, Flatten,
                Dense, ReLU, Dropout, Dense, ReLU, Dropout, Dense]
    assert kinds == expected, f"layers {[k.__name__ for k in kinds]}"
    for layer, (c_in, c_out) in zip(net.layers[0:6:2], convs):
        assert (layer.in_channels, layer.out_channels) == (c_in, c_out)
        assert (layer.kernel_size, layer.stride, layer.padding) == ((8,), (4,), (2,)), \
            f"{layer!r}: kernel 8, stride 4, padding 2"
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    assert [(d.in_features, d.out_features) for d in dense] == \
        [(flat, 256), (256, 256), (256, n_classes)]
    assert [d.rate for d in net.layers if isinstance(d, Dropout)] == [0.4, 0.4]
    assert isinstance(net.loss, SoftmaxCrossEntropy)


@pytest.mark.student("spectra_cnn")
def test_spectra_cnn_lengths_and_parameters(module):
    net = module.spectra_cnn()
    x = np.random.default_rng(0).normal(size=(2, 1, 3753)).astype(np.float32)
    lengths = []
    a = x
    for layer in net.layers:
        a = layer.forward(a, train=False)
        if isinstance(layer, Conv1D):
            lengths.append(a.shape[-1])
    assert lengths == [938, 234, 58]
    assert a.shape == (2, 7)
    convs = 8 * 1 * 8 + 8 + 16 * 8 * 8 + 16 + 32 * 16 * 8 + 32
    dense = 1856 * 256 + 256 + 256 * 256 + 256 + 256 * 7 + 7
    assert convs == 5240 and net.n_params() == convs + dense == 548223


# -- training --------------------------------------------------------------------------------
_trained: dict = {}


def trained_accuracy(module):
    """Test accuracy of the CNN after 4 epochs of Adam on the prepared synthetic spectra."""
    if id(module) not in _trained:
        x, y = spectra()
        x_train, y_train, x_test, y_test = module.split_spectra(x, y, seed=SEED)
        x_train, x_test = module.prepare_for_cnn(x_train, x_test)
        with nn.backends.using("numpy", "fp32", seed=SEED):
            net = module.spectra_cnn()
            net.fit(x_train, y_train, epochs=4, batch_size=32, optimizer=Adam(1e-3),
                    seed=SEED, progress=False)
            _trained[id(module)] = net.evaluate(x_test, y_test)["accuracy"]
    return _trained[id(module)]


@pytest.mark.student("spectra_cnn")
def test_the_cnn_classifies_the_spectra(module, report):
    acc = trained_accuracy(module)
    report(accuracy=acc, threshold=0.65)
    assert acc >= 0.65, f"test accuracy {acc:.1%} < 65 % after 4 epochs"
