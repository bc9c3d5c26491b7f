"""Inverted dropout."""
from __future__ import annotations

from .. import backends
from .base import Layer, real_number


class Dropout(Layer):
    """Zero each input with probability ``rate`` while training, scale the rest by 1/(1 - rate).

    Scaling at training time ("inverted" dropout) keeps the expected activation unchanged, so
    at test time (``train=False``) the layer is the identity. The mask is drawn from the
    backend's device generator (``nn.backends.current().rng``).
    """

    def __init__(self, rate: float):
        super().__init__()
        self.rate = real_number(rate, "rate", "Dropout", low=0, high=1, high_open=True)

    #: True while ``Network.predict_mc`` runs: dropout stays on at inference (Monte Carlo)
    always_on = False

    def forward(self, x, train=False):
        if not (train or self.always_on) or self.rate == 0:
            self.mask = None
            self.shape = x.shape
            return x
        B = backends.current()
        keep = B.rng.random(x.shape, dtype=B.xp.float32) >= self.rate
        scale = x.dtype.type(1 / (1 - self.rate))            # as the activations hold it
        wide = B.xp.promote_types(x.dtype, B.xp.float32)     # a float16 mask is made in float32
        self.mask = B.astype(keep.astype(wide) * wide.type(scale), x.dtype)   # 0 or scale
        return B.in_float32(B.xp.multiply, x, self.mask)

    def backward(self, dy):
        if self.mask is None:
            self._check_dy(dy, self.shape)
            return dy
        self._check_dy(dy, self.mask.shape)
        return backends.current().in_float32(backends.current().xp.multiply, dy, self.mask)

    def config(self):
        return {"rate": self.rate}
