"""Checking a batching rule: ``vmap(f)`` against a Python loop over the samples.

``check_batching_rule(f, *inputs, in_dims=...)`` runs ``f`` three ways on the same batch and
requires the same numbers from each:

1. ``vmap(f, in_dims)(*inputs)``, with the loop fallback turned into an error, so every op ``f``
   reaches must have its own rule (the nested and derivative runs below use the rules too);
2. the loop: ``f`` once per sample (``x.select(d, b)`` of each mapped input), stacked;
3. derivatives through the batch: reverse mode (a VJP with a random cotangent) and forward mode
   (a JVP along a random direction) of ``vmap(f)`` against the same of the loop, since a rule is
   written with differentiable ops and its graph must give each sample its own derivative.

With ``nested=True`` it also maps twice: the batch stacked with a changed copy of itself along a
new first dimension, under ``vmap(vmap(f))``, against ``vmap(f)`` of each half.

The check needs no finite differences, so it holds to rounding precision (float64 inputs are
best), and it runs on any op: the library's own suite uses it for every primitive
(``tests/ops/test_forward_mode.py``), and a user adding an op writes
``check_batching_rule(my_op, x_batch, y, in_dims=(0, None))`` in a Hypothesis test.
"""
import numpy as np

from .. import func
from ..batching import _FALLBACK_REFUSED
from ..tensor_class import Tensor, stack
from .gradcheck import GradcheckError


def _outputs(result) -> tuple:
    return (result,) if isinstance(result, Tensor) else tuple(result)


def _mapped(inputs, in_dims) -> tuple:
    dims = (in_dims,) * len(inputs) if isinstance(in_dims, int) or in_dims is None else tuple(in_dims)
    if len(dims) != len(inputs):
        raise ValueError(f"check_batching_rule: in_dims has {len(dims)} entries for {len(inputs)} inputs")
    if all(d is None for d in dims):
        raise ValueError("check_batching_rule: in_dims maps no input")
    return dims


def _loop(f, inputs, dims):
    """``f`` per sample, each output stacked along a new first dimension."""
    batch_size = next(x.shape[d] for x, d in zip(inputs, dims) if d is not None)
    per_sample = [_outputs(f(*[x.select(d, b) if d is not None else x for x, d in zip(inputs, dims)]))
                  for b in range(batch_size)]
    return tuple(stack([s[k] for s in per_sample], 0) for k in range(len(per_sample[0])))


def _compare(got, expected, what: str, atol: float, rtol: float) -> None:
    for k, (g, e) in enumerate(zip(got, expected)):
        g, e = np.asarray(g.data), np.asarray(e.data)
        if g.shape != e.shape:
            raise GradcheckError(f"check_batching_rule: {what}, output {k}: shape {g.shape} under vmap, "
                                 f"{e.shape} from the loop")
        if not np.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            at = np.unravel_index(np.argmax(~np.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)), g.shape)
            raise GradcheckError(f"check_batching_rule: {what}, output {k} at {tuple(int(i) for i in at)}: "
                                 f"{g[at]!r} under vmap, {e[at]!r} from the loop over samples")


def check_batching_rule(f, *inputs, in_dims=0, atol=1e-10, rtol=1e-7, modes=("rev", "fwd"), nested=True,
                        seed: int = 0) -> bool:
    """Check ``vmap(f, in_dims)`` against a loop over the samples, in value and in derivatives
    (``modes``: ``"rev"`` a VJP, ``"fwd"`` a JVP), and with ``nested`` under two vmaps. Outputs are
    batched along their first dimension (``out_dims=0``). Returns True or raises
    ``GradcheckError`` naming what disagreed; an op without a batching rule is an error too."""
    dims = _mapped(inputs, in_dims)
    rng = np.random.default_rng(seed)
    mapped = func.vmap(f, in_dims=dims)
    looped = lambda *xs: _loop(f, xs, dims)  # noqa: E731
    token = _FALLBACK_REFUSED.set(True)
    try:
        got = _outputs(mapped(*inputs))
    except RuntimeError as error:
        if "has no batching rule" not in str(error):
            raise
        raise GradcheckError(f"check_batching_rule: {error}") from None
    finally:
        _FALLBACK_REFUSED.reset(token)
    expected = looped(*inputs)
    _compare(got, expected, "value", atol, rtol)

    floats = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.dtype.kind == "f"]
    if not floats:
        return True

    def of_floats(function):
        def with_floats(*xs):
            full = list(inputs)
            for i, x in zip(floats, xs):
                full[i] = x
            return _outputs(function(*full))
        return with_floats

    primals = tuple(inputs[i] for i in floats)
    if "rev" in modes:
        cotangents = tuple(Tensor(rng.standard_normal(e.shape).astype(e.dtype)) for e in expected)
        _, pullback = func.vjp(of_floats(mapped), *primals)
        _, loop_pullback = func.vjp(of_floats(looped), *primals)
        _compare(pullback(*cotangents), loop_pullback(*cotangents), "reverse mode (a VJP of the batch)", atol, rtol)
    if "fwd" in modes:
        directions = tuple(Tensor(rng.standard_normal(p.shape).astype(p.dtype)) for p in primals)
        _, tangents = func.jvp(of_floats(mapped), primals, directions)
        _, loop_tangents = func.jvp(of_floats(looped), primals, directions)
        _compare(tangents, loop_tangents, "forward mode (a JVP of the batch)", atol, rtol)
    if nested:
        # a second batch: this one and a changed copy, along a new first dimension of every mapped input
        changed = [x * 0.5 + 0.25 if i in floats and dims[i] is not None else x for i, x in enumerate(inputs)]
        twice = [stack([x, c], 0) if d is not None else x for x, c, d in zip(inputs, changed, dims)]
        outer = tuple(None if d is None else 0 for d in dims)
        inner = tuple(None if d is None else d % inputs[i].ndim for i, d in enumerate(dims))
        got = _outputs(func.vmap(func.vmap(f, in_dims=inner), in_dims=outer)(*twice))
        halves = [_outputs(mapped(*inputs)), _outputs(mapped(*changed))]
        _compare(got, tuple(stack([h[k] for h in halves], 0) for k in range(len(got))), "two nested vmaps", atol, rtol)
    return True
