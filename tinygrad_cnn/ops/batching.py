"""Batching rules: how a primitive computes a whole batch of samples at once, for ``func.vmap``.

A primitive's rule is its ``vmap(info, in_dims, *args)`` (torch's signature): ``args`` are the
op's arguments with every batched tensor's batch dimension first, ``in_dims[i]`` is 0 for those
and None for the rest (constants, and tensors shared by all samples), ``info.batch_size`` is the
number of samples. It returns ``(output, out_dim)``: the physical output and where its batch
dimension is (None if it has none). Rules are written with Tensor ops, so they are differentiable
and nest (a physical tensor may itself be batched by an outer ``vmap``).

Most rules come from three ideas, shared here by the families of ops:

* **elementwise ops broadcast**: pad each batched operand with size-1 dimensions after the batch
  dimension up to the result's rank, and NumPy's right-aligned broadcasting lines up the samples'
  own dimensions while the batch dimension stays first (``elementwise``);
* **an axis of one sample is the next axis of the batch** (``reduction``, ``shift_axis``);
* **an op that already has a batch of its own takes ours into it**: a convolution or a pooling of
  N images runs on B·N images (``fold_into_samples``).

Ops that mix what is batched with what is not (a convolution whose weights differ per sample,
a matmul of a vector) have their own rules in their modules.
"""
import numpy as np


def move_to_front(x, bdim):
    """``x`` with its batch dimension ``bdim`` first."""
    if bdim is None or bdim == 0:
        return x
    order = (bdim,) + tuple(i for i in range(x.ndim) if i != bdim)
    return x.permute(*order)


def materialize(x, bdim, batch_size: int):
    """``x`` with a batch dimension first: moved there, or, when ``x`` has none, ``x`` repeated
    ``batch_size`` times (a broadcast view of a Tensor, no copy; an array stays an array)."""
    if bdim is not None:
        return move_to_front(x, bdim)
    if isinstance(x, np.ndarray) or np.isscalar(x):
        x = np.asarray(x)
        return np.broadcast_to(x, (batch_size,) + x.shape)
    return x.unsqueeze(0).expand(batch_size, *x.shape)


def rank_of(x, bdim) -> int:
    """How many dimensions one sample of ``x`` has."""
    return np.ndim(x) if not hasattr(x, "ndim") else x.ndim - (bdim is not None)


def pad_rank(x, rank: int):
    """A batch-first ``x`` with size-1 dimensions after the batch dimension, so that one sample has
    ``rank`` dimensions."""
    missing = rank - (x.ndim - 1)
    if missing <= 0:
        return x
    return x.reshape(x.shape[0], *(1,) * missing, *x.shape[1:])


def is_operand(x) -> bool:
    return hasattr(x, "ndim") and not isinstance(x, (np.dtype, type))


def broadcast_operands(in_dims, args, positions):
    """``args`` with each batched operand at ``positions`` padded to the rank of the broadcast result."""
    rank = max((rank_of(args[i], in_dims[i]) for i in positions if is_operand(args[i])), default=0)
    out = list(args)
    for i in positions:
        if in_dims[i] is not None:
            out[i] = pad_rank(args[i], rank)
    return out


def shift_axis(axis, ndim: int):
    """One sample's axis (an int, a tuple, or None for all its axes) as an axis of the batch."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (tuple, list)):
        return tuple(int(a) % max(ndim, 1) + 1 for a in axis)
    return int(axis) % max(ndim, 1) + 1


def without_ellipsis(index: tuple, ndim: int) -> tuple:
    """``index`` with its ``...`` written out as the slices it stands for in an ``ndim``-D array.
    An index of more dimensions than ``ndim`` is refused here: beside one sample's dimensions lies
    the batch's, and NumPy would index it."""
    consumed = sum(i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else 1
                   for i in index if i is not None and i is not Ellipsis)
    if consumed > ndim:
        raise IndexError(f"too many indices for a tensor of dimension {ndim} (the index has {consumed})")
    if not any(i is Ellipsis for i in index):
        return index
    at = next(k for k, i in enumerate(index) if i is Ellipsis)
    return index[:at] + (slice(None),) * (ndim - consumed) + index[at + 1:]


# ---- the rules shared by families ---------------------------------------------------------------


def _elementwise(cls, info, in_dims, *args, **kwargs):
    """An elementwise op (any number of broadcasting operands; other arguments pass through)."""
    positions = [i for i, a in enumerate(args) if is_operand(a)]
    return cls.apply(*broadcast_operands(in_dims, args, positions), **kwargs), 0


elementwise = classmethod(_elementwise)


def _reduction(cls, info, in_dims, x, *args, **kwargs):
    """An op along one sample's axis (Sum, Max, Prod, Cumsum: the axis is the first argument after
    ``x``, or ``axis=``, None for all): the same op one axis further along."""
    ndim = x.ndim - 1
    if "axis" in kwargs:
        kwargs["axis"] = shift_axis(kwargs["axis"], ndim)
    elif args:
        args = (shift_axis(args[0], ndim),) + args[1:]
    else:
        args = (shift_axis(None, ndim),)
    return cls.apply(x, *args, **kwargs), 0


reduction = classmethod(_reduction)


def fold_into_samples(apply, x, *others):
    """Run ``apply(x', *others)`` with the batch dimension of ``x`` (B, N, ...) merged into the op's own
    sample dimension (B·N, ...), and split it off again: for ops whose samples are independent."""
    batch, n = x.shape[0], x.shape[1]
    out = apply(x.reshape(batch * n, *x.shape[2:]), *others)
    return out.reshape(batch, n, *out.shape[1:])
