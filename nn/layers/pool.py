"""Pooling in 1, 2 and 3 dimensions, and global pooling.

A pooling window visits the same positions as a convolution kernel, so the windows come
from the same place (:mod:`nn.backends.im2col`): for each kernel offset, the values under
that offset in every window form one strided slice of the input. A 2x2 max-pool is the
element-wise maximum of four such slices, and its backward adds ``dy`` back through them.
"""
from __future__ import annotations

import math

from .. import backends
from ..backends.im2col import output_shape, pool_taps
from .base import Layer
from .conv import ntuple, spatial_shape


class PoolND(Layer, abstract=True):
    """What max and average pooling share: the window geometry and its checks.

    Parameters
    ----------
    kernel_size : int or tuple
    stride : int or tuple, optional
        Defaults to ``kernel_size`` (windows side by side). A smaller stride makes windows
        overlap; an input position then receives gradient from every window it is in.
    """

    ndim = 0

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = ntuple(kernel_size, self.ndim, "kernel_size", name)
        self.stride = (self.kernel_size if stride is None
                       else ntuple(stride, self.ndim, "stride", name))

    def _out(self, x_shape) -> tuple:
        """Spatial shape of the output for an input ``(N, C, *S)``, or a clear error."""
        spatial = spatial_shape(self, x_shape, None, self.ndim)
        ones, zeros = (1,) * self.ndim, (0,) * self.ndim
        return output_shape(spatial, self.kernel_size, self.stride, zeros, ones, owner=repr(self))

    def output_shape(self, input_shape):
        return (input_shape[0], *self._out(("N", *input_shape)))

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def __repr__(self):
        fmt = "x".join(map(str, self.kernel_size))
        if self.stride == self.kernel_size:
            return f"{type(self).__name__}({fmt})"
        return f"{type(self).__name__}({fmt}, stride={'x'.join(map(str, self.stride))})"


class MaxPoolND(PoolND, abstract=True):
    """Maximum over each window: ``y[n, c, i] = max over the window of x``.

    Backward routes ``dy`` to the element that was the maximum (``dx`` is zero elsewhere;
    where windows overlap, a position collects the ``dy`` of every window it won). On a tie
    the first element of the window in C order gets all of it, as in PyTorch. The kernels
    (:meth:`nn.backends.base.Backend.maxpool`) remember each window's winner as its offset.
    """

    def forward(self, x, train=False):
        B = backends.current()
        self._out(x.shape)         # checks the shape and that the window fits
        self.x_shape = x.shape
        y, self.argmax = B.maxpool(x, self.kernel_size, self.stride)
        return y

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, self.argmax.shape)
        return B.maxpool_backward(dy, self.argmax, self.x_shape, self.kernel_size, self.stride)


class AvgPoolND(PoolND, abstract=True):
    """Mean over each window: ``y = (1/K) sum over the window of x``; ``dx = dy / K`` spread back."""

    def forward(self, x, train=False):
        self.taps = pool_taps(self.kernel_size, self.stride, self._out(x.shape))
        self.x_shape = x.shape
        y = x[self.taps[0]].copy()
        for window in self.taps[1:]:
            y += x[window]
        y *= y.dtype.type(1 / len(self.taps))
        self.y_shape = y.shape
        return y

    def backward(self, dy):
        B = backends.current()
        xp = B.xp
        self._check_dy(dy, self.y_shape)
        dx = xp.zeros(self.x_shape, dtype=dy.dtype)
        share = dy * dy.dtype.type(1 / len(self.taps))
        for window in self.taps:
            dx[window] += share
        return dx


class MaxPool1D(MaxPoolND):
    """Max-pooling of spectra ``(N, C, L)``. See :class:`MaxPoolND`."""
    ndim = 1


class MaxPool2D(MaxPoolND):
    """Max-pooling of images ``(N, C, H, W)``. See :class:`MaxPoolND`."""
    ndim = 2


class MaxPool3D(MaxPoolND):
    """Max-pooling of cubes ``(N, C, D, H, W)``. See :class:`MaxPoolND`."""
    ndim = 3


class AvgPool1D(AvgPoolND):
    """Average pooling of spectra ``(N, C, L)``. See :class:`AvgPoolND`."""
    ndim = 1


class AvgPool2D(AvgPoolND):
    """Average pooling of images ``(N, C, H, W)``. See :class:`AvgPoolND`."""
    ndim = 2


class AvgPool3D(AvgPoolND):
    """Average pooling of cubes ``(N, C, D, H, W)``. See :class:`AvgPoolND`."""
    ndim = 3


class GlobalPool(Layer, abstract=True):
    """Reduce every spatial axis: ``(N, C, *S) -> (N, C)``, e.g. before a classifier head."""

    def _rows(self, x):
        if x.ndim < 3:
            raise self._bad_shape("(N, C, *S) with at least one spatial axis", x.shape)
        self.x_shape = x.shape
        return x.reshape(x.shape[0], x.shape[1], -1)     # (N, C, L)

    def output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise self._bad_shape("(N, C, *S) with at least one spatial axis", ("N", *input_shape))
        return (input_shape[0],)


class GlobalAvgPool(GlobalPool):
    """Mean over all spatial positions: ``y[n, c] = mean(x[n, c])``; ``dx = dy / L`` everywhere."""

    def forward(self, x, train=False):
        B = backends.current()
        rows = self._rows(x)
        return rows.mean(axis=2, dtype=B.acc_dtype).astype(x.dtype, copy=False)

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, self.x_shape[:2])
        L = math.prod(self.x_shape[2:])
        dx = B.xp.empty(self.x_shape, dtype=dy.dtype)
        dx.reshape(dy.shape[0], dy.shape[1], -1)[...] = (dy * dy.dtype.type(1 / L))[:, :, None]
        return dx


class GlobalMaxPool(GlobalPool):
    """Maximum over all spatial positions; the gradient goes to the (first) maximum."""

    def forward(self, x, train=False):
        xp = backends.current().xp
        rows = self._rows(x)
        self.argmax = rows.argmax(axis=2)                    # first maximum on ties
        return xp.take_along_axis(rows, self.argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, dy):
        xp = backends.current().xp
        self._check_dy(dy, self.x_shape[:2])
        N, C = dy.shape
        L = math.prod(self.x_shape[2:])
        dx = xp.zeros(N * C * L, dtype=dy.dtype)
        dx[xp.arange(N * C) * L + self.argmax.ravel()] = dy.ravel()
        return dx.reshape(self.x_shape)
