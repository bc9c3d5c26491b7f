"""Normalisation layers: BatchNorm and GroupNorm (with LayerNorm and InstanceNorm).

Each normalises its input over a set of values ``x_1 .. x_M`` (which set depends on the
layer), then scales and shifts it per channel with learnt ``W`` and ``b``::

    mu = (1/M) sum_i x_i          s² = (1/M) sum_i (x_i - mu)²          (biased variance)
    x̂_i = (x_i - mu) / sigma,     sigma = sqrt(s² + eps)
    y_i = W_c x̂_i + b_c

================  ==========================================================================
layer             the M values normalised together
================  ==========================================================================
BatchNorm         one channel, over the whole batch and every position: ``(N, *S)``
GroupNorm(G, C)   one example, one group of ``C/G`` channels, every position
LayerNorm(C)      one example, every channel and position (``GroupNorm(1, C)``)
InstanceNorm(C)   one example, one channel, every position (``GroupNorm(C, C)``)
================  ==========================================================================

Backward. With ``dx̂_i = dy_i W_c`` (the gradient reaching ``x̂``), the chain rule through
``mu`` and ``sigma`` (both depend on every ``x_i`` of the set) gives the three-term formula::

    dx_i = (1 / sigma) [ dx̂_i  -  (1/M) sum_j dx̂_j  -  x̂_i (1/M) sum_j dx̂_j x̂_j ]

Derivation, in the course's notation of the δ's: ``x̂_i`` depends on ``x_k`` directly (if
``i = k``), through ``mu`` (``d mu / d x_k = 1/M``) and through ``sigma``
(``d sigma / d x_k = (x_k - mu) / (M sigma) = x̂_k / M``)::

    d x̂_i / d x_k = (1/sigma) [ [i = k] - 1/M - x̂_i x̂_k / M ]

and ``dx_k = sum_i dx̂_i d x̂_i / d x_k`` is the formula above. The first term is what a fixed
scale would give; the second removes the mean of the gradient (shifting every ``x`` of the
set shifts ``mu`` and changes nothing); the third removes the part along ``x̂`` (scaling
every ``x`` changes ``sigma`` and nothing else). Parameters: ``dW_c = sum dy x̂``,
``db_c = sum dy`` over everything channel ``c`` touches.

Precision: under ``"mixed"``, the statistics, their sums and ``x̂`` are computed in float32
from the float16 activations (a float16 sum of thousands of squares loses its digits or
overflows); the output goes back to float16.

Speed: the formulas run in the backend (``B.batchnorm_forward`` ... ``B.groupnorm_backward``):
written with NumPy/CuPy array operations in :class:`nn.backends.base.Backend` (the version to
read), and as numba loops on the CPU (:mod:`nn.backends.cpu_kernels`) that make two passes over
memory per direction where the array version makes about eight, with as many temporaries.
"""
from __future__ import annotations

from .. import backends
from ..errors import ConfigError, DataError
from .base import Layer, init_deferred, positive_int, real_number


