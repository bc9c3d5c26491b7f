"""Transposed convolutions in 1, 2 and 3 dimensions: the convolution run backwards.

A strided convolution maps a large input to a small output; its input gradient,
``dx = col2im(W.T @ dY)``, maps a small array back to the large shape. The transposed
convolution *is* that map, used as a layer (decoders, U-Nets, autoencoders): its forward is
the convolution's backward and its backward is the convolution's forward. Nothing below is
a new algorithm; compare with :class:`nn.layers.conv.ConvND` line by line.
"""
from __future__ import annotations

import math

from .. import backends
from ..backends import batch_last
from ..backends.im2col import transposed_size
from ..errors import ConfigError, ShapeError
from .conv import WeightedWindow, channels_first, ntuple, spatial_shape


class ConvTransposeND(WeightedWindow, abstract=True):
    """Transposed convolution over ``ndim`` spatial axes, with PyTorch's semantics.

    Shapes: ``x (N, C, *S)``, ``W (C, O, *K)`` (PyTorch's layout: input channels first),
    ``b (O,)``, ``y (N, O, *S_out)`` with, on each axis,
    ``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + 1 + output_padding``
    (:func:`nn.backends.im2col.transposed_size`). A ``ConvND`` with the same ``kernel_size``,
    ``stride``, ``padding`` and ``dilation`` maps ``S_out`` back to ``S``.

    Forward, with ``x`` laid out as ``X (C, N*L)``::

        y = col2im(W.reshape(C, O*K).T @ X) + b            (the convolution's dx)

    Backward, with ``dY = im2col(dy)`` of shape ``(O*K, N*L)``::

        dx = W.reshape(C, O*K) @ dY        dW = X @ dY.T    (the convolution's forward)

    Speed, on the CPU with numba: on a batch of 8 or more the columns are laid out with the
    batch innermost, ``(O*K, L*N)`` (:mod:`nn.backends.batch_last`), when they have at least
    twice as many rows as ``X`` (``O*K >= 2 C``): col2im and im2col then add and copy runs of
    ``N`` values instead of short image rows. The decoder's 64 -> 32 layer (64 codes of 7 x 7,
    kernel 4, stride 2) went 3.0 -> 1.7 ms forward and 4.3 -> 3.3 ms backward. ``dW`` is
    computed as ``(dY @ X.T).T``: the same sums, and OpenBLAS runs the product with the longer
    side as rows up to twice as fast (that layer: 1.6 -> 1.1 ms).

    Parameters
    ----------
    output_padding : int or tuple
        Extra samples added at the end of each axis of the output, ``< stride``: a strided
        convolution sends ``stride`` different input lengths to the same output length,
        and this picks which one to reconstruct.
    """

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True, dilation=1, init="xavier"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         bias, init)
        name = type(self).__name__
        self.output_padding = ntuple(output_padding, self.ndim, "output_padding", name, minimum=0)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ConfigError(f"{name}: output_padding {self.output_padding} must be smaller "
                              f"than the stride {self.stride} on every axis")

    def _out_spatial(self, spatial) -> tuple:
        out = tuple(transposed_size(n, k, s, p, d, op) for n, k, s, p, d, op in
                    zip(spatial, *self._geometry(), self.output_padding))
        if min(out) < 1:
            raise ShapeError(f"{self!r}: an input of spatial shape {tuple(spatial)} gives an "
                             f"empty output {out}; reduce the padding")
        return out

    def forward(self, x, train=False):
        B = backends.current()
        spatial = spatial_shape(self, x.shape, self.in_channels, self.ndim)
        out = self._out_spatial(spatial)
        self.x = x = B.cast(x)
        N, O = x.shape[0], self.out_channels
        self.W2 = self.weight("W").reshape(self.in_channels, -1)     # (C, O*K)
        self.chunks = self._chunks(x, self.W2.shape[1] * math.prod(spatial))
        y = B.xp.empty((N, O, *out), dtype=B.dtype)
        b = self.weight("b") if self.bias else None
        kernels = B.numba_kernels()
        self.X_last = {}        # x[chunk] batch-last, kept for backward
        for i, chunk in enumerate(self.chunks):
            if batch_last.col2im_applies(kernels, x[chunk], x.shape[2:], *self.W2.shape[::-1]):
                X = batch_last.to_batch_last(x[chunk])                 # (C, L*n), batch-last
                batch_last.col2im(kernels, B.matmul(self.W2.T, X), y[chunk], *self._geometry(),
                                  bias=b)                              # col2im(W.T @ X) + b
                if train and self._backward_batch_last(x[chunk]):
                    self.X_last[i] = X
                continue
            X = channels_first(x[chunk])                               # (C, n*L)
            y[chunk] = B.col2im(B.matmul(self.W2.T, X), (chunk.stop - chunk.start, O, *out),
                                *self._geometry())
            if b is not None:
                y[chunk] += b.reshape((-1,) + (1,) * self.ndim)
        self.y_shape = y.shape
        return y

    def backward(self, dy, input_grad: bool = True):
        B = backends.current()
        xp = B.xp
        self._check_dy(dy, self.y_shape)
        C = self.in_channels
        dW = xp.zeros(self.W2.shape, dtype=B.param_dtype)
        dx = xp.empty(self.x.shape, dtype=B.dtype) if input_grad else None
        kernels = B.numba_kernels()
        for i, chunk in enumerate(self.chunks):
            X = self.X_last.get(i)                                     # x batch-last, kept
            if X is not None:
                dY = batch_last.im2col(kernels, dy[chunk], *self._geometry())   # (O*K, L*n)
                if self.trainable:
                    dW += B.matmul(dY, X.T).T                          # dW = X @ dY.T
                if input_grad:
                    batch_last.from_batch_last(kernels, B.matmul(self.W2, dY), None, dx[chunk])
                continue
            dY = B.im2col(dy[chunk], *self._geometry())                # (O*K, n*L)
            if self.trainable:                                         # dW = X @ dY.T
                dW += B.matmul(dY, channels_first(self.x[chunk]).T).T
            if input_grad:                                             # dx = W @ dY
                dx[chunk].swapaxes(0, 1)[...] = B.matmul(self.W2, dY).reshape(
                    C, -1, *self.x.shape[2:])
        if self.trainable:
            self.set_grad("W", dW.reshape(self.params["W"].shape))
            if self.bias:
                self.set_grad("b", self._bias_grad(dy))
        return dx

    def _backward_batch_last(self, x) -> bool:
        """Whether backward runs batch-last (:mod:`nn.backends.batch_last`) for the chunk ``x``
        (then forward keeps ``x`` batch-last for it): im2col's columns are those of ``dy``."""
        return batch_last.im2col_applies(backends.current().numba_kernels(), x, x.shape[2:],
                                         *self.W2.shape[::-1])

    def output_shape(self, input_shape):
        spatial = spatial_shape(self, ("N", *input_shape), self.in_channels, self.ndim)
        return (self.out_channels, *self._out_spatial(spatial))

    def config(self):
        return {**super().config(), "output_padding": list(self.output_padding)}


class ConvTranspose1D(ConvTransposeND):
    """1D transposed convolution ``(N, C, L) -> (N, O, L_out)``; ``W (C, O, k)``."""
    ndim = 1


class ConvTranspose2D(ConvTransposeND):
    """2D transposed convolution ``(N, C, H, W) -> (N, O, H_out, W_out)``; ``W (C, O, kh, kw)``."""
    ndim = 2


class ConvTranspose3D(ConvTransposeND):
    """3D transposed convolution of cubes; ``W (C, O, kd, kh, kw)``."""
    ndim = 3
