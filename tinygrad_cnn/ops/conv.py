"""2-D convolution as three primitives that are each other's gradients.

``y = conv2d(x, w) + b`` is linear in ``x`` and in ``w``, so its two gradients are again linear maps:

* ``Conv2dInputGrad(g, w)``  = dL/dx, the transposed convolution of the output gradient ``g``;
* ``Conv2dWeightGrad(x, g)`` = dL/dw, the correlation of the input with ``g``;

and dL/db is ``g`` summed over everything but its channels. Differentiating those gives back
members of the same set (see each ``backward``), which is what makes second derivatives through a
CNN exact.

Each ``forward`` calls the kernel of the same name: ``kernels/reference.py`` computes them with an
``einsum`` over window views; ``kernels/conv_gemm.py`` as matrix products over im2col columns.
"""
from dataclasses import dataclass, replace

from ..autograd import Function
from ..kernels import active
from .batching import fold_into_samples, materialize
from .elementwise import _sum_of, constant_in


@dataclass(frozen=True)
class ConvGeometry:
    """Hyperparameters of a 2-D sliding window, each a (height, width) pair."""

    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1

    def output_size(self, height: int, width: int) -> tuple:
        return tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip((height, width), self.kernel, self.stride, self.padding, self.dilation)
        )

    def offset_slices(self, out_hw):
        """For each kernel offset (i, j): the slices of the *padded* input that offset sees for
        every output position. Shared by col2im and pooling."""
        (sh, sw), (dh, dw), (oh, ow) = self.stride, self.dilation, out_hw
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                yield (
                    i * self.kernel[1] + j,
                    slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                    slice(j * dw, j * dw + sw * (ow - 1) + 1, sw),
                )


