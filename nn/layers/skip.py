"""Skip connections: a block of layers whose input also bypasses it.

``Residual`` adds the input to the block's output (ResNet); ``Concat`` stacks them along the
channel axis (U-Net, DenseNet). Both hold a list of layers and can be nested::

    # a two-level U-Net: each level keeps its input and concatenates the upsampled result
    inner = Concat([MaxPool2D(2), Conv2D(16, 16, 3, padding=1), ReLU(),
                    ConvTranspose2D(16, 16, 2, stride=2)])
    unet = [Conv2D(1, 16, 3, padding=1), ReLU(), inner, Conv2D(32, 1, 1)]
"""
from __future__ import annotations

from .. import backends
from ..errors import ConfigError, ModelFileError, ShapeError
from .base import Layer, forward_through, from_dict, to_dict


class Block(Layer, abstract=True):
    """A sequence of layers inside another layer; forward and backward run through it."""

    def __init__(self, layers):
        super().__init__()
        layers = [layers] if isinstance(layers, Layer) else list(layers)
        name = type(self).__name__
        if not layers:
            raise ConfigError(f"{name}: give at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"{name}: item {i} is a {type(layer).__name__}, not an nn "
                                  "layer (did you pass the class instead of an instance, e.g. "
                                  "ReLU instead of ReLU()?)")
        self.layers = layers

    @classmethod
    def from_config(cls, config):
        layers = config.get("layers")
        if not isinstance(layers, list) or set(config) != {"layers"}:
            raise ModelFileError(f"{cls.__name__}: the config must be {{'layers': [...]}}, got "
                                 f"keys {sorted(config)}")
        return cls([from_dict(spec) for spec in layers])

    def _block_forward(self, x, train):
        return forward_through(self.layers, x, train, f"the {type(self).__name__} block")

    def _block_backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def _block_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def sublayers(self):
        return list(self.layers)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Freezing (or unfreezing) a block does the same to every layer inside it."""
        self._trainable = bool(value)
        for layer in self.__dict__.get("layers", []):
            layer.trainable = value

    def config(self):
        return {"layers": [to_dict(layer) for layer in self.layers]}

    def __repr__(self):
        return f"{type(self).__name__}([{', '.join(map(repr, self.layers))}])"


class Residual(Block):
    """``y = x + block(x)``; the block must keep the shape.

    Backward: the gradient reaches ``x`` along both paths, ``dx = dy + dblock(dy)``; the
    identity path is why deep residual networks still train.
    """

    def forward(self, x, train=False):
        h = self._block_forward(x, train)
        if h.shape != x.shape:
            raise ShapeError(f"{self!r}: the block maps {tuple(x.shape)} to {tuple(h.shape)}, "
                             "but y = x + block(x) needs the same shape; pad the convolutions "
                             "or use Concat")
        self.shape = x.shape
        return x + h

    def backward(self, dy):
        self._check_dy(dy, self.shape)
        return dy + self._block_backward(dy)     # a new array: dy itself is not modified

    def output_shape(self, input_shape):
        shape = self._block_shape(input_shape)
        if shape != tuple(input_shape):
            raise ShapeError(f"{self!r}: the block maps {tuple(input_shape)} to {shape}, but "
                             "y = x + block(x) needs the same shape")
        return shape


class Concat(Block):
    """``y = concat([x, block(x)], channel axis)``: ``(N, C, *S) -> (N, C + C_block, *S)``.

    Backward splits ``dy`` along the channels: the first ``C`` go straight to ``x``, the rest
    through the block, and the two are added.
    """

    def forward(self, x, train=False):
        xp = backends.current().xp
        h = self._block_forward(x, train)
        if h.ndim != x.ndim or h.shape[0] != x.shape[0] or h.shape[2:] != x.shape[2:]:
            raise ShapeError(f"{self!r}: the block maps {tuple(x.shape)} to {tuple(h.shape)}; "
                             "concatenating along the channels needs the same batch and spatial "
                             "shape (check the padding and output_padding)")
        self.channels = x.shape[1]
        self.shape = (x.shape[0], x.shape[1] + h.shape[1], *x.shape[2:])
        return xp.concatenate([x, h], axis=1)

    def backward(self, dy):
        self._check_dy(dy, self.shape)
        dx = self._block_backward(dy[:, self.channels:])
        return dx + dy[:, :self.channels]

    def output_shape(self, input_shape):
        shape = self._block_shape(input_shape)
        if shape[1:] != tuple(input_shape[1:]):
            raise ShapeError(f"{self!r}: the block maps {tuple(input_shape)} to {shape}; "
                             "concatenating along the channels needs the same spatial shape")
        return (input_shape[0] + shape[0], *shape[1:])
