"""The machinery under ``func.vmap``: batched tensors, and the dispatch of each primitive to its
batching rule.

``vmap(f)(x)`` runs ``f`` once, on a ``BatchedTensor``: a tensor that *looks* like one sample
(its ``shape`` leaves the batch dimension out) while it *holds* the whole batch, a physical
tensor with the batch dimension at ``bdim``. When ``f`` applies a primitive to batched tensors,
``Function.apply`` hands the op to ``dispatch``, which calls the primitive's batching rule
(``vmap(info, in_dims, *args)``, next to its ``backward`` and ``jvp`` in ``ops/``) with the
physical tensors, their batch dimensions moved to the front (``in_dims`` says which carry one),
and wraps the rule's result again. A rule computes the op for every sample at once with ordinary
ops on the physical tensors: a convolution folds the batch into its own samples, or into groups
when the weights are batched; a reduction shifts its axes by one. Nothing loops over samples,
except for an op without a rule (a user's ``Function``), which runs once per sample and warns once.

Levels. Each ``vmap`` opens a level; a tensor batched by two nested vmaps is a BatchedTensor
(level 2) whose physical tensor is itself a BatchedTensor (level 1). ``dispatch`` unwraps the
innermost level among the op's arguments; the rule's own ops, on the unwrapped tensors, dispatch
the outer levels in turn.

Derivatives. Rules are written with Tensor ops on physical tensors, so what a rule computes is
recorded like any computation: ``grad(vmap(f))`` differentiates the physical graph. A transform
used *inside* ``vmap`` (``vmap(grad(f))``, per-sample gradients) is lowered to the physical
tensors by ``func``: its inputs are given every active batch dimension (``to_canonical``), it
differentiates the physical computation, whose samples never mix, and its results are wrapped
back (``from_canonical``).

Values. Code that reads a tensor's NumPy values (``.data``, ``.item()``) cannot run on a batched
tensor, and says so. The library's own such code goes through helpers that handle a batch:
``values`` (comparisons, argmax, sorting: all samples in one NumPy call), ``per_sample`` (constants
a loss builds from class labels), ``physical_values`` (checks that hold value by value), ``getitem``
(an index tensor per sample), ``draw`` (random numbers, as vmap's ``randomness`` says) and, for a
composite that must see each sample's values to decide what to compute (an adaptive max-pool's
windows, a scatter's last writes), ``loop_over_batch``, which loops and says so once.
"""
from __future__ import annotations

import contextvars
import itertools
import warnings
from dataclasses import dataclass

import numpy as np

from .modes import _vmap_depth
from .ops.batching import broadcast_operands, materialize, move_to_front, rank_of, shift_axis
from .ops.batching import pad_rank as pad_rank_after_batch
from .tensor_class import Tensor, check_axis

_LEVELS = contextvars.ContextVar("tinygrad_cnn vmap levels", default=())  # ((level, batch size, randomness), ...)
_NEW_LEVEL = itertools.count(1)


@dataclass(frozen=True)
class BatchInfo:
    """What a batching rule is told besides its arguments (torch's ``info``)."""

    batch_size: int
    randomness: str


def active_levels() -> tuple:
    """The open vmap levels of this thread, outermost first: ``(level, batch size, randomness)``."""
    return _LEVELS.get()


class open_level:
    """A vmap level for the ``with`` block: tensors wrapped at it are batched along ``batch_size``."""

    def __init__(self, batch_size: int, randomness: str):
        self.batch_size, self.randomness = batch_size, randomness

    def __enter__(self) -> int:
        self.level = next(_NEW_LEVEL)
        self._tokens = (_LEVELS.set(_LEVELS.get() + ((self.level, self.batch_size, self.randomness),)),
                        _vmap_depth.set(_vmap_depth.get() + 1))
        return self.level

    def __exit__(self, *exc) -> bool:
        _vmap_depth.reset(self._tokens[1])
        _LEVELS.reset(self._tokens[0])
        return False


_DRAWS_SKIP = contextvars.ContextVar("tinygrad_cnn vmap levels random draws skip", default=0)


