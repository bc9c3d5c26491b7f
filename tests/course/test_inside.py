"""The inside practical: filters shown with 0 at mid-grey, activation maps (the forward
through the first layers), occlusion maps checked on hand-made networks whose answer is
known, the input gradient of a class score (gradient-checked in float64) and activation
maximisation (its fixed point on a linear layer, the effect of jitter and of the penalty)."""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network
from nn.gradcheck import numerical_gradient, rel_error
from nn.layers import (Conv2D, Dense, Dropout, Flatten, Layer, LeakyReLU, MaxPool2D)
from nn.losses import SoftmaxCrossEntropy

PRACTICAL = "inside"


def small_cnn(seed=0):
    """A LeNet-like network on 1x12x12 images, with a dropout the maps must not apply."""
    rng = np.random.default_rng(seed)
    net = Network([Conv2D(1, 3, 3, padding=1), LeakyReLU(0.1), MaxPool2D(2),
                   Conv2D(3, 4, 3), LeakyReLU(0.1), Dropout(0.5), Flatten(),
                   Dense(4 * 4 * 4, 5)], SoftmaxCrossEntropy())
    for layer, name in net.parameters():        # biases too, so that none is a trivial zero
        layer.params[name] = rng.normal(0, 0.5, layer.params[name].shape).astype(np.float32)
    return net


# -- normalise_filters -----------------------------------------------------------------------
@pytest.mark.student("normalise_filters")
def test_normalise_filters_keeps_zero_at_mid_grey(module):
    rng = np.random.default_rng(0)
    W = rng.normal(0, 1, (4, 3, 5, 5))
    W[1] *= 100.0                                      # scales differ from filter to filter
    W[2] = np.abs(W[2])                                # a filter of positive weights only
    W[3] = 0.0                                         # and one of zeros
    out = np.asarray(module.normalise_filters(W))
    assert out.shape == W.shape
    assert out.min() >= 0 and out.max() <= 1
    for o in range(3):
        largest = np.abs(W[o]).max()
        np.testing.assert_allclose(out[o], 0.5 + W[o] / (2 * largest), rtol=1e-12, atol=1e-12)
        assert np.isclose(np.abs(out[o] - 0.5).max(), 0.5), "each filter uses the full range"
    np.testing.assert_array_equal(out[3], 0.5)
    assert out[2].min() >= 0.5, "0 must stay at mid-grey, not be stretched to black"


@pytest.mark.student("normalise_filters")
def test_normalise_filters_single_weight_and_negative_filters(module):
    W = np.array([[[[-3.0]]], [[[2.0]]]])                 # two 1x1 filters of one channel
    np.testing.assert_allclose(np.asarray(module.normalise_filters(W)).ravel(), [0.0, 1.0], atol=1e-12)
    W = -np.abs(np.random.default_rng(1).normal(size=(1, 2, 3, 3))) - 0.1
    out = np.asarray(module.normalise_filters(W))
    assert out.max() <= 0.5 and np.isclose(out.min(), 0.0), "negative weights go below mid-grey"


# -- activation_maps -------------------------------------------------------------------------
@pytest.mark.student("activation_maps")
@pytest.mark.parametrize("n_layers, shape", [(0, (1, 12, 12)), (1, (3, 12, 12)), (2, (3, 12, 12)),
                                             (3, (3, 6, 6)), (5, (4, 4, 4)), (6, (4, 4, 4)),
                                             (7, (64,)), (8, (5,))])
def test_activation_maps_are_the_forward_through_the_first_layers(module, n_layers, shape):
    net = small_cnn()
    x = np.random.default_rng(1).normal(size=(7, 1, 12, 12)).astype(np.float32)
    maps = np.asarray(module.activation_maps(net, x, n_layers))
    assert maps.shape == (7, *shape)
    expected = x
    for layer in net.layers[:n_layers]:
        expected = layer.forward(expected, train=False)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-6)
    if n_layers == len(net.layers):
        np.testing.assert_allclose(maps, net.predict(x), rtol=1e-6, atol=1e-6)


