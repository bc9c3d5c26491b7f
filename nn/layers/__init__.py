"""Layers: each a forward/backward pair with its gradient written by hand."""
from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .base import Layer, from_dict, to_dict
from .dense import Dense
from .dropout import Dropout
from .reshape import Flatten

__all__ = ["Layer", "Dense", "Identity", "Step", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
           "Softmax", "Dropout", "Flatten", "to_dict", "from_dict"]
