"""Max-pooling as a primitive, and the scatter/gather pair its derivatives are made of.

``MaxPool2d`` keeps, for every output, which kernel offset held the maximum (``argmax``). Its
gradient sends each output gradient back to that one input position: a scatter
(``WindowScatter``). A scatter is linear, and its gradient reads the values at the same
positions: a gather (``WindowGather``), whose gradient is the scatter again. With the argmax fixed
the second derivative of max-pooling with respect to its input is zero, as it should be away
from ties.

Each ``forward`` calls the kernel of the same name: ``kernels/reference.py`` takes a max and an
argmax over a window view; ``kernels/pooling.py`` runs a tournament over kernel offsets. Average
pooling needs no primitive: it is a depthwise convolution with constant weights
(``nn.functional.avg_pool2d``).
"""
from ..autograd import Function
from ..kernels import active
from .batching import fold_into_samples, materialize
from .elementwise import constant_in


class MaxPool2d(Function):
    """y[n, c, oh, ow] = max over i, j of x_padded[n, c, s·oh + d·i, s·ow + d·j]   (padding: −∞)
    dL/dx = WindowScatter(g, argmax)
    JVP: dy = WindowGather(dx, argmax)
    vmap: the batch folded into the images (B·N)

    ``argmax`` is the offset k = i·kw + j of each window's maximum: the first of tied maxima, the
    last NaN of a window that holds one (as torch)."""

    @staticmethod
    def forward(ctx, x, geometry):
        best, argmax = active().max_pool2d(x, geometry)
        ctx.geometry, ctx.argmax, ctx.input_shape = geometry, argmax, x.shape
        return best

    @staticmethod
    def backward(ctx, grad):
        scattered = WindowScatter.apply(grad, ctx.argmax, ctx.input_shape, ctx.geometry)
        return constant_in(scattered, ctx, 0), None  # the argmax is constant between ties

    @staticmethod
    def jvp(ctx, t, _):
        return constant_in(WindowGather.apply(t, ctx.argmax, ctx.geometry), ctx, 0)  # dx at each argmax

    @staticmethod
    def vmap(info, in_dims, x, geometry):
        return fold_into_samples(lambda xs: MaxPool2d.apply(xs, geometry), x), 0


class WindowScatter(Function):
    """y = zeros of the input's shape, plus g[n, c, oh, ow] added at the position argmax[n, c, oh, ow] names
    dL/dg = WindowGather(g', argmax)
    JVP: dy = WindowScatter(dg, argmax)
    vmap: the batch folded into the images (B·N)"""

    @staticmethod
    def forward(ctx, grad, argmax, input_shape, geometry):
        ctx.argmax, ctx.geometry, ctx.input_shape = argmax, geometry, input_shape
        return active().window_scatter(grad, argmax, input_shape, geometry)

    @staticmethod
    def backward(ctx, grad):
        return WindowGather.apply(grad, ctx.argmax, ctx.geometry), None, None, None

    @staticmethod
    def jvp(ctx, t, _argmax, _input_shape, _geometry):
        return WindowScatter.apply(t, ctx.argmax, ctx.input_shape, ctx.geometry)  # linear in g

    @staticmethod
    def vmap(info, in_dims, grad, argmax, input_shape, geometry):
        argmax = _per_sample_argmax(argmax, in_dims[1], info.batch_size)
        return fold_into_samples(
            lambda gs, am: WindowScatter.apply(gs, am, (gs.shape[0], *input_shape[1:]), geometry),
            materialize(grad, in_dims[0], info.batch_size), argmax), 0


class WindowGather(Function):
    """y[n, c, oh, ow] = x at the position argmax[n, c, oh, ow] names in its window
    dL/dx = WindowScatter(g, argmax)
    JVP: dy = WindowGather(dx, argmax)
    vmap: the batch folded into the images (B·N)"""

    @staticmethod
    def forward(ctx, x, argmax, geometry):
        ctx.argmax, ctx.geometry, ctx.input_shape = argmax, geometry, x.shape
        return active().window_gather(x, argmax, geometry)

    @staticmethod
    def backward(ctx, grad):
        return WindowScatter.apply(grad, ctx.argmax, ctx.input_shape, ctx.geometry), None, None

    @staticmethod
    def jvp(ctx, t, _argmax, _geometry):
        return WindowGather.apply(t, ctx.argmax, ctx.geometry)  # linear in x

    @staticmethod
    def vmap(info, in_dims, x, argmax, geometry):
        argmax = _per_sample_argmax(argmax, in_dims[1], info.batch_size)
        return fold_into_samples(lambda xs, am: WindowGather.apply(xs, am, geometry),
                                 materialize(x, in_dims[0], info.batch_size), argmax), 0


def _per_sample_argmax(argmax, bdim, batch: int):
    """The argmax (B, N, C, OH, OW) as (B·N, C, OH, OW), for ``fold_into_samples``."""
    argmax = materialize(argmax, bdim, batch)
    return argmax.reshape(-1, *argmax.shape[2:])

