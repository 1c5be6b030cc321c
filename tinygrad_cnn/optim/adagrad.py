"""Adagrad, as ``torch.optim.Adagrad`` (Duchi, Hazan & Singer 2011).

Each coordinate's step is divided by the root of the sum of all its squared gradients so far: a
coordinate that has seen large gradients moves slowly, a rarely touched one keeps a large step.
The sum only grows, so steps shrink for ever; ``lr_decay`` shrinks them further over time.
"""
import numpy as np

from .optimizer import Optimizer, check_hyperparameters, count_step, decay_weights


class Adagrad(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p
        s = s + g * g                     (s starts at initial_accumulator_value)
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False):
        check_hyperparameters("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                              initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        step = count_step(state, param)
        if step == 1:
            state["sum"] = np.full_like(param.data, float(group["initial_accumulator_value"]))
        grad = decay_weights(param, grad, lr, weight_decay)
        state["sum"] += grad * grad
        decayed_lr = lr / (1 + (step - 1) * lr_decay)
        param.sub_(decayed_lr * grad / (np.sqrt(state["sum"]) + eps))
