"""Optimizers and learning-rate schedules.

An optimizer updates parameters in place from their gradients::

    optimizer.step(params, grad_scale=1.0)

where ``params`` is a list of ``(layer, name)`` pairs (``Network.parameters()``) and the
gradients, if they were computed from a scaled loss (mixed precision), are divided by
``grad_scale`` first. Parameters are the float32 master weights under ``"mixed"``, so every
update is computed in float32.

The learning rate ``lr`` is a number or a schedule, a callable ``epoch -> lr``;
``Network.fit`` calls ``optimizer.start_epoch(epoch)`` at the start of each epoch.
"""
from __future__ import annotations

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
    """Base class: holds the schedule and per-parameter state (``state[layer][name]``)."""

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

    def step(self, params, grad_scale: float = 1.0) -> None:
        """Update every ``layer.params[name]`` from ``layer.grads[name] / grad_scale``."""
        self.steps += 1
        inv_scale = 1.0 / grad_scale
        for layer, name in params:
            p = layer.params[name]
            try:
                g = layer.grads[name]
            except KeyError:
                raise RuntimeError(f"{layer!r} has no gradient for {name!r}: call backward() "
                                   "before the optimizer step") from None
            if inv_scale != 1.0:
                g = g * inv_scale
            self._update(p, g, self.state.setdefault(layer, {}), name)

    def _update(self, p, g, state: dict, name: str) -> None:
        """Update ``p`` in place from ``g``; ``state[name]`` is this parameter's state."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget momentum and moment estimates (e.g. before training a new network)."""
        self.state.clear()
        self.steps = 0


class SGD(Optimizer):
    """Gradient descent with optional momentum and weight decay (PyTorch's convention)::

        g = grad + weight_decay * p
        v = momentum * v + g            (v = g when momentum = 0)
        p = p - lr * v
    """

    def __init__(self, lr=0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if not weight_decay >= 0:  # also rejects NaN
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)

    def _update(self, p, g, state, name):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = state.get(name)
            if v is None:
                v = state[name] = g.copy()
            else:
                v *= self.momentum
                v += g
            g = v
        p -= self.lr * g

    def __repr__(self):
        return (f"SGD(lr={self.schedule!r}, momentum={self.momentum:g}, "
                f"weight_decay={self.weight_decay:g})")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction::

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g²
        p = p - lr * m̂ / (sqrt(v̂) + eps),   m̂ = m / (1 - b1^t),  v̂ = v / (1 - b2^t)

    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2, as PyTorch's Adam).
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

    def _update(self, p, g, state, name):
        b1, b2 = self.betas
        state = state.setdefault(name, {})
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not state:
            state["t"] = 0
            xp = backends.current().xp
            state["m"] = xp.zeros_like(g)
            state["v"] = xp.zeros_like(g)
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p -= self.lr * m_hat / (v_hat**0.5 + self.eps)

    def __repr__(self):
        return f"Adam(lr={self.schedule!r}, betas={self.betas}, eps={self.eps:g})"


__all__ = ["Optimizer", "SGD", "Adam", "ConstantLR", "LinearDecayLR", "ExponentialDecayLR",
           "as_schedule"]