@pytest.mark.student("activation_maps")
def test_activation_maps_apply_no_dropout(module):
    net = small_cnn()
    x = np.random.default_rng(2).normal(size=(3, 1, 12, 12)).astype(np.float32)
    first = np.asarray(module.activation_maps(net, x, 6))
    again = np.asarray(module.activation_maps(net, x, 6))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, np.asarray(module.activation_maps(net, x, 5)), rtol=1e-6)


# -- occlusion_map ---------------------------------------------------------------------------
def region_network(H, W, rows, cols, weight):
    """Two classes on 1xHxW images: logit 0 is ``weight * sum`` of the pixels in
    ``rows x cols``, logit 1 is 0. Nothing outside that region matters."""
    mask = np.zeros((H, W))
    mask[rows, cols] = 1.0
    dense = Dense(H * W, 2)
    dense.params["W"] = np.stack([weight * mask.ravel(), np.zeros(H * W)], axis=1).astype(np.float32)
    dense.params["b"] = np.zeros(2, dtype=np.float32)
    return Network([Flatten(), dense], SoftmaxCrossEntropy())


def overlaps(H, W, rows, cols, patch, stride):
    """Boolean map: does the patch at each position overlap ``rows x cols``?"""
    n_rows, n_cols = (H - patch) // stride + 1, (W - patch) // stride + 1
    out = np.zeros((n_rows, n_cols), dtype=bool)
    for i in range(n_rows):
        for j in range(n_cols):
            r, c = i * stride, j * stride
            out[i, j] = r < rows.stop and rows.start < r + patch and \
                c < cols.stop and cols.start < c + patch
    return out


@pytest.mark.student("occlusion_map")
@pytest.mark.parametrize("patch, stride", [(3, 1), (4, 2), (5, 3), (2, 4)])
def test_occlusion_map_is_nonzero_exactly_where_the_patch_hides_the_region(module, patch, stride):
    H, W, rows, cols = 13, 11, slice(4, 7), slice(6, 9)
    net = region_network(H, W, rows, cols, weight=0.7)
    image = np.random.default_rng(3).uniform(0, 1, (1, H, W)).astype(np.float32)
    drop = np.asarray(module.occlusion_map(net, image, 0, patch=patch, stride=stride,
                                           rng=np.random.default_rng(4)))
    expected = overlaps(H, W, rows, cols, patch, stride)
    assert drop.shape == expected.shape
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(np.abs(drop) > 1e-6, expected,
                                  err_msg="map[i, j] is the patch with its top-left corner at "
                                          "(i * stride, j * stride)")


@pytest.mark.student("occlusion_map")
def test_occlusion_map_is_the_drop_of_the_true_class_probability(module):
    # logit 0 = -1e4 * (sum of a 4x4 region); the image is 0 there and in [0.5, 1] elsewhere,
    # so p_0 = 0.5 on the image and any noise in the region (>= image.min() = 0, almost
    # surely > 0) sends p_0 to 0: the map is 0.5 where the patch overlaps the region, else 0.
    # For class 1 the map is the opposite (p_1 rises from 0.5 to 1).
    H, W, rows, cols = 16, 16, slice(8, 12), slice(2, 6)
    net = region_network(H, W, rows, cols, weight=-1e4)
    image = np.random.default_rng(5).uniform(0.5, 1.0, (1, H, W))
    image[0, rows, cols] = 0.0
    expected = 0.5 * overlaps(H, W, rows, cols, 4, 2)
    drop = np.asarray(module.occlusion_map(net, image, 0, patch=4, stride=2,
                                           rng=np.random.default_rng(6)))
    np.testing.assert_allclose(drop, expected, atol=1e-6)
    drop = np.asarray(module.occlusion_map(net, image, 1, patch=4, stride=2,
                                           rng=np.random.default_rng(6)))
    np.testing.assert_allclose(drop, -expected, atol=1e-6)