class draws_from_new_levels:
    """Random draws in the ``with`` block see only the vmap levels opened inside it: for code that
    maps physical tensors by a vmap of its own (a checkpoint inside vmap), whose samples are
    already the enclosing levels' samples. Ops still see every level (a tangent may be batched by
    an enclosing transform)."""

    def __enter__(self):
        self._token = _DRAWS_SKIP.set(len(_LEVELS.get()))

    def __exit__(self, *exc) -> bool:
        _DRAWS_SKIP.reset(self._token)
        return False


_ESCAPED = ("vmap: a tensor from inside a vmap that has returned was used (kept in a variable or a closure); "
            "return what you need from the function vmap maps, or pass it in as an argument")
CLOSED_OVER = ("vmap: a function checkpointed inside vmap uses a batched tensor it does not receive (a closure); "
               "pass that tensor to checkpoint as an argument")


class outside_levels:
    """No vmap level open for the ``with`` block: for code that works on physical tensors only (a
    checkpoint's recomputation), so that a transform it calls does not take them for samples."""

    def __enter__(self):
        self._tokens = (_LEVELS.set(()), _vmap_depth.set(0))

    def __exit__(self, *exc) -> bool:
        _vmap_depth.reset(self._tokens[1])
        _LEVELS.reset(self._tokens[0])
        return False


# ---- the batched tensor ---------------------------------------------------------------------------


class BatchedTensor(Tensor):
    """One sample's view of a batch: ``value`` is the physical tensor, batched along ``bdim`` at vmap
    level ``level``; ``shape``, ``ndim`` and ``size()`` are one sample's."""

    __slots__ = ("value", "bdim", "level")

    def __init__(self, value: Tensor, bdim: int, level: int):
        self.value, self.bdim, self.level = value, bdim % value.ndim, level
        self.grad = self.name = None
        self._hooks = self._tangents = self._post_accumulate_hooks = None
        self._version_counter = value._version_counter

    @property
    def data(self):
        if all(level != self.level for level, _, _ in _LEVELS.get()):
            raise RuntimeError(_ESCAPED)
        raise RuntimeError(
            "vmap: this code reads a tensor's NumPy values (.data, .item(), .numpy(), a Python bool or "
            "number), but inside vmap a tensor holds a whole batch of them. Write the function with tensor "
            "operations, or read the values outside vmap."
        )

    @property
    def requires_grad(self) -> bool:
        return self.value.requires_grad

    @property
    def grad_fn(self):
        """The node that made the physical tensor: the graph is recorded on the whole batch."""
        return self.value.grad_fn

    @requires_grad.setter
    def requires_grad(self, value) -> None:
        raise RuntimeError("vmap: requires_grad cannot be set on a tensor inside vmap; use func.grad or func.vjp there")

    @property
    def shape(self) -> tuple:
        shape = self.value.shape
        return shape[: self.bdim] + shape[self.bdim + 1:]

    @property
    def ndim(self) -> int:
        return self.value.ndim - 1

    @property
    def dtype(self):
        return self.value.dtype

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[check_axis("size", dim, self.ndim)]

    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def dim(self) -> int:
        return self.ndim

    ndimension = dim

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def element_size(self) -> int:
        return self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def backward(self, *args, **kwargs):
        raise RuntimeError("vmap: backward() cannot run inside vmap (it would add up the samples' gradients); "
                           "use tinygrad_cnn.func.grad or func.vjp inside vmap instead")

    def requires_grad_(self, requires_grad: bool = True):
        raise RuntimeError("vmap: requires_grad_() cannot be used inside vmap; use func.grad or func.vjp there")

    def detach(self) -> Tensor:
        return BatchedTensor(self.value.detach(), self.bdim, self.level)

    def clone(self) -> Tensor:
        return BatchedTensor(self.value.clone(), self.bdim, self.level)

    def register_hook(self, hook):
        """``hook`` sees one sample's gradient, as outside vmap: it is registered on the physical
        tensor (the one the backward pass visits), its gradient wrapped as batched at this level."""
        level, bdim = self.level, self.bdim

        def on_the_batch(grad):
            result = hook(BatchedTensor(grad, bdim, level))
            if result is None:
                return None
            value, dim = _unwrap(result, level)
            return materialize(value, dim, grad.shape[bdim]).movedim(0, bdim)

        return self.value.register_hook(on_the_batch)

    def _check_inplace(self, op: str, *values) -> None:
        # every in-place write (add_, +=, x[...] = v, fill_, copy_) asks this first
        raise RuntimeError(f"vmap: {op} is an in-place write into a tensor inside vmap, which is not supported; "
                           "write the out-of-place form (y = y + x, y = where(mask, v, y))")

    def __repr__(self) -> str:
        return f"BatchedTensor(level={self.level}, bdim={self.bdim}, value={self.value!r})"


