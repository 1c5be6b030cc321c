"""Neural-network building blocks, with PyTorch's names.

- ``module``: ``Module`` (parameters, buffers, submodules, state_dict, hooks) and ``Parameter``
- ``layers``: Sequential, ModuleList, ModuleDict, Linear, Conv2d, pooling, activations, Dropout, BatchNorm1d/2d
- ``init``: weight initialisation schemes (``nn.init.kaiming_uniform_`` ...)
- ``utils``: ``clip_grad_norm_``, ``zero_grads``
- ``functional`` (imported as ``F``): the same computations as plain functions
"""
from . import functional
from . import init, utils
from .layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from .module import Module, Parameter, RemovableHandle

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "LeakyReLU", "Linear", "MaxPool2d",
    "Module", "ModuleDict", "ModuleList", "Parameter", "ReLU", "RemovableHandle", "Sequential", "Sigmoid", "Tanh",
    "functional", "init", "utils",
]
