"""Matrix product of stacks of matrices (NumPy ``matmul`` with broadcast batch dimensions).

``Tensor.matmul`` turns 1-D operands into matrices before calling this op and squeezes the result,
so the primitive only sees operands with at least two dimensions.
"""
import numpy as np

from ..autograd import Function
from ..kernels import active
from .batching import broadcast_operands
from .movement import sum_to_shape


def _swap_last_two(t):
    axes = list(range(t.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return t.permute(*axes)


def _stored_transposed(t) -> bool:
    """Whether ``t``'s matrices (its last two axes) are stored column by column, as ``w.T`` of a
    row-major ``w`` (``F.linear``'s weight): their gradient is then computed as the transpose of a
    row-major product, so that it comes out as ``w``'s gradient in ``w``'s order. Made the other way,
    LeNet's first dense layer's weight gradient (128 x 3136) was copied from column-major order into
    its ``.grad`` at 0.75 ms a step, against 0.1 for a plain copy."""
    strides = t.data.strides
    return t.ndim >= 2 and min(t.shape[-2:]) > 1 and abs(strides[-2]) < abs(strides[-1])


def check_matmul_shapes(a_shape, b_shape) -> None:
    if a_shape[-1] != b_shape[-2]:
        raise ValueError(
            f"matmul: shapes {a_shape} and {b_shape} do not match: the last dimension of the first "
            f"({a_shape[-1]}) must equal the second-to-last of the second ({b_shape[-2]})"
        )
    try:
        np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions {a_shape[:-2]} and {b_shape[:-2]} of shapes {a_shape} and "
            f"{b_shape} cannot be broadcast together"
        ) from None


class MatMul(Function):
    """Z = A @ B
    dL/dA = G @ Bᵀ
    dL/dB = Aᵀ @ G
    JVP: dz = da @ b + a @ db
    vmap: a batched matmul, a sample's vector taken as a one-row or one-column matrix

    Broadcast batch dimensions are summed back."""

    @staticmethod
    def forward(ctx, a, b):
        check_matmul_shapes(a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return active().matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        needs_a, needs_b = ctx.needs_input_grad
        # G·Bᵀ = (B·Gᵀ)ᵀ and Aᵀ·G = (Gᵀ·A)ᵀ: each made the way that leaves it in its operand's
        # storage order (_stored_transposed)
        grad_a = grad_b = None
        if needs_a:
            grad_a = _swap_last_two(b @ _swap_last_two(grad)) if _stored_transposed(a) else grad @ _swap_last_two(b)
            grad_a = sum_to_shape(grad_a, a.shape)
        if needs_b:
            grad_b = _swap_last_two(_swap_last_two(grad) @ a) if _stored_transposed(b) else _swap_last_two(a) @ grad
            grad_b = sum_to_shape(grad_b, b.shape)
        return grad_a, grad_b

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        terms = [MatMul.apply(ta, b) if ta is not None else None, MatMul.apply(a, tb) if tb is not None else None]
        terms = [t if t.shape == ctx.output_shape else t.expand(*ctx.output_shape) for t in terms if t is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    @staticmethod
    def vmap(info, in_dims, a, b):
        # A sample's vector becomes a one-row (a) or one-column (b) matrix, so that NumPy's batched
        # matmul sees the batch as a batch dimension; the extra dimension is dropped afterwards.
        a_vector, b_vector = in_dims[0] is not None and a.ndim == 2, in_dims[1] is not None and b.ndim == 2
        if a_vector:
            a = a.unsqueeze(1)
        if b_vector:
            b = b.unsqueeze(2)
        a, b = broadcast_operands(in_dims, (a, b), (0, 1))
        out = MatMul.apply(a, b)
        if b_vector:
            out = out.squeeze(-1)
        if a_vector:  # its row is the last dimension once b's column is gone (or b was a shared vector)
            out = out.squeeze(-1 if b_vector or b.ndim == 1 else -2)
        return out, 0

