"""Forward mode: a tangent carried along with each value, as ``torch.autograd.forward_ad``.

Reverse mode (``backward``) records the graph and then walks it from the output back to the
inputs: one pass gives the gradient of one output with respect to every input. Forward mode
walks with the computation instead: each value ``x`` carries a *tangent* ``dx`` (a direction of
change, of x's shape), and each primitive, as it computes ``y = f(x)``, also computes
``dy = J_f(x) dx`` from its JVP rule (``Function.jvp``, written next to its ``backward`` in
``ops/``). One pass gives the derivative of every output along one input direction, and nothing
is stored for later: the tangent of an intermediate value is dropped with the value.

    with forward_ad.dual_level():
        x = forward_ad.make_dual(primal, tangent)   # primal, carrying a tangent
        y = f(x)                                     # every op computes its value and its tangent
        value, jvp = forward_ad.unpack_dual(y)       # f(primal) and J_f(primal) @ tangent

Levels let forward mode nest (the derivative of a derivative, ``jacfwd(jacfwd(f))``): each
``dual_level`` opens a new level, a tensor holds one tangent per level, and a JVP rule for level
L runs with only the levels opened before L active, so the tangents of different levels never
mix. A JVP rule is written with Tensor operations, so it is recorded for reverse mode as any
computation (reverse-over-forward), and reverse mode's backward ops carry tangents like any op
(forward-over-reverse: a Hessian-vector product is the JVP of a gradient).

Levels are per thread (and per asyncio task), as every engine mode.
"""
from __future__ import annotations

import contextvars
import itertools
from collections import namedtuple

from . import tensor_class as _tensor_module

_ACTIVE = contextvars.ContextVar("tinygrad_cnn_forward_levels", default=())
_NEW_LEVEL = itertools.count(1)  # level ids are never reused, so a stale tangent is never mistaken

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


def active_levels() -> tuple:
    """The open forward-mode levels of this thread, outermost first."""
    return _ACTIVE.get()


class dual_level:
    """Open a forward-mode level for the ``with`` block (``make_dual`` and ``unpack_dual`` use the
    innermost one). Tangents made at this level are ignored once the block ends."""

    def __enter__(self) -> int:
        self.level = next(_NEW_LEVEL)
        self._token = _ACTIVE.set(_ACTIVE.get() + (self.level,))
        return self.level

    def __exit__(self, *exc) -> bool:
        _ACTIVE.reset(self._token)
        return False


class _only_levels_below:
    """While a JVP rule for ``level`` runs, only the levels opened before it stay active."""

    def __init__(self, level: int):
        self.level = level

    def __enter__(self):
        self._token = _ACTIVE.set(tuple(l for l in _ACTIVE.get() if l < self.level))

    def __exit__(self, *exc):
        _ACTIVE.reset(self._token)
        return False


def _innermost(level) -> int:
    levels = _ACTIVE.get()
    if level is None:
        if not levels:
            raise RuntimeError("forward_ad: no dual level is open; use `with forward_ad.dual_level():`")
        return levels[-1]
    if level not in levels:
        raise RuntimeError(f"forward_ad: level {level} is not open in this thread")
    return level


def make_dual(tensor, tangent, *, level=None):
    """A tensor with ``tensor``'s value (and place in the reverse-mode graph) that carries
    ``tangent`` at ``level`` (the innermost open level by default)."""
    Tensor = _tensor_module.Tensor
    from . import batching

    if batching.is_batched(tensor, tangent):  # a dual's tangent would sit on one sample's view, not the batch
        raise RuntimeError("vmap: forward_ad.make_dual cannot run inside vmap; "
                           "use tinygrad_cnn.func.jvp inside vmap instead")
    level = _innermost(level)
    if not isinstance(tensor, Tensor):
        tensor = Tensor(tensor)
    if not isinstance(tangent, Tensor):
        tangent = Tensor(tangent, dtype=tensor.dtype)
    if tangent.shape != tensor.shape:
        raise ValueError(f"make_dual: the tangent has shape {tangent.shape}, the primal {tensor.shape}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"make_dual: only floating-point tensors carry tangents, this one has dtype {tensor.dtype}")
    if tangent.dtype != tensor.dtype:
        tangent = tangent.astype(tensor.dtype)
    from .ops.movement import Reshape

    # an identity op, so the dual is a new tensor that stays in the primal's reverse-mode graph
    dual = Reshape.apply(tensor, tensor.shape) if tensor.requires_grad else Tensor._from_op(tensor.data, False, None)
    dual._tangents = dict(tensor._tangents or {})
    dual._tangents[level] = tangent
    return dual


def unpack_dual(tensor, *, level=None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor`` at ``level``: the primal is the same value without that
    level's tangent (still in the reverse-mode graph); the tangent is None where there is none."""
    level = _innermost(level)
    tangent = tangent_of(tensor, level)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    from .ops.movement import Reshape

    with _only_levels_below(level):  # an identity op that leaves this level's tangent behind
        primal = Reshape.apply(tensor, tensor.shape)
    return UnpackedDualTensor(primal, tangent)


def tangent_of(tensor, level: int):
    """The tangent ``tensor`` carries at ``level``, or None (for Function.apply)."""
    tangents = getattr(tensor, "_tangents", None)
    return tangents.get(level) if tangents else None
