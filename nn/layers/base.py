"""The layer contract every layer follows.

* ``forward(x, train=False) -> y`` keeps in the layer what ``backward`` needs;
* ``backward(dy) -> dx`` fills ``grads`` (same keys and shapes as ``params``) and never
  modifies ``dy``;
* ``output_shape(input_shape)`` gives the shape of ``y`` without the batch axis;
* ``config()`` returns the constructor arguments, so that a network can be saved as JSON.

State: ``params`` (trained, e.g. ``"W"`` and ``"b"``), ``grads`` (their gradients, filled by
``backward``), ``buffers`` (state that is not trained, e.g. BatchNorm's running statistics;
saved with the model, never touched by an optimizer) and ``trainable`` (False freezes the
layer: no gradient for its parameters, no update, while ``backward`` still passes ``dx``).

What every ``forward`` receives is checked once, here, before the layer sees it (see
:func:`layer_input`): a list becomes an array, integers become the compute dtype, and
complex numbers, booleans, strings, objects and empty batches are refused with one message.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import numbers

from .. import backends
from ..checks import as_array
from ..errors import BackwardBeforeForwardError, ConfigError, DataError, ShapeError
from ..registry import Registry

LAYERS = Registry("layer")

#: True while :func:`nn.io.load` builds layers whose weights it is about to overwrite
_DEFERRED_INIT = contextvars.ContextVar("deferred_init", default=False)


@contextlib.contextmanager
def deferred_init():
    """Build layers without drawing their weights (``params`` stays empty until filled).

    :func:`nn.io.load` builds a saved architecture this way, checks the stored arrays
    against :meth:`Layer.param_shapes`, and only then fills ``params``: a file cannot make nn
    draw (and allocate) weights that would be overwritten anyway.
    """
    token = _DEFERRED_INIT.set(True)
    try:
        yield
    finally:
        _DEFERRED_INIT.reset(token)


def init_deferred() -> bool:
    return _DEFERRED_INIT.get()


class Layer:
    """Base class of all layers; subclasses are registered by name for :func:`from_dict`.

    A base class that is not a layer of its own (``ConvND``, ``PoolND``) is declared with
    ``class ConvND(Layer, abstract=True)`` and cannot be named in a saved file.
    """

    #: Dense and the convolutions can skip ``dL/dx``: ``Network.backward`` calls
    #: ``backward(dy, input_grad=False)`` on a first layer that has this set, when training
    #: needs only the parameters' gradients (for a first convolution that saves a matrix
    #: product and a col2im)
    skips_input_grad = False

    def __init_subclass__(cls, abstract: bool = False, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _checked_forward(cls.forward)
        if not abstract:
            LAYERS.add(cls)

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}
        self.trainable = True

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

    def param_shapes(self) -> dict:
        """``{name: shape}`` of the parameters, known from the configuration alone."""
        return {}

    def buffer_shapes(self) -> dict:
        """``{name: shape}`` of the buffers, known from the configuration alone."""
        return {}

    def n_params(self, trainable: bool | None = None) -> int:
        """Number of parameters, here and in the sublayers; ``trainable=True``/``False``
        counts only those of trainable/frozen layers."""
        shapes = {k: p.shape for k, p in self.params.items()} or self.param_shapes()
        own = sum(math.prod(s) for s in shapes.values()) \
            if trainable is None or trainable == self.trainable else 0
        return own + sum(layer.n_params(trainable) for layer in self.sublayers())

    # -- precision: what the matrix products consume, and what the optimizer updates --------------
    def weight(self, name: str):
        """Parameter ``name`` as the computation uses it: under ``"mixed"`` the float16 copy
        (the float32 master weight stays in ``params``); the parameter itself otherwise."""
        return backends.current().cast(self.params[name])

    def set_grad(self, name: str, g) -> None:
        """Store ``dL/d params[name]`` in the parameter dtype (float32 under ``"mixed"``)."""
        B = backends.current()
        self.grads[name] = B.astype(g, B.param_dtype)

    def to_backend(self):
        """Move parameters and buffers to the current backend; returns self.

        Parameters go to the parameter dtype; float buffers too; others keep their dtype.
        """
        B = backends.current()
        for store in (self.params, self.buffers):
            for name, a in store.items():
                host = a if isinstance(a, B.xp.ndarray) else backends.to_host(a)
                dtype = B.param_dtype if store is self.params or host.dtype.kind == "f" else None
                store[name] = B.xp.asarray(host, dtype=dtype)
        self.grads = {}
        for layer in self.sublayers():
            layer.to_backend()
        return self

    def __getattr__(self, name):
        # only reached when normal lookup fails, e.g. backward() reading what forward() keeps
        raise BackwardBeforeForwardError(
            f"{type(self).__name__} has no attribute {name!r}; if backward() asked for it, "
            "call forward() first: backward uses what forward keeps")

    def __call__(self, x, train=False):
        return self.forward(x, train)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers for subclasses ----------------------------------------------------------------
    def _bad_shape(self, expected: str, got) -> ShapeError:
        got = "(" + ", ".join(str(d) for d in got) + (",)" if len(got) == 1 else ")")
        return ShapeError(f"{self!r}: expected input of shape {expected}, got {got}")

    def _check_dy(self, dy, y_shape):
        if tuple(dy.shape) != tuple(y_shape):
            raise ShapeError(f"{self!r}: backward expected dy of shape {tuple(y_shape)} (the "
                             f"shape of the last forward output), got {tuple(dy.shape)}")


def layer_input(layer, x):
    """What a layer's ``forward`` receives: an array of the current backend with a non-empty
    batch axis, floating (integers become the compute dtype), or a :class:`DataError`."""
    B = backends.current()
    if type(x) is B.xp.ndarray and x.dtype.kind == "f" and x.ndim and x.shape[0]:
        return x                      # the common case: nothing to do
    x = as_array(x, "the input", repr(layer))
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"{layer!r}: got {'a scalar' if x.ndim == 0 else 'an empty batch'} "
                        f"(input shape {tuple(x.shape)}); a layer needs a batch of at least one "
                        "example, batch axis first")
    return B.asarray(x) if x.dtype.kind == "f" else B.asarray(x, dtype=B.dtype)


def _checked_forward(forward):
    @functools.wraps(forward)
    def checked(self, x, *args, **kwargs):
        return forward(self, layer_input(self, x), *args, **kwargs)
    checked.unchecked = forward
    return checked


def positive_int(value, name: str, owner: str) -> int:
    """``value`` as an int >= 1 (NumPy integers accepted, bools refused), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def real_number(value, name: str, owner: str, low=None, high=None, low_open=False,
                high_open=False) -> float:
    """``value`` as a finite float in the given range (bounds included unless ``*_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        where = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (lo or hi) else ""
        raise ConfigError(f"{owner}: {name} must be a finite number{where}, got {value!r}")
    return float(value)


def forward_through(layers, x, train: bool, where: str):
    """``x`` through ``layers`` in order; a ``ValueError`` says which layer, ``where``."""
    for i, layer in enumerate(layers):
        try:
            x = layer.forward(x, train)
        except (ShapeError, DataError) as exc:
            raise type(exc)(f"layer {i} of {where}: {exc}") from exc
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
