"""Layers: each a forward/backward pair with its gradient written by hand."""
from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .base import Layer, from_dict, to_dict
from .conv import Conv1D, Conv2D, Conv3D
from .conv_transpose import ConvTranspose1D, ConvTranspose2D, ConvTranspose3D
from .dense import Dense
from .dropout import Dropout
from .norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from .pool import (AvgPool1D, AvgPool2D, AvgPool3D, GlobalAvgPool, GlobalMaxPool, MaxPool1D,
                   MaxPool2D, MaxPool3D)
from .reshape import Flatten, Unflatten
from .sampling import Reparameterize
from .skip import Concat, Residual

__all__ = ["Layer", "Dense", "Identity", "Step", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
           "Softmax", "Dropout", "Flatten", "Unflatten", "Conv1D", "Conv2D", "Conv3D", "ConvTranspose1D",
           "ConvTranspose2D", "ConvTranspose3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
           "AvgPool1D", "AvgPool2D", "AvgPool3D", "GlobalAvgPool", "GlobalMaxPool", "Residual",
           "Concat", "BatchNorm", "GroupNorm", "LayerNorm", "InstanceNorm", "Reparameterize", "to_dict",
           "from_dict"]
