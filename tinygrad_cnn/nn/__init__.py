"""Neural-network building blocks, with PyTorch's names.

- ``module``: ``Module`` (parameters, buffers, submodules, state_dict, hooks) and ``Parameter``
- ``layers``: containers (Sequential, ModuleList, ModuleDict), Linear, convolutions (1-D, 2-D,
  transposed), pooling (fixed and adaptive), Upsample, activations, dropout, Embedding and the
  normalisations (BatchNorm1d/2d, LayerNorm, GroupNorm)
- ``loss``: the losses as modules (``nn.CrossEntropyLoss()`` ...)
- ``functional`` (imported as ``F``): the same computations as plain functions
- ``hyperparameters``: the checks of kernel sizes, strides, paddings ... shared by layers and functions
- ``init``: weight initialisation schemes (``nn.init.kaiming_uniform_`` ...)
- ``utils``: ``clip_grad_norm_``, ``clip_grad_value_``, ``parameters_to_vector``, ``zero_grads``
- ``parallel``: ``DistributedDataParallel`` (gradients averaged over MPI ranks during backward)
"""
from . import functional
from . import init, parallel, utils
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    GroupNorm,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    Upsample,
)
from .layers import (  # the activations, distances, reshaping, padding and 1-D pools added for torch programs
    CELU, GLU, SELU, AdaptiveAvgPool1d, AvgPool1d, CosineSimilarity, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid,
    MaxPool1d, Mish, PairwiseDistance, PReLU, ReLU6, Softmin, Softplus, Softsign, Tanhshrink, Threshold, Unflatten,
    ZeroPad2d,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .loss import HuberLoss, KLDivLoss, MarginRankingLoss, SmoothL1Loss, TripletMarginLoss
from .module import Module, Parameter, RemovableHandle

__all__ = [
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
    "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU",
    "Embedding", "Flatten", "GELU", "GroupNorm", "Identity", "L1Loss", "LayerNorm", "LeakyReLU", "Linear",
    "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU",
    "RemovableHandle", "Sequential", "SiLU", "Sigmoid", "Softmax", "Tanh", "Upsample",
    "functional", "init", "utils",
    "CELU", "GLU", "SELU", "AdaptiveAvgPool1d", "AvgPool1d", "CosineSimilarity", "Hardsigmoid", "Hardswish",
    "Hardtanh", "LogSigmoid", "MaxPool1d", "Mish", "PairwiseDistance", "PReLU", "ReLU6", "Softmin", "Softplus",
    "Softsign", "Tanhshrink", "Threshold", "Unflatten", "ZeroPad2d",
    "HuberLoss", "KLDivLoss", "MarginRankingLoss", "SmoothL1Loss", "TripletMarginLoss",
]
