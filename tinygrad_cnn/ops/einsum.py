"""Einstein summation primitive: ``Einsum``. The gradient of each operand is itself an einsum of
the other operands and the output's gradient, so every derivative order comes for free."""
import string


from ..autograd import Function
from ..kernels import active


def explicit_equation(equation: str, shapes) -> tuple[str, dict]:
    """The equation with ``...`` replaced by letters and the output written out, and each letter's
    size. Raises a ValueError naming einsum for anything the primitive cannot take."""
    inputs, arrow, output = equation.partition("->")
    inputs = inputs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} has {len(inputs)} operands, {len(shapes)} were given")
    free = [c for c in string.ascii_letters if c not in equation]
    broadcast_ndim = 0
    for letters, shape in zip(inputs, shapes):
        named = len(letters.replace("...", ""))
        if "..." in letters:
            broadcast_ndim = max(broadcast_ndim, len(shape) - named)
    ellipsis = "".join(free[:broadcast_ndim])
    written = []
    for letters, shape in zip(inputs, shapes):
        if "..." in letters:
            letters = letters.replace("...", ellipsis[broadcast_ndim - (len(shape) - len(letters) + 3):])
        if len(letters) != len(shape) or not all(c.isalpha() for c in letters):
            raise ValueError(f"einsum: subscripts {letters!r} do not fit an operand of shape {shape}")
        if len(set(letters)) != len(letters):
            raise ValueError(f"einsum: subscripts {letters!r} repeat a letter within one operand (a diagonal); "
                             "take the diagonal first, e.g. with indexing")
        written.append(letters)
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        counts = {c: "".join(written).count(c) for c in "".join(written)}
        output = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    sizes = {}
    for letters, shape in zip(written, shapes):
        for c, n in zip(letters, shape):
            if sizes.get(c, 1) != 1 and n not in (1, sizes[c]):
                raise ValueError(f"einsum: letter {c!r} has sizes {sizes[c]} and {n} in different operands")
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    if any(c not in sizes for c in output) or len(set(output)) != len(output):
        raise ValueError(f"einsum: output subscripts {output!r} must be distinct letters of the inputs")
    return ",".join(written) + "->" + output, sizes


class Einsum(Function):
    """y = einsum("ab,bc->ac", x_1, x_2, ...)
    dL/dx_k = einsum(the other operands and g -> the letters of x_k)
    JVP: dy = Σ_k einsum(the equation, x_1, ..., dx_k, ..., x_n)
    vmap: one more letter for the batch, in each batched operand and in the output

    Any explicit equation without ``...`` or a letter repeated within one operand
    (``tinygrad_cnn.einsum`` writes the user's equation in that form). The gradient of x_k is the
    product of everything else, summed over the letters x_k does not have; a letter only x_k has
    (summed away in the forward) gets the gradient broadcast along it."""

    @staticmethod
    def forward(ctx, equation, *operands):
        ctx.equation = equation
        inputs, ctx.output = equation.split("->")
        ctx.subscripts = inputs.split(",")
        ctx.save_for_backward(*operands)
        return active().einsum(equation, *operands)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        grads = []
        for k, (letters, x) in enumerate(zip(ctx.subscripts, operands)):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            others = [s for i, s in enumerate(ctx.subscripts) if i != k]
            known = set(ctx.output).union(*others)
            kept = "".join(c for c in letters if c in known)
            g = Einsum.apply(",".join(others + [ctx.output]) + "->" + kept,
                             *(o for i, o in enumerate(operands) if i != k), grad)
            if kept != letters:
                g = g.reshape(*(n if c in known else 1 for c, n in zip(letters, x.shape))).expand(*x.shape)
            grads.append(g)
        return (None, *grads)

    @staticmethod
    def jvp(ctx, _equation, *tangents):
        operands = ctx.saved_tensors  # linear in each operand: one term per operand with a tangent
        terms = [Einsum.apply(ctx.equation, *operands[:k], t, *operands[k + 1:]) for k, t in enumerate(tangents) if t is not None]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    @staticmethod
    def vmap(info, in_dims, equation, *operands):
        # the batch is one more letter, in every batched operand and in the output
        letter = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in equation)
        inputs, output = equation.split("->")
        written = [(letter if d is not None else "") + s for s, d in zip(inputs.split(","), in_dims[1:])]
        return Einsum.apply(",".join(written) + "->" + letter + output, *operands), 0