def _unwrap(x, level: int):
    """(physical tensor, batch dimension) of ``x`` at ``level``; (x, None) if it is not batched there."""
    if isinstance(x, BatchedTensor) and x.level == level:
        return x.value, x.bdim
    return x, None


# ---- dispatch ---------------------------------------------------------------------------------------

_WARNED = set()
# Set by testing.check_batching_rule: an op without a rule is an error there, not a slow loop.
_FALLBACK_REFUSED = contextvars.ContextVar("tinygrad_cnn vmap loop fallback refused", default=False)


def dispatch(cls, args: tuple, kwargs: dict):
    """Apply primitive ``cls`` to arguments some of which are batched: unwrap the innermost level,
    run ``cls.vmap`` (or the loop fallback) on the physical tensors, wrap the result."""
    level = max(a.level for a in args if isinstance(a, BatchedTensor))
    open_levels = {lv: (n, r) for lv, n, r in _LEVELS.get()}
    if level not in open_levels:
        raise RuntimeError(_ESCAPED)
    batch_size, randomness = open_levels[level]
    unwrapped = [_unwrap(a, level) for a in args]
    physical = tuple(move_to_front(x, d) for x, d in unwrapped)
    in_dims = tuple(None if d is None else 0 for _, d in unwrapped)
    rule = getattr(cls, "vmap", None)
    info = BatchInfo(batch_size, randomness)
    if rule is None:
        if _FALLBACK_REFUSED.get():
            raise RuntimeError(f"vmap: {cls.__name__} has no batching rule (define vmap(info, in_dims, *args) on it)")
        output, out_dim = _loop_fallback(cls, info, in_dims, physical, kwargs)
    else:
        output, out_dim = rule(info, in_dims, *physical, **kwargs)
    if out_dim is None:
        return output
    return BatchedTensor(output, out_dim, level)


def _loop_fallback(cls, info, in_dims, args, kwargs):
    """Run the op once per sample and stack the results: correct for any op, but a Python loop."""
    _warn_once(cls.__name__, f"{cls.__name__} has no batching rule, so vmap runs it once per sample in a Python "
                             f"loop (slow); define vmap(info, in_dims, *args) on {cls.__name__} to batch it")
    results = [cls.apply(*[a[b] if d is not None else a for a, d in zip(args, in_dims)], **kwargs)
               for b in range(info.batch_size)]
    return _stacked(results), 0


def _warn_once(name: str, message: str) -> None:
    if name not in _WARNED:
        _WARNED.add(name)
        warnings.warn(f"vmap: {message}", RuntimeWarning, stacklevel=5)


def _stacked(results: list):
    """Per-sample results (Tensors, or tuples of them) stacked along a new first dimension."""
    from .tensor_class import stack

    if isinstance(results[0], Tensor):
        return stack(results, 0)
    return type(results[0])(*(stack([r[k] for r in results], 0) for k in range(len(results[0]))))


