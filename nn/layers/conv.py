"""Convolutions in 1, 2 and 3 dimensions: im2col and one matrix product.

One class, :class:`ConvND`, does the work for every dimension; ``Conv1D`` (spectra
``(N, C, L)``), ``Conv2D`` (images ``(N, C, H, W)``) and ``Conv3D`` (cubes
``(N, C, D, H, W)``) only fix the number of spatial axes.
"""
from __future__ import annotations

import math
import numbers

from .. import backends
from ..backends.im2col import batch_chunks, output_shape
from . import init as initializers
from .base import Layer, positive_int


def ntuple(value, n: int, name: str, owner: str, minimum: int = 1) -> tuple:
    """``value`` (an int, or a sequence of ``n`` ints) as a tuple of ``n`` ints >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        values = (value,) * n
    else:
        try:
            values = tuple(value)
        except TypeError:        # a float or None: refused below, with the message
            values = (value,)
    if (len(values) != n or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                                or v < minimum for v in values)):
        raise ValueError(f"{owner}: {name} must be an int >= {minimum} or {n} such ints, "
                         f"got {value!r}")
    return tuple(int(v) for v in values)


def spatial_shape(layer: Layer, x_shape, channels: int | None, ndim: int) -> tuple:
    """The spatial shape of an input ``(N, C, *S)`` with ``ndim`` axes in ``S``, or a clear error."""
    if len(x_shape) != ndim + 2 or (channels is not None and x_shape[1] != channels):
        axes = {1: "L", 2: "H, W", 3: "D, H, W"}[ndim]
        raise layer._bad_shape(f"(N, {'C' if channels is None else channels}, {axes})", x_shape)
    return tuple(x_shape[2:])


class WeightedWindow(Layer):
    """What convolutions and transposed convolutions share: channels, geometry, ``W``, ``b``."""

    ndim = 0             # number of spatial axes, fixed by the subclasses
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, init="auto"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.kernel_size = ntuple(kernel_size, self.ndim, "kernel_size", name)
        self.stride = ntuple(stride, self.ndim, "stride", name)
        self.padding = ntuple(padding, self.ndim, "padding", name, minimum=0)
        self.dilation = ntuple(dilation, self.ndim, "dilation", name)
        if init not in initializers.SCHEMES:
            raise ValueError(f"{name}: unknown init {init!r}: choose one of {initializers.SCHEMES}")
        self.bias, self.init = bool(bias), init
        self.reset_parameters()

    def reset_parameters(self, scheme: str | None = None, alpha: float = 0.0):
        """Draw fresh weights (``scheme`` overrides ``self.init`` once) and zero the bias."""
        B = backends.current()
        K = math.prod(self.kernel_size)
        first, second = ((self.in_channels, self.out_channels) if self.transposed
                         else (self.out_channels, self.in_channels))
        W = initializers.draw(scheme or self.init, (first, second, *self.kernel_size),
                              self.in_channels * K, self.out_channels * K, B.host_rng, alpha)
        self.params = {"W": B.param(W)}
        if self.bias:
            self.params["b"] = B.xp.zeros(self.out_channels, dtype=B.param_dtype)
        self.grads = {}

    def _geometry(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def _add_bias(self, B, y):
        """``y (N, O, *S) += b`` broadcast over the batch and the spatial axes, in place."""
        if self.bias:
            y += B.cast(self.params["b"]).reshape((-1,) + (1,) * self.ndim)

    def _bias_grad(self, B, dy):
        """``db = dy`` summed over the batch and every spatial position, ``(O,)``."""
        return B.channel_sums(dy).astype(B.param_dtype, copy=False)

    def config(self):
        config = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": list(self.padding), "dilation": list(self.dilation),
                  "bias": self.bias, "init": self.init}
        return config

    def __repr__(self):
        text = (f"{type(self).__name__}({self.in_channels}->{self.out_channels}, "
                f"kernel={_fmt(self.kernel_size)}, stride={_fmt(self.stride)}, "
                f"pad={_fmt(self.padding)}")
        if any(d != 1 for d in self.dilation):
            text += f", dilation={_fmt(self.dilation)}"
        if getattr(self, "output_padding", None) and any(self.output_padding):
            text += f", output_padding={_fmt(self.output_padding)}"
        return text + ("" if self.bias else ", bias=False") + ")"


def _fmt(values) -> str:
    return "x".join(str(v) for v in values) if len(set(values)) > 1 else str(values[0])


class ConvND(WeightedWindow):
    """Convolution (cross-correlation, as in PyTorch) over ``ndim`` spatial axes.

    Shapes: ``x (N, C, *S)``, ``W (O, C, *K)``, ``b (O,)``, ``y (N, O, *S_out)`` with
    ``S_out`` given by :func:`nn.backends.im2col.output_size` on each axis.

    Forward, with ``X = im2col(x)`` of shape ``(C*K, N*L)`` (one column per example and
    output position)::

        y = W.reshape(O, C*K) @ X + b                               -> (N, O, *S_out)

    Backward, with ``dY`` the upstream gradient laid out as ``(O, N*L)``::

        dW = dY @ X.T          db = dY summed over columns          dx = col2im(W.T @ dY)

    The input gradient is the transposed convolution of ``dy``: :mod:`.conv_transpose` is
    this same code with forward and backward exchanged.

    Large batches are processed in chunks of examples whose columns fit in
    ``nn.backends.current().workspace_bytes``; the columns are then recomputed in backward
    rather than kept, so memory stays near the size of the activations.
    """

    def forward(self, x, train=False):
        B = backends.current()
        xp = B.xp
        spatial = spatial_shape(self, x.shape, self.in_channels, self.ndim)
        out = output_shape(spatial, *self._geometry(), owner=repr(self))
        self.x = x = B.asarray(x)
        N, O = x.shape[0], self.out_channels
        self.W2 = B.cast(self.params["W"]).reshape(O, -1)   # (O, C*K), float16 under "mixed"
        bytes_per_example = self.W2.shape[1] * math.prod(out) * x.dtype.itemsize
        self.chunks = batch_chunks(N, bytes_per_example, B.workspace_bytes)
        y = xp.empty((N, O, *out), dtype=B.dtype)
        b = B.cast(self.params["b"]).reshape((O,) + (1,) * (1 + self.ndim)) if self.bias else 0
        for chunk in self.chunks:
            cols = B.im2col(x[chunk], *self._geometry())
            yc = B.matmul(self.W2, cols)                         # (O, n*L)
            # (O, n, *out) -> (n, O, *out) plus the bias, in one pass straight into y
            xp.add(yc.reshape(O, -1, *out), b, out=y[chunk].swapaxes(0, 1))
        # one chunk: keep its columns for backward; several: recompute them there
        self.cols = cols if len(self.chunks) == 1 else None
        self.y_shape = y.shape
        return y

    def backward(self, dy):
        B = backends.current()
        xp = B.xp
        self._check_dy(dy, self.y_shape)
        O = self.out_channels
        dW = xp.zeros(self.W2.shape, dtype=B.param_dtype)
        dx = xp.empty(self.x.shape, dtype=B.dtype) if self.input_grad else None
        for chunk in self.chunks:
            x = self.x[chunk]
            cols = self.cols if self.cols is not None else B.im2col(x, *self._geometry())
            dyc = xp.ascontiguousarray(dy[chunk].swapaxes(0, 1)).reshape(O, -1)   # (O, n*L)
            dW += B.matmul(dyc, cols.T)
            if self.input_grad:
                dx[chunk] = B.col2im(B.matmul(self.W2.T, dyc), x.shape, *self._geometry())
        self.grads["W"] = dW.reshape(self.params["W"].shape)
        if self.bias:
            self.grads["b"] = self._bias_grad(B, dy)
        return dx

    def output_shape(self, input_shape):
        spatial = spatial_shape(self, ("N", *input_shape), self.in_channels, self.ndim)
        return (self.out_channels, *output_shape(spatial, *self._geometry(), owner=repr(self)))


class Conv1D(ConvND):
    """1D convolution of spectra ``(N, C, L)``; ``W (O, C, k)``. See :class:`ConvND`."""
    ndim = 1


class Conv2D(ConvND):
    """2D convolution of images ``(N, C, H, W)``; ``W (O, C, kh, kw)``. See :class:`ConvND`."""
    ndim = 2


class Conv3D(ConvND):
    """3D convolution of cubes ``(N, C, D, H, W)``; ``W (O, C, kd, kh, kw)``. See :class:`ConvND`."""
    ndim = 3
