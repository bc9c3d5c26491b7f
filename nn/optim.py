"""Optimizers and learning-rate schedules.

An optimizer updates parameters in place from their gradients::

    optimizer.step(params, grad_scale=1.0, found_inf=None)

where ``params`` is a list of ``(layer, name)`` pairs (``Network.parameters()``) and the
gradients, if they were computed from a scaled loss (mixed precision), are divided by
``grad_scale`` first. Parameters are the float32 master weights under ``"mixed"``, so every
update is computed in float32; ``found_inf`` (a 0-d device array) skips the step on the
device when the scaled gradients overflowed.

The learning rate ``lr`` is a number or a schedule, a callable ``epoch -> lr``;
``Network.fit`` calls ``optimizer.start_epoch(epoch)`` at the start of each epoch.

Every optimizer takes ``clip_norm``: when the norm of all gradients together,
``sqrt(sum of g²)``, exceeds it, every gradient is scaled by ``clip_norm / (norm + 1e-6)``
before the update (``torch.nn.utils.clip_grad_norm_``'s rule) (global gradient-norm clipping; it keeps one exploding batch from throwing the
weights far away, and leaves the direction of the step unchanged).

A step is all or nothing: a Ctrl-C (``KeyboardInterrupt``) that arrives while parameters are
being written is held until the last one is written, so an interrupted run never has some
layers updated and others not.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import signal
import threading
import weakref

import numpy as np

from . import backends
from .errors import ConfigError, StateError


class ConstantLR:
    """``lr(epoch) = lr``."""

    def __init__(self, lr: float):
        self.lr = float(lr)

    def __call__(self, epoch: int) -> float:
        return self.lr

    def __repr__(self):
        return f"ConstantLR({self.lr:g})"


class LinearDecayLR:
    """From ``start`` to ``end`` in a straight line over ``epochs`` epochs, then ``end``."""

    def __init__(self, start: float, end: float, epochs: int):
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ConfigError(f"LinearDecayLR: epochs must be an int >= 1, got {epochs!r}")
        for name, value in (("start", start), ("end", end)):
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"LinearDecayLR: {name} must be a finite number >= 0, got "
                                  f"{value!r}")
        self.start, self.end, self.epochs = float(start), float(end), int(epochs)

    def __call__(self, epoch: int) -> float:
        f = min(epoch, self.epochs) / self.epochs
        return self.start + (self.end - self.start) * f

    def __repr__(self):
        return f"LinearDecayLR({self.start:g} -> {self.end:g} over {self.epochs} epochs)"


class ExponentialDecayLR:
    """``lr(epoch) = start * gamma ** epoch``."""

    def __init__(self, start: float, gamma: float):
        if not (isinstance(gamma, numbers.Real) and 0 < gamma <= 1):
            raise ConfigError(f"ExponentialDecayLR: gamma must be in (0, 1], got {gamma!r}")
        if not (isinstance(start, numbers.Real) and math.isfinite(start) and start > 0):
            raise ConfigError(f"ExponentialDecayLR: start must be a finite number > 0, got "
                              f"{start!r}")
        self.start, self.gamma = float(start), float(gamma)

    def __call__(self, epoch: int) -> float:
        return self.start * self.gamma**epoch

    def __repr__(self):
        return f"ExponentialDecayLR({self.start:g} * {self.gamma:g}**epoch)"


def as_schedule(lr):
    """A number becomes :class:`ConstantLR`; a callable is used as it is."""
    if callable(lr):
        return lr
    if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"learning rate must be a positive number or a schedule, got {lr!r}")
    return ConstantLR(float(lr))


class Optimizer:
    """Base class: holds the schedule and per-parameter state (``state[layer][name]``).

    A subclass writes the update rule as a function, :meth:`_update`, that returns the new
    parameter and its new state without changing anything in place; :meth:`step` writes
    them back. Writing back with a mask is how a mixed-precision step whose gradients
    overflowed is skipped on the device, with no host round-trip.
    """

    def __init__(self, lr, clip_norm: float | None = None):
        self.schedule = as_schedule(lr)
        if clip_norm is not None and not (isinstance(clip_norm, numbers.Real)
                                          and math.isfinite(clip_norm) and clip_norm > 0):
            raise ConfigError(f"clip_norm must be a positive number or None, got {clip_norm!r}")
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        # per-parameter state: layer -> {name: state}; weak, so a deleted layer's state goes
        self.state = weakref.WeakKeyDictionary()
        self.steps = 0
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        """Set ``lr`` from the schedule for this (0-based) epoch."""
        lr = self.schedule(epoch)
        if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr >= 0):
            raise ConfigError(f"the learning-rate schedule {self.schedule!r} gave {lr!r} for epoch "
                             f"{epoch}; a learning rate must be a finite number >= 0")
        self.lr = float(lr)

    def step(self, params, grad_scale=1.0, found_inf=None) -> None:
        """Update every ``layer.params[name]`` from ``layer.grads[name] / grad_scale``.

        Parameters
        ----------
        params : list of (layer, name)
            What ``Network.parameters()`` returns (frozen layers are not in it; a pair whose
            layer has ``trainable = False`` is skipped here too).
        grad_scale : float or 0-d array
            The loss scale the gradients carry (mixed precision). A device array is used as
            it is: it is never read back to the host.
        found_inf : 0-d bool array, optional
            When it holds True the whole step is skipped on the device: every update is
            computed, then written only where ``found_inf`` is False, so the parameters and
            the optimizer's state keep their values (the training step passes the flag of
            its loss scaler under ``"mixed"``). ``steps`` counts the calls, skipped or not.
        """
        self.steps += 1
        B = backends.current()
        params = [(layer, name) for layer, name in params if getattr(layer, "trainable", True)]
        grads = [self._grad(layer, name) for layer, name in params]
        factor = self._gradient_factor(B, grads, grad_scale)
        keep = None if found_inf is None else ~B.asarray(found_inf, dtype=bool)
        # an update computed from overflowed gradients holds inf/NaN: it is never written,
        # so NumPy need not warn about it
        quiet = contextlib.nullcontext() if keep is None else B.errstate(all="ignore")
        fused = self._fused_kernel(B)
        if fused is not None:                  # the kernel's arguments: numbers or 0-d arrays
            factor = 1.0 if factor is None else (
                float(factor) if isinstance(factor, numbers.Real) else factor.astype(np.float64))
            keep = True if keep is None else keep
        with quiet, _hold_keyboard_interrupt():
            for (layer, name), g in zip(params, grads):
                if fused is not None:
                    self._apply_fused(fused, layer, name, g, factor, keep)
                else:
                    self._apply(B.xp, layer, name, g if factor is None else g * factor, keep)

    @staticmethod
    def _grad(layer, name):
        try:
            return layer.grads[name]
        except KeyError:
            raise StateError(f"{layer!r} has no gradient for {name!r}: call backward() before "
                             "the optimizer step") from None

    def _gradient_factor(self, B, grads, grad_scale):
        """What every gradient is multiplied by: ``1 / grad_scale`` (mixed precision), times the
        clipping factor ``min(1, clip_norm / norm)``; None when it is 1."""
        unscaled = isinstance(grad_scale, numbers.Real) and grad_scale == 1.0
        factor = None if unscaled else 1.0 / grad_scale
        if self.clip_norm is None or not grads:
            return factor
        xp = B.xp
        norm = xp.sqrt(sum((g.astype(B.acc_dtype) ** 2).sum() for g in grads))
        if factor is not None:
            norm = norm * factor
        clip = xp.minimum(1.0, self.clip_norm / (norm + 1e-6))
        return clip if factor is None else clip * factor

    def _apply(self, xp, layer, name, g, keep):
        """Compute the update of one parameter and write it (where ``keep``), with its state."""
        p = layer.params[name]
        state = self._state_of(layer, name)
        if keep is None and xp is np and self._update_in_place(p, g, state):
            return
        new_p, new_state = self._update(p, g, state)
        # in place, so that the layer and the state keep their arrays; with a mask, a
        # skipped step writes nothing
        for old, new in [(p, new_p)] + [(state[k], new_state[k]) for k in state]:
            if keep is None:
                xp.copyto(old, new)
            else:
                xp.copyto(old, new, where=keep)

    # -- the same update as one GPU kernel ------------------------------------------------------
    def _fused_source(self):
        """``(in_params, out_params, body)`` of :meth:`_update` written as one elementwise
        kernel, or None (the formula then runs everywhere).

        On a GPU the formula launches one kernel per array operation (five or six for SGD
        with momentum, plus the write-back), and each launch costs the host about 10
        microseconds: for a small network that is most of a training step. The kernel
        computes the same update, in double precision, and writes the parameter and the state
        in place. Inputs: ``g`` (the gradient), ``factor`` (what ``g`` is multiplied by:
        ``1 / grad_scale``, the clipping), ``keep`` (False skips the step) and the
        optimizer's numbers (:meth:`_fused_numbers`).
        """
        return None

    def _fused_kernel(self, B):
        """The compiled :meth:`_fused_source` on backends that compile kernels, else None."""
        source = self._fused_source()
        return None if source is None else B.elementwise(*source, f"nn_{type(self).__name__}")

    def _fused_numbers(self) -> tuple:
        return ()

    def _apply_fused(self, kernel, layer, name, g, factor, keep):
        state = self._state_of(layer, name)
        kernel(g, factor, keep, *self._fused_numbers(), layer.params[name], *state.values())

    def _state_of(self, layer, name) -> dict:
        """The optimizer's state of ``layer.params[name]``, made on its first step."""
        states = self.state.setdefault(layer, {})
        if name not in states:
            states[name] = self._init_state(layer.params[name])
        return states[name]

    def _init_state(self, p) -> dict:
        """The state of a parameter before its first step: arrays of zeros (or nothing)."""
        return {}

    def _update(self, p, g, state: dict):
        """``(new p, new state)`` from gradient ``g``; nothing is modified in place."""
        raise NotImplementedError

    def _update_in_place(self, p, g, state: dict) -> bool:
        """Speed, on the CPU: :meth:`_update` computed into ``p`` and the state, operation
        by operation the same (the same bits), without its new arrays and the copy back;
        False where a subclass does not (then :meth:`_update` runs)."""
        return False

    def reset(self) -> None:
        """Forget momentum and moment estimates (e.g. before training a new network)."""
        self.state.clear()
        self.steps = 0


