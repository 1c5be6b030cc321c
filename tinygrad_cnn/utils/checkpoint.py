"""Activation checkpointing: trade compute for memory, as ``torch.utils.checkpoint``.

A training step keeps every activation that some backward needs until backward reaches it, so
the memory of a deep network grows with its depth. ``checkpoint(block, x)`` runs ``block`` without
recording its graph and keeps only its inputs; when backward reaches it, the block's forward is run
again, this time recorded, and backward continues through that recomputed graph. The activations
inside the block then live only while its own backward runs: a network split into k checkpointed
blocks keeps about one block's activations plus the k block inputs, for the price of a second
forward pass.

The recomputation is the same computation on the same values, so the gradients are the same, bit
for bit. Random ops inside the block (dropout) draw the same numbers again: the library's
generator is put back to its state at the first forward for the recomputation, and restored after.
It works at any order (``create_graph=True``: the recomputed graph hangs off the inputs'), in
forward mode (the JVP recomputes the block with the tangents), and inside ``tinygrad_cnn.func``
transforms. ``explain`` shows the difference: the checkpoint node saves its inputs and nothing else.
"""
from __future__ import annotations

import numpy as np

from .. import autograd, batching, forward_ad
from ..autograd import Function, enable_grad, is_grad_enabled
from ..ops.movement import Reshape
from ..random import get_rng
from ..tensor_class import Tensor


class Checkpoint(Function):
    """y = fn(x₁, …, xₙ), keeping only the inputs (and the parameters fn uses)
    dL/dxᵢ = the backward of fn, run on fn's forward computed again from the saved inputs
    JVP: dy = J_fn(x) dx, with fn computed again in forward mode"""

    @staticmethod
    def forward(ctx, fn, rng_state, value, count, *arrays):
        # ``value``: fn's output, computed by ``checkpoint`` (which also found the tensors fn uses
        # besides its arguments: the last ``len(arrays) - count`` inputs)
        ctx.fn, ctx.rng_state, ctx.count = fn, rng_state, count
        ctx.save_for_backward(*arrays)
        return value

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        inputs, captured = saved[: ctx.count], saved[ctx.count :]
        needs = ctx.needs_input_grad[4:]
        wanted = [i for i, x in enumerate(inputs) if needs[i] and isinstance(x, Tensor)]
        create_graph = is_grad_enabled()  # the engine records backward only under create_graph=True
        # the saved inputs are physical tensors (a checkpoint inside vmap maps its function itself)
        with _replayed_randomness(ctx.rng_state), enable_grad(), batching.outside_levels():
            # identity ops: fresh targets for the inner grad() that stay attached to the inputs' graph
            aliases = [Reshape.apply(x, x.shape) if i in wanted else x for i, x in enumerate(inputs)]
            for i in wanted:
                if not aliases[i].requires_grad:
                    aliases[i].requires_grad = True
            out = ctx.fn(*aliases)
        targets = [aliases[i] for i in wanted] + list(captured)
        # retain_graph: a target may be a node of the outer graph (a tensor computed before the
        # function), which the outer backward visits after this one
        grads = autograd.grad(out, targets, grad_outputs=grad, retain_graph=True, create_graph=create_graph,
                              allow_unused=True) if targets else ()
        result = [None] * len(inputs)
        for i, g in zip(wanted, grads):
            result[i] = g
        return (None, None, None, None, *result, *grads[len(wanted):])

    @staticmethod
    def jvp(ctx, _fn, _state, _value, _count, *tangents):
        from ..func import jvp

        inputs = ctx.saved_tensors[: ctx.count]
        tangents = tangents[: ctx.count]  # a tangent on a captured parameter: see checkpoint()
        with _replayed_randomness(ctx.rng_state), batching.outside_levels():
            _, tangent = jvp(lambda *xs: ctx.fn(*_merge(inputs, tangents, xs)),
                             tuple(x for x, t in zip(inputs, tangents) if t is not None),
                             tuple(t for t in tangents if t is not None))
        return tangent


def _merge(inputs, tangents, moving):
    """The inputs with those that carry a tangent replaced, in order, by ``moving``."""
    moving = iter(moving)
    return [next(moving) if t is not None else x for x, t in zip(inputs, tangents)]


class _replayed_randomness:
    """Put the library generator back to ``state`` for the recomputation, and restore it after."""

    def __init__(self, state):
        self.state = state

    def __enter__(self):
        if self.state is not None:
            generator = get_rng().bit_generator
            self.saved = generator.state
            generator.state = self.state

    def __exit__(self, *exc):
        if self.state is not None:
            get_rng().bit_generator.state = self.saved
        return False


