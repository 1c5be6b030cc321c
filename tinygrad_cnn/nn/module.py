"""``Module`` and ``Parameter``: how a network keeps track of its weights, as in PyTorch.

A module is an object whose attributes are of three kinds, each kept in its own dictionary:

* **parameters** (``Parameter``): the tensors an optimizer trains;
* **buffers** (``register_buffer``): state that is saved but not trained, such as BatchNorm's
  running statistics;
* **submodules**: other modules, so a network is a tree.

Assigning ``self.conv = Conv2d(...)`` or ``self.weight = Parameter(...)`` registers it
(``__setattr__`` sorts the value into the right dictionary). Everything else walks that tree:
``named_parameters`` builds the dotted names (``features.0.weight``) that ``state_dict`` uses as
keys, ``train()``/``eval()`` set ``training`` on every module, and so on.
"""
from __future__ import annotations

import itertools
from collections import namedtuple

import numpy as np

from ..autograd import no_grad
from ..tensor_class import Tensor
from .utils import zero_grads


class Parameter(Tensor):
    """A Tensor that is a module's trainable weight: ``requires_grad=True`` by default, and
    registered by ``Module.__setattr__``. ``Parameter(array)`` wraps the array without copying it."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        super().__init__(np.empty(0, dtype=np.float32) if data is None else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by ``register_forward_hook`` and friends: ``handle.remove()`` unregisters the hook.
    It is also a context manager that removes the hook on exit."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


# What ``load_state_dict`` returns when it does not raise (the same fields as torch's).
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and network: subclass it, create the layers in ``__init__``
    (after ``super().__init__()``) and write ``forward``. Call the module, not ``forward``, so
    that hooks run."""

    training: bool

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist already
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(): define it in the subclass")

    # ---- calling, with hooks ------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, inputs)`` before ``forward``; ``inputs`` is the tuple of positional
        arguments. A return value other than None replaces them (a non-tuple is wrapped)."""
        return self._add_hook(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after ``forward``; a return value other than None
        replaces the output. Used, for example, to record activation maps."""
        return self._add_hook(self._forward_hooks, hook)

    @staticmethod
    def _add_hook(hooks: dict, hook) -> RemovableHandle:
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    # ---- attribute registration ---------------------------------------------------------------

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: call super().__init__() "
                f"first in {type(self).__name__}.__init__"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name, keeping=params)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keeping=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to {name!r}: it is a parameter, so assign a "
                    "Parameter (or None)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to {name!r}: it is a submodule, so assign a Module (or None)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r}: assign a Tensor (or None)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keeping: dict = None) -> None:
        """Remove ``name`` from every registry but ``keeping``, the one it is about to be stored in
        again: replacing a submodule or parameter keeps its place in the order, as in torch."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keeping:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str):
        # only called when normal lookup fails, i.e. for registered parameters, buffers and modules
        registries = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in registries and name in registries[registry]:
                return registries[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add state that is not trained but belongs to the module (saved in ``state_dict`` unless
        ``persistent=False``), such as BatchNorm's running mean."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot register a buffer before Module.__init__() has run")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._forget(name, keeping=self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def register_parameter(self, name: str, param) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._forget(name, keeping=self._parameters)
        self._parameters[name] = param

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        self._forget(name, keeping=self._modules)
        self._modules[name] = module

    # ---- walking the tree ---------------------------------------------------------------------

    def named_modules(self, prefix: str = ""):
        """This module and every module below it, each once, with its dotted name ("" for self)."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{key}" if name else key, child) for key, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))  # reversed: pop() then visits them in definition order

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        """Entries of one registry over the tree, with dotted names; a tensor shared by two modules
        is listed once, under its first name."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, Parameter) pairs in definition order, as torch names them."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every submodule, children first, then on self (e.g. to re-initialise)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients --------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) on this module and
        all below it."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: the same as ``train(False)``."""
        return self.train(False)

    def to(self, *args, dtype=None, device=None, non_blocking=False) -> Module:
        """torch's ``module.to``: a device (the CPU only: ``"cpu"``, ``tg.device("cpu")``; anything else
        raises) and/or a floating-point dtype, applied in place to every parameter and floating
        buffer. Returns the module."""
        from ..tensor_class import to_arguments

        dtype = to_arguments(args, dtype, device)
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes, got {dtype}")
            for tensor in list(self.parameters()) + [b for b in self.buffers() if b.dtype.kind == "f"]:
                tensor.data = tensor.data.astype(dtype)
        return self

    def cpu(self) -> Module:
        return self

    def cuda(self, *args, **kwargs) -> Module:
        raise RuntimeError("cuda(): tinygrad_cnn runs on the CPU only (NumPy); drop .cuda() or use .to('cpu')")

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set them to None (torch's default) or fill them with zeros."""
        zero_grads(self.parameters(), set_to_none)

    # ---- state_dict -----------------------------------------------------------------------------

    def _state_entries(self, prefix: str = ""):
        """(name, tensor) for everything that is saved: parameters, then persistent buffers, module
        by module (torch's order). Unlike ``named_parameters`` a module reachable by two paths
        appears under both names, as in torch's state_dict."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, buffer
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_entries(f"{prefix}{name}.")

    def state_dict(self) -> dict:
        """Every parameter and persistent buffer as a NumPy array, under torch's names.

        Unlike torch, the arrays are copies: the snapshot does not change as training goes on."""
        return {name: tensor.data.copy() for name, tensor in self._state_entries()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict`` (name -> array or Tensor) into the parameters and buffers, in place.

        Every problem is collected before anything is copied, and reported in one error: missing
        and unexpected keys (when ``strict``) and entries of the wrong shape (always). Returns the
        missing and unexpected keys."""
        own = dict(self._state_entries())
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        values, mismatched, non_numeric = {}, [], []
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.shape != target.shape:
                mismatched.append(f"{name}: checkpoint has shape {value.shape}, the model has {target.shape}")
            if value.dtype.kind not in "biuf":  # e.g. None would silently become NaN
                non_numeric.append(f"{name} (dtype {value.dtype})")
            values[name] = value
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if non_numeric:
            problems.append("non-numeric values: " + ", ".join(non_numeric))
        if problems:
            raise RuntimeError(f"error(s) in loading state_dict for {type(self).__name__}:\n  " + "\n  ".join(problems))
        with no_grad():
            for name, value in values.items():
                target = own[name]
                target.copy_(value.astype(target.dtype, copy=False))
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The hyperparameters shown between the parentheses of ``repr``; layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, child in self._modules.items():
            child_lines = repr(child).split("\n")
            lines.append(f"({name}): " + "\n  ".join(child_lines))
        if not self._modules and len(lines) <= 1:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
