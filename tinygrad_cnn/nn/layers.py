"""The layers, with PyTorch's names, arguments, parameter layouts and default initialisation.

Each layer holds its parameters and calls one function of ``nn.functional`` in ``forward``, so
its gradient comes from the graph. BatchNorm is the one layer with state of its own (running
statistics); it is written out here with Tensor operations.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping

import numpy as np

from ..autograd import no_grad
from ..tensor_class import Tensor
from . import functional as F
from . import init
from .hyperparameters import check_groups, check_non_negative, check_padding_mode, check_positive, default_stride, ints, pair
from ..func import transforming
from .module import Module, Parameter

# ---- containers -----------------------------------------------------------------------------------


def _absolute_index(container: Module, index) -> int:
    """Position ``index`` (negative counts from the end, as for lists) among the container's
    modules, as 0..len-1; IndexError when it is out of range."""
    length = len(container._modules)
    index = operator.index(index)  # an int, or a TypeError for floats and strings
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for a {type(container).__name__} of {length} modules")
    return index + length if index < 0 else index


def _checked_module(container: str, module) -> Module:
    """``module`` itself if it is a Module. A container holds only Modules, because only they have
    parameters to register; anything else is a TypeError naming the container."""
    if not isinstance(module, Module):
        raise TypeError(f"{container}: expected a Module, got {type(module).__name__}")
    return module


class _Holder(Module):
    """What ModuleList and ModuleDict share: they register modules but have no forward of their own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self._add_all(modules)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} has no forward(): it only holds modules, so call them from your "
            "model's forward (e.g. `for layer in self.layers: x = layer(x)`)"
        )

    def __len__(self) -> int:
        return len(self._modules)


class Sequential(Module):
    """Calls its modules one after the other; they are named "0", "1", ... (or by the keys of a dict)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(dict(list(self._modules.items())[index]))
        return list(self._modules.values())[_absolute_index(self, index)]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


class ModuleList(_Holder):
    """A list of modules whose parameters are registered, under "0", "1", ... as in torch (a plain
    Python list would hide them from ``parameters()`` and ``state_dict``). It has no forward: the
    model that owns it decides how to call its modules."""

    def _add_all(self, modules) -> None:
        self.extend(modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self)[index])  # renumbered from "0", as torch
        return self._modules[str(_absolute_index(self, index))]

    def __setitem__(self, index, module: Module) -> None:
        # written in place, not via add_module, so the replaced entry keeps its position
        self._modules[str(_absolute_index(self, index))] = _checked_module("ModuleList", module)

    def __delitem__(self, index) -> None:
        modules = list(self)
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[_absolute_index(self, index)]
        self._renumber(modules)

    def __iadd__(self, modules) -> ModuleList:
        return self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), _checked_module("ModuleList", module))
        return self

    def extend(self, modules) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList: expected an iterable of Modules, got {type(modules).__name__}")
        modules = [_checked_module("ModuleList", module) for module in modules]  # all checked before any is added
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert before ``index`` and renumber the modules after it (an index past either end
        inserts at that end, as ``list.insert`` does)."""
        modules = list(self)
        modules.insert(operator.index(index), _checked_module("ModuleList", module))
        self._renumber(modules)

    def _renumber(self, modules: list) -> None:
        """Register ``modules`` under "0", "1", ... again, so the names stay those torch gives after
        an insert or a delete."""
        self._modules.clear()
        self._modules.update((str(position), module) for position, module in enumerate(modules))

    def __repr__(self) -> str:
        """As torch's: a run of modules that print alike is shown once, as ``(0-2): 3 x Linear(...)``."""
        if not self._modules:
            return f"{type(self).__name__}()"
        runs = []  # [first index, last index, repr]
        for position, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = position
            else:
                runs.append([position, position, text])
        lines = [f"({first}): {text}" if first == last else f"({first}-{last}): {last - first + 1} x {text}"
                 for first, last, text in runs]
        return f"{type(self).__name__}(\n  " + "\n  ".join(line.replace("\n", "\n  ") for line in lines) + "\n)"


