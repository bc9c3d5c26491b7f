"""Skip connections: Residual (y = x + block(x)) and Concat (y = [x, block(x)] on the channels),
alone and nested into a small U-Net; gradient checks, values, errors, saving and loading."""
from __future__ import annotations

import json

import numpy as np
import pytest

import nn
from nn import backends
from nn.layers import (AvgPool1D, Concat, Conv1D, Conv2D, Conv3D, ConvTranspose1D,
                       ConvTranspose2D, Dense, Flatten, Identity, LeakyReLU, MaxPool2D, ReLU,
                       Residual, Tanh, from_dict, to_dict)
from nn.layers.base import named_layers
from nn.losses import MSE

from helpers import assert_leaves_x_and_dy_alone, assert_passes, distinct_values, host


def unet():
    """Two levels: each keeps its input and concatenates the upsampled result of the next.

    (1, 8, 8) -> conv (2, 8, 8) -> pool (2, 4, 4) -> [inner: conv, pool (2, 2, 2), up (2, 4, 4)]
    -> (4, 4, 4) -> up (1, 8, 8); concatenated with the input: (2, 8, 8).
    """
    inner = Concat([Conv2D(2, 2, 3, padding=1), Tanh(), MaxPool2D(2),
                    ConvTranspose2D(2, 2, 2, stride=2)])
    return Concat([Conv2D(1, 2, 3, padding=1), Tanh(), MaxPool2D(2), inner,
                   ConvTranspose2D(4, 1, 2, stride=2)])


# id -> (factory, input shape, whether the input must be free of ties)
CASES = {
    "residual-conv2d-tanh": (lambda: Residual([Conv2D(2, 2, 3, padding=1), Tanh()]),
                             (2, 2, 4, 5), False),
    "residual-conv1d-dilated-batch1": (lambda: Residual([Conv1D(3, 3, 3, padding=2, dilation=2)]),
                                       (1, 3, 7), False),
    "residual-conv3d": (lambda: Residual([Conv3D(1, 1, (1, 3, 3), padding=(0, 1, 1))]),
                        (2, 1, 2, 3, 3), False),
    "residual-two-convs": (lambda: Residual([Conv2D(2, 3, 3, padding=1), Tanh(),
                                             Conv2D(3, 2, 1)]), (2, 2, 4, 4), False),
    "concat-conv2d": (lambda: Concat([Conv2D(2, 3, 3, padding=1), Tanh()]), (2, 2, 4, 5), False),
    "concat-conv1d-batch1": (lambda: Concat([Conv1D(2, 1, 3, padding=1)]), (1, 2, 6), False),
    "concat-down-up": (lambda: Concat([MaxPool2D(2), Conv2D(2, 3, 3, padding=1), Tanh(),
                                       ConvTranspose2D(3, 2, 2, stride=2)]), (2, 2, 4, 6), True),
    "concat-down-up-1d-odd": (lambda: Concat([AvgPool1D(2), Conv1D(2, 2, 3, padding=1),
                                              ConvTranspose1D(2, 1, 3, stride=2)]),
                              (2, 2, 7), False),
    "unet-nested": (unet, (2, 1, 8, 8), False),
    "residual-around-concat": (lambda: Residual([Concat([Conv2D(2, 2, 3, padding=1), Tanh()]),
                                                 Conv2D(4, 2, 1)]), (2, 2, 3, 4), False),
}
each_case = pytest.mark.parametrize("make, shape, distinct", CASES.values(), ids=CASES.keys())


# -- gradient checks ------------------------------------------------------------------------------
@each_case
def test_gradient(fp64, make, shape, distinct):
    x = distinct_values(shape, seed=1) if distinct else None
    assert_passes(make(), shape, x=x, seed=3)


def test_gradient_with_chunked_convolutions_inside(fp64, small_workspace):
    block = unet()
    assert_passes(block, (2, 1, 8, 8), seed=3)
    assert len(block.layers[3].layers[0].chunks) == 2     # the inner im2col convolution


# -- values ---------------------------------------------------------------------------------------
def test_residual_is_x_plus_block(fp64):
    B = fp64
    rng = np.random.default_rng(4)
    conv, act = Conv2D(2, 2, 3, padding=1), Tanh()
    layer = Residual([conv, act])
    x = B.asarray(rng.standard_normal((2, 2, 5, 4)))
    dy = B.asarray(rng.standard_normal((2, 2, 5, 4)))
    h = host(act.forward(conv.forward(x)))
    dh = host(conv.backward(act.backward(dy)))
    dW = host(conv.grads["W"]).copy()
    y = host(layer.forward(x))
    np.testing.assert_array_equal(y, host(x) + h)
    dx = host(layer.backward(dy))
    np.testing.assert_array_equal(dx, host(dy) + dh)     # both paths reach x
    np.testing.assert_array_equal(host(conv.grads["W"]), dW)