def checkpoint(function, *args, use_reentrant: bool = False, preserve_rng_state: bool = True):
    """``function(*args)``, recomputed during backward instead of keeping its activations.

    ``function`` returns a Tensor or a tuple of Tensors of one dtype (kept as one flat Tensor, split
    again on the way out); ``args`` may mix Tensors and other values (passed as they are). Tensors
    ``function`` uses without receiving them (a module's parameters, a tensor computed before) get
    their gradients too. ``use_reentrant`` is accepted for torch's signature; there is one
    implementation. ``preserve_rng_state=False`` skips the replay of random numbers (as torch)."""
    if not callable(function):
        raise TypeError(f"checkpoint: the first argument must be a function, got {type(function).__name__}")
    if not is_grad_enabled() and not forward_ad.active_levels():  # nothing will differentiate it
        return function(*args)
    if batching.is_batched(*args):
        return _checkpoint_of_batch(function, args, preserve_rng_state)
    state = get_rng().bit_generator.state if preserve_rng_state else None
    # Run it once on cut-off copies of the arguments, recording, to learn which other tensors it
    # uses that need a gradient; that graph (and every activation in it) is dropped on return.
    cut = [a.detach() if isinstance(a, Tensor) else a for a in args]
    first_node = next(autograd._NODE_SEQUENCE)
    with enable_grad():
        probe = function(*cut)
    shapes = None
    if isinstance(probe, (tuple, list)):  # several outputs: one flat tensor through the checkpoint
        shapes, function = _joined(function, probe)
        with enable_grad():
            probe = _join(probe)
    if not isinstance(probe, Tensor):
        raise TypeError(f"checkpoint: the function must return a Tensor or a tuple of Tensors, got {type(probe).__name__}")
    if batching.is_batched(probe):  # its arguments are not batched: a batched tensor came from elsewhere
        raise RuntimeError(batching.CLOSED_OVER)
    captured = _captured(probe, cut, first_node)
    if not any(isinstance(a, Tensor) and a.requires_grad for a in args) and not captured \
            and not forward_ad.active_levels():
        out = probe.detach()
    else:
        out = Checkpoint.apply(function, state, probe.data, len(args), *args, *captured)
    return out if shapes is None else _split(out, shapes)


def _joined(function, outputs):
    """The shapes of ``outputs``, and ``function`` returning them as one flat tensor."""
    if not outputs or not all(isinstance(o, Tensor) for o in outputs) or len({o.dtype for o in outputs}) > 1:
        raise TypeError("checkpoint: a function returning several values must return Tensors of one dtype, got "
                        f"{[type(o).__name__ if not isinstance(o, Tensor) else str(o.dtype) for o in outputs]}")
    return [o.shape for o in outputs], lambda *args: _join(function(*args))


def _join(outputs) -> Tensor:
    from ..tensor_class import concatenate

    return concatenate([o.reshape(-1) for o in outputs], 0)


def _split(flat: Tensor, shapes) -> tuple:
    pieces, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        pieces.append(flat[start:start + size].reshape(*shape))
        start += size
    return tuple(pieces)


def _checkpoint_of_batch(function, args, preserve_rng_state: bool):
    """checkpoint inside vmap: checkpoint the whole batch's computation, ``function`` mapped over
    the batch dimensions of the physical tensors (one ``vmap`` per open level). The recomputation
    then maps ``function`` again by itself, even when it runs after the enclosing vmap has ended
    (``grad(vmap(f))``)."""
    from ..func import vmap

    levels = batching.active_levels()
    # a tensor shared by the samples stays shared: repeating it would change the order of the sums
    # that make its gradient, and the gradients would no longer be the plain graph's bit for bit
    physical = [batching.to_canonical(a, levels) if batching.is_batched(a) else a for a in args]
    dims = tuple(0 if batching.is_batched(a) else None for a in args)
    mapped = function
    for _, _, randomness in reversed(levels):
        mapped = vmap(mapped, in_dims=dims, randomness=randomness)

    def on_physical_tensors(*xs):  # run, and replayed, drawing random numbers for its own vmaps' levels only
        with batching.draws_from_new_levels():
            return mapped(*xs)

    out = checkpoint(on_physical_tensors, *physical, preserve_rng_state=preserve_rng_state)
    if isinstance(out, tuple):
        return tuple(batching.from_canonical(o, levels) for o in out)
    return batching.from_canonical(out, levels)


def _captured(out: Tensor, arguments, first_node: int) -> list:
    """What ``out``'s graph (the nodes numbered from ``first_node`` on, made by the function) takes
    from outside besides ``arguments``: leaf tensors requiring grad (a module's parameters), and
    stand-ins for tensors computed before the function ran (the same place in the graph, so the
    outer backward visits their nodes after the checkpoint and passes their gradients on)."""
    if out.grad_fn is None:
        return []
    own = {id(a) for a in arguments}
    found, seen, visited, stack = [], set(), set(), [out.grad_fn]
    while stack:  # the function's nodes only: a node made before it is where the walk stops
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for inp in node.inputs:
            if not getattr(inp, "requires_grad", False) or id(inp) in own:
                continue
            producer = getattr(inp, "grad_fn", None)
            if producer is None:
                key, entry = id(inp), inp
            elif producer.sequence < first_node:
                key = id(producer)
                entry = Tensor._from_op(np.broadcast_to(np.zeros((), inp.dtype), inp.shape), True, producer)
            else:
                stack.append(producer)
                continue
            if key not in seen:
                seen.add(key)
                found.append(entry)
    return found
