"""Convolutions in 1, 2 and 3 dimensions: im2col and one matrix product.

One class, :class:`ConvND`, does the work for every dimension; ``Conv1D`` (spectra
``(N, C, L)``), ``Conv2D`` (images ``(N, C, H, W)``) and ``Conv3D`` (cubes
``(N, C, D, H, W)``) only fix the number of spatial axes.
"""
from __future__ import annotations

import math
import numbers

from .. import backends
from ..backends import batch_last, direct, winograd
from ..backends.im2col import batch_chunks, output_shape
from ..backends.numpy_backend import THIN_CHUNK, columns_per_example
from ..errors import ConfigError
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
        raise ConfigError(f"{owner}: {name} must be an int >= {minimum} or {n} such ints, "
                         f"got {value!r}")
    return tuple(int(v) for v in values)


def spatial_shape(layer: Layer, x_shape, channels: int | None, ndim: int) -> tuple:
    """The spatial shape of an input ``(N, C, *S)`` with ``ndim`` axes in ``S``, or a clear error."""
    if len(x_shape) != ndim + 2 or (channels is not None and x_shape[1] != channels):
        axes = {1: "L", 2: "H, W", 3: "D, H, W"}[ndim]
        raise layer._bad_shape(f"(N, {'C' if channels is None else channels}, {axes})", x_shape)
    return tuple(x_shape[2:])


