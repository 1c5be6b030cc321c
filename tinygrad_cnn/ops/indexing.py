"""Indexing primitives along one dimension, torch's ``gather`` and ``scatter_add``; a pair that
undo each other, so each one's backward is its partner.

``index`` is an integer array with as many dimensions as the input; along ``dim`` it names which
element to read (gather) or where to add (scatter-add), and every other position ``(i, ..., k)``
is the position itself. ``index`` may be smaller than the input in every dimension, as in torch.
"""
import numpy as np

from ..autograd import Function
from ..kernels import active
from .batching import materialize, shift_axis


class Gather(Function):
    """y[i][j][k] = x[index[i][j][k]][j][k]   (dim = 0; likewise along any dim)
    dL/dx = ScatterAdd(0, dim, index, g)
    JVP: dy = Gather(dx, dim, index)
    vmap: the same op one axis further along, a shared index repeated

    Each read element gets back the gradients of every place it was copied to."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.input_shape, ctx.dim, ctx.index = x.shape, dim, index
        return active().gather(x, dim, index)

    @staticmethod
    def backward(ctx, grad):
        zeros = np.zeros(ctx.input_shape, dtype=grad.dtype)
        return ScatterAdd.apply(zeros, ctx.dim, ctx.index, grad), None, None

    @staticmethod
    def jvp(ctx, t, _dim, _index):
        return Gather.apply(t, ctx.dim, ctx.index)

    @staticmethod
    def vmap(info, in_dims, x, dim, index):
        x, index = materialize(x, in_dims[0], info.batch_size), materialize(index, in_dims[2], info.batch_size)
        return Gather.apply(x, shift_axis(dim, x.ndim - 1), index), 0


class ScatterAdd(Function):
    """y = base, plus src[i][j][k] added at y[index[i][j][k]][j][k]   (dim = 0; likewise along any dim)
    dL/dbase = g
    dL/dsrc = Gather(g, dim, index), zeros where src is larger than index
    JVP: dy = ScatterAdd(dbase, dim, index, dsrc)
    vmap: the same op one axis further along, shared inputs repeated"""

    @staticmethod
    def forward(ctx, base, dim, index, src):
        ctx.dim, ctx.index, ctx.src_shape = dim, index, src.shape
        ctx.base_shape, ctx.base_dtype = base.shape, base.dtype
        return active().scatter_add(base, dim, index, src)

    @staticmethod
    def backward(ctx, grad):
        grad_src = None
        if ctx.needs_input_grad[3]:
            grad_src = Gather.apply(grad, ctx.dim, ctx.index)
            if grad_src.shape != ctx.src_shape:  # the unused tail of src gets no gradient
                grad_src = grad_src.pad([(0, n - m) for n, m in zip(ctx.src_shape, grad_src.shape)])
        return grad, None, None, grad_src

    @staticmethod
    def jvp(ctx, tbase, _dim, _index, tsrc):
        if tsrc is None:
            return tbase  # the base is copied through
        if tbase is None:
            tbase = np.zeros(ctx.base_shape, ctx.base_dtype)
        return ScatterAdd.apply(tbase, ctx.dim, ctx.index, tsrc)

    @staticmethod
    def vmap(info, in_dims, base, dim, index, src):
        base, index, src = (materialize(t, d, info.batch_size) for t, d in zip((base, index, src), (in_dims[0], in_dims[2], in_dims[3])))
        return ScatterAdd.apply(base, shift_axis(dim, base.ndim - 1), index, src), 0