@pytest.mark.student("occlusion_map")
@pytest.mark.parametrize("shape, patch, stride", [((1, 28, 28), 6, 2), ((1, 28, 28), 5, 3),
                                                   ((3, 9, 14), 3, 2), ((2, 7, 5), 1, 1),
                                                   ((1, 10, 10), 10, 1)])
def test_occlusion_map_shape(module, shape, patch, stride):
    C, H, W = shape
    net = Network([Flatten(), Dense(C * H * W, 4)], SoftmaxCrossEntropy())
    image = np.random.default_rng(7).uniform(size=shape).astype(np.float32)
    drop = np.asarray(module.occlusion_map(net, image, 2, patch=patch, stride=stride,
                                           rng=np.random.default_rng(0)))
    assert drop.shape == ((H - patch) // stride + 1, (W - patch) // stride + 1)
    assert np.all(np.isfinite(drop))


@pytest.mark.student("occlusion_map")
def test_occlusion_map_draws_its_noise_from_rng(module):
    net = small_cnn()
    image = np.random.default_rng(8).normal(size=(1, 12, 12)).astype(np.float32)
    first = module.occlusion_map(net, image, 3, patch=4, stride=2, rng=np.random.default_rng(9))
    again = module.occlusion_map(net, image, 3, patch=4, stride=2, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(first, again)
    other = module.occlusion_map(net, image, 3, patch=4, stride=2, rng=np.random.default_rng(10))
    assert not np.allclose(first, other), "the noise must come from rng: another seed, another map"


class RecordInputs(Layer):
    """Identity that keeps every batch it sees (a test helper; never saved)."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, x, train=False):
        self.batches.append(np.array(x))
        return x


@pytest.mark.student("occlusion_map")
def test_occlusion_map_hides_one_patch_of_noise_at_every_position(module):
    H, W, patch, stride = 11, 9, 3, 2
    record = RecordInputs()
    net = Network([record, Flatten(), Dense(2 * H * W, 3)], SoftmaxCrossEntropy())
    image = np.random.default_rng(11).uniform(-2, 3, size=(2, H, W)).astype(np.float32)
    drop = module.occlusion_map(net, image, 1, patch=patch, stride=stride,
                                rng=np.random.default_rng(0))
    assert np.shape(drop) == (5, 4)
    seen = np.concatenate(record.batches)
    occluded = [x for x in seen if not np.array_equal(x, image)]
    corners = []
    for x in occluded:
        changed = np.flatnonzero((x != image).any(axis=0).any(axis=1)), \
            np.flatnonzero((x != image).any(axis=0).any(axis=0))
        r, c = changed[0].min(), changed[1].min()
        # noise over the patch (a changed pixel may by chance keep its value: allow that)
        assert changed[0].max() < r + patch and changed[1].max() < c + patch, \
            "only a patch x patch square may change"
        corners.append((int(r), int(c)))
        inside = x[:, r:r + patch, c:c + patch]
        assert inside.min() >= image.min() and inside.max() <= image.max(), \
            "the noise is drawn between image.min() and image.max()"
        assert np.count_nonzero(inside != image[:, r:r + patch, c:c + patch]) > inside.size // 2
    expected = [(i, j) for i in range(0, H - patch + 1, stride) for j in range(0, W - patch + 1, stride)]
    assert sorted(corners) == sorted(expected), "one occluded image per position of the patch"


@pytest.mark.student("occlusion_map")
def test_occlusion_map_sends_the_occluded_images_in_batches(module):
    record = RecordInputs()
    net = Network([record, Flatten(), Dense(20 * 20, 3)], SoftmaxCrossEntropy())
    image = np.random.default_rng(11).uniform(size=(1, 20, 20)).astype(np.float32)
    drop = module.occlusion_map(net, image, 1, patch=3, stride=1, rng=np.random.default_rng(0),
                                batch_size=200)
    assert np.shape(drop) == (18, 18)
    assert len(record.batches) <= 3, (f"{len(record.batches)} forward passes for 324 occluded images: "
                                "stack them and call net.predict(images, batch_size=...) once")


# -- input_gradient ----------------------------------------------------------------------------
def away_from_kinks(shape, seed):
    """Images whose values are spread out enough that a finite-difference step of 1e-5 never
    flips a leaky ReLU or changes the winner of a max-pool window (checked by the test)."""
    return np.random.default_rng(seed).uniform(-1, 1, shape)


def fp64_cnn(seed, channels=1, size=8, n_classes=4):
    rng = np.random.default_rng(seed)
    net = Network([Conv2D(channels, 3, 3, padding=1), LeakyReLU(0.1), MaxPool2D(2),
                   Conv2D(3, 4, 3, padding=1), LeakyReLU(0.1), Dropout(0.5), Flatten(),
                   Dense(4 * (size // 2) ** 2, n_classes)], SoftmaxCrossEntropy())
    for layer, name in net.parameters():
        layer.params[name] = rng.normal(0, 0.5, layer.params[name].shape)
    return net


@pytest.mark.student("input_gradient")
@pytest.mark.parametrize("batch, channels, size, labels", [(1, 1, 8, [2]), (3, 2, 6, [0, 3, 3])])
def test_input_gradient_matches_finite_differences_in_fp64(module, report, batch, channels, size, labels):
    with nn.backends.using("numpy", "fp64", seed=0):
        net = fp64_cnn(seed=batch, channels=channels, size=size)
        x = away_from_kinks((batch, channels, size, size), seed=size)
        grad = np.asarray(module.input_gradient(net, x, np.array(labels)))
        assert grad.shape == x.shape, f"gradient of shape {grad.shape}, expected {x.shape}"

        def score(v):
            return float(np.sum(np.asarray(net.predict(v))[np.arange(batch), labels]))

        numeric = numerical_gradient(score, x.copy())
    err = rel_error(grad, numeric)
    report(rel_error=err, limit=1e-6)
    assert err < 1e-6, f"relative error {err:.2e} against finite differences of the class scores"


@pytest.mark.student("input_gradient")
def test_input_gradient_of_a_linear_classifier_is_its_weights(module):
    """z = x W + b: the gradient of z_c with respect to x is the column c of W, for every
    image, whatever the image; and the weights are left unchanged."""
    rng = np.random.default_rng(3)
    dense = Dense(2 * 3 * 4, 5)
    W = rng.normal(size=(24, 5))
    dense.params = {"W": W.copy(), "b": rng.normal(size=5)}
    with nn.backends.using("numpy", "fp64"):
        net = Network([Flatten(), dense], SoftmaxCrossEntropy())
        x = rng.normal(size=(4, 2, 3, 4))
        labels = np.array([4, 0, 4, 2])
        grad = np.asarray(module.input_gradient(net, x, labels))
    np.testing.assert_allclose(grad.reshape(4, -1), W[:, labels].T, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dense.params["W"], W, err_msg="the network must not be trained")


# -- maximise_filter -----------------------------------------------------------------------------
def linear_conv(seed, channels=2, size=7):
    """One convolution and nothing else: its channel means are linear in the image."""
    rng = np.random.default_rng(seed)
    conv = Conv2D(channels, 3, 3, padding=1)
    conv.params = {"W": rng.normal(size=(3, channels, 3, 3)), "b": rng.normal(size=3)}
    return Network([conv, LeakyReLU(0.1), Flatten()], SoftmaxCrossEntropy()), conv


@pytest.mark.student("maximise_filter")
@pytest.mark.parametrize("channel, shape", [(0, (2, 7, 7)), (2, (1, 5, 6))])
def test_maximise_filter_reaches_the_optimum_of_a_linear_layer(module, report, channel, shape):
    """Without jitter, ascent on mean(a[channel]) - l2/2 |x|^2 for a linear layer (n_layers=1)
    converges to x* = g / l2, g the (constant) gradient of the channel's mean."""
    net, conv = linear_conv(seed=channel, channels=shape[0], size=shape[1])
    with nn.backends.using("numpy", "fp64"):
        x0 = np.random.default_rng(9).normal(size=shape)
        g = numerical_gradient(lambda v: float(np.mean(conv.forward(v[None])[0, channel])), x0.copy())
        W_before = conv.params["W"].copy()
        image = np.asarray(module.maximise_filter(net, 1, channel, shape, steps=60, lr=5.0, l2=0.1,
                                                  jitter=0, rng=np.random.default_rng(0)))
    assert image.shape == shape
    err = rel_error(image, g / 0.1)
    report(rel_error=err, limit=1e-6)
    assert err < 1e-6, f"relative error {err:.2e} from the optimum gradient / l2"
    np.testing.assert_array_equal(conv.params["W"], W_before, err_msg="the network must not change")


@pytest.mark.student("maximise_filter")
def test_maximise_filter_starts_from_x0(module):
    """Zero steps give x0 back; one step without penalty moves it by lr times the gradient."""
    net, conv = linear_conv(seed=4)
    x0 = np.random.default_rng(1).normal(size=(2, 7, 7))
    with nn.backends.using("numpy", "fp64"):
        same = np.asarray(module.maximise_filter(net, 1, 1, x0.shape, steps=0, jitter=0, x0=x0))
        np.testing.assert_allclose(same, x0, rtol=1e-12)
        g = numerical_gradient(lambda v: float(np.mean(conv.forward(v[None])[0, 1])), x0.copy())
        one = np.asarray(module.maximise_filter(net, 1, 1, x0.shape, steps=1, lr=0.5, l2=0.0,
                                                jitter=0, x0=x0))
    np.testing.assert_allclose(one, x0 + 0.5 * g, rtol=1e-8, atol=1e-10)


@pytest.mark.student("maximise_filter")
@pytest.mark.parametrize("n_layers, channel", [(2, 1), (5, 3), (8, 2)])
def test_maximise_filter_excites_its_filter_with_jitter(module, n_layers, channel):
    """On a small CNN, with jitter: the image excites its channel more than 50 random images
    of the same spread and more than a blank image; the same rng seed gives the same image,
    another seed another one."""
    with nn.backends.using("numpy", "fp64", seed=0):
        net = fp64_cnn(seed=5, channels=1, size=8, n_classes=4)
        args = dict(steps=150, lr=2.0, l2=0.05, jitter=1)
        image = np.asarray(module.maximise_filter(net, n_layers, channel, (1, 8, 8),
                                                  rng=np.random.default_rng(1), **args))
        again = np.asarray(module.maximise_filter(net, n_layers, channel, (1, 8, 8),
                                                  rng=np.random.default_rng(1), **args))
        other = np.asarray(module.maximise_filter(net, n_layers, channel, (1, 8, 8),
                                                  rng=np.random.default_rng(2), **args))
        a = np.asarray(module.activation_maps(net, image[None], n_layers))[0]
        noise = np.random.default_rng(3).normal(0, image.std(), (50, 1, 8, 8))
        a_noise = np.asarray(module.activation_maps(net, noise, n_layers))
        a_blank = np.asarray(module.activation_maps(net, np.zeros((1, 1, 8, 8)), n_layers))[0]
    assert np.all(np.isfinite(image)) and image.std() > 0
    np.testing.assert_array_equal(image, again, err_msg="shifts and start drawn from rng")
    assert not np.allclose(image, other), "another seed, other shifts"
    mean = a.reshape(a.shape[0], -1).mean(axis=1)
    noise_mean = a_noise.reshape(50, a_noise.shape[1], -1).mean(axis=2)[:, channel]
    assert mean[channel] > noise_mean.max(), "the image must excite its channel more than noise"
    assert mean[channel] > a_blank[channel].mean(), "and more than a blank image"
