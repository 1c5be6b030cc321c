"""RMSprop, as ``torch.optim.RMSprop`` (Hinton's lecture 6e, 2012).

Like Adagrad it divides each coordinate's step by the root of its squared gradients, but it
averages them with exponential forgetting (``alpha``), so the step size follows the recent scale
of the gradient instead of shrinking for ever. ``centered`` subtracts the square of the averaged
gradient, dividing by an estimate of the gradient's variance instead of its raw second moment.
"""
import numpy as np

from .optimizer import Optimizer, check_hyperparameters, count_step, decay_weights, lerp_


class RMSprop(Optimizer):
    """For each parameter p with gradient g (torch's formulation):

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        a = sqrt(v) + eps                                      (not centered)
        a = sqrt(v - m * m) + eps,  m = alpha * m + (1 - alpha) * g   (centered)
        b = momentum * b + g / a,   p = p - lr * b             (momentum > 0)
        p = p - lr * g / a                                     (momentum = 0)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, *, maximize: bool = False):
        check_hyperparameters("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _update(self, param, grad, group, state):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        count_step(state, param, "square_avg")
        grad = decay_weights(param, grad, lr, weight_decay)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(param.data))
            lerp_(grad_avg, grad, 1 - alpha)
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            denominator = np.sqrt(square_avg) + eps
        if momentum > 0:
            buffer = state.setdefault("momentum_buffer", np.zeros_like(param.data))
            buffer *= momentum
            buffer += grad / denominator
            param.sub_(lr * buffer)
        else:
            param.sub_(lr * grad / denominator)
