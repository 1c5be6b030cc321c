"""Optimizers and learning-rate schedules, with the names and update formulas of ``torch.optim``.

- ``optimizer``: ``Optimizer``, the base class (parameter groups, per-parameter state, zero_grad)
- ``sgd``: ``SGD`` (momentum, dampening, Nesterov, weight decay)
- ``adam``: ``Adam`` and ``AdamW`` (decoupled weight decay)
- ``lr_scheduler``: ``StepLR``, ``CosineAnnealingLR``
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]
