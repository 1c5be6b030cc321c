"""Optimizers and learning-rate schedules, with the names and update formulas of ``torch.optim``.

- ``optimizer``: ``Optimizer``, the base class (parameter groups, per-parameter state, zero_grad)
- ``sgd``: ``SGD`` (momentum, dampening, Nesterov, weight decay)
- ``adam``: ``Adam`` and ``AdamW`` (decoupled weight decay), with ``amsgrad``
- ``adagrad``: ``Adagrad`` (steps divided by the root of all past squared gradients)
- ``rmsprop``: ``RMSprop`` (... of their running average; momentum, centered)
- ``adadelta``: ``Adadelta`` (step scaled by rms(past updates) / rms(gradients))
- ``adamax``: ``Adamax`` (Adam with a decaying maximum of |g| in place of the root mean square)
- ``nadam``: ``NAdam`` (Adam with Nesterov momentum)
- ``radam``: ``RAdam`` (Adam with the adaptive step rectified while its variance is large)
- ``lr_scheduler``: ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``LambdaLR``, ``CosineAnnealingLR``,
  ``OneCycleLR``, ``ReduceLROnPlateau``, ``LinearLR``, ``ConstantLR``, ``PolynomialLR``,
  ``CosineAnnealingWarmRestarts``, ``SequentialLR``
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .nadam import NAdam
from .radam import RAdam
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "Optimizer", "RAdam", "RMSprop", "SGD",
           "lr_scheduler"]