def test_concat_stacks_x_and_block_on_the_channels(fp64):
    B = fp64
    rng = np.random.default_rng(5)
    conv = Conv1D(2, 3, 3, padding=1)
    layer = Concat([conv])
    x = B.asarray(rng.standard_normal((2, 2, 6)))
    dy = B.asarray(rng.standard_normal((2, 5, 6)))
    h = host(conv.forward(x))
    dh = host(conv.backward(dy[:, 2:]))
    y = host(layer.forward(x))
    assert y.shape == (2, 5, 6)
    np.testing.assert_array_equal(y[:, :2], host(x))
    np.testing.assert_array_equal(y[:, 2:], h)
    dx = host(layer.backward(dy))
    np.testing.assert_array_equal(dx, host(dy)[:, :2] + dh)


def test_residual_with_a_zero_block_is_the_identity(fp64):
    B = fp64
    conv = Conv2D(2, 2, 3, padding=1, init="zeros")
    layer = Residual([conv])
    x = np.random.default_rng(6).standard_normal((1, 2, 3, 3))
    np.testing.assert_array_equal(host(layer.forward(B.asarray(x))), x)
    dy = np.random.default_rng(7).standard_normal((1, 2, 3, 3))
    np.testing.assert_array_equal(host(layer.backward(B.asarray(dy))), dy)


# -- forward never modifies x, backward never modifies dy -----------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: Residual([Conv2D(2, 2, 3, padding=1), ReLU()]), (3, 2, 4, 4)),
    (lambda: Concat([Conv2D(2, 3, 3, padding=1), ReLU()]), (3, 2, 4, 4)),
    (lambda: Concat([MaxPool2D(2), ConvTranspose2D(2, 2, 2, stride=2)]), (3, 2, 4, 6)),
    (unet, (3, 1, 8, 8)),
    # Identity's backward returns dy itself: the block's dx is then a view of dy, and adding
    # the skip path into it in place would change the caller's dy
    (lambda: Concat([Identity()]), (3, 2, 4, 4)),
    (lambda: Residual([Identity()]), (3, 2, 4, 4)),
], ids=["residual", "concat", "concat-down-up", "unet", "concat-identity", "residual-identity"])
@pytest.mark.parametrize("chunked", [False, True], ids=["one-chunk", "chunked"])
def test_blocks_never_modify_x_or_dy(fp32, monkeypatch, make, shape, chunked):
    B = fp32
    with backends.using(workspace_bytes=1 if chunked else 2**28):
        assert_leaves_x_and_dy_alone(B, make(), shape)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, shape, out, phrase", [
    (lambda: Residual([Conv2D(2, 3, 3, padding=1)]), (2, 2, 5, 5), (2, 3, 5, 5), "same shape"),
    (lambda: Residual([Conv2D(2, 2, 3)]), (2, 2, 5, 5), (2, 2, 3, 3), "same shape"),
    (lambda: Residual([Conv1D(1, 1, 2, stride=2)]), (1, 1, 6), (1, 1, 3), "same shape"),
    (lambda: Concat([Conv2D(2, 2, 3)]), (2, 2, 5, 5), (2, 2, 3, 3), "spatial shape"),
    (lambda: Concat([MaxPool2D(2), ConvTranspose2D(2, 2, 2, stride=2)]), (2, 2, 5, 5),
     (2, 2, 4, 4), "spatial shape"),
    (lambda: Concat([Conv1D(2, 2, 3, stride=2, padding=1)]), (1, 2, 8), (1, 2, 4),
     "spatial shape"),
    (lambda: Concat([Flatten()]), (2, 2, 3), (2, 6), "spatial shape"),
], ids=["residual-more-channels", "residual-unpadded-conv", "residual-strided",
        "concat-unpadded-conv", "concat-odd-size-down-up", "concat-strided-1d",
        "concat-flattened"])
def test_block_whose_output_cannot_join_its_input_raises(fp32, make, shape, out, phrase):
    """Residual needs the block to keep the shape; Concat, to keep batch and spatial shape."""
    layer = make()
    with pytest.raises(ValueError) as info:
        layer.forward(fp32.asarray(np.zeros(shape)))
    message = str(info.value)
    assert message.startswith(type(layer).__name__ + "(")
    assert str(shape) in message and str(out) in message
    assert phrase in message
    with pytest.raises(ValueError, match=phrase):
        layer.output_shape(shape[1:])


def test_error_inside_a_block_names_the_block_and_the_layer(fp32):
    conv = Conv2D(3, 2, 3, padding=1)
    layer = Residual([Tanh(), conv])
    with pytest.raises(ValueError) as info:
        layer.forward(fp32.asarray(np.zeros((2, 4, 5, 5))))
    message = str(info.value)
    assert "Residual" in message and "layer 1" in message
    assert repr(conv) in message and "(N, 3, H, W)" in message and "(2, 4, 5, 5)" in message


