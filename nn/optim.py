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
"""
from __future__ import annotations

import contextlib
import math
import numbers
import weakref

from . import backends


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
        if epochs < 1:
            raise ValueError(f"LinearDecayLR: epochs must be >= 1, got {epochs!r}")
        self.start, self.end, self.epochs = float(start), float(end), int(epochs)

    def __call__(self, epoch: int) -> float:
        f = min(epoch, self.epochs) / self.epochs
        return self.start + (self.end - self.start) * f

    def __repr__(self):
        return f"LinearDecayLR({self.start:g} -> {self.end:g} over {self.epochs} epochs)"


class ExponentialDecayLR:
    """``lr(epoch) = start * gamma ** epoch``."""

    def __init__(self, start: float, gamma: float):
        if not 0 < gamma <= 1:
            raise ValueError(f"ExponentialDecayLR: gamma must be in (0, 1], got {gamma!r}")
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
        raise ValueError(f"learning rate must be a positive number or a schedule, got {lr!r}")
    return ConstantLR(float(lr))


class Optimizer:
    """Base class: holds the schedule and per-parameter state (``state[layer][name]``).

    A subclass writes the update rule as a function, :meth:`_update`, that returns the new
    parameter and its new state without changing anything in place; :meth:`step` writes
    them back. Writing back with a mask is how a mixed-precision step whose gradients
    overflowed is skipped on the device, with no host round-trip.
    """

    def __init__(self, lr):
        self.schedule = as_schedule(lr)
        # per-parameter state: layer -> {name: state}; weak, so a deleted layer's state goes
        self.state = weakref.WeakKeyDictionary()
        self.steps = 0
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        """Set ``lr`` from the schedule for this (0-based) epoch."""
        lr = self.schedule(epoch)
        if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"the learning-rate schedule {self.schedule!r} gave {lr!r} for epoch "
                             f"{epoch}; a learning rate must be a finite number >= 0")
        self.lr = float(lr)

    def step(self, params, grad_scale=1.0, found_inf=None) -> None:
        """Update every ``layer.params[name]`` from ``layer.grads[name] / grad_scale``.

        Parameters
        ----------
        params : list of (layer, name)
            What ``Network.parameters()`` returns.
        grad_scale : float or 0-d array
            The loss scale the gradients carry (mixed precision). A device array is used as
            it is: it is never read back to the host.
        found_inf : 0-d bool array, optional
            When it holds True the whole step is skipped on the device: every update is
            computed, then written only where ``found_inf`` is False, so the parameters and
            the optimizer's state keep their values (``Network.fit`` passes the flag of
            :meth:`nn.backends.Backend.all_finite` under ``"mixed"``). ``steps`` counts the
            calls, skipped or not.
        """
        self.steps += 1
        B = backends.current()
        unscaled = isinstance(grad_scale, numbers.Real) and grad_scale == 1.0
        inv_scale = None if unscaled else 1.0 / grad_scale
        keep = None if found_inf is None else ~B.asarray(found_inf, dtype=bool)
        # an update computed from overflowed gradients holds inf/NaN: it is never written,
        # so NumPy need not warn about it
        quiet = contextlib.nullcontext() if keep is None else B.errstate(all="ignore")
        with quiet:
            self._step(params, B.xp, inv_scale, keep)

    def _step(self, params, xp, inv_scale, keep):
        """The loop of :meth:`step`: unscale, update, write back (where ``keep``)."""
        for layer, name in params:
            p = layer.params[name]
            try:
                g = layer.grads[name]
            except KeyError:
                raise RuntimeError(f"{layer!r} has no gradient for {name!r}: call backward() "
                                   "before the optimizer step") from None
            if inv_scale is not None:
                g = g * inv_scale
            states = self.state.setdefault(layer, {})
            if name not in states:
                states[name] = self._init_state(p)
            state = states[name]
            new_p, new_state = self._update(p, g, state)
            # in place, so that the layer and the state keep their arrays; with a mask, a
            # skipped step writes nothing
            for old, new in [(p, new_p)] + [(state[k], new_state[k]) for k in state]:
                if keep is None:
                    xp.copyto(old, new)
                else:
                    xp.copyto(old, new, where=keep)

    def _init_state(self, p) -> dict:
        """The state of a parameter before its first step: arrays of zeros (or nothing)."""
        return {}

    def _update(self, p, g, state: dict):
        """``(new p, new state)`` from gradient ``g``; nothing is modified in place."""
        raise NotImplementedError

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

    def __init__(self, lr=0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if not weight_decay >= 0:  # also rejects NaN
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)

    def _init_state(self, p):
        return {"v": backends.current().xp.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return p - self.lr * g, {}
        v = self.momentum * state["v"] + g
        return p - self.lr * v, {"v": v}

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

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps!r}")
        if not weight_decay >= 0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay!r}")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), float(weight_decay)

    def _init_state(self, p):
        xp = backends.current().xp
        return {"m": xp.zeros_like(p), "v": xp.zeros_like(p), "t": xp.zeros_like(p, shape=())}

    def _update(self, p, g, state):
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp = backends.current().xp
        t = state["t"] + 1
        m = b1 * state["m"]
        m += (1 - b1) * g                  # m = b1 m + (1 - b1) g, as a new array
        v = g * g
        v *= 1 - b2
        v += b2 * state["v"]               # v = b2 v + (1 - b2) g²
        # p - lr m̂ / (sqrt(v̂) + eps), computed in one scratch array
        step = v / (1 - b2**t)
        xp.sqrt(step, out=step)
        step += self.eps
        xp.divide(m, step, out=step)
        step *= self.lr / (1 - b1**t)
        return p - step, {"m": m, "v": v, "t": t}

    def __repr__(self):
        return f"Adam(lr={self.schedule!r}, betas={self.betas}, eps={self.eps:g})"


__all__ = ["Optimizer", "SGD", "Adam", "ConstantLR", "LinearDecayLR", "ExponentialDecayLR",
           "as_schedule"]