def loop_over_batch(fn, *args, what: str):
    """``fn(*args)`` one sample at a time, for library code that needs each sample's values to
    decide what to compute (a scatter's last writes, an adaptive max-pool's windows): the loop
    fallback for a composite op, warning once naming ``what``. Results are Tensors (or a tuple)."""
    level = max(a.level for a in args if isinstance(a, BatchedTensor))
    batch_size = next(n for lv, n, _ in _LEVELS.get() if lv == level)
    _warn_once(what, f"{what} has no batching rule, so vmap runs it once per sample in a Python loop (slow)")
    unwrapped = [_unwrap(a, level) for a in args]
    results = [fn(*[v.select(d, b) if d is not None else v for v, d in unwrapped]) for b in range(batch_size)]
    stacked = _stacked(results)
    if isinstance(stacked, Tensor):
        return BatchedTensor(stacked, 0, level)
    return type(stacked)(*(BatchedTensor(t, 0, level) for t in stacked))


def getitem(x: Tensor, index):
    """``x[index]`` inside vmap, where the index may hold tensors of indices per sample. An index
    made only of integer tensors and arrays (``x[i]``, an embedding's rows, ``x[i, j]``) is one
    advanced index over the whole batch: each sample's indices lined up after the batch dimension,
    and ``arange(B)`` in front when ``x`` is batched too. Other indices with per-sample tensors run
    once per sample."""
    from .ops.movement import GetItem
    from .tensor_class import _normalize_index

    parts = index if isinstance(index, tuple) else (index,)
    batched = [p for p in parts if isinstance(p, BatchedTensor)]
    if not batched:
        return GetItem.apply(x, _normalize_index(index))
    if any(p.dtype == bool for p in batched):
        raise RuntimeError("vmap: indexing with a boolean mask that differs per sample would give each sample a "
                           "different shape; use where(mask, x, 0) or masked_fill instead")
    if all(isinstance(p, (Tensor, np.ndarray)) and p.dtype.kind in "iu" for p in parts):
        level = max(t.level for t in (x, *batched) if isinstance(t, BatchedTensor))
        batch_size = next(n for lv, n, _ in _LEVELS.get() if lv == level)
        x_value, x_dim = _unwrap(x, level)
        unwrapped = [_unwrap(p, level) for p in parts]
        rank = max(rank_of(v, d) for v, d in unwrapped)
        physical = [pad_rank_after_batch(move_to_front(v, d), rank) if d is not None else v for v, d in unwrapped]
        if x_dim is not None:
            samples = np.arange(batch_size).reshape(batch_size, *(1,) * rank)
            return BatchedTensor(move_to_front(x_value, x_dim)[(samples, *physical)], 0, level)
        return BatchedTensor(x_value[tuple(physical)], 0, level)
    return loop_over_batch(lambda x, *ps: x[ps if isinstance(index, tuple) else ps[0]], x, *parts, what="indexing")


# ---- transforms inside vmap: the physical view --------------------------------------------------------


def to_canonical(x, levels=None) -> Tensor:
    """The physical tensor of ``x`` with one batch dimension per active level, outermost first:
    shape (B1, ..., Bk) + one sample's shape. A level ``x`` is not batched at is added by
    repetition (a broadcast view).

    The innermost level is peeled first and its batch dimension put in front; what is left is a
    tensor of the outer levels, whose own batch dimensions then go in front of it, one by one."""
    levels = active_levels() if levels is None else levels
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    for level, batch_size, _ in reversed(levels):
        value, bdim = _unwrap(x, level)
        x = materialize(value, bdim, batch_size)
    return x


def from_canonical(x: Tensor, levels=None) -> Tensor:
    """The inverse of ``to_canonical``: a physical (B1, ..., Bk, sample...) tensor wrapped as one
    sample at each active level."""
    levels = active_levels() if levels is None else levels
    for level, _, _ in levels:
        x = BatchedTensor(x, 0, level)
    return x


# ---- code that reads values ----------------------------------------------------------------------------


def is_batched(*xs) -> bool:
    return any(isinstance(x, BatchedTensor) for x in xs)