@pytest.mark.parametrize("make, shape", [
    (lambda: Residual([Conv2D(2, 2, 3, padding=1)]), (2, 2, 4, 4)),
    (lambda: Concat([Conv2D(2, 3, 3, padding=1)]), (2, 2, 4, 4)),
], ids=["residual", "concat"])
@pytest.mark.parametrize("change", ["batch", "channels", "last-axis"])
def test_backward_with_wrong_dy_shape_raises(fp32, make, shape, change):
    B = fp32
    layer = make()
    y_shape = tuple(layer.forward(B.asarray(np.ones(shape))).shape)
    wrong = list(y_shape)
    wrong[{"batch": 0, "channels": 1, "last-axis": -1}[change]] += 1
    wrong = tuple(wrong)
    with pytest.raises(ValueError) as info:
        layer.backward(B.zeros(wrong))
    message = str(info.value)
    assert repr(layer) in message
    assert str(y_shape) in message and str(wrong) in message


def test_empty_block_and_non_layers_are_refused():
    with pytest.raises(ValueError, match="Residual"):
        Residual([])
    with pytest.raises(TypeError, match="Concat"):
        Concat([Conv2D(1, 1, 3), ReLU])            # the class, not an instance


# -- structure, output_shape, to_dict / from_dict -------------------------------------------------
def test_sublayers_and_parameter_count():
    conv_a, conv_b = Conv2D(2, 3, 3, padding=1), Conv2D(3, 2, 1, bias=False)
    layer = Residual([conv_a, ReLU(), Concat([conv_b])])
    assert layer.sublayers()[0] is conv_a and len(layer.sublayers()) == 3
    assert layer.sublayers()[2].sublayers() == [conv_b]
    assert layer.params == {}
    assert layer.n_params() == (2 * 3 * 9 + 3) + 3 * 2
    assert Residual(conv_a).sublayers() == [conv_a]           # a single layer is accepted


@pytest.mark.parametrize("make, input_shape", [
    (unet, (1, 8, 8)),
    (lambda: Residual([Conv2D(2, 2, 3, padding=1), ReLU()]), (2, 5, 3)),
    (lambda: Concat([AvgPool1D(2), Conv1D(2, 2, 3, padding=1),
                     ConvTranspose1D(2, 1, 3, stride=2)]), (2, 7)),
], ids=["unet", "residual", "concat-1d"])
def test_output_shape_matches_forward(fp32, make, input_shape):
    layer = make()
    y = layer.forward(fp32.asarray(np.zeros((2, *input_shape))))
    assert layer.output_shape(input_shape) == tuple(y.shape[1:])


def test_unet_output_shape_by_hand():
    assert unet().output_shape((1, 8, 8)) == (2, 8, 8)
    assert unet().layers[3].output_shape((2, 4, 4)) == (4, 4, 4)


@pytest.mark.parametrize("make", [unet, lambda: Residual([Conv2D(2, 2, 3, padding=1), ReLU(),
                                                          Concat([Conv2D(2, 1, 1)]),
                                                          Conv2D(3, 2, 1)])],
                         ids=["unet", "residual-with-concat"])
def test_to_dict_from_dict_round_trip_nested(fp32, make):
    layer = make()
    spec = json.loads(json.dumps(to_dict(layer)))        # what Network.save writes
    rebuilt = from_dict(spec)
    assert repr(rebuilt) == repr(layer)
    original, copy = list(named_layers(layer)), list(named_layers(rebuilt))
    assert [p for p, _ in copy] == [p for p, _ in original]
    for (_, a), (_, b) in zip(original, copy):
        assert type(a) is type(b) and a.config() == b.config()
        assert {k: v.shape for k, v in a.params.items()} == \
               {k: v.shape for k, v in b.params.items()}


# -- in a network: save and load ------------------------------------------------------------------
def test_network_with_skips_saves_and_loads(fp32, tmp_path):
    B = fp32
    net = nn.Network([
        Conv2D(1, 4, 3, padding=1), LeakyReLU(0.1),
        Residual([Conv2D(4, 4, 3, padding=1), Tanh()]),
        Concat([MaxPool2D(2), Conv2D(4, 4, 3, padding=1), ReLU(),
                ConvTranspose2D(4, 4, 2, stride=2)]),
        Conv2D(8, 2, 1), Flatten(), Dense(2 * 6 * 6, 3),
    ], MSE())
    # non-zero biases, so that a bias lost on the way would show
    rng = np.random.default_rng(9)
    for _, layer, name in net.named_parameters():
        if name == "b":
            layer.params[name] = B.param(rng.standard_normal(layer.params[name].shape))
    x = np.random.default_rng(10).standard_normal((3, 1, 6, 6)).astype(np.float32)
    before = net.predict(x)
    path = net.save(tmp_path / "skips")
    assert path.suffix == ".npz"
    loaded = nn.Network.load(path)
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in net.layers]
    saved = {key: host(layer.params[name]) for key, layer, name in net.named_parameters()}
    assert any("." in key.split(".", 1)[1] for key in saved)      # inner layers were saved too
    for key, layer, name in loaded.named_parameters():
        np.testing.assert_array_equal(host(layer.params[name]), saved[key], err_msg=key)
    assert {key for key, _, _ in loaded.named_parameters()} == saved.keys()
    np.testing.assert_array_equal(loaded.predict(x), before)
    assert loaded.summary(input_shape=(1, 6, 6)) == net.summary(input_shape=(1, 6, 6))
