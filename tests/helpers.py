"""Helpers shared by the layer tests (imported as ``helpers``: pytest puts tests/ on the path)."""
from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest

from nn import backends
from nn.gradcheck import check_layer
from nn.layers import from_dict, to_dict
from nn.layers.base import named_layers

TOL = 1e-6   # the gradient-check threshold of DESIGN.md


def host(a):
    """``a`` as a NumPy array, from any backend."""
    return backends.current().to_host(a)


def assert_passes(layer, input_shape, **kwargs):
    """Run check_layer and assert on what it returns, not only on it not raising."""
    errors = check_layer(layer, input_shape, **kwargs)
    # every parameter, those of the layers inside a Residual/Concat block too ("0.W", ...)
    assert set(errors) == {"x"} | {prefix + name for prefix, sub in named_layers(layer)
                                   for name in sub.params}
    for name, err in errors.items():
        assert err < TOL, f"{layer!r}: relative error of {name} is {err:.2e}"
    return errors


def distinct_values(shape, seed=0):
    """A random permutation of equally spaced values in [-1, 1): no ties, and neighbours
    2 / size apart, far more than the finite-difference step (1e-5) for a few hundred values."""
    n = math.prod(shape)
    perm = np.random.default_rng(seed).permutation(n)
    return ((perm - n / 2) * (2 / n)).reshape(shape)


def assert_leaves_x_and_dy_alone(B, layer, shape, seed=8):
    """forward must not modify x, backward must not modify dy, and backward can run twice."""
    rng = np.random.default_rng(seed)
    x = B.asarray(rng.standard_normal(shape))
    x_saved = host(x).copy()
    y = layer.forward(x)
    dy = B.asarray(rng.standard_normal(tuple(y.shape)))
    dy_saved = host(dy).copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(host(x), x_saved)
    np.testing.assert_array_equal(host(dy), dy_saved)
    assert dx.shape == x.shape
    # a second backward with the same dy gives the same dx (nothing consumed in place)
    np.testing.assert_array_equal(host(layer.backward(dy)), host(dx))
    return layer


def assert_rejects_wrong_dy(B, layer, x, axis):
    """backward with a dy one longer on ``axis`` raises a ValueError naming the layer, the
    expected shape (the last forward output's) and the received one."""
    y_shape = tuple(layer.forward(x).shape)
    wrong = list(y_shape)
    wrong[axis] += 1
    wrong = tuple(wrong)
    with pytest.raises(ValueError) as info:
        layer.backward(B.zeros(wrong))
    message = str(info.value)
    assert repr(layer) in message
    assert str(y_shape) in message
    assert str(wrong) in message


def assert_round_trips(layer):
    """to_dict -> JSON -> from_dict gives the same type, config, repr and parameter shapes."""
    spec = to_dict(layer)
    assert spec["type"] == type(layer).__name__
    rebuilt = from_dict(json.loads(json.dumps(spec)))       # what Network.save writes
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == layer.config()
    assert repr(rebuilt) == repr(layer)
    assert {k: v.shape for k, v in rebuilt.params.items()} == \
           {k: v.shape for k, v in layer.params.items()}
    return rebuilt


@functools.lru_cache(maxsize=None)
def split_table(name, seed=0):
    """Stratified 70/30 split of a bundled table (``"iris"``, ``"pima"``), normalised with the
    training statistics, as the course does: ``x_train, y_train, x_test, y_test``."""
    from nn.data import CenterMaxAbs, load_iris, load_pima, train_valid_test_split
    x, y = {"iris": load_iris, "pima": load_pima}[name]()
    parts = train_valid_test_split(x, y, valid=0.0, test=0.3, seed=seed, stratify=True)
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    norm = CenterMaxAbs().fit(x_train)
    return norm.transform(x_train), y_train, norm.transform(x_test), y_test
