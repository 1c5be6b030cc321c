"""Hypothesis strategies for testing ops: tensors, shapes, and inputs that keep gradients well defined.

A numerical gradient check is only meaningful where the function is differentiable, so besides
plain ``tensors`` this module draws values that stay away from kinks (``away_from_kinks``: relu
and abs at 0, clip at its bounds) and arrays without ties (``distinct_values``: max, max-pooling,
maximum/minimum), and hyperparameters that make a valid convolution or pooling together with
the input shapes they fit (``conv2d_configs``, ``pool2d_configs``).

Hypothesis is an optional dependency: ``pip install tinygrad_cnn[testing]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - exercised only without hypothesis
    raise ImportError(
        "tinygrad_cnn.testing.strategies needs Hypothesis: pip install tinygrad_cnn[testing] "
        "(gradcheck, gradgradcheck and check_gradients work without it)"
    ) from error

from ..tensor_class import Tensor

__all__ = [
    "Conv2dConfig", "Pool2dConfig", "arrays", "away_from_kinks", "broadcastable_shapes", "conv2d_configs",
    "distinct_values", "pool2d_configs", "shapes", "tensors",
]

# Small by default: a gradient check costs two evaluations of the function per input element.
MAX_DIMS = 3
MAX_SIDE = 3


def shapes(min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1, max_side: int = MAX_SIDE):
    """Array shapes; size-1 dimensions come up often, which is where broadcasting bugs hide."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1,
                         max_side: int = MAX_SIDE, signature=None):
    """``num_shapes`` shapes that broadcast together, as ``(input_shapes, result_shape)``.

    A thin wrapper of ``hypothesis.extra.numpy.mutually_broadcastable_shapes``; pass a gufunc
    ``signature`` (e.g. ``np.matmul.signature``) to draw core dimensions too.
    """
    if signature is not None:
        return hnp.mutually_broadcastable_shapes(
            signature=signature, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
        )
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def _shape_strategy(shape):
    if shape is None:
        return shapes()
    if isinstance(shape, st.SearchStrategy):
        return shape
    return st.just(tuple(shape))


def _floats(low: float, high: float):
    # no subnormals: nudging 1e-310 by eps is not what a gradient check is about
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape=None, elements=None, dtype=np.float64):
    """NumPy arrays of ``dtype``; values in [-3, 3] unless ``elements`` says otherwise.

    Values are drawn in float64 and then cast, so a float32 array holds the nearest float32 values.
    """
    elements = _floats(-3.0, 3.0) if elements is None else elements
    return _shape_strategy(shape).flatmap(
        lambda s: hnp.arrays(np.float64, s, elements=elements).map(lambda a: a.astype(dtype))
    )


def tensors(shape=None, dtype=np.float64, elements=None, requires_grad: bool = True):
    """Tensors of ``shape`` (a tuple, a strategy of tuples, or None to draw a small one)."""
    return arrays(shape, elements, dtype).map(lambda a: Tensor(a, requires_grad=requires_grad))


def away_from_kinks(shape=None, kinks=(0.0,), margin: float = 0.1, low: float = -3.0, high: float = 3.0,
                    dtype=np.float64, requires_grad: bool = True):
    """Tensors with every value in [low, high] and at least ``margin`` from each point of ``kinks``.

    For relu, abs, leaky_relu (kink at 0) and clip (kinks at its bounds): there the function is
    not differentiable and a central difference straddling the kink means nothing.
    """
    return tensors(shape, dtype, _away_from(kinks, margin, low, high), requires_grad)


def _away_from(kinks, margin, low, high):
    """Floats in [low, high] outside every interval (k - margin, k + margin), one interval at a time."""
    edges = [low]
    for k in sorted(kinks):
        edges += [k - margin, k + margin]
    edges.append(high)
    pieces = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if a <= b]
    if not pieces:
        raise ValueError(f"no room in [{low}, {high}] at distance {margin} from {kinks}")
    # the filter only trims the interval ends, where k + margin rounds to a hair under margin
    return st.one_of(*[_floats(a, b) for a, b in pieces]).filter(lambda v: all(abs(v - k) >= margin for k in kinks))


def distinct_values(*shapes_, spacing: float = 0.25, dtype=np.float64, requires_grad: bool = True):
    """Tensors without ties: a random permutation of values ``spacing`` apart, shifted and scaled.

    With one shape (or none, to draw one) this is a strategy of one Tensor; with several shapes it
    draws a tuple of Tensors whose values are distinct *jointly*, for ``maximum(x, y)`` with
    broadcasting. Ties are where max, max-pooling and maximum are not differentiable.
    """
    shape_strategies = [_shape_strategy(s) for s in shapes_] or [shapes()]

    @st.composite
    def draw(draw_):
        drawn = [draw_(s) for s in shape_strategies]
        sizes = [int(np.prod(s)) for s in drawn]
        order = np.array(draw_(st.permutations(range(sum(sizes)))), dtype=np.float64)
        scale = draw_(st.sampled_from([1.0, -1.0])) * spacing
        values = (order - sum(sizes) / 2) * scale + draw_(_floats(-1.0, 1.0))
        pieces = np.split(values, np.cumsum(sizes)[:-1])
        result = tuple(Tensor(p.reshape(s).astype(dtype), requires_grad=requires_grad) for p, s in zip(pieces, drawn))
        return result[0] if len(shapes_) <= 1 else result

    return draw()