class ModuleDict(_Holder):
    """A dict of modules, keyed by strings, whose parameters are registered under those keys
    (``heads.cls.weight``); insertion order is kept. Like ModuleList it has no forward."""

    def _add_all(self, modules) -> None:
        self.update(modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if not key or "." in key:
            raise KeyError(f"ModuleDict: key {key!r} must be non-empty and without '.' (it is part of parameter names)")
        if key not in self._modules and hasattr(self, key):
            raise KeyError(f"ModuleDict: key {key!r} is already an attribute of the ModuleDict")
        # written in place, not via add_module, so a replaced key keeps its position (as in a dict)
        self._modules[key] = _checked_module("ModuleDict", module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules) -> None:
        """Add or replace entries from a mapping (or ModuleDict) or from an iterable of (key, module) pairs."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for key, module in pairs:
            self[key] = module

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def clear(self) -> None:
        self._modules.clear()


# ---- parameterised layers -----------------------------------------------------------------------


def _default_init(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default for Linear and Conv2d: kaiming_uniform_ with a=sqrt(5), i.e. weights
    uniform in +-1/sqrt(fan_in), and the bias uniform in the same bounds."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _Conv(Module):
    """The convolution layers' shared construction: hyperparameters checked (as the functions check
    them) and kept as tuples of one value per spatial axis, the weight in torch's layout, torch's
    default initialisation, torch's printout."""

    _spatial_axes = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, dtype=np.float32, output_padding=0, padding_mode: str = "zeros"):
        super().__init__()
        name, n = type(self).__name__, self._spatial_axes
        modes = ("zeros",) if self._transposed else ("zeros", "reflect", "replicate", "circular")
        if padding_mode not in modes:
            raise ValueError(f"{name}: padding_mode must be one of {modes}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        groups = check_groups(groups, name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = check_positive(ints(kernel_size, n, "kernel_size", name), "kernel_size", name)
        self.stride = check_positive(ints(stride, n, "stride", name), "stride", name)
        if isinstance(padding, str) and not self._transposed:
            check_padding_mode(name, padding, stride)  # "valid" or "same": kept as written, as torch does
            self.padding = padding
        else:
            self.padding = check_non_negative(ints(padding, n, "padding", name), "padding", name)
        self.dilation = check_positive(ints(dilation, n, "dilation", name), "dilation", name)
        self.output_padding = check_non_negative(ints(output_padding, n, "output_padding", name), "output_padding", name)
        channels = (in_channels, out_channels // groups) if self._transposed else (out_channels, in_channels // groups)
        self.weight = Parameter(np.empty((*channels, *self.kernel_size), dtype=dtype))
        self.bias = Parameter(np.empty(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _default_init(self.weight, self.bias)

    def _padded(self, x: Tensor):
        """The input and the padding for the convolution: with a ``padding_mode`` other than zeros
        the input is padded here (``F.pad``, torch's order: last axis first) and the convolution
        pads nothing, as torch does."""
        if self.padding_mode == "zeros":
            return x, self.padding
        if self.padding == "valid":
            return x, 0
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            widths = [(t // 2, t - t // 2) for t in totals]
        else:
            widths = [(p, p) for p in self.padding]
        return F.pad(x, tuple(v for axis in reversed(widths) for v in axis), self.padding_mode), 0

    def extra_repr(self) -> str:
        n = self._spatial_axes
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _ForwardConv(_Conv):
    """Conv1d and Conv2d: torch's signature, and a forward that pads as ``padding_mode`` says and
    calls the class's convolution function, ``F.<_function>``."""

    _function = ""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         padding_mode=padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        convolution = getattr(F, self._function)
        return convolution(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_ForwardConv):
    """1-D convolution of (N, C, L) input; weight of shape (out_channels, in_channels/groups, k)."""

    _spatial_axes = 1
    _function = "conv1d"


class Conv2d(_ForwardConv):
    """2-D convolution of NCHW input; weight of shape (out_channels, in_channels/groups, kH, kW)."""

    _function = "conv2d"


class ConvTranspose2d(_Conv):
    """Transposed 2-D convolution (the gradient of Conv2d with respect to its input, used to
    upsample); weight of shape (in_channels, out_channels/groups, kH, kW), as torch."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         output_padding, padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


# ---- pooling and reshaping ------------------------------------------------------------------------


class MaxPool2d(Module):
    """Max over sliding windows (``F.max_pool2d``); with ``return_indices`` the forward returns
    (values, indices), the indices as torch's: ``row * W + col`` in each input plane."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        for name, value in (("kernel_size", kernel_size), ("padding", padding), ("dilation", dilation)):
            pair(value, name, "MaxPool2d")  # refused when built, kept as written for the printout
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = default_stride(stride, kernel_size)
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, x: Tensor):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling (``F.avg_pool2d``); by default zero padding counts towards the average
    (``count_include_pad=True``), as in torch."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        for name, value in (("kernel_size", kernel_size), ("padding", padding)):
            pair(value, name, "AvgPool2d")
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = default_stride(stride, kernel_size)
        self.ceil_mode, self.count_include_pad, self.divisor_override = bool(ceil_mode), bool(count_include_pad), divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` whatever the input's (an int, or a pair whose
    None keeps that side): the window sizes follow from the input."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed ``output_size``; with ``return_indices`` as MaxPool2d."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, bool(return_indices)

    def forward(self, x: Tensor):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Upsample(Module):
    """Resize the spatial axes (``F.interpolate``) to ``size`` or by ``scale_factor``."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        shown = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{shown}, mode={self.mode!r}"


class Flatten(Module):
    """Merge the dimensions start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---- activations and dropout --------------------------------------------------------------------------


class ReLU(Module):
    """``inplace`` is accepted for torch's signature: the result is a new tensor either way."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)  # accepted for torch's signature; the result is a new tensor
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Dropout(Module):
    """In training mode zero each element with probability p and scale the rest by 1/(1-p); in
    evaluation mode pass the input through."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be between 0 and 1, got {p}")
        self.p = p
        self.inplace = bool(inplace)  # accepted for torch's signature; the result is a new tensor

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Module):
    """In training mode zero whole channels with probability p (``F.dropout2d``) and scale the rest
    by 1/(1-p); in evaluation mode pass the input through."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout2d: p must be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Identity(Module):
    """Returns its input: a placeholder where a layer is optional (``model.fc = nn.Identity()``)."""

    def __init__(self, *args, **kwargs):  # any arguments are accepted and ignored, as torch does
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class GELU(Module):
    """x * Phi(x) (``F.gelu``); ``approximate="tanh"`` for the tanh formula."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)  # accepted for torch's signature; the result is a new tensor

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = float(alpha)
        self.inplace = bool(inplace)  # accepted for torch's signature; the result is a new tensor

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softmax(Module):
    """softmax along ``dim`` (the last axis when None)."""

    def __init__(self, dim: int = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along ``dim`` (the last axis when None)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


# ---- embedding --------------------------------------------------------------------------------------------


class Embedding(Module):
    """A lookup table: integer indices of any shape -> rows of ``weight`` (num_embeddings,
    embedding_dim), initialised from N(0, 1). The row ``padding_idx`` starts at zero and gets no
    gradient, so it stays what it is."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int = None, dtype=np.float32):
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for {num_embeddings} embeddings")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        self.reset_parameters()

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int = None) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (num_embeddings, embedding_dim), as torch's;
        ``freeze`` keeps it out of training (requires_grad False)."""
        rows = np.array(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if rows.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, dim), got shape {rows.shape}")
        layer = cls(*rows.shape, padding_idx=padding_idx, dtype=rows.dtype)
        with no_grad():
            layer.weight.copy_(rows)
        layer.weight.requires_grad_(not freeze)
        return layer

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"


# ---- layer and group normalisation --------------------------------------------------------------------------


class LayerNorm(Module):
    """Standardise each sample over its last axes (``normalized_shape``), then scale and shift
    elementwise by ``weight`` and ``bias`` of that shape (``F.layer_norm``)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        self.normalized_shape = ints(shape, len(shape), "normalized_shape", "LayerNorm")
        self.eps, self.elementwise_affine = float(eps), elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Standardise each group of ``num_channels // num_groups`` channels of each sample, then scale
    and shift per channel (``F.group_norm``)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, float(eps), affine
        self.weight = Parameter(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype)) if affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"


# ---- batch normalisation ----------------------------------------------------------------------------


class _BatchNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1).

    In training mode mean and var are the batch's (var biased, dividing by n), and the running
    estimates move towards them: running = (1 - momentum) * running + momentum * batch, with the
    *unbiased* batch variance (dividing by n - 1), as torch does. With ``momentum=None`` the running
    estimates are cumulative averages. In evaluation mode the running estimates are used.
    """

    _expected_ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float32, *, bias: bool = True):
        super().__init__()
        # Python floats: a NumPy float64 constant would silently turn float32 activations into float64
        self.num_features, self.eps = num_features, float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = affine, track_running_stats
        # bias=False (torch >= 2.6) keeps the scale and drops the shift
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim not in self._expected_ndims:
            raise ValueError(f"{name}: expected a {' or '.join(f'{n}-D' for n in self._expected_ndims)} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {x.shape[1]} channels (shape {x.shape}), expected {self.num_features}")
        axes = (0, *range(2, x.ndim))  # every axis but the channels
        channel_shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        use_batch_stats = self.training or self.running_mean is None
        if use_batch_stats:
            count = x.numel() // self.num_features
            if count <= 1:
                raise ValueError(f"{name}: expected more than 1 value per channel in training mode, got input of shape {x.shape}")
            mean = x.mean(axis=axes, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=axes, keepdims=True)  # biased: divides by count
            if self.training and self.track_running_stats:
                if transforming():  # f runs once per column or row: the statistics would move each time
                    raise RuntimeError(
                        f"{name}: a function transform (tinygrad_cnn.func) would update the running statistics "
                        "once per internal pass; call .eval() on the model first, or build the layer with "
                        "track_running_stats=False (torch.func refuses this too)")
                self._update_running_stats(mean.data.reshape(-1), var.data.reshape(-1) * (count / (count - 1)))
        else:
            # detached, not .data: a buffer given per sample (functional_call inside vmap) is batched
            centered = x - self.running_mean.detach().reshape(channel_shape)
            var = self.running_var.detach().reshape(channel_shape)
        out = centered / (var + self.eps).sqrt()
        if self.weight is not None:
            out = out * self.weight.reshape(channel_shape)
        if self.bias is not None:
            out = out + self.bias.reshape(channel_shape)
        return out

    def _update_running_stats(self, batch_mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        with no_grad():
            self.num_batches_tracked.add_(1)
            momentum = 1 / int(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - momentum).add_(batch_mean.astype(self.running_mean.dtype) * momentum)
            self.running_var.mul_(1 - momentum).add_(unbiased_var.astype(self.running_var.dtype) * momentum)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C."""

    _expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C."""

    _expected_ndims = (4,)


# ---- more activations, as modules over nn.functional --------------------------------------------------------


class _Activation(Module):
    """A module that calls ``F.<function>`` with the hyperparameters it was built with (named in
    ``_arguments``, shown in the printout). ``inplace`` is accepted for torch's signature: the
    result is a new tensor either way."""

    _function = None
    _arguments = ()

    def __init__(self, *args, inplace: bool = False, **kwargs):
        super().__init__()
        names = [name for name, _ in self._arguments]
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}: takes at most {len(names)} arguments ({', '.join(names)}), got {len(args)}")
        values = dict(self._arguments)
        values.update(zip(names, args))
        for key, value in kwargs.items():
            if key not in values:
                raise TypeError(f"{type(self).__name__}: unexpected argument {key!r}; it takes {', '.join(names) or 'none'}")
            values[key] = value
        for key, value in values.items():
            setattr(self, key, value)
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._function(x, *(getattr(self, name) for name, _ in self._arguments))

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name, _ in self._arguments)


class Softplus(_Activation):
    _function, _arguments = F.softplus, (("beta", 1.0), ("threshold", 20.0))


class Hardtanh(_Activation):
    _function, _arguments = F.hardtanh, (("min_val", -1.0), ("max_val", 1.0))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.min_val > self.max_val:
            raise ValueError(f"Hardtanh: min_val ({self.min_val}) must not be greater than max_val ({self.max_val})")


class ReLU6(_Activation):
    _function = F.relu6


class LogSigmoid(_Activation):
    _function = F.logsigmoid


class Softmin(_Activation):
    _function, _arguments = F.softmin, (("dim", None),)


class Softsign(_Activation):
    _function = F.softsign


class Tanhshrink(_Activation):
    _function = F.tanhshrink


class Threshold(_Activation):
    _function, _arguments = F.threshold, (("threshold", 0.0), ("value", 0.0))

    def __init__(self, threshold, value, inplace: bool = False):  # both required, as torch
        super().__init__(threshold, value, inplace=inplace)


class SELU(_Activation):
    _function = F.selu


class CELU(_Activation):
    _function, _arguments = F.celu, (("alpha", 1.0),)


class GLU(_Activation):
    _function, _arguments = F.glu, (("dim", -1),)


class Mish(_Activation):
    _function = F.mish


class Hardswish(_Activation):
    _function = F.hardswish


class Hardsigmoid(_Activation):
    _function = F.hardsigmoid


class PReLU(Module):
    """x where x > 0, else a * x, with the slope ``a`` learnt: one shared (``num_parameters=1``) or
    one per channel, each starting at ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        check_positive(ints(num_parameters, 1, "num_parameters", "PReLU"), "num_parameters", "PReLU")
        self.num_parameters = int(num_parameters)
        self.weight = Parameter(Tensor(np.full(self.num_parameters, init, dtype=dtype or np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class CosineSimilarity(Module):
    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


# ---- more reshaping, padding and 1-D pooling ----------------------------------------------------------------


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``: (N, 12) -> (N, 3, 4) with (1, (3, 4))."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim
        return x.reshape(*x.shape[:dim], *self.unflattened_size, *x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class ZeroPad2d(Module):
    """Pad the last two dimensions with zeros: an int for all four sides, or (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__()
        self.padding = ints(padding, 4, "padding", "ZeroPad2d")

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.padding, "constant", 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class MaxPool1d(Module):
    """Max over windows sliding along the last dimension (``F.max_pool1d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        for name, value in (("kernel_size", kernel_size), ("padding", padding), ("dilation", dilation)):
            ints(value, 1, name, "MaxPool1d")
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = default_stride(stride, kernel_size)
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, x: Tensor):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool1d(Module):
    """Mean over windows sliding along the last dimension (``F.avg_pool1d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        # kept as one-element tuples, as torch's printout shows them
        self.kernel_size, self.padding = ints(kernel_size, 1, "kernel_size", "AvgPool1d"), ints(padding, 1, "padding", "AvgPool1d")
        self.stride = ints(default_stride(stride, kernel_size), 1, "stride", "AvgPool1d")
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(Module):
    """Average pooling of the last dimension to ``output_size`` values, whatever its length."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool1d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
