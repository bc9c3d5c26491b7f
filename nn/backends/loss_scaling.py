"""Dynamic loss scaling for ``"mixed"`` precision training.

Gradients of a float16 network are often smaller than float16's smallest subnormal
(about 6e-8) and flush to zero. Multiplying the loss by a large scale ``S`` multiplies every
gradient by ``S`` (backprop is linear in the upstream gradient), lifting them into float16's
range; the optimizer divides by ``S`` again, in float32, before it updates the weights.

Too large an ``S`` overflows to inf instead. The dynamic rule (Micikevicius et al., 2018):

* start at ``S = 2**15``;
* a step whose gradients hold an inf or a NaN is **skipped** and ``S`` is **halved**;
* after **2000** clean steps in a row ``S`` is **doubled**.

The decision is taken on the device, without reading anything back: the scale, the count
of clean steps and the count of skipped steps are 0-d arrays on the backend's device, and
:meth:`LossScaler.update` computes their new values with ``where``. A training step
therefore never waits for the GPU to tell the host whether it overflowed; the optimizer
receives the overflow flag as an array too and skips the update on the device
(:meth:`nn.optim.Optimizer.step`). Reading :attr:`LossScaler.scale` or
:attr:`LossScaler.skipped` on a GPU waits for the device; ``Network.fit`` does it once per
epoch, for its history.
"""
from __future__ import annotations

import numpy as np

#: the state kept on the device: name -> dtype
_STATE = {"scale": np.float32, "clean_steps": np.int64, "skipped": np.int64,
          "overflows_at_min_scale": np.int64}


class LossScaler:
    """Dynamic loss scale, updated on the device after each backward pass.

    One training step under ``"mixed"`` (what ``Network.fit`` does)::

        S = scaler.scale_array()                 # 0-d float32 array on the device
        dout = loss.backward() * S                # backward runs on the scaled loss
        ... network backward ...
        finite = B.all_finite(grads)              # 0-d bool array, nothing read back
        optimizer.step(params, grad_scale=S, found_inf=~finite)
        scaler.update(finite)

    Parameters
    ----------
    init_scale : float
        Starting scale, 2**15.
    growth_factor, backoff_factor : float
        Multiply the scale by these after ``growth_interval`` clean steps / after an overflow.
    growth_interval : int
        Number of consecutive clean steps before the scale grows (2000).
    min_scale : float
        The scale never falls below this (1.0): an overflow at scale 1 is a real overflow,
        counted in ``overflows_at_min_scale`` (``Network.fit`` then stops with an error).
    """

    def __init__(self, init_scale=2.0**15, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, min_scale=1.0):
        if (init_scale <= 0 or growth_factor <= 1 or not 0 < backoff_factor < 1
                or growth_interval < 1 or min_scale <= 0):
            raise ValueError(
                "LossScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, "
                f"growth_interval >= 1 and min_scale > 0, got {init_scale}, {growth_factor}, "
                f"{backoff_factor}, {growth_interval}, {min_scale}")
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)
        # host values until the first use; then 0-d arrays on the device of the backend in use
        self._state = {"scale": float(init_scale), "clean_steps": 0, "skipped": 0,
                       "overflows_at_min_scale": 0}
        self._xp = None

    def _device_state(self, B=None) -> dict:
        """The state as 0-d arrays of backend ``B`` (the current one; moved there on first use)."""
        if B is None:
            from . import current
            B = current()
        if self._xp is not B.xp:
            # first use, or the backend changed (e.g. NumPy -> CuPy): one move, not per step
            self._state = {name: B.asarray(np.asarray(self._read(name)), dtype=dtype)
                           for name, dtype in _STATE.items()}
            self._xp = B.xp
        return self._state

    def _read(self, name):
        value = self._state[name]
        return value if isinstance(value, (int, float)) else value.item()

    # -- what a training step uses (device arrays, no synchronisation) ----------------------------
    def scale_array(self):
        """The current scale as a 0-d float32 array on the device."""
        return self._device_state()["scale"]

    def update(self, grads_finite):
        """Record one step from its overflow flag; return the flag "apply this step".

        Parameters
        ----------
        grads_finite : bool or 0-d bool array
            False (the step's gradients hold an inf or a NaN): the step is skipped, the scale
            is halved (not below ``min_scale``) and ``skipped`` grows by one. True: one more
            clean step; after ``growth_interval`` of them the scale doubles.

        Returns
        -------
        0-d bool array on the device, ``grads_finite`` itself: True when the step's update
        may be applied. Computed with ``where``, so nothing is read back to the host.
        """
        from . import current
        B = current()
        xp = B.xp
        state = self._device_state(B)
        finite = B.asarray(grads_finite, dtype=bool)
        overflow = ~finite
        scale = state["scale"]
        clean = xp.where(finite, state["clean_steps"] + 1, 0)
        grow = clean >= self.growth_interval
        grown = xp.where(grow, scale * np.float32(self.growth_factor), scale)
        backed_off = xp.maximum(scale * np.float32(self.backoff_factor),
                                np.float32(self.min_scale))
        state["overflows_at_min_scale"] = (state["overflows_at_min_scale"]
                                           + (overflow & (scale <= self.min_scale)))
        state["scale"] = xp.where(finite, grown, backed_off).astype(np.float32)
        state["clean_steps"] = xp.where(grow, 0, clean).astype(np.int64)
        state["skipped"] = state["skipped"] + overflow
        return finite

    def device_counters(self) -> list:
        """``[scale, skipped, overflows_at_min_scale]`` as 0-d device arrays (fit reads them
        once per epoch, stacked with its other metrics into one transfer)."""
        state = self._device_state()
        return [state["scale"], state["skipped"], state["overflows_at_min_scale"]]

    # -- what a person reads (a synchronisation on a GPU) ---------------------------------------------
    @property
    def scale(self) -> float:
        """The current loss scale (reading it waits for the device on a GPU)."""
        return float(self._read("scale"))

    @property
    def skipped(self) -> int:
        """Steps skipped so far because their gradients overflowed."""
        return int(self._read("skipped"))

    @property
    def clean_steps(self) -> int:
        """Clean steps since the last overflow or growth of the scale."""
        return int(self._read("clean_steps"))

    @property
    def overflows_at_min_scale(self) -> int:
        """Overflows that happened with the scale already at ``min_scale``."""
        return int(self._read("overflows_at_min_scale"))

    def __repr__(self):
        return f"LossScaler(scale={self.scale:g}, skipped={self.skipped})"
