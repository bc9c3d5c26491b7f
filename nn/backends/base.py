"""The backend contract and the precision policy shared by every backend.

A backend owns three things the layers must never hard-code:

* the array module ``xp`` (NumPy or CuPy), so that layer code reads the same on CPU and GPU;
* the precision policy, i.e. which dtype is used where (table below);
* the random generators: ``host_rng`` (NumPy, used for weight initialisation, so that a seed
  gives the same initial weights on every backend) and ``rng`` (on the device, for dropout).

Precision policy
================

=========  ==============================  ======================  ==========================
precision  activations, matmul inputs      matmul accumulation     parameters, gradients,
           (``dtype``)                                             optimizer (``param_dtype``)
=========  ==============================  ======================  ==========================
fp64       float64                         float64                 float64
fp32       float32                         float32                 float32
mixed      float16                         float32                 float32 (master weights)
=========  ==============================  ======================  ==========================

Under ``"mixed"`` the parameters themselves are the float32 *master* weights, updated by the
optimizer in float32; a layer takes a float16 copy of a weight with :meth:`Backend.cast`
where it enters a matrix product. Reductions (bias gradients, losses, softmax sums) run in
``acc_dtype`` (float32). Small gradients would underflow in float16, so training under
``"mixed"`` multiplies the loss by a dynamic scale (see :class:`nn.training.LossScaler`).

Synchronisation
===============

A GPU runs the work the host queues, in order, while the host goes on. Reading a device
value on the host (``float(a)``, ``bool(a)``, ``a.item()``, :meth:`Backend.to_host`) waits
until the GPU has finished everything queued before it. A training step therefore reads
nothing back: losses are summed on the device, the overflow flag of mixed precision is a
0-d device array (:meth:`Backend.all_finite`), and the optimizer skips an overflowed step
by masking its writes on the device. ``Network.fit`` reads its metrics once per epoch.
``on_host`` says whether such reads are free (NumPy) or not (a GPU).
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from ..errors import ConfigError, NNError
from . import im2col as _im2col

#: precision name -> (activation dtype, parameter dtype, accumulation dtype)
PRECISIONS = {
    "fp64": ("float64", "float64", "float64"),
    "fp32": ("float32", "float32", "float32"),
    "mixed": ("float16", "float32", "float32"),
}


class BackendUnavailableError(NNError, RuntimeError):
    """The requested backend cannot run here (library missing, no GPU)."""


class Backend:
    """Array module, precision policy, random generators and kernels of one device.

    Parameters
    ----------
    precision : {"fp64", "fp32", "mixed"}
        The precision policy (see the module docstring).
    seed : int or None
        Seed of both random generators; ``None`` draws a fresh seed from the OS.
    workspace_bytes : int, optional
        Bytes of im2col columns a convolution may hold at once (256 MiB by default); a larger
        batch is processed in chunks of examples (:func:`nn.backends.im2col.batch_chunks`).
    """

    name = "abstract"
    xp = None
    #: True when arrays live in host memory (NumPy), so reading a value back costs nothing;
    #: False on a GPU, where it waits for the device (``Network.fit`` then reads its metrics
    #: once per epoch instead of once per batch)
    on_host = False

    def __init__(self, precision: str = "fp32", seed: int | None = None, *,
                 workspace_bytes: int | None = None):
        if precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {precision!r}: choose one of {', '.join(map(repr, PRECISIONS))}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise ConfigError(f"seed must be an int >= 0 or None, got {seed!r}")
        if workspace_bytes is None:
            workspace_bytes = _im2col.WORKSPACE_BYTES
        if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, numbers.Integral) \
                or workspace_bytes < 1:
            raise ConfigError(f"workspace_bytes must be an int >= 1, got {workspace_bytes!r}")
        self.precision = precision
        #: bytes of im2col columns a convolution may hold at once; larger batches go in chunks
        self.workspace_bytes = int(workspace_bytes)
        dtype, param_dtype, acc_dtype = PRECISIONS[precision]
        self.dtype = np.dtype(dtype)
        self.param_dtype = np.dtype(param_dtype)
        self.acc_dtype = np.dtype(acc_dtype)
        self.seed(seed)

    def options(self) -> dict:
        """The keyword options this backend was made with (``using`` keeps them)."""
        return {"workspace_bytes": self.workspace_bytes}

    @property
    def mixed(self) -> bool:
        """True under the ``"mixed"`` policy (float16 activations, float32 master weights)."""
        return self.precision == "mixed"

    def __repr__(self):
        return f"{type(self).__name__}(precision={self.precision!r})"

    # -- random numbers -------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        """Reset the host generator (weight init) and the device generator (dropout)."""
        self.host_rng = np.random.default_rng(seed)
        # the device generator is seeded from the host one, so one integer fixes both
        self.rng = self._device_rng(int(self.host_rng.integers(2**63 - 1)))

    def _device_rng(self, seed: int):
        raise NotImplementedError

    # -- moving and casting arrays ----------------------------------------------------------
    def asarray(self, a, dtype=None):
        """``a`` on this backend's device; floating arrays in the activation dtype.

        Integer and boolean arrays (class labels, masks) keep their dtype unless ``dtype`` is
        given. Nothing is copied when ``a`` already has the right place and dtype.
        """
        raise NotImplementedError

    def to_host(self, a) -> np.ndarray:
        """``a`` as a NumPy array in host memory."""
        raise NotImplementedError

    def cast(self, a):
        """``a`` in the activation dtype, the dtype matrix products consume (no copy if it is)."""
        return a.astype(self.dtype, copy=False)

    def param(self, host_array):
        """A parameter tensor on the device in ``param_dtype`` (a fresh copy)."""
        return self.xp.array(host_array, dtype=self.param_dtype)

    def astype(self, a, dtype):
        """``a`` in ``dtype`` (no copy if it already is)."""
        return a.astype(dtype, copy=False)

    def in_float32(self, f, *arrays, out=None):
        """``f(*arrays)``, an element-wise formula on arrays of the activation dtype, written
        into ``out`` when given (``f`` then takes ``out=``, as a ufunc does).

        Computed as written here and on a GPU (which has float16 arithmetic). The NumPy
        backend computes float16 arrays on their float32 values and rounds the result once;
        ``f`` must then give the same float16 result either way, as one operation on float16
        values does (NumPy's float16 ufuncs compute it in float32 and round, too).
        """
        return f(*arrays) if out is None else f(*arrays, out=out)

    def relu(self, x):
        """The rectifier and its mask: ``(x * (x > 0), x > 0)``."""
        positive = x > 0
        return self.times_mask(x, positive), positive

    def times_mask(self, a, mask):
        """``a * mask`` for a boolean ``mask`` of ``a``'s shape (the rectifier's gradient)."""
        return self.in_float32(lambda a: a * mask, a)

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=self.dtype if dtype is None else dtype)

    # -- kernels ------------------------------------------------------------------------------
    def matmul(self, a, b):
        """``a @ b`` under the precision policy; the result is in the activation dtype.

        ``"fp64"``/``"fp32"``: the plain product. ``"mixed"``: both operands rounded to
        float16, products summed in float32, the result rounded to float16.
        """
        raise NotImplementedError

    def channel_sums(self, a):
        """``a (N, C, *S)`` summed over the batch and every position: ``(C,)`` in ``acc_dtype``.

        The bias gradient of a convolution. Summed in the accumulation dtype with no
        intermediate rounding (under ``"mixed"``, float16 values summed in float32).
        """
        N, C = a.shape[:2]
        return a.reshape(N, C, -1).sum(axis=(0, 2), dtype=self.acc_dtype)

    def im2col(self, x, kernel, stride, padding, dilation, out=None):
        """Columns ``(C*K, N*L)`` of ``x (N, C, *S)``: see :mod:`nn.backends.im2col`.

        ``out``: a contiguous ``(C*K, N*L)`` array of ``x``'s dtype to write into.
        """
        return _im2col.im2col(self.xp, x, kernel, stride, padding, dilation, out=out)

    def col2im(self, cols, x_shape, kernel, stride, padding, dilation):
        """The adjoint of :meth:`im2col`: columns summed back into an array of ``x_shape``."""
        return _im2col.col2im(self.xp, cols, x_shape, kernel, stride, padding, dilation)

    def maxpool(self, x, kernel, stride):
        """Max over each window of ``x (N, C, *S)``: ``(y, argmax)``, no padding.

        ``argmax`` holds, for each output, the offset of its maximum inside the window (the
        kernel position in C order); on ties the first wins. Written as one comparison per
        kernel offset, each over a strided slice of ``x`` (all windows at once).
        """
        xp = self.xp
        out = _im2col.output_shape(x.shape[2:], kernel, stride, (0,) * len(kernel),
                                   (1,) * len(kernel), owner="max-pool")
        taps = _im2col.pool_taps(kernel, stride, out)
        y = x[taps[0]].copy()
        argmax = xp.zeros(y.shape, dtype=xp.uint8 if len(taps) < 256 else xp.int32)
        for k, window in enumerate(taps[1:], start=1):
            larger = x[window] > y
            y = xp.where(larger, x[window], y)
            argmax = xp.where(larger, argmax.dtype.type(k), argmax)
        return y, argmax

    def maxpool_backward(self, dy, argmax, x_shape, kernel, stride):
        """``dx``: each ``dy`` routed to the position of its window's maximum (summed on overlaps)."""
        xp = self.xp
        dx = xp.zeros(x_shape, dtype=dy.dtype)
        zero = dy.dtype.type(0)
        for k, window in enumerate(_im2col.pool_taps(kernel, stride, dy.shape[2:])):
            dx[window] += xp.where(argmax == k, dy, zero)
        return dx

    def numba_kernels(self):
        """The CPU's numba kernels module, where they apply (the NumPy backend); else None."""
        return None

    # -- normalisation (nn.layers.norm): the plain NumPy/CuPy formulas ----------------------------
    def batchnorm_forward(self, x, W, b, eps):
        """Batch normalisation of ``x (N, C, L)`` per channel, over ``N`` and ``L``.

        Returns ``y = W x̂ + b``, ``x̂``, ``1/sigma (1, C, 1)``, and the batch ``mean`` and
        biased ``var`` ``(C,)`` (for the running estimates). Formulas: :mod:`nn.layers.norm`.
        """
        xhat, inv_sigma, mean, var = normalise(self.xp, x, (0, 2), eps)
        y = xhat * W.reshape(1, -1, 1)
        y += b.reshape(1, -1, 1)
        return y, xhat, inv_sigma, mean.reshape(-1), var.reshape(-1)

    def batchnorm_backward(self, dy, xhat, inv_sigma, W):
        """``(dx, dW, db)`` of :meth:`batchnorm_forward` for ``dy (N, C, L)``: the three-term
        formula, with ``dx̂ = W dy``; ``dW = sum dy x̂``, ``db = sum dy`` per channel."""
        dW = (dy * xhat).sum(axis=(0, 2))
        db = dy.sum(axis=(0, 2))
        dx = normalise_backward(dy * W.reshape(1, -1, 1), xhat, inv_sigma, (0, 2))
        return dx, dW, db

    def groupnorm_forward(self, x, W, b, eps):
        """Group normalisation of ``x (N, G, K, L)`` (``K`` channels per group) over ``K``
        and ``L``, for each example and group; ``W``, ``b`` are ``(G, K)``.

        Returns ``y = W x̂ + b``, ``x̂`` and ``1/sigma (N, G, 1, 1)``.
        """
        xhat, inv_sigma, _, _ = normalise(self.xp, x, (2, 3), eps)
        y = xhat * W[None, :, :, None]
        y += b[None, :, :, None]
        return y, xhat, inv_sigma

    def groupnorm_backward(self, dy, xhat, inv_sigma, W):
        """``(dx, dW, db)`` of :meth:`groupnorm_forward` for ``dy (N, G, K, L)``."""
        dW = (dy * xhat).sum(axis=(0, 3))
        db = dy.sum(axis=(0, 3))
        dx = normalise_backward(dy * W[None, :, :, None], xhat, inv_sigma, (2, 3))
        return dx, dW, db

    def all_finite(self, arrays):
        """A 0-d bool array on the device: True when no array holds an inf or a NaN.

        Nothing is read back to the host: the flag feeds the loss scaler and the optimizer as
        an array (``bool(flag)`` reads it, and waits for the GPU, when a person needs it).
        """
        xp = self.xp
        if not arrays:
            return self.asarray(True)
        return xp.stack([xp.isfinite(a).all() for a in arrays]).all()

    def elementwise(self, in_params: str, out_params: str, body: str, name: str):
        """A compiled kernel that runs ``body`` once per element, or None.

        The GPU backend compiles it (``cupy.ElementwiseKernel``: C++ ``body``, the
        parameters as in CuPy, outputs given as arrays are updated in place). Code that
        uses it keeps the array formula beside it for the backends that return None
        (NumPy: its array operations are already close to the memory bandwidth, there is
        no launch cost to save). It exists for speed only: one kernel in place of the
        several that the formula launches, each of which costs the host ~10 microseconds.
        """
        return None

    def errstate(self, **kwargs):
        """``numpy.errstate(**kwargs)`` on NumPy; a no-op on a GPU, where nothing warns."""
        return contextlib.nullcontext()


def normalise(xp, x, axes, eps):
    """``(x̂, 1/sigma, mean, var)`` of ``x`` over ``axes`` (kept as size-1 axes), biased var."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    inv_sigma = 1 / xp.sqrt(var + eps)
    centred *= inv_sigma                     # x̂, in place on x - mean
    return centred, inv_sigma, mean, var


def normalise_backward(dxhat, xhat, inv_sigma, axes):
    """``dx = (1/sigma) (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂))`` over ``axes``."""
    dx = dxhat - dxhat.mean(axis=axes, keepdims=True)
    dx -= xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
    dx *= inv_sigma
    return dx