class SGD(Optimizer):
    """Gradient descent with optional momentum and weight decay (PyTorch's convention)::

        g = grad + weight_decay * p
        v = momentum * v + g            (v starts at 0, so v = g after the first step)
        p = p - lr * v
    """

    def __init__(self, lr=0.01, momentum: float = 0.0, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, clip_norm)
        self.momentum = _number(momentum, "SGD", "momentum", 0, 1)
        self.weight_decay = _number(weight_decay, "SGD", "weight_decay", 0)

    def _init_state(self, p):
        return {"v": backends.current().xp.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return p - self.lr * g, {}
        v = self.momentum * state["v"] + g
        return p - self.lr * v, {"v": v}

    def _update_in_place(self, p, g, state):
        # Measured on the LeNet-like network's parameters (2-core VM): 0.29 -> 0.17 ms a step
        # without momentum, 0.57 -> 0.30 ms with
        # (a subclass that rewrites _update gets its own rule)
        if self.weight_decay or p.dtype != g.dtype or type(self)._update is not SGD._update:
            return False
        if self.momentum:
            v = state["v"]
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g
        return True

    # _update as one GPU kernel (see Optimizer._fused_source), with and without momentum
    _FUSED_IN = "T g, float64 factor, bool keep, float64 lr, float64 mu, float64 wd"
    _FUSED_MOMENTUM = (_FUSED_IN, "P p, P v", """
        if (keep) {
            const double grad = (double)g * factor + wd * (double)p;
            const double vel = mu * (double)v + grad;
            v = (P)vel;
            p = (P)((double)p - lr * vel);
        }""")
    _FUSED_PLAIN = (_FUSED_IN, "P p", """
        if (keep) p = (P)((double)p - lr * ((double)g * factor + wd * (double)p));""")

    def _fused_source(self):
        return self._FUSED_MOMENTUM if self.momentum else self._FUSED_PLAIN

    def _fused_numbers(self):
        return (self.lr, self.momentum, self.weight_decay)

    def __repr__(self):
        return (f"SGD(lr={self.schedule!r}, momentum={self.momentum:g}, "
                f"weight_decay={self.weight_decay:g})")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction::

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g²
        p = p - lr * m̂ / (sqrt(v̂) + eps),   m̂ = m / (1 - b1^t),  v̂ = v / (1 - b2^t)

    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2, as PyTorch's Adam).
    The step count ``t`` is a 0-d array beside ``m`` and ``v`` (as PyTorch's ``capturable``
    Adam keeps it on the GPU): a skipped mixed-precision step leaves it unchanged without
    the host having to know that the step was skipped.
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, clip_norm)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ConfigError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_number(b1, "Adam", "betas[0]", 0, 1), _number(b2, "Adam", "betas[1]", 0, 1))
        self.eps = _number(eps, "Adam", "eps", 0, strict=True)
        self.weight_decay = _number(weight_decay, "Adam", "weight_decay", 0)

    def _init_state(self, p):
        xp = backends.current().xp
        return {"m": xp.zeros_like(p), "v": xp.zeros_like(p), "t": xp.zeros_like(p, shape=())}

    def _update(self, p, g, state):
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp = backends.current().xp
        t = state["t"] + 1
        m = b1 * state["m"] + (1 - b1) * g
        v = b2 * state["v"] + (1 - b2) * (g * g)
        # p - lr m̂ / (sqrt(v̂) + eps), with m̂ = m / (1 - b1^t) and v̂ = v / (1 - b2^t); the
        # step is built in one scratch array (in place) instead of five temporaries
        step = v / (1 - b2**t)
        xp.sqrt(step, out=step)
        step += self.eps
        xp.divide(m, step, out=step)
        step *= self.lr / (1 - b1**t)
        return p - step, {"m": m, "v": v, "t": t}

    def __repr__(self):
        return f"Adam(lr={self.schedule!r}, betas={self.betas}, eps={self.eps:g})"


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture notes; PyTorch's update rule)::

        g = grad + weight_decay * p
        v = alpha v + (1 - alpha) g²           (v starts at 0)
        p = p - lr g / (sqrt(v) + eps)

    Each weight gets its own step size, ``lr / sqrt(v)``: large where gradients have been
    large, small where they have been small, which evens out the progress along the valleys
    of the error surface.
    """

    def __init__(self, lr=1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, clip_norm)
        self.alpha = _number(alpha, "RMSprop", "alpha", 0, 1)
        self.eps = _number(eps, "RMSprop", "eps", 0, strict=True)
        self.weight_decay = _number(weight_decay, "RMSprop", "weight_decay", 0)

    def _init_state(self, p):
        return {"v": backends.current().xp.zeros_like(p)}

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp = backends.current().xp
        v = self.alpha * state["v"] + (1 - self.alpha) * (g * g)
        return p - self.lr * g / (xp.sqrt(v) + self.eps), {"v": v}

    def __repr__(self):
        return f"RMSprop(lr={self.schedule!r}, alpha={self.alpha:g}, eps={self.eps:g})"


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011; PyTorch's update rule)::

        g = grad + weight_decay * p
        s = s + g²                             (s starts at 0: the sum of all past g²)
        p = p - lr g / (sqrt(s) + eps)

    The step of a weight shrinks as its squared gradients accumulate: fast at first, then
    ever more cautious (and, on long runs, too cautious: RMSprop forgets old gradients).
    """

    def __init__(self, lr=1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, clip_norm)
        self.eps = _number(eps, "Adagrad", "eps", 0, strict=True)
        self.weight_decay = _number(weight_decay, "Adagrad", "weight_decay", 0)

    def _init_state(self, p):
        return {"s": backends.current().xp.zeros_like(p)}

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp = backends.current().xp
        s = state["s"] + g * g
        return p - self.lr * g / (xp.sqrt(s) + self.eps), {"s": s}

    def __repr__(self):
        return f"Adagrad(lr={self.schedule!r}, eps={self.eps:g})"


def _number(value, owner: str, name: str, low: float, high: float | None = None,
            strict: bool = False) -> float:
    """``value`` as a float in ``[low, high)`` (``(low, high)`` when ``strict``), or a clear error."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if strict else value >= low) and (high is None or value < high))
    if not ok:
        span = f"{'(' if strict else '['}{low:g}, {'inf)' if high is None else f'{high:g})'}"
        raise ConfigError(f"{owner}: {name} must be a number in {span}, got {value!r}")
    return float(value)


@contextlib.contextmanager
def _hold_keyboard_interrupt():
    """Hold a Ctrl-C (SIGINT) until the block has finished, then raise it.

    Only the main thread receives signals in Python; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "ConstantLR", "LinearDecayLR", "ExponentialDecayLR",
           "as_schedule"]