class _Norm(Layer, abstract=True):
    """What the normalisation layers share: per-channel ``W`` (ones) and ``b`` (zeros)."""

    def _init_affine(self, owner):
        self.eps = real_number(self.eps, "eps", owner, low=0, low_open=True)
        self.reset_parameters()

    def param_shapes(self):
        return {"W": (self.num_channels,), "b": (self.num_channels,)}

    def reset_parameters(self):
        """W = 1, b = 0: the layer starts as the plain normalisation."""
        if init_deferred():
            self.params = {}
            return
        B = backends.current()
        self.params = {"W": B.xp.ones(self.num_channels, dtype=B.param_dtype),
                       "b": B.xp.zeros(self.num_channels, dtype=B.param_dtype)}
        self.grads = {}

    def _check(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise self._bad_shape(f"(N, {self.num_channels}) or (N, {self.num_channels}, ...)",
                                  x.shape)
        self.shape = x.shape

    def _affine_params(self):
        """``W`` and ``b`` in the accumulation dtype, where the statistics are computed."""
        B = backends.current()
        return (self.params["W"].astype(B.acc_dtype, copy=False),
                self.params["b"].astype(B.acc_dtype, copy=False))

    def _store_param_grads(self, dW, db):
        if self.trainable:
            self.set_grad("W", dW.reshape(-1))
            self.set_grad("b", db.reshape(-1))

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[0] != self.num_channels:
            raise self._bad_shape(f"(N, {self.num_channels}, ...)", ("N", *input_shape))
        return tuple(input_shape)


class BatchNorm(_Norm):
    """Batch normalisation (Ioffe & Szegedy, 2015), PyTorch's semantics.

    Training (``train=True``): each channel is normalised with the mean and the biased
    variance of the batch (over ``N`` and every position), and the running estimates move
    towards the batch's, with the *unbiased* variance::

        running = (1 - momentum) running + momentum batch

    Inference (``train=False``): the running estimates are used instead, so the output of an
    example no longer depends on the rest of its batch; backward then is ``dx = dy W / sigma``.

    Inputs ``(N, C)`` or ``(N, C, *S)``. Parameters ``W``, ``b`` ``(C,)``; buffers (saved with
    the model, never trained) ``running_mean`` (zeros) and ``running_var`` (ones).
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_channels = positive_int(num_features, "num_features", "BatchNorm")
        self.momentum = real_number(momentum, "momentum", "BatchNorm", low=0, high=1)
        self.eps = eps
        self._init_affine("BatchNorm")
        self.reset_buffers()

    @property
    def num_features(self):
        return self.num_channels

    def buffer_shapes(self):
        return {"running_mean": (self.num_channels,), "running_var": (self.num_channels,)}

    def reset_buffers(self):
        if init_deferred():
            self.buffers = {}
            return
        B = backends.current()
        self.buffers = {"running_mean": B.xp.zeros(self.num_channels, dtype=B.param_dtype),
                        "running_var": B.xp.ones(self.num_channels, dtype=B.param_dtype)}

    def forward(self, x, train=False):
        B = backends.current()
        self._check(x)
        N, C = x.shape[:2]
        x3 = x.reshape(N, C, -1).astype(B.acc_dtype, copy=False)      # (N, C, L)
        M = N * x3.shape[2]
        W, b = self._affine_params()
        self.train_mode = bool(train)
        if train:
            if M < 2:
                raise DataError(f"{self!r}: training needs more than one value per channel to "
                                f"compute a variance, got input shape {tuple(x.shape)}; use a "
                                "batch of 2 or more, or GroupNorm")
            y, self.xhat, self.inv_sigma, mean, var = B.batchnorm_forward(x3, W, b, self.eps)
            self._update_running(mean, var, M)
        else:
            # the running estimates are constants: y = W (x - mean) / sigma + b
            mean = self.buffers["running_mean"].astype(B.acc_dtype).reshape(1, C, 1)
            var = self.buffers["running_var"].astype(B.acc_dtype).reshape(1, C, 1)
            self.inv_sigma = 1 / B.xp.sqrt(var + self.eps)
            scale = W.reshape(1, C, 1) * self.inv_sigma
            y = x3 * scale
            y += b.reshape(1, C, 1) - mean * scale
            self.x3 = x3
        return y.reshape(x.shape).astype(B.dtype, copy=False)

    def _update_running(self, mean, var, M):
        """``running = (1 - momentum) running + momentum batch``, unbiased batch variance."""
        m = self.momentum
        for name, batch in (("running_mean", mean), ("running_var", var * (M / (M - 1)))):
            running = self.buffers[name]
            running *= (1 - m)
            running += (m * batch).astype(running.dtype, copy=False)

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, self.shape)
        N, C = dy.shape[:2]
        dy3 = dy.reshape(N, C, -1).astype(B.acc_dtype, copy=False)
        W, _ = self._affine_params()
        if self.train_mode:
            dx, dW, db = B.batchnorm_backward(dy3, self.xhat, self.inv_sigma, W)
        else:
            dx = dy3 * (W.reshape(1, C, 1) * self.inv_sigma)
            xhat = (self.x3 - self.buffers["running_mean"].astype(B.acc_dtype).reshape(1, C, 1)) \
                * self.inv_sigma
            dW, db = (dy3 * xhat).sum(axis=(0, 2)), dy3.sum(axis=(0, 2))
        self._store_param_grads(dW, db)
        return dx.reshape(dy.shape).astype(B.dtype, copy=False)

    def config(self):
        return {"num_features": self.num_channels, "momentum": self.momentum, "eps": self.eps}

    def __repr__(self):
        return f"BatchNorm({self.num_channels})"


class GroupNorm(_Norm):
    """Group normalisation (Wu & He, 2018), PyTorch's semantics.

    Each example is normalised on its own: its ``C`` channels are cut into ``num_groups``
    groups of ``C / G`` consecutive channels, and each group is normalised over its channels
    and every position. Nothing depends on the batch, so training and inference compute the
    same thing, and a batch of one works (the course's CIFAR-10, ASIRRA and Galaxy Zoo
    networks use it). ``W``, ``b`` are per channel ``(C,)``.

    ``GroupNorm(1, C)`` is :class:`LayerNorm`, ``GroupNorm(C, C)`` :class:`InstanceNorm`.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5):
        super().__init__()
        owner = type(self).__name__
        self.num_groups = positive_int(num_groups, "num_groups", owner)
        self.num_channels = positive_int(num_channels, "num_channels", owner)
        if self.num_channels % self.num_groups:
            raise ConfigError(f"{owner}: num_channels ({self.num_channels}) must be a multiple of "
                              f"num_groups ({self.num_groups})")
        self.eps = eps
        self._init_affine(owner)

    def forward(self, x, train=False):
        B = backends.current()
        self._check(x)
        G, K = self.num_groups, self.num_channels // self.num_groups
        x4 = x.reshape(x.shape[0], G, K, -1).astype(B.acc_dtype, copy=False)   # (N, G, K, L)
        W, b = self._affine_params()
        y, self.xhat, self.inv_sigma = B.groupnorm_forward(x4, W.reshape(G, K), b.reshape(G, K),
                                                           self.eps)
        return y.reshape(x.shape).astype(B.dtype, copy=False)

    def backward(self, dy):
        B = backends.current()
        self._check_dy(dy, self.shape)
        dy4 = dy.reshape(self.xhat.shape).astype(B.acc_dtype, copy=False)
        W, _ = self._affine_params()
        dx, dW, db = B.groupnorm_backward(dy4, self.xhat, self.inv_sigma,
                                          W.reshape(self.xhat.shape[1:3]))
        self._store_param_grads(dW, db)
        return dx.reshape(dy.shape).astype(B.dtype, copy=False)

    def config(self):
        return {"num_groups": self.num_groups, "num_channels": self.num_channels,
                "eps": self.eps}

    def __repr__(self):
        return f"GroupNorm({self.num_groups}, {self.num_channels})"


class LayerNorm(GroupNorm):
    """``GroupNorm(1, C)``: each example normalised over all its channels and positions."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__(1, num_channels, eps)

    def config(self):
        return {"num_channels": self.num_channels, "eps": self.eps}

    def __repr__(self):
        return f"LayerNorm({self.num_channels})"


class InstanceNorm(GroupNorm):
    """``GroupNorm(C, C)``: each channel of each example normalised over its positions."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__(num_channels, num_channels, eps)

    def config(self):
        return {"num_channels": self.num_channels, "eps": self.eps}

    def __repr__(self):
        return f"InstanceNorm({self.num_channels})"


__all__ = ["BatchNorm", "GroupNorm", "LayerNorm", "InstanceNorm"]