# ---- sliding-window hyperparameters ---------------------------------------------------------------


@dataclass(frozen=True)
class Conv2dConfig:
    """A valid ``conv2d`` call: shapes of input, weight and bias (None for no bias), and keyword
    arguments exactly as the caller writes them (an int or a pair for stride, padding, dilation)."""

    input_shape: tuple
    weight_shape: tuple
    bias_shape: tuple | None
    stride: int | tuple
    padding: int | tuple
    dilation: int | tuple
    groups: int

    @property
    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)


@dataclass(frozen=True)
class Pool2dConfig:
    """A valid pooling call: the input shape and the keyword arguments (``stride`` may be None,
    meaning the kernel size; ``dilation`` is only drawn when asked for, since avg_pool2d has none)."""

    input_shape: tuple
    kernel_size: int | tuple
    stride: int | tuple | None
    padding: int | tuple
    dilation: int | tuple | None = None

    @property
    def kwargs(self) -> dict:
        kwargs = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        if self.dilation is not None:
            kwargs["dilation"] = self.dilation
        return kwargs


def _as_written(draw, pair):
    """A (height, width) pair as a caller may write it: the int alone when both agree, sometimes."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return pair[0]
    return tuple(pair)


def _input_side(draw, reach: int, padding: int, max_extra: int) -> int:
    """An input size the window fits into once padded: at least ``reach - 2 * padding``."""
    return draw(st.integers(max(1, reach - 2 * padding), max(1, reach - 2 * padding) + max_extra))


@st.composite
def conv2d_configs(draw, max_batch: int = 2, max_group_channels: int = 2, max_groups: int = 3, max_kernel: int = 3,
                   max_stride: int = 3, max_padding: int = 2, max_dilation: int = 2, max_extra_size: int = 3):
    """Valid conv2d hyperparameters with matching input and weight shapes (non-square kernels,
    strides, paddings and dilations, groups, with and without bias)."""
    groups = draw(st.integers(1, max_groups))
    in_channels = groups * draw(st.integers(1, max_group_channels))
    out_channels = groups * draw(st.integers(1, max_group_channels))
    kernel = [draw(st.integers(1, max_kernel)) for _ in range(2)]
    stride = [draw(st.integers(1, max_stride)) for _ in range(2)]
    padding = [draw(st.integers(0, max_padding)) for _ in range(2)]
    dilation = [draw(st.integers(1, max_dilation)) for _ in range(2)]
    size = [_input_side(draw, d * (k - 1) + 1, p, max_extra_size) for k, p, d in zip(kernel, padding, dilation)]
    batch = draw(st.integers(1, max_batch))
    return Conv2dConfig(
        input_shape=(batch, in_channels, *size),
        weight_shape=(out_channels, in_channels // groups, *kernel),
        bias_shape=(out_channels,) if draw(st.booleans()) else None,
        stride=_as_written(draw, stride),
        padding=_as_written(draw, padding),
        dilation=_as_written(draw, dilation),
        groups=groups,
    )


def _every_window_sees_input(size: int, kernel: int, stride: int, padding: int, dilation: int) -> bool:
    """False when some window holds only padding (possible with dilation), where max is -inf."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return all(
        any(0 <= o * stride - padding + dilation * i < size for i in range(kernel)) for o in range(out)
    )


@st.composite
def pool2d_configs(draw, dilation: bool = False, max_batch: int = 2, max_channels: int = 2, max_kernel: int = 3,
                   max_stride: int = 3, max_dilation: int = 2, max_extra_size: int = 3):
    """Valid pooling hyperparameters with a matching input shape: padding at most kernel // 2, the
    kernel fits the padded input, and (with ``dilation=True``) every window holds an input element."""
    kernel = [draw(st.integers(1, max_kernel)) for _ in range(2)]
    padding = [draw(st.integers(0, k // 2)) for k in kernel]
    stride = [draw(st.integers(1, max_stride)) for _ in range(2)]
    dil = [draw(st.integers(1, max_dilation)) for _ in range(2)] if dilation else [1, 1]
    size = [_input_side(draw, d * (k - 1) + 1, p, max_extra_size) for k, p, d in zip(kernel, padding, dil)]
    if not all(_every_window_sees_input(*args) for args in zip(size, kernel, stride, padding, dil)):
        # an input at least as long as the window's reach cannot fall between two of its taps
        size = [n + d * (k - 1) for n, k, d in zip(size, kernel, dil)]
    stride_written = None if stride == kernel and draw(st.booleans()) else _as_written(draw, stride)
    return Pool2dConfig(
        input_shape=(draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), *size),
        kernel_size=_as_written(draw, kernel),
        stride=stride_written,
        padding=_as_written(draw, padding),
        dilation=_as_written(draw, dil) if dilation else None,
    )
