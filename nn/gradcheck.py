"""Numerical gradient checking, for the library's tests and for students.

The analytic gradient of a layer is compared with centred finite differences of the scalar

    f(x, params) = sum(forward(x) * dy)

for a **random** upstream gradient ``dy`` (an all-ones ``dy`` cannot see, for example, a
softmax backward that forgets the cross terms). Everything runs in float64, where the
centred difference is accurate to about 1e-10 relative, so a correct layer passes far
below the 1e-6 threshold and a wrong one fails far above it.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import backends
from .errors import ConfigError, DataError, NNError
from .layers.base import Layer, named_layers


class GradientCheckError(NNError, AssertionError):
    """An analytic gradient disagrees with the numerical one (message: where and by how much)."""


def numerical_gradient(f, x, eps: float = 1e-5):
    """Centred finite differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for each i.

    ``f`` maps the array ``x`` (changed in place and restored) to a scalar. Use float64: in
    float32 the difference of two nearly equal values of ``f`` loses most of its digits.
    The default ``eps = 1e-5`` balances the truncation error (~eps²) against rounding
    (~1e-16 / eps).
    """
    if not callable(f):
        raise ConfigError(f"numerical_gradient: f must be a function of x returning a number, "
                          f"got {type(f).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"numerical_gradient needs a float64 NumPy array x, got {got}: finite "
                        "differences in lower precision are mostly rounding noise (use "
                        "x.astype(np.float64))")
    if not (isinstance(eps, numbers.Real) and 0 < eps < 1):
        raise ConfigError(f"numerical_gradient: eps must be a small positive number, got {eps!r}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        old = x[idx].item()
        x[idx] = old + eps
        f_plus = _scalar(f(x))
        x[idx] = old - eps
        f_minus = _scalar(f(x))
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def _scalar(value) -> float:
    """``f(x)`` as a float, or a clear error when ``f`` does not return one number."""
    size = getattr(value, "size", 1)
    if size != 1 or isinstance(value, (list, tuple, dict, str)):
        shape = getattr(value, "shape", None)
        raise DataError(f"numerical_gradient: f must return one number (a scalar loss), got "
                        f"{type(value).__name__}{'' if shape is None else f' of shape {shape}'}; "
                        "reduce it, e.g. (y * dy).sum()")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"numerical_gradient: f must return a number, got {value!r}") from None


def rel_error(a, b) -> float:
    """Largest element-wise relative error ``|a - b| / max(1e-8, |a| + |b|)``."""
    a, b = _host(a), _host(b)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(_rel(a, b)))


def _rel(a, b):
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def _host(a):
    return np.asarray(backends.to_host(a), dtype=np.float64)


def _assert_close(owner, name, analytic, numeric, tol) -> float:
    analytic, numeric = _host(analytic), _host(numeric)
    if analytic.shape != numeric.shape:
        raise GradientCheckError(f"{owner}: gradient of {name} has shape {analytic.shape}, "
                                 f"expected {numeric.shape}")
    err = rel_error(analytic, numeric)
    if not err < tol:  # also catches NaN
        rel = _rel(analytic, numeric)
        # a NaN is the worst possible element (np.nanargmax would skip it, or fail if all NaN)
        worst = np.unravel_index(np.argmax(np.where(np.isnan(rel), np.inf, rel)), analytic.shape)
        raise GradientCheckError(
            f"{owner}: gradient of {name} is wrong, relative error {err:.2e} > {tol:.0e}; worst "
            f"element {tuple(int(i) for i in worst)}: analytic {analytic[worst]:.8g}, "
            f"numerical {numeric[worst]:.8g}")
    return err


def kink_free_normal(rng, shape, margin: float = 0.1) -> np.ndarray:
    """Standard normal values pushed at least ``margin`` away from 0.

    ``eps``-sized steps must not cross a kink (ReLU at 0), where the finite difference
    measures neither side's slope.
    """
    z = rng.standard_normal(shape)
    return np.where(z >= 0, z + margin, z - margin)


def check_layer(layer, input_shape, seed: int = 0, *, x=None, train: bool = False,
                tol: float = 1e-6, eps: float = 1e-5) -> dict:
    """Check ``layer.backward`` against finite differences, in float64, on the current backend.

    Parameters
    ----------
    layer : nn.layers.Layer
    input_shape : tuple
        Shape of the input *with* the batch axis, e.g. ``(5, 3)`` for ``Dense(3, ...)``.
    seed : int
        Seeds the input (normal, kept 0.1 away from 0 to avoid kinks), the upstream
        gradient ``dy`` (normal) and the layer's randomness (dropout masks are drawn again,
        identically, for every evaluation).
    x : array, optional
        The input to use instead of a random one (e.g. to avoid ties in a max-pool window).
    train : bool
        Run ``forward`` in training mode (dropout active).
    tol, eps : float
        Pass threshold on the relative error, and finite-difference step.

    Returns
    -------
    dict
        Relative error for ``"x"`` and for each parameter name.

    Raises
    ------
    GradientCheckError
        When an error is above ``tol`` (naming the worst element and both values), or when
        ``forward``/``backward`` modified their input ``x`` or ``dy`` in place.
    """
    if not isinstance(layer, Layer):
        raise ConfigError(f"check_layer: layer must be an nn layer instance, got "
                          f"{type(layer).__name__}")
    if x is None and (not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
            for d in input_shape)):
        raise ConfigError(f"check_layer: input_shape must be a tuple of positive ints with the "
                          f"batch axis first, e.g. (5, 3), got {input_shape!r}")
    outer = backends.current()
    tree = list(named_layers(layer))
    saved = [(sub, dict(sub.params)) for _, sub in tree]
    try:
        with backends.using(outer.name, "fp64") as B:
            layer.to_backend()  # float64 copies of the parameters
            rng = np.random.default_rng(seed)
            x_host = kink_free_normal(rng, input_shape) if x is None else np.array(_host(x))
            x_dev = B.asarray(x_host)
            x_before = x_dev.copy()  # taken before forward, which must not change x either

            def run(x_in):
                B.seed(seed)  # same dropout mask at every evaluation
                return layer.forward(x_in, train=train)

            y = run(x_dev)
            dy = B.asarray(rng.standard_normal(tuple(y.shape)))
            dy_before = dy.copy()
            dx = layer.backward(dy)
            if not bool((dy == dy_before).all()):
                raise GradientCheckError(f"{layer!r}: backward modified its upstream gradient dy "
                                         "in place; compute dx into a new array")
            if not bool((x_dev == x_before).all()):
                raise GradientCheckError(f"{layer!r}: forward/backward modified the input x in place")
            analytic = {prefix + name: g.copy() for prefix, sub in tree for name, g in sub.grads.items()}

            def objective(_):
                return (run(x_dev) * dy).sum()

            errors = {"x": _assert_close(repr(layer), "x", dx, numerical_gradient_on(B, objective, x_dev, eps), tol)}
            for prefix, sub in tree:
                for name, p in sub.params.items():
                    key = prefix + name
                    if key not in analytic:
                        raise GradientCheckError(f"{sub!r}: backward did not fill grads[{name!r}]")
                    numeric = numerical_gradient_on(B, objective, p, eps)
                    errors[key] = _assert_close(repr(layer), key, analytic[key], numeric, tol)
            return errors
    finally:
        for sub, params in saved:
            sub.params = params
            sub.grads = {}


def numerical_gradient_on(B, f, x, eps):
    """:func:`numerical_gradient` for an array on any backend (copied to the host and back)."""
    if B.name == "numpy":
        return numerical_gradient(f, x, eps)
    x_host = B.to_host(x).astype(np.float64)

    def f_host(v):
        x[...] = B.asarray(v)
        return f(x)

    try:
        return numerical_gradient(f_host, x_host, eps)
    finally:
        x[...] = B.asarray(x_host)


def check_loss(loss, pred_shape, target, seed: int = 0, *, pred=None,
               tol: float = 1e-6, eps: float = 1e-5) -> float:
    """Check ``loss.backward()`` against finite differences of ``loss.forward``, in float64.

    ``target`` is passed as it is (class ids or an array shaped like the predictions);
    ``pred`` defaults to standard normal values of ``pred_shape``. Returns the relative error.
    """
    outer = backends.current()
    with backends.using(outer.name, "fp64") as B:
        rng = np.random.default_rng(seed)
        p = B.asarray(rng.standard_normal(pred_shape) if pred is None else np.array(_host(pred)))
        t = None if target is None else B.asarray(target)    # None: a loss without targets
        loss.forward(p, t)
        analytic = loss.backward()
        numeric = numerical_gradient_on(B, lambda v: loss.forward(v, t), p, eps)
        return _assert_close(repr(loss), "the prediction", analytic, numeric, tol)


__all__ = ["numerical_gradient", "rel_error", "check_layer", "check_loss",
           "kink_free_normal", "GradientCheckError"]
