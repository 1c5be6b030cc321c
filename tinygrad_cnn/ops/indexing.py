"""Indexing primitives along one dimension, torch's ``gather`` and ``scatter_add``; a pair that
undo each other, so each one's backward is its partner.

``index`` is an integer array with as many dimensions as the input; along ``dim`` it names which
element to read (gather) or where to add (scatter-add), and every other position ``(i, ..., k)``
is the position itself. ``index`` may be smaller than the input in every dimension, as in torch.
"""
import numpy as np

from ..autograd import Function


def scatter_positions(dim: int, index: np.ndarray) -> tuple:
    """The full NumPy index of a gather/scatter: ``index`` along ``dim``, the element's own
    coordinate (a broadcasting ``arange``) along every other dimension."""
    positions = list(np.indices(index.shape, sparse=True))
    positions[dim] = index
    return tuple(positions)


def gather(x: np.ndarray, dim: int, index: np.ndarray) -> np.ndarray:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``dim == 0`` (and likewise for other dims)."""
    return x[scatter_positions(dim, index)]


def scatter_add(base: np.ndarray, dim: int, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """A copy of ``base`` with ``out[index[i][j][k]][j][k] += src[i][j][k]`` (``dim == 0``);
    repeated indices accumulate. Only the part of ``src`` the shape of ``index`` is used, as in torch."""
    out = np.array(base, copy=True)
    np.add.at(out, scatter_positions(dim, index), src[tuple(slice(0, n) for n in index.shape)])
    return out


class Gather(Function):
    """``y = gather(x, dim, index)``; ``dL/dx = scatter_add(0, dim, index, dL/dy)``: each read
    element gets back the gradients of every place it was copied to."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.input_shape, ctx.dim, ctx.index = x.shape, dim, index
        return gather(x, dim, index)

    @staticmethod
    def backward(ctx, grad):
        zeros = np.zeros(ctx.input_shape, dtype=grad.dtype)
        return ScatterAdd.apply(zeros, ctx.dim, ctx.index, grad), None, None


class ScatterAdd(Function):
    """``y = scatter_add(base, dim, index, src)``; ``dL/dbase = dL/dy`` (it is copied through) and
    ``dL/dsrc = gather(dL/dy, dim, index)``, padded with zeros where ``src`` is larger than ``index``."""

    @staticmethod
    def forward(ctx, base, dim, index, src):
        ctx.dim, ctx.index, ctx.src_shape = dim, index, src.shape
        return scatter_add(base, dim, index, src)

    @staticmethod
    def backward(ctx, grad):
        grad_src = None
        if ctx.needs_input_grad[3]:
            grad_src = Gather.apply(grad, ctx.dim, ctx.index)
            if grad_src.shape != ctx.src_shape:  # the unused tail of src gets no gradient
                grad_src = grad_src.pad([(0, n - m) for n, m in zip(ctx.src_shape, grad_src.shape)])
        return grad, None, None, grad_src
