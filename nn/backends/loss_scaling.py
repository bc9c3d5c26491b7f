"""Dynamic loss scaling for ``"mixed"`` precision training.

Gradients of a float16 network are often smaller than float16's smallest subnormal
(about 6e-8) and flush to zero. Multiplying the loss by a large scale ``S`` multiplies every
gradient by ``S`` (backprop is linear in the upstream gradient), lifting them into float16's
range; the optimizer divides by ``S`` again, in float32, before it updates the weights.

Too large an ``S`` overflows to inf instead. The dynamic rule (Micikevicius et al., 2018):

* start at ``S = 2**15``;
* a step whose gradients hold an inf or a NaN is **skipped** and ``S`` is **halved**;
* after **2000** clean steps in a row ``S`` is **doubled**.
"""
from __future__ import annotations


class LossScaler:
    """Dynamic loss scale; ``step_ok = scaler.update(grads_finite)`` after each backward pass.

    Parameters
    ----------
    init_scale : float
        Starting scale, 2**15.
    growth_factor, backoff_factor : float
        Multiply the scale by these after ``growth_interval`` clean steps / after an overflow.
    growth_interval : int
        Number of consecutive clean steps before the scale grows (2000).
    min_scale : float
        The scale never falls below this (1.0): an overflow at scale 1 is a real overflow.
    """

    def __init__(self, init_scale=2.0**15, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, min_scale=1.0):
        if (init_scale <= 0 or growth_factor <= 1 or not 0 < backoff_factor < 1
                or growth_interval < 1 or min_scale <= 0):
            raise ValueError(
                "LossScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, "
                f"growth_interval >= 1 and min_scale > 0, got {init_scale}, {growth_factor}, "
                f"{backoff_factor}, {growth_interval}, {min_scale}")
        self.scale = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)
        self.clean_steps = 0
        self.skipped = 0

    def update(self, grads_finite: bool) -> bool:
        """Record one step; return True when its gradients may be applied."""
        if not grads_finite:
            self.skipped += 1
            self.clean_steps = 0
            self.scale = max(self.scale * self.backoff_factor, self.min_scale)
            return False
        self.clean_steps += 1
        if self.clean_steps >= self.growth_interval:
            self.scale *= self.growth_factor
            self.clean_steps = 0
        return True

    def __repr__(self):
        return f"LossScaler(scale={self.scale:g}, skipped={self.skipped})"
