"""``Optimizer``: the bookkeeping every optimizer shares.

Parameters are organised in *groups*, dicts holding a list ``"params"`` and the hyperparameters
for them (``"lr"``, ...); a plain list of parameters becomes one group with the defaults.
Schedulers change ``group["lr"]`` between steps. Per-parameter state (momentum buffers, Adam's
moment estimates) lives in ``optimizer.state[param]`` as NumPy arrays of the parameter's dtype.

A subclass writes one method, ``_update(param, grad, group, state)``: the formula that moves one
parameter. ``step()`` calls it for every parameter that has a gradient, under ``no_grad``, with the
gradient negated in a group with ``maximize=True`` (every torch optimizer's option: climb the
objective instead of descending it), and the update is made in place on ``param`` (so its
``_version`` increases, and a graph that saved the old value refuses to run backward).
"""
from __future__ import annotations

import numpy as np

from ..autograd import enable_grad, no_grad
from ..nn.utils import zero_grads
from ..tensor_class import Tensor


def check_hyperparameters(optimizer_name: str, **values: float) -> None:
    """Every hyperparameter named here must be >= 0 (learning rates, decays, eps, momentum)."""
    for name, value in values.items():
        if not value >= 0:   # also refuses NaN
            raise ValueError(f"{optimizer_name}: invalid {name} {value}: it must be >= 0")


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """start += weight * (end - start), in place, rounded as torch's lerp: from the nearer end, so
    weight 1 gives exactly ``end`` (a running average with no memory equals its last input)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
    return start


# Elements per chunk of an elementwise update (32768 float32 numbers, 128 KB an array): the few
# arrays one update reads and writes stay in the core's cache from one arithmetic step to the next,
# instead of each step passing over the whole parameter in memory.
UPDATE_CHUNK_ELEMENTS = 1 << 15


def in_chunks(*arrays: np.ndarray):
    """Yield the arrays as tuples of matching flat pieces, ``UPDATE_CHUNK_ELEMENTS`` long, so that an
    elementwise update can be written once and run piece by piece. Arrays of different shapes, or
    not C-contiguous (no flat view without a copy), are yielded whole, once."""
    size = arrays[0].size
    if size <= UPDATE_CHUNK_ELEMENTS or not all(a.shape == arrays[0].shape and a.flags.c_contiguous
                                                 for a in arrays):
        yield arrays
        return
    flat = [a.reshape(-1) for a in arrays]
    for start in range(0, size, UPDATE_CHUNK_ELEMENTS):
        piece = slice(start, start + UPDATE_CHUNK_ELEMENTS)
        yield tuple(f[piece] for f in flat)


def count_step(state: dict, param, *buffers: str) -> int:
    """This step's number (1, 2, ...), counted in ``state``; at the first step each buffer named is
    made in ``state``: zeros of the parameter's shape."""
    if not state:
        state["step"] = 0
        for name in buffers:
            state[name] = np.zeros_like(param.data)
    state["step"] += 1
    return state["step"]


def decay_weights(param, grad, lr: float, weight_decay: float, decoupled: bool = False):
    """Weight decay before a step: the gradient plus ``weight_decay * p`` (L2: it passes through the
    optimizer's running averages); or, ``decoupled`` (as AdamW), the parameter shrunk in place by
    ``1 - lr * weight_decay`` and the gradient returned as it is."""
    if weight_decay == 0:
        return grad
    if decoupled:
        param.mul_(1 - lr * weight_decay)
        return grad
    return grad + weight_decay * param.data


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}  # param -> {name: array or number}
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors (e.g. model.parameters()), not a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters, with hyperparameters that override the defaults."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (one computed from others): optimize the leaves")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or existing & {id(p) for p in params}:
            raise ValueError("some parameters appear more than once (within a group or in several groups)")
        self.param_groups.append({**self.defaults, **group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter: set them to None (torch's default) or zero them."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient. ``closure``, if given, recomputes the loss
        (with grad mode on) and its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        grad = -p.grad.data if group.get("maximize", False) else p.grad.data
                        self._update(p, grad, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, param: Tensor, grad: np.ndarray, group: dict, state: dict) -> None:
        raise NotImplementedError

    # ---- saving and restoring ----------------------------------------------------------------

    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``, with
        parameters replaced by their position across the groups, as torch does. Arrays are copies."""
        index = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**group, "params": [index[id(p)] for p in group["params"]]})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` into an optimizer built over
        the same parameters in the same order."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        for saved, group in zip(saved_groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"a parameter group of the state_dict has {len(saved['params'])} parameters, the optimizer's has {len(group['params'])}"
                )
        by_index = {}
        for saved, group in zip(saved_groups, self.param_groups):
            by_index.update(zip(saved["params"], group["params"]))
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, values in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[p] = {
                k: np.array(v, dtype=p.dtype) if isinstance(v, np.ndarray) else v for k, v in values.items()
            }

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"]
        return "\n".join(lines) + "\n)"
