"""Inverted dropout."""
from __future__ import annotations

from .. import backends
from .base import Layer


class Dropout(Layer):
    """Zero each input with probability ``rate`` while training, scale the rest by 1/(1 - rate).

    Scaling at training time ("inverted" dropout) keeps the expected activation unchanged, so
    at test time (``train=False``) the layer is the identity. The mask is drawn from the
    backend's device generator (``nn.backends.current().rng``).
    """

    def __init__(self, rate: float):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def forward(self, x, train=False):
        if not train or self.rate == 0:
            self.mask = None
            self.shape = x.shape
            return x
        B = backends.current()
        keep = B.rng.random(x.shape, dtype=B.xp.float32) >= self.rate
        self.mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.rate))
        return x * self.mask

    def backward(self, dy):
        if self.mask is None:
            self._check_dy(dy, self.shape)
            return dy
        self._check_dy(dy, self.mask.shape)
        return dy * self.mask

    def config(self):
        return {"rate": self.rate}