class Conv2d(Function):
    """y[n, o, oh, ow] = b[o] + Σ over c, i, j of w[o, c, i, j] · x_padded[n, c, s·oh + d·i, s·ow + d·j]
    dL/dx = Conv2dInputGrad(g, w)
    dL/dw = Conv2dWeightGrad(x, g)
    dL/db = Σ g over n, oh, ow
    JVP: dy = conv2d(dx, w) + conv2d(x, dw) + db
    vmap: the batch folded into the images (B·N); with weights per sample, into the groups (B·groups)

    c runs over the input channels of o's group."""

    @staticmethod
    def forward(ctx, x, w, b, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(x, w)
        return active().conv2d(x, w, geometry, b)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        needs_x, needs_w, needs_b, _ = ctx.needs_input_grad
        return (
            # dL/dx does not depend on x: when recorded, it is tied to x with a zero derivative, so a
            # second derivative of avg_pool2d (a convolution) is zeros as in torch (whose conv2d
            # instead reports x as unused there)
            constant_in(Conv2dInputGrad.apply(grad, w, x.shape, ctx.geometry), ctx, 0) if needs_x else None,
            Conv2dWeightGrad.apply(x, grad, w.shape, ctx.geometry) if needs_w else None,
            grad.sum(axis=(0, 2, 3)) if needs_b else None,
            None,
        )

    @staticmethod
    def jvp(ctx, tx, tw, tb, _):
        x, w = ctx.saved_tensors  # linear in x, in w and in b: a term for each
        return _sum_of([
            constant_in(Conv2d.apply(tx, w, None, ctx.geometry), ctx, 0) if tx is not None else None,
            Conv2d.apply(x, tw, None, ctx.geometry) if tw is not None else None,
            tb.reshape(1, -1, 1, 1).expand(*ctx.output_shape) if tb is not None else None,
        ])

    @staticmethod
    def vmap(info, in_dims, x, w, b, geometry):
        if in_dims[1] is None and in_dims[2] is None:  # shared weights: B·N images through one conv
            return fold_into_samples(lambda xs: Conv2d.apply(xs, w, b, geometry), x), 0
        # weights per sample: sample k's channels form groups of their own (B times the groups)
        x, w = (materialize(t, d, info.batch_size) for t, d in zip((x, w), in_dims))
        if b is not None:
            b = materialize(b, in_dims[2], info.batch_size).reshape(-1)
        out = Conv2d.apply(_channels_of_samples(x), _filters_of_samples(w), b, _times_groups(geometry, info.batch_size))
        return _split_channels(out, info.batch_size), 1


class Conv2dInputGrad(Function):
    """y = dL/dx of conv2d(x, w): y[n, c, s·oh + d·i − p, s·ow + d·j − p] += Σ over o of g[n, o, oh, ow] · w[o, c, i, j]
    dL/dg = Conv2d(g', w)
    dL/dw = Conv2dWeightGrad(g', g)
    JVP: dy = Conv2dInputGrad(dg, w) + Conv2dInputGrad(g, dw)
    vmap: the batch folded into the images; with weights per sample, into the groups

    The transposed convolution of the output gradient g."""

    @staticmethod
    def forward(ctx, grad_out, w, x_shape, geometry):
        ctx.geometry, ctx.x_shape = geometry, x_shape
        ctx.save_for_backward(grad_out, w)
        return active().conv2d_input_grad(grad_out, w, x_shape, geometry)

    @staticmethod
    def backward(ctx, grad):
        # <Conv2dInputGrad(g, w), v> = <g, conv2d(v, w)>: linear in g and in w
        grad_out, w = ctx.saved_tensors
        needs_g, needs_w, _, _ = ctx.needs_input_grad
        return (
            Conv2d.apply(grad, w, None, ctx.geometry) if needs_g else None,
            Conv2dWeightGrad.apply(grad, grad_out, w.shape, ctx.geometry) if needs_w else None,
            None,
            None,
        )

    @staticmethod
    def jvp(ctx, tg, tw, _x_shape, _geometry):
        grad_out, w = ctx.saved_tensors
        return _sum_of([Conv2dInputGrad.apply(tg, w, ctx.x_shape, ctx.geometry) if tg is not None else None,
                        Conv2dInputGrad.apply(grad_out, tw, ctx.x_shape, ctx.geometry) if tw is not None else None])

    @staticmethod
    def vmap(info, in_dims, grad_out, w, x_shape, geometry):
        if in_dims[1] is None:
            return fold_into_samples(lambda gs: Conv2dInputGrad.apply(gs, w, (gs.shape[0], *x_shape[1:]), geometry),
                                     grad_out), 0
        grad_out, w = (materialize(t, d, info.batch_size) for t, d in zip((grad_out, w), in_dims))
        n, c, h, width = x_shape
        out = Conv2dInputGrad.apply(_channels_of_samples(grad_out), _filters_of_samples(w),
                                    (n, info.batch_size * c, h, width), _times_groups(geometry, info.batch_size))
        return _split_channels(out, info.batch_size), 1


class Conv2dWeightGrad(Function):
    """y = dL/dw of conv2d(x, w): y[o, c, i, j] = Σ over n, oh, ow of g[n, o, oh, ow] · x_padded[n, c, s·oh + d·i, s·ow + d·j]
    dL/dx = Conv2dInputGrad(g, g')
    dL/dg = Conv2d(x, g')
    JVP: dy = Conv2dWeightGrad(dx, g) + Conv2dWeightGrad(x, dg)
    vmap: the batch folded into the groups (each sample's gradient sums its own images)

    The correlation of the input with the output gradient g, summed over the batch."""

    @staticmethod
    def forward(ctx, x, grad_out, w_shape, geometry):
        ctx.geometry, ctx.w_shape = geometry, w_shape
        ctx.save_for_backward(x, grad_out)
        return active().conv2d_weight_grad(x, grad_out, w_shape, geometry)

    @staticmethod
    def backward(ctx, grad):
        # <Conv2dWeightGrad(x, g), v> = <g, conv2d(x, v)>: linear in x and in g
        x, grad_out = ctx.saved_tensors
        needs_x, needs_g, _, _ = ctx.needs_input_grad
        return (
            Conv2dInputGrad.apply(grad_out, grad, x.shape, ctx.geometry) if needs_x else None,
            Conv2d.apply(x, grad, None, ctx.geometry) if needs_g else None,
            None,
            None,
        )

    @staticmethod
    def jvp(ctx, tx, tg, _w_shape, _geometry):
        x, grad_out = ctx.saved_tensors
        return _sum_of([Conv2dWeightGrad.apply(tx, grad_out, ctx.w_shape, ctx.geometry) if tx is not None else None,
                        Conv2dWeightGrad.apply(x, tg, ctx.w_shape, ctx.geometry) if tg is not None else None])

    @staticmethod
    def vmap(info, in_dims, x, grad_out, w_shape, geometry):
        # each sample's weight gradient sums over that sample's images only: groups, as Conv2d's rule
        x, grad_out = (materialize(t, d, info.batch_size) for t, d in zip((x, grad_out), in_dims))
        shape = (info.batch_size * w_shape[0], *w_shape[1:])
        out = Conv2dWeightGrad.apply(_channels_of_samples(x), _channels_of_samples(grad_out), shape,
                                     _times_groups(geometry, info.batch_size))
        return out.reshape(info.batch_size, *w_shape), 0


def _channels_of_samples(x):
    """(B, N, C, H, W) -> (N, B·C, H, W): each sample's channels side by side."""
    batch, n, c, h, w = x.shape
    return x.permute(1, 0, 2, 3, 4).reshape(n, batch * c, h, w)


def _filters_of_samples(w):
    """(B, O, C/groups, kh, kw) -> (B·O, C/groups, kh, kw)."""
    return w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])


def _split_channels(out, batch: int):
    """(N, B·O, H, W) -> (N, B, O, H, W): the batch dimension is 1."""
    n, channels, h, w = out.shape
    return out.reshape(n, batch, channels // batch, h, w)


def _times_groups(geometry: ConvGeometry, batch: int) -> ConvGeometry:
    return replace(geometry, groups=geometry.groups * batch)

