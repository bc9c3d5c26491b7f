"""The layer contract every layer follows.

* ``forward(x, train=False) -> y`` keeps in the layer what ``backward`` needs;
* ``backward(dy) -> dx`` fills ``grads`` (same keys and shapes as ``params``) and never
  modifies ``dy``;
* ``output_shape(input_shape)`` gives the shape of ``y`` without the batch axis;
* ``config()`` returns the constructor arguments, so that a network can be saved as JSON.
"""
from __future__ import annotations

import math
import numbers

from .. import backends
from ..registry import Registry

LAYERS = Registry("layer")


class Layer:
    """Base class of all layers; subclasses are registered by name for :func:`from_dict`."""

    #: False when nothing needs ``dL/dx`` (the first layer of a network in training): layers
    #: whose input gradient is costly (Dense, convolutions) then skip it and return None
    input_grad = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYERS.add(cls)

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}

    def forward(self, x, train=False):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def output_shape(self, input_shape) -> tuple:
        """Shape of the output for an input of ``input_shape`` (both without the batch axis)."""
        return tuple(input_shape)

    def input_shape(self) -> tuple | None:
        """The input shape (without batch) when the layer fixes it, e.g. Dense; else None."""
        return None

    def config(self) -> dict:
        """Constructor arguments as JSON-ready values."""
        return {}

    def sublayers(self) -> list:
        """Layers held inside this one (Residual, Concat); they are walked for parameters."""
        return []

    def n_params(self) -> int:
        own = sum(math.prod(p.shape) for p in self.params.values())
        return own + sum(layer.n_params() for layer in self.sublayers())

    def to_backend(self):
        """Move the parameters to the current backend, in its parameter dtype; returns self."""
        B = backends.current()
        for name, p in self.params.items():
            self.params[name] = B.xp.asarray(p if _on(B, p) else _host(p), dtype=B.param_dtype)
        self.grads = {}
        for layer in self.sublayers():
            layer.to_backend()
        return self

    def __getattr__(self, name):
        # only reached when normal lookup fails, e.g. backward() reading what forward() keeps
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; if backward() "
                             "asked for it, call forward() first: backward uses what it keeps")

    def __call__(self, x, train=False):
        return self.forward(x, train)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers for subclasses ----------------------------------------------------------------
    def _bad_shape(self, expected: str, got) -> ValueError:
        got = "(" + ", ".join(str(d) for d in got) + (",)" if len(got) == 1 else ")")
        return ValueError(f"{self!r}: expected input of shape {expected}, got {got}")

    def _check_dy(self, dy, y_shape):
        if tuple(dy.shape) != tuple(y_shape):
            raise ValueError(f"{self!r}: backward expected dy of shape {tuple(y_shape)} (the "
                             f"shape of the last forward output), got {tuple(dy.shape)}")


def _host(a):
    """A NumPy copy of an array from any backend."""
    return a.get() if hasattr(a, "get") else a


def _on(B, a) -> bool:
    """True when ``a`` already lives on backend ``B``'s device."""
    return isinstance(a, B.xp.ndarray)


def positive_int(value, name: str, owner: str) -> int:
    """``value`` as an int >= 1 (NumPy integers accepted, bools refused), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def forward_through(layers, x, train: bool, where: str):
    """``x`` through ``layers`` in order; a ``ValueError`` says which layer, ``where``."""
    for i, layer in enumerate(layers):
        try:
            x = layer.forward(x, train)
        except ValueError as exc:
            raise ValueError(f"layer {i} of {where}: {exc}") from exc
    return x


def named_layers(layer: Layer, prefix: str = ""):
    """``(prefix, layer)`` for ``layer`` and, recursively, the layers inside it.

    Prefixes are dotted positions: ``""`` for ``layer`` itself, ``"0."``, ``"0.1."``, ...
    """
    yield prefix, layer
    for i, sub in enumerate(layer.sublayers()):
        yield from named_layers(sub, f"{prefix}{i}.")


#: ``to_dict(layer)`` -> ``{"type", "config"}`` (no weights); ``from_dict`` builds a new layer
to_dict, from_dict = LAYERS.to_dict, LAYERS.from_dict