class WeightedWindow(Layer, abstract=True):
    """What convolutions and transposed convolutions share: channels, geometry, ``W``, ``b``."""

    ndim = 0             # number of spatial axes, fixed by the subclasses
    transposed = False
    skips_input_grad = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, init="xavier"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.kernel_size = ntuple(kernel_size, self.ndim, "kernel_size", name)
        self.stride = ntuple(stride, self.ndim, "stride", name)
        self.padding = ntuple(padding, self.ndim, "padding", name, minimum=0)
        self.dilation = ntuple(dilation, self.ndim, "dilation", name)
        self.bias = bool(bias)
        self.init = initializers.check_scheme(init, name)
        self.reset_parameters()

    def param_shapes(self):
        first, second = ((self.in_channels, self.out_channels) if self.transposed
                         else (self.out_channels, self.in_channels))
        shapes = {"W": (first, second, *self.kernel_size)}
        if self.bias:
            shapes["b"] = (self.out_channels,)
        return shapes

    def reset_parameters(self, scheme: str | None = None, alpha: float = 0.0):
        """Draw fresh weights (``scheme`` overrides ``self.init`` once) and zero the bias."""
        K = math.prod(self.kernel_size)
        self.params = initializers.weight_and_bias(
            scheme or self.init, self.param_shapes()["W"], self.in_channels * K,
            self.out_channels * K, self.out_channels if self.bias else None, alpha)
        self.grads = {}

    def _geometry(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def _chunks(self, x, columns_per_example: int):
        """Slices of the batch whose im2col columns fit in the backend's workspace."""
        B = backends.current()
        bytes_per_example = columns_per_example * x.dtype.itemsize
        return batch_chunks(x.shape[0], bytes_per_example, B.workspace_bytes)

    def _bias_grad(self, dy):
        """``db = dy`` summed over the batch and every spatial position, ``(O,)``."""
        return backends.current().channel_sums(dy)

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


def to_batch_first(Y, b, out):
    """``out (n, O, *S) = Y (O, n*L)`` laid out batch first, plus the bias ``b (O,)``.

    The matrix product gives one row per output channel; the network wants one block per
    example. The transposition and the bias are one pass, written straight into ``out``.
    """
    B = backends.current()
    O = Y.shape[0]
    Y = Y.reshape(O, out.shape[0], *out.shape[2:])
    if b is None:
        out.swapaxes(0, 1)[...] = Y
    else:
        B.in_float32(B.xp.add, Y, b.reshape((O,) + (1,) * (Y.ndim - 1)), out=out.swapaxes(0, 1))


#: :func:`product_batch_first` writes one product per example from this many output
#: positions per example on
PER_EXAMPLE_MIN_POSITIONS = 512


def product_batch_first(W2, X, b, out):
    """``out (n, O, *S) = W2 (O, C*K) @ X (C*K, n*L) + b``, laid out batch first.

    In general the product is made as one matrix ``(O, n*L)`` and laid out by
    :func:`to_batch_first`. Speed: on the CPU, when every example has many output positions,
    one product per example ``W2 @ X[:, example]`` (a view of ``X``) is written straight into
    ``out[example]``: the ``(O, n*L)`` matrix and the pass that transposes it are saved, one
    write and one read-and-write of the output. NumPy's batched ``matmul`` makes the
    products, one BLAS call each. Measured on the 2-core VM, product and layout of the
    VGG-ish 3 -> 32 layer (32 images of 64 x 64) 4.4 -> 3.5 ms, the LeNet-like 1 -> 6
    (64 x 28 x 28) 0.43 -> 0.27 ms, the same for ``predict``'s 256 images 2.6 -> 1.4 ms,
    the 3D 1 -> 8 (8 cubes of 32^3) 2.7 -> 2.2 ms; on short rows, LeNet-like 6 -> 16
    (10 x 10 outputs) 0.26 -> 0.33 ms, it loses: hence :data:`PER_EXAMPLE_MIN_POSITIONS`.
    Under ``"mixed"`` the backend's product (which rounds it to float16) runs as one matrix.
    """
    B = backends.current()
    n, O = out.shape[:2]
    L = math.prod(out.shape[2:])
    if X.ndim == 2 and (
            not B.on_host or B.precision == "mixed" or L < PER_EXAMPLE_MIN_POSITIONS
            or not out.flags.c_contiguous or W2.dtype != X.dtype or X.dtype != out.dtype):
        to_batch_first(B.matmul(W2, X), b, out)
        return
    y = out.reshape(n, O, L)
    B.xp.matmul(W2, per_example_view(X, n), out=y)                   # y[i] = W2 @ X_i
    if b is not None:
        y += b.reshape(O, 1)


def per_example_view(X, n):
    """The columns of each example, ``(n, C*K, L)``: ``X`` itself when it is laid out so
    (:func:`~nn.backends.numpy_backend.columns_per_example`), else views of the ``(C*K,
    n*L)`` matrix."""
    return X if X.ndim == 3 else X.reshape(X.shape[0], n, -1).swapaxes(0, 1)


#: ... and :func:`weight_product` sums one product per example; from this many positions
#: on, each in chunks of positions (:func:`nn.backends.numpy_backend.long_thin_matmul`)
PER_EXAMPLE_MAX_POSITIONS = 8192
#: the per-example layout (and in inference the batch-last one) writes the columns of this
#: many bytes of examples at a time (:meth:`ConvND._columns`)
GROUP_BYTES = 4 * 2**20


def weight_product(X, dy, dY=None):
    """``dY @ X.T (O, C*K)``, the weight gradient of a convolution from its columns ``X (C*K,
    n*L)`` (or ``(n, C*K, L)``, :func:`~nn.backends.numpy_backend.columns_per_example`) and
    ``dy (n, O, *S)``; ``dY``: ``dy`` as the matrix ``(O, n*L)`` when at hand.

    In general it is computed as ``(X @ dY.T).T``: the same sums, and OpenBLAS is up to twice
    as fast with the long ``n*L`` axis inner in this orientation. Speed: on the CPU, with
    :data:`PER_EXAMPLE_MIN_POSITIONS` to :data:`PER_EXAMPLE_MAX_POSITIONS` positions per
    example, it is the sum over examples of ``X_i @ dy_i.T`` (views of ``X`` and ``dy``, one
    batched ``matmul``): ``dy`` need not be copied into ``dY``, and each product is short
    enough to run from the cache (as in :func:`nn.backends.numpy_backend.long_thin_matmul`).
    Measured on the 2-core VM: VGG-ish 3 -> 32 (32 x 64 x 64 outputs) 5.0 -> 3.8 ms, the
    spectra's 16 -> 32 (32 x 930 positions) 3.4 -> 2.0 ms, 32 -> 64 channels 3x3 on 64
    images of 32 x 32 21 -> 18 ms; on the 3D 1 -> 8 (32^3 positions per cube) it lost, 2.8
    -> 3.9 ms. Above :data:`PER_EXAMPLE_MAX_POSITIONS` each example's product is therefore
    cut into chunks of positions, as :func:`~nn.backends.numpy_backend.long_thin_matmul`
    cuts one long product: that 3D layer 3.5 -> 2.3 ms. The products are kept to 16 MiB.
    """
    B = backends.current()
    n, O = dy.shape[:2]
    L = math.prod(dy.shape[2:])
    CK = X.shape[-2] if X.ndim == 3 else X.shape[0]
    if X.ndim == 3 or per_example_products(n, CK, O, L, X.dtype) and X.dtype == dy.dtype:
        xp = B.xp
        Xs = per_example_view(X, n)                                            # (n, C*K, L)
        dys = xp.ascontiguousarray(dy, dtype=X.dtype).reshape(n, O, L)
        if L <= PER_EXAMPLE_MAX_POSITIONS:
            return xp.matmul(Xs, dys.swapaxes(1, 2)).sum(axis=0).T
        # long and thin products: each in chunks of positions, as long_thin_matmul does
        m = L // THIN_CHUNK
        split = m * THIN_CHUNK
        parts = xp.matmul(Xs[:, :, :split].reshape(n, CK, m, THIN_CHUNK).swapaxes(1, 2),
                          dys[:, :, :split].reshape(n, O, m, THIN_CHUNK).transpose(0, 2, 3, 1))
        out = parts.sum(axis=(0, 1))
        if split < L:
            out += xp.matmul(Xs[:, :, split:], dys[:, :, split:].swapaxes(1, 2)).sum(axis=0)
        return out.T
    if dY is None:
        dY = channels_first(dy)
    return B.matmul(X, dY.T).T


def per_example_products(n, CK, O, L, dtype) -> bool:
    """Whether :func:`weight_product` sums one product per example (and the forward makes
    one per example): on the CPU, from :data:`PER_EXAMPLE_MIN_POSITIONS` positions per
    example on, the ``(n, C*K, O)`` products (``n`` times the chunks of each past
    :data:`PER_EXAMPLE_MAX_POSITIONS`) in 16 MiB."""
    B = backends.current()
    products = n * (L // THIN_CHUNK if L > PER_EXAMPLE_MAX_POSITIONS else 1)
    return (B.on_host and B.precision != "mixed" and L >= PER_EXAMPLE_MIN_POSITIONS
            and products * CK * O * dtype.itemsize <= 16 * 2**20)


def channels_first(a):
    """``a (n, C, *S)`` as the matrix ``(C, n*L)``: one row per channel (a copy)."""
    xp = backends.current().xp
    return xp.ascontiguousarray(a.swapaxes(0, 1)).reshape(a.shape[1], -1)


class ConvND(WeightedWindow, abstract=True):
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

    Memory: ``X`` is ``C*K`` times larger than ``x``. A batch whose columns do not fit in
    ``nn.backends.current().workspace_bytes`` is processed in chunks of examples
    (:meth:`_columns`); the columns are then recomputed in backward rather than kept, so
    memory stays near the size of the activations.

    Speed: on the CPU with numba, a layer with one input channel and stride 1 (the first of
    a network on spectra, grey images or cubes; up to 27 taps) makes no columns at all: each
    output is its weighted sum of taps, :mod:`nn.backends.direct` (``self.layout ==
    "direct"``; the 3D 1 -> 8 forward 4.4 -> 2.5 ms). 2D and 3D layers with a 3x3 kernel and
    stride 1 (with enough channels and outputs) compute the same convolution with Winograd's
    minimal filtering instead, F(4x4, 3x3) for images and F(2x2x2, 3x3x3) for cubes, with 4
    and 3.4 times fewer multiplications: :mod:`nn.backends.winograd`, and :meth:`_winograd`
    for when.
    Otherwise, with numba and a batch of 16 or more, small outputs (under
    :data:`PER_EXAMPLE_MIN_POSITIONS` positions, rows of at most 28) take their columns with
    the batch innermost, ``(C*K, L*N)`` (:mod:`nn.backends.batch_last`); so does col2im in
    backward from 8 examples on. Both need ``C*K >= 2 O``. LeNet-like 6 -> 16: forward 0.66
    -> 0.53 ms, backward 1.49 -> 0.82 ms. Larger outputs (:data:`PER_EXAMPLE_MIN_POSITIONS`
    to :data:`PER_EXAMPLE_MAX_POSITIONS` positions) take them in one block per example,
    ``(N, C*K, L)`` (:func:`~nn.backends.numpy_backend.columns_per_example`), for one product
    per example; in inference the batch-last columns are written a few examples at a time
    and kept nowhere. Which layout a forward took is ``self.layout`` (:meth:`_layout`, or
    ``"direct"``); all give the same numbers up to float rounding.
    """

    #: Winograd replaces im2col from this many input channels on (when it applies,
    #: :meth:`_winograd`). Below, its ``T`` matrix products ``(O, C) @ (C, P)`` are too thin
    #: for BLAS to run fast. Measured with F(2x2, 3x3) on the 2-core VM: the VGG-ish 3 -> 32
    #: layer (first, so no input gradient) took 10.2 + 13.7 ms against im2col's 14.9 + 5.7
    #: (forward + weight gradient); from 8 on it gains: the 3D step (8 -> 16 on 16^3)
    #: 34.4-35.0 -> 30.5-32.2 ms, the VGG-ish 32 -> 64 layer 14.2 + 31.0 -> 12.0 + 18.0 ms.
    winograd_min_channels = 8
    #: ... and when every output axis has at least this many positions. On small outputs the
    #: fixed costs (the transforms' passes, tiles partly outside the output) win: LeNet-like
    #: 16 -> 48 on 3x3 outputs took 0.47 + 0.58 ms against im2col's 0.33 + 0.36 in the network
    #: (F(2x2, 3x3); F(4x4, 3x3) would waste 7 of its 16 outputs there).
    winograd_min_size = 8

    def forward(self, x, train=False):
        B = backends.current()
        spatial = spatial_shape(self, x.shape, self.in_channels, self.ndim)
        out = output_shape(spatial, *self._geometry(), owner=repr(self))
        self.x = x = B.cast(x)
        b = self.weight("b") if self.bias else None
        self.W2 = self.weight("W").reshape(self.out_channels, -1)   # (O, C*K)
        if direct.applies(B.numba_kernels(), x, self):            # one input channel
            self.layout, self.winograd_saved, self.cols, self.chunks = "direct", None, None, None
            y = direct.forward(x, self.weight("W"), b, self.padding, self.dilation)
            self.y_shape = y.shape
            return y
        kernels = self._winograd(x, out)
        if kernels is not None:           # same result, fewer multiplications (see the class)
            y, self.winograd_saved = winograd.forward(kernels, x, self.weight("W"), b,
                                                      self.padding,
                                                      spare=self.__dict__.get("winograd_saved"))
            self.cols = self.chunks = None
            self.y_shape = y.shape
            return y
        self.winograd_saved = None
        y = B.xp.empty((x.shape[0], self.out_channels, *out), dtype=B.dtype)
        kernels = B.numba_kernels()
        self.layout = self._layout(kernels, x, out)
        for chunk, X in self._columns(x, out, keep=train):            # X: (C*K, n*L)
            if self.layout == "batch_last":                           # y = W @ X + b
                batch_last.from_batch_last(kernels, B.matmul(self.W2, X), b, y[chunk])
            else:
                product_batch_first(self.W2, X, b, out=y[chunk])
        self.y_shape = y.shape
        return y

    def backward(self, dy, input_grad: bool = True):
        B = backends.current()
        self._check_dy(dy, self.y_shape)
        if self.winograd_saved is not None:
            return self._winograd_backward(dy, input_grad)
        if self.layout == "direct":
            return self._direct_backward(dy, input_grad)
        xp = B.xp
        kernels = B.numba_kernels()
        dW = None
        dx = xp.empty(self.x.shape, dtype=B.dtype) if input_grad else None
        for chunk, X in self._saved_columns():
            # dY: dy as the matrix (O, n*L), or batch-last (O, L*n) for the batch-last
            # columns and col2im (module nn.backends.batch_last)
            dx_batch_last = input_grad and batch_last.col2im_applies(
                kernels, dy[chunk], dy.shape[2:], *self.W2.shape[::-1])
            dY = dY_last = None
            if self.layout == "batch_last" or dx_batch_last:
                dY_last = batch_last.to_batch_last(dy[chunk])
            if input_grad and not dx_batch_last:
                dY = channels_first(dy[chunk])
            if self.trainable:                                                 # dY @ X.T
                part = (B.matmul(X, dY_last.T).T if self.layout == "batch_last"
                        else weight_product(X, dy[chunk], dY))
                if dW is None:          # one pass: laid out (O, C*K), in the parameter dtype
                    dW = xp.ascontiguousarray(part, dtype=B.param_dtype)
                else:                   # the next chunks of the batch
                    dW += part
            if dx_batch_last:                                                  # col2im(W.T @ dY)
                batch_last.col2im(kernels, B.matmul(self.W2.T, dY_last), dx[chunk],
                                  *self._geometry())
            elif input_grad:
                dx[chunk] = B.col2im(B.matmul(self.W2.T, dY), chunk_shape(self.x, chunk),
                                     *self._geometry())
        if self.trainable:
            self.set_grad("W", dW.reshape(self.params["W"].shape))
            if self.bias:
                self.set_grad("b", self._bias_grad(dy))
        return dx

    def _winograd(self, x, out):
        """The numba kernels when this forward runs Winograd's algorithm, else None (im2col).

        It runs for 2D and 3D kernels of 3 on every axis with stride 1 and dilation 1, from
        :attr:`winograd_min_channels` input channels and :attr:`winograd_min_size` outputs
        per axis on, on the CPU with numba, in float32 or float64 (not float16: ``"mixed"``
        keeps im2col's rounding), and when its arrays (``(C + O) * P`` values for each of the
        ``T`` positions of a tile, ``P`` tiles) fit in the workspace.
        """
        B = backends.current()
        kernels = B.numba_kernels()
        if (kernels is None or self.ndim not in (2, 3) or x.dtype not in kernels.DTYPES
                or self.in_channels < self.winograd_min_channels
                or min(out) < self.winograd_min_size
                or any(k != 3 for k in self.kernel_size) or any(s != 1 for s in self.stride)
                or any(d != 1 for d in self.dilation)):
            return None
        m = winograd.OUTPUTS_PER_TILE[self.ndim]
        T, P = (m + 2) ** self.ndim, x.shape[0] * math.prod(winograd.tiles(out, m))
        if T * (self.in_channels + self.out_channels) * P * x.dtype.itemsize > B.workspace_bytes:
            return None
        return kernels

    def _winograd_backward(self, dy, input_grad):
        """Backward of the Winograd forward: every transform transposed (:mod:`nn.backends.winograd`)."""
        B = backends.current()
        dW, dx = winograd.backward(B.numba_kernels(), dy, self.winograd_saved, self.x.shape,
                                   self.padding, input_grad, weight_grad=self.trainable)
        if self.trainable:
            self.set_grad("W", dW)
            if self.bias:
                self.set_grad("b", self._bias_grad(dy))
        return dx

    def _direct_backward(self, dy, input_grad):
        """Backward of the direct forward (:mod:`nn.backends.direct`): the weight gradient
        directly, the input gradient (a layer after the first) through col2im."""
        B = backends.current()
        dx = None
        if input_grad:                                  # col2im(W.T @ dY), chunk by chunk
            dx = B.xp.empty(self.x.shape, dtype=B.dtype)
            for chunk in self._chunks(self.x, self.W2.shape[1] * math.prod(dy.shape[2:])):
                dx[chunk] = B.col2im(B.matmul(self.W2.T, channels_first(dy[chunk])),
                                     chunk_shape(self.x, chunk), *self._geometry())
        if self.trainable:
            self.set_grad("W", direct.weight_grad(self.x, dy, self.kernel_size, self.padding,
                                                  self.dilation))
            if self.bias:
                self.set_grad("b", self._bias_grad(dy))
        return dx

    def _columns(self, x, out, keep=True):
        """``(chunk, im2col(x[chunk]))`` over chunks of the batch (usually one chunk).

        When the whole batch's columns fit in the workspace they are kept for backward;
        otherwise backward recomputes them chunk by chunk (:meth:`_saved_columns`).
        ``keep=False`` (inference): the blocks per example are written into one block's
        worth of scratch instead, and not kept.
        """
        B = backends.current()
        columns = self.W2.shape[1] * math.prod(out)               # per example
        self.chunks = self._chunks(x, columns)
        kept = len(self.chunks) == 1
        shape = (self.W2.shape[1], x.shape[0] * math.prod(out))
        if self.layout == "per_example":
            shape = (x.shape[0], *shape[:1], math.prod(out))
            if kept:
                # Speed: the blocks of a few examples at a time (GROUP_BYTES),
                # each multiplied right after it is written, while it is still in the
                # cache. LeNet-like 1 -> 6 on predict's 256 images: 2.64 -> 2.08 ms.
                self.chunks = batch_chunks(x.shape[0], columns * x.dtype.itemsize,
                                           GROUP_BYTES)
        # Speed: the previous step's columns are overwritten rather than a new array made.
        # A large new array (over 32 MiB, glibc's limit) comes fresh from the kernel, and
        # touching it page by page cost as much as im2col itself (VGG-ish 32 -> 64: 6.8 ms
        # against 2.6 ms into a kept buffer).
        spare, self.cols = self.__dict__.get("cols"), None
        if (not kept or not isinstance(spare, B.xp.ndarray) or spare.shape != shape
                or spare.dtype != x.dtype):
            spare = None
        if kept and self.layout == "per_example":
            if keep:        # one array, written a block at a time, kept for backward
                buffer = B.xp.empty(shape, dtype=x.dtype) if spare is None else spare
            else:           # inference: the blocks go through the cache only (LeNet-like
                            # 1 -> 6 on predict's 256 images: 2.4 -> 1.9 ms)
                buffer = B.xp.empty((self.chunks[0].stop, *shape[1:]), dtype=x.dtype)
            for chunk in self.chunks:
                block = chunk if keep else slice(0, chunk.stop - chunk.start)
                yield chunk, self._im2col(x[chunk], out=buffer[block])
            if keep:
                self.cols = buffer
            return
        if kept and not keep and self.layout == "batch_last":
            # Speed: inference keeps no columns, so they are written a few examples at a time
            # (GROUP_BYTES) into one group's scratch, each group multiplied while
            # it is in the cache: predict's LeNet-like network (256 images, its 6 -> 16
            # layer in 4 groups) 9.2-9.3 -> 8.5 ms; groups of 8 MiB 8.8, 16 MiB 9.4-9.6.
            self.chunks = batch_chunks(x.shape[0], columns * x.dtype.itemsize, GROUP_BYTES)
            buffer = B.xp.empty(columns * self.chunks[0].stop, dtype=x.dtype)
            for chunk in self.chunks:
                size = columns * (chunk.stop - chunk.start)
                yield chunk, self._im2col(x[chunk], out=buffer[:size].reshape(shape[0], -1))
            return
        for chunk in self.chunks:
            X = self._im2col(x[chunk], out=spare)
            if kept:
                self.cols = X
            yield chunk, X

    def _saved_columns(self):
        """The columns of :meth:`_columns` again: kept (the whole batch at once), or
        recomputed chunk by chunk."""
        if self.cols is not None:
            yield slice(0, self.x.shape[0]), self.cols
            return
        for chunk in self.chunks:
            yield chunk, self._im2col(self.x[chunk])

    def _layout(self, kernels, x, out) -> str:
        """The layout of the columns, fastest first where it applies (``kernels``: the
        backend's numba kernels or None):

        - ``"batch_last"``, ``(C*K, L*n)``: small outputs on short rows
          (:mod:`nn.backends.batch_last`);
        - ``"per_example"``, ``(n, C*K, L)``: one product per example
          (:func:`~nn.backends.numpy_backend.columns_per_example`, :func:`per_example_products`);
        - ``"rows"``, ``(C*K, n*L)``: im2col's own layout (:mod:`nn.backends.im2col`).
        """
        L, (O, CK) = math.prod(out), self.W2.shape
        if kernels is None or x.dtype not in kernels.DTYPES:
            return "rows"
        if L < PER_EXAMPLE_MIN_POSITIONS and batch_last.im2col_applies(kernels, x, out, CK, O):
            return "batch_last"
        if per_example_products(x.shape[0], CK, O, L, x.dtype):
            return "per_example"
        return "rows"

    def _im2col(self, x, out=None):
        """The columns of ``x``, in the layout this forward chose (``self.layout``)."""
        B = backends.current()
        if self.layout == "batch_last":
            return batch_last.im2col(B.numba_kernels(), x, *self._geometry(), out=out)
        if self.layout == "per_example":
            return columns_per_example(B.numba_kernels(), x, *self._geometry(), out=out)
        return B.im2col(x, *self._geometry(), out=out)

    def output_shape(self, input_shape):
        spatial = spatial_shape(self, ("N", *input_shape), self.in_channels, self.ndim)
        return (self.out_channels, *output_shape(spatial, *self._geometry(), owner=repr(self)))


def chunk_shape(x, chunk):
    """The shape of ``x[chunk]`` (without slicing ``x``)."""
    return (chunk.stop - chunk.start, *x.shape[1:])


class Conv1D(ConvND):
    """1D convolution of spectra ``(N, C, L)``; ``W (O, C, k)``. See :class:`ConvND`."""
    ndim = 1


class Conv2D(ConvND):
    """2D convolution of images ``(N, C, H, W)``; ``W (O, C, kh, kw)``. See :class:`ConvND`."""
    ndim = 2


class Conv3D(ConvND):
    """3D convolution of cubes ``(N, C, D, H, W)``; ``W (O, C, kd, kh, kw)``. See :class:`ConvND`."""
    ndim = 3