def values(fn, *operands, axis="elementwise", keepdims=False):
    """``fn`` of the operands' NumPy values, as a Tensor outside the graph (comparisons, argmax, masks).

    ``axis="elementwise"``: ``fn`` broadcasts its operands (``np.less``); else ``fn(array, axis=...,
    keepdims=...)`` reduces one operand along a sample's ``axis``. Batched operands are handled
    level by level, all samples in one NumPy call."""
    batched = [o for o in operands if isinstance(o, BatchedTensor)]
    if not batched:
        arrays = [o.data if isinstance(o, Tensor) else o for o in operands]
        if axis == "elementwise":
            return Tensor(np.asarray(fn(*arrays)))
        return Tensor(np.asarray(fn(arrays[0], axis=axis, keepdims=keepdims)))
    level = max(o.level for o in batched)
    unwrapped = [_unwrap(o, level) for o in operands]
    physical = [move_to_front(x, d) for x, d in unwrapped]
    dims = [None if d is None else 0 for _, d in unwrapped]
    if axis == "elementwise":
        physical = broadcast_operands(dims, physical, range(len(physical)))
        result = values(fn, *physical, axis="elementwise")
    else:
        x = physical[0]  # the operand reduced: batched, its batch dimension first
        if axis is None:  # over all of a sample's values: one row per sample (argmax takes no tuple of axes)
            result = values(fn, x.reshape(x.shape[0], -1), axis=1)
            if keepdims:
                result = result.reshape(x.shape[0], *(1,) * (x.ndim - 1))
        else:
            result = values(fn, x, axis=shift_axis(axis, rank_of(x, 0)), keepdims=keepdims)
    return BatchedTensor(result, 0, level)


def constant(x: Tensor):
    """A value computed outside the graph, as the graph should show it: a NumPy array (a Python
    number when it has one element), or inside vmap the batched tensor itself."""
    if isinstance(x, BatchedTensor):
        return x
    return x.data.item() if x.data.ndim == 0 else x.data


def physical_values(x) -> np.ndarray:
    """The values of every sample of ``x``, as one array (batch dimensions first): for checks that
    hold for each value alone (an index in range, a probability in [0, 1])."""
    return to_canonical(x).data


def per_sample(fn, *tensors):
    """``fn`` of one sample's NumPy values (the tensors' arrays), as Tensors: for library code that
    builds constants from values with NumPy (a loss's coefficients from class labels). Inside vmap,
    ``fn`` runs for each sample of the batched tensors and its results are stacked and batched like
    them. ``fn`` returns an array or a tuple of arrays; so does this, as Tensors."""
    if not is_batched(*tensors):
        return _as_tensors(fn(*[t.data if isinstance(t, Tensor) else t for t in tensors]))
    levels = active_levels()
    physical = [to_canonical(t, levels).data if isinstance(t, Tensor) else t for t in tensors]
    batch_shape = tuple(n for _, n, _ in levels)
    results = []
    for index in np.ndindex(batch_shape):
        result = fn(*[p[index] if isinstance(t, Tensor) else p for p, t in zip(physical, tensors)])
        results.append(result if isinstance(result, tuple) else (result,))
    stacked = tuple(from_canonical(Tensor(np.stack([np.asarray(r[k]) for r in results]).reshape(
        batch_shape + np.shape(results[0][k]))), levels) for k in range(len(results[0])))
    return stacked if isinstance(result, tuple) else stacked[0]


def _as_tensors(result):
    if isinstance(result, tuple):
        return tuple(Tensor(np.asarray(r)) for r in result)
    return Tensor(np.asarray(result))


def draw(sample, shape, what: str) -> np.ndarray | Tensor:
    """Random values ``sample(shape)`` for one sample; inside vmap, what ``randomness`` asks for:
    ``"error"`` (the default, as torch) refuses, ``"same"`` draws one sample's values for the whole
    batch, ``"different"`` draws for every sample."""
    levels = active_levels()[_DRAWS_SKIP.get():]
    if not levels:
        return sample(shape)
    modes = {r for _, _, r in levels}
    if "error" in modes:
        raise RuntimeError(f"vmap: {what} draws random numbers; pass randomness='different' (each sample its own) "
                           "or randomness='same' (one draw for the batch) to vmap")
    different = tuple(lv for lv in levels if lv[2] == "different")
    if not different:
        return sample(shape)
    batch_shape = tuple(n for _, n, _ in different)
    return from_canonical(Tensor(sample(batch_shape + tuple(shape))), different)
