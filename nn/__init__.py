"""nn: a neural-network library written from scratch, every gradient by hand.

>>> import nn
>>> net = nn.Network([nn.layers.Dense(4, 8), nn.layers.Sigmoid(beta=1.0),
...                   nn.layers.Dense(8, 3)], nn.losses.SoftmaxCrossEntropy())

Sub-modules: ``backends`` (NumPy/CuPy, precision policy), ``layers``, ``losses``, ``optim``,
``metrics``, ``gradcheck``, ``data``, ``detection`` (boxes, NMS, AP, YOLO). Importing ``nn`` loads neither CuPy nor matplotlib.
"""
from . import (backends, data, detection, diffusion, errors, functional, gradcheck, io, layers,
               losses, metrics, optim, training)
from .backends import current, use
from .errors import (ConfigError, DataError, ModelFileError, NNError, ShapeError,
                     StateError)
from .network import Network
from .training import NonFiniteLossError, StopTraining, TrainingWarning

__version__ = "0.1.0"

__all__ = ["Network", "NonFiniteLossError", "NNError", "ConfigError", "ShapeError", "DataError",
           "StateError", "ModelFileError", "backends", "data", "layers", "losses", "optim",
           "errors", "functional", "io", "training", "diffusion", "StopTraining", "TrainingWarning",
           "metrics", "gradcheck", "detection", "use", "current", "__version__"]
