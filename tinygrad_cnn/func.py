"""Function transforms, with ``torch.func``'s signatures: derivatives as functions of functions.

    grad(f)(x)                       df/dx of a function returning one number
    grad_and_value(f)(x)             (df/dx, f(x))
    vjp(f, *primals)                 (f(primals), vjp_fn): vjp_fn(u) = u^T J, one reverse pass per call
    jvp(f, primals, tangents)        (f(primals), J v): one forward pass, no graph kept
    jacrev(f)(x), jacfwd(f)(x)       the whole Jacobian, row by row (reverse) or column by column (forward)
    hessian(f)(x)                    jacfwd(jacrev(f)): forward-over-reverse
    hvp(f, primals, tangents)        (f(primals), H v): the JVP of the gradient, without forming H

Every transform takes and returns Tensors (tuples where torch.func uses tuples), ``argnums``
picks the arguments to differentiate (an int, or a tuple for a tuple of results), and
``has_aux=True`` lets ``f`` return ``(output, aux)`` with ``aux`` passed through untouched.

The transforms compose, because each one is written with the two engines underneath: reverse
mode (``autograd.grad``, with ``create_graph=True`` whenever an outer transform may need to
differentiate the result again) and forward mode (``forward_ad``, one level per ``jvp``). So
``grad(grad(f))``, ``jacfwd(jacrev(f))`` and ``jvp(grad(f), ...)`` all work. Each transform
differentiates with respect to its own copy of the inputs, so nested transforms never confuse
their derivatives; results are plain tensors (cut from any graph) unless an outer transform is
still differentiating them.
"""
from __future__ import annotations

import contextvars
import itertools
import weakref

import numpy as np

from . import autograd, batching, forward_ad
from .ops.movement import Reshape
from .tensor_class import Tensor

# ---- arguments ------------------------------------------------------------------------------------


def _as_tensor(x, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, float, int, list)):
        return Tensor(np.asarray(x))
    raise TypeError(f"{what}: expected Tensors, got {type(x).__name__}")


def _argnums(argnums, count: int, what: str) -> tuple:
    chosen = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not chosen:
        raise ValueError(f"{what}: argnums must name at least one argument")
    for i in chosen:
        if not isinstance(i, int) or not -count <= i < count:
            raise ValueError(f"{what}: argnums {argnums!r} is out of range for {count} positional argument(s)")
    return tuple(i % count for i in chosen)


def _is_traced(x: Tensor) -> bool:
    """Whether an outer transform (or the user's own graph) is differentiating ``x``."""
    return x.requires_grad or bool(forward_ad.active_levels() and x._tangents)


_DEPTH = contextvars.ContextVar("tinygrad_cnn transform depth", default=0)


def transforming() -> bool:
    """Whether a function transform is running ``f`` in this thread (a layer that mutates state,
    such as BatchNorm's running statistics in training mode, refuses then)."""
    return _DEPTH.get() > 0


class _running_f:
    def __enter__(self):
        self._token = _DEPTH.set(_DEPTH.get() + 1)

    def __exit__(self, *exc):
        _DEPTH.reset(self._token)
        return False


# Leaves the transforms made, numbered in creation order: a result that reaches only leaves made
# after a transform began (by it, or by transforms nested in it) is cut from the graph as it
# returns; one that reaches an older leaf (a captured parameter, or an outer transform's input)
# stays in the graph for whoever differentiates it.
_LEAF_NUMBER = itertools.count()
_TRANSFORM_LEAVES: dict = {}  # id(leaf) -> its number, while the leaf is alive


def _mark_transform_leaf(leaf: Tensor) -> Tensor:
    key = id(leaf)
    _TRANSFORM_LEAVES[key] = next(_LEAF_NUMBER)
    weakref.finalize(leaf, _TRANSFORM_LEAVES.pop, key, None)
    return leaf


def _fresh_input(x: Tensor, what: str) -> Tensor:
    """A tensor with ``x``'s value that this transform differentiates with respect to: a new leaf,
    or an identity op of ``x`` when an outer transform differentiates ``x`` too (so the outer one
    still sees the dependence, and the two never confuse their derivatives)."""
    if x.dtype.kind != "f":
        raise TypeError(f"{what}: can only differentiate floating-point tensors, got dtype {x.dtype}")
    if _is_traced(x):
        with autograd.enable_grad():
            alias = Reshape.apply(x, x.shape)
        if not alias.requires_grad:  # x carries only tangents: make this copy a leaf of the graph
            alias.requires_grad = True
            _mark_transform_leaf(alias)
        return alias
    return _mark_transform_leaf(Tensor._from_op(x.data, False, None).requires_grad_())


def _reaches_other_leaves(results, own, since: int) -> bool:
    """Whether ``results`` depend on a tensor requiring grad other than this transform's own inputs
    and the leaves transforms made since leaf number ``since`` (a parameter captured by ``f``, or an
    outer transform's input): then they stay in the graph, so the caller's backward reaches it, as
    with torch.func."""
    own_ids = {id(t) for t in own}

    def outside(leaf) -> bool:
        return id(leaf) not in own_ids and _TRANSFORM_LEAVES.get(id(leaf), -1) < since

    nodes = [r.grad_fn for r in results if r is not None and r.grad_fn is not None]
    if any(r is not None and r.grad_fn is None and r.requires_grad and outside(r) for r in results):
        return True
    for node in autograd.topological_order(nodes) if nodes else ():
        for inp in node.inputs:
            if getattr(inp, "grad_fn", None) is None and getattr(inp, "requires_grad", False) and outside(inp):
                return True
    return False


def _split_aux(result, has_aux: bool, what: str):
    if not has_aux:
        return result, None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"{what}(f, has_aux=True): f must return a pair (output, aux)")
    return result


def _outputs(result, what: str) -> tuple:
    outputs = (result,) if isinstance(result, Tensor) else result
    if not isinstance(outputs, (tuple, list)) or not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError(f"{what}: f must return a Tensor or a tuple of Tensors, got {type(result).__name__}")
    return tuple(outputs)


def _finish(t, keep: bool):
    """A result: cut from the graph unless an outer transform is differentiating it."""
    if t is None or keep:
        return t
    return t.detach()


def _restructure(values: list, like):
    return values[0] if isinstance(like, Tensor) else tuple(values)


# ---- reverse mode ---------------------------------------------------------------------------------


def vjp(f, *primals, has_aux: bool = False):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(*cotangents)`` returns one gradient per primal: the
    cotangents (one per output, shaped like it) times the Jacobian. ``vjp_fn`` may be called many
    times."""
    if batching.active_levels():
        return _vjp_in_vmap(f, primals, has_aux)
    return _vjp(f, primals, has_aux)


def _vjp(f, primals: tuple, has_aux: bool):
    primals = tuple(_as_tensor(p, "vjp") for p in primals)
    keep = any(_is_traced(p) for p in primals)
    since = next(_LEAF_NUMBER)
    inputs = tuple(_fresh_input(p, "vjp") for p in primals)
    with autograd.enable_grad(), _running_f():
        result, aux = _split_aux(f(*inputs), has_aux, "vjp")
    outputs = _outputs(result, "vjp")

    def vjp_fn(*cotangents):
        if len(cotangents) == 1 and isinstance(cotangents[0], (tuple, list)) and not isinstance(result, Tensor):
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(outputs):
            raise ValueError(f"vjp_fn: expected {len(outputs)} cotangent(s), one per output of f, got {len(cotangents)}")
        pairs = [(o, _as_tensor(c, "vjp_fn")) for o, c in zip(outputs, cotangents)]
        for o, c in pairs:
            if c.shape != o.shape:
                raise ValueError(f"vjp_fn: a cotangent has shape {c.shape}, its output {o.shape}")
        live = [(o, c) for o, c in pairs if o.requires_grad]
        grads = [None] * len(inputs)
        if live:
            grads = list(autograd.grad([o for o, _ in live], inputs, grad_outputs=[c for _, c in live],
                                       retain_graph=True, create_graph=True, allow_unused=True))
        grads = [g if g is not None else Tensor(np.zeros(p.shape, p.dtype)) for g, p in zip(grads, primals)]
        keep_grads = keep or _reaches_other_leaves(grads, inputs, since)
        return tuple(_finish(g, keep_grads) for g in grads)

    keep_outputs = keep or _reaches_other_leaves(outputs, inputs, since)
    out = _restructure([_finish(o, keep_outputs) for o in outputs], result)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def grad_and_value(f, argnums=0, has_aux: bool = False):
    """A function returning ``(gradient, value)`` of ``f``, which must return one number. With
    ``has_aux``, ``f`` returns ``(value, aux)`` and the result is ``(gradient, (value, aux))``, as
    in torch.func."""

    def wrapper(*args):
        chosen = _argnums(argnums, len(args), "grad")
        if any(isinstance(args[i], (tuple, list, dict)) for i in chosen):
            return _grad_and_value_of_structures(f, argnums, has_aux, args, chosen)
        if batching.active_levels():
            return _grad_and_value_in_vmap(f, argnums, has_aux, args)
        return _grad_and_value(f, argnums, has_aux, args)

    return wrapper


def _grad_and_value_of_structures(f, argnums, has_aux: bool, args: tuple, chosen: tuple):
    """grad with respect to tuples, lists or dicts of tensors (a model's parameters by name, as
    torch.func): each tensor in them is differentiated as an argument of its own, and each
    gradient goes back in its place."""
    leaves = {i: _flatten(args[i], None, "argnums") for i in chosen}
    for i in chosen:
        for path, leaf, _ in leaves[i]:
            if not isinstance(leaf, Tensor):
                raise TypeError(f"grad: argument {i}{path} is a {type(leaf).__name__}; "
                                "the arguments differentiated must hold Tensors")
    flat = list(args) + [leaf for i in chosen for _, leaf, _ in leaves[i]]

    def of_leaves(*xs):
        rebuilt, k = list(xs[: len(args)]), len(args)
        for i in chosen:
            rebuilt[i] = _rebuild(args[i], {path: xs[k + j] for j, (path, _, _) in enumerate(leaves[i])})
            k += len(leaves[i])
        return f(*rebuilt)

    gradients, value = grad_and_value(of_leaves, tuple(range(len(args), len(flat))), has_aux)(*flat)
    per_argument, k = [], 0
    for i in chosen:
        per_argument.append(_rebuild(args[i], {path: gradients[k + j] for j, (path, _, _) in enumerate(leaves[i])}))
        k += len(leaves[i])
    return (per_argument[0] if isinstance(argnums, int) else tuple(per_argument)), value


def _grad_and_value(f, argnums, has_aux: bool, args: tuple):
    """grad_and_value's work, on tensors that are not batched (see ``_grad_and_value_in_vmap``)."""
    chosen = _argnums(argnums, len(args), "grad")
    args = tuple(_as_tensor(a, "grad") if i in chosen else a for i, a in enumerate(args))
    keep = any(_is_traced(args[i]) for i in chosen)
    since = next(_LEAF_NUMBER)
    inputs = list(args)
    for i in chosen:
        inputs[i] = _fresh_input(args[i], "grad")
    with autograd.enable_grad(), _running_f():
        result, aux = _split_aux(f(*inputs), has_aux, "grad")
    if not isinstance(result, Tensor):
        raise TypeError(f"grad: f must return a Tensor, got {type(result).__name__}")
    if result.data.size != 1:
        raise RuntimeError(f"grad: f must return a tensor with one element, got shape {result.shape} "
                           "(use vjp or jacrev for other outputs)")
    own = [inputs[i] for i in chosen]
    if result.requires_grad:
        grads = autograd.grad(result, own, create_graph=True, allow_unused=True)
    else:
        grads = (None,) * len(chosen)
    grads = [g if g is not None else Tensor(np.zeros(args[i].shape, args[i].dtype)) for g, i in zip(grads, chosen)]
    keep_grads = keep or _reaches_other_leaves(grads, own, since)
    grads = tuple(_finish(g, keep_grads) for g in grads)
    gradient = grads[0] if isinstance(argnums, int) else grads
    value = _finish(result, keep or _reaches_other_leaves([result], own, since))
    return (gradient, (value, aux)) if has_aux else (gradient, value)


def grad(f, argnums=0, has_aux: bool = False):
    """A function returning the gradient of ``f`` (a function returning one number) with respect
    to argument ``argnums`` (a tuple of gradients for a tuple of argnums); with ``has_aux``,
    ``(gradient, aux)``."""
    both = grad_and_value(f, argnums, has_aux)

    def wrapper(*args):
        gradient, value = both(*args)
        return (gradient, value[1]) if has_aux else gradient

    return wrapper


def jacrev(f, argnums=0, has_aux: bool = False):
    """A function returning the Jacobian of ``f`` by reverse mode: ``vjp_fn`` of every row of the
    identity at once, under ``vmap`` (one backward pass of a batch of cotangents, as torch.func).
    For an output of shape S and an input of shape T the Jacobian has shape S + T."""

    def wrapper(*args):
        chosen = _argnums(argnums, len(args), "jacrev")
        fixed = list(args)

        def of_chosen(*xs):
            for i, x in zip(chosen, xs):
                fixed[i] = x
            return f(*fixed)

        primals = tuple(_as_tensor(args[i], "jacrev") for i in chosen)
        results = vjp(of_chosen, *primals, has_aux=has_aux)
        out, vjp_fn = results[0], results[1]
        outputs = (out,) if isinstance(out, Tensor) else out
        per_output = []
        for k, o in enumerate(outputs):
            if o.numel() == 0 or any(p.numel() == 0 for p in primals):
                per_output.append(tuple(Tensor(np.zeros(o.shape + p.shape, p.dtype)) for p in primals))
                continue
            # cotangent k runs through the rows of the identity; the other outputs get zeros
            cotangents = [Tensor(np.zeros(q.shape, q.dtype)) for q in outputs]
            cotangents[k] = Tensor(np.eye(o.numel(), dtype=o.dtype).reshape(o.numel(), *o.shape))
            if batching.active_levels():  # jacrev inside vmap (a Hessian): vjp_fn belongs to the open levels
                rows = _one_row_at_a_time(vjp_fn, cotangents, k)
            else:
                rows = vmap(vjp_fn, in_dims=tuple(0 if i == k else None for i in range(len(outputs))))(*cotangents)
            per_output.append(tuple(r.reshape(*o.shape, *p.shape) for r, p in zip(rows, primals)))
        jac = [j[0] if isinstance(argnums, int) else j for j in per_output]
        jac = jac[0] if isinstance(out, Tensor) else tuple(jac)
        return (jac, results[2]) if has_aux else jac

    return wrapper


def _one_row_at_a_time(vjp_fn, cotangents: list, k: int) -> tuple:
    """``vjp_fn`` of each row of the identity in ``cotangents[k]``, one call each, stacked."""
    from .tensor_class import stack

    per_row = [vjp_fn(*[row if i == k else c for i, c in enumerate(cotangents)]) for row in cotangents[k].unbind(0)]
    return tuple(stack([r[j] for r in per_row], 0) for j in range(len(per_row[0])))


# ---- forward mode ---------------------------------------------------------------------------------


def jvp(f, primals, tangents, has_aux: bool = False):
    """``(f(*primals), J v)``: the output and its derivative along ``tangents`` (one per primal, of
    its shape), in one forward pass. ``primals`` and ``tangents`` are tuples, as in torch.func."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (of Tensors), as in torch.func.jvp")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primal(s) but {len(tangents)} tangent(s)")
    if batching.active_levels():
        return _jvp_in_vmap(f, tuple(primals), tuple(tangents), has_aux)
    return _jvp(f, primals, tangents, has_aux)


def _jvp(f, primals, tangents, has_aux: bool):
    primals = tuple(_as_tensor(p, "jvp") for p in primals)
    tangents = tuple(_as_tensor(t, "jvp") for t in tangents)
    keep = any(_is_traced(p) for p in primals) or any(_is_traced(t) for t in tangents)
    since = next(_LEAF_NUMBER)
    with forward_ad.dual_level() as level:
        duals = tuple(forward_ad.make_dual(p, t) for p, t in zip(primals, tangents))
        with _running_f():
            result, aux = _split_aux(f(*duals), has_aux, "jvp")
        outputs = _outputs(result, "jvp")
        unpacked = [forward_ad.unpack_dual(o, level=level) for o in outputs]
    # results that depend on a tensor requiring grad (captured by f) stay in the caller's graph
    values = [_finish(p, keep or _reaches_other_leaves([p], (), since)) for p, _ in unpacked]
    derivatives = [t if t is not None else Tensor(np.zeros(p.shape, p.dtype)) for p, t in unpacked]
    derivatives = [_finish(t, keep or _reaches_other_leaves([t], (), since)) for t in derivatives]
    out = (_restructure(values, result), _restructure(derivatives, result))
    return (*out, aux) if has_aux else out


def jacfwd(f, argnums=0, has_aux: bool = False):
    """A function returning the Jacobian of ``f`` by forward mode: ``jvp`` along every column of
    the identity at once, under ``vmap`` (one forward pass of a batch of tangents, as torch.func).
    Same shape as ``jacrev``'s: output shape + input shape."""

    def wrapper(*args):
        chosen = _argnums(argnums, len(args), "jacfwd")
        primals = tuple(_as_tensor(args[i], "jacfwd") for i in chosen)
        fixed = list(args)

        def of_chosen(*xs):
            for i, x in zip(chosen, xs):
                fixed[i] = x
            return f(*fixed)

        out, aux = _split_aux(of_chosen(*primals), has_aux, "jacfwd")
        outputs = _outputs(out, "jacfwd")
        per_argument = []  # per chosen argument: one Jacobian per output
        for j, p in enumerate(primals):
            if p.numel() == 0 or any(o.numel() == 0 for o in outputs):
                per_argument.append(tuple(Tensor(np.zeros(o.shape + p.shape, o.dtype)) for o in outputs))
                continue

            def derivative_along(direction, j=j):
                tangents = tuple(direction if i == j else Tensor(np.zeros(q.shape, q.dtype)) for i, q in enumerate(primals))
                derivative = jvp(of_chosen, primals, tangents, has_aux=has_aux)[1]
                return (derivative,) if isinstance(derivative, Tensor) else tuple(derivative)

            columns = vmap(derivative_along)(Tensor(np.eye(p.numel(), dtype=p.dtype).reshape(p.numel(), *p.shape)))
            per_argument.append(tuple(_columns_to_jacobian(c, o.shape, p.shape) for c, o in zip(columns, outputs)))
        jac = []
        for k in range(len(outputs)):
            per_arg = tuple(per_argument[j][k] for j in range(len(primals)))
            jac.append(per_arg[0] if isinstance(argnums, int) else per_arg)
        jac = jac[0] if isinstance(out, Tensor) else tuple(jac)
        return (jac, aux) if has_aux else jac

    return wrapper


def _columns_to_jacobian(columns: Tensor, out_shape, in_shape) -> Tensor:
    """Output tangents, one per input element along the first dimension, as (out + in)."""
    n_in, n_out = len(tuple(in_shape)), len(tuple(out_shape))
    stacked = columns.reshape(*in_shape, *out_shape)
    order = tuple(range(n_in, n_in + n_out)) + tuple(range(n_in))
    return stacked.permute(*order) if order else stacked


def hessian(f, argnums=0):
    """The Hessian of ``f`` (a function returning one number): ``jacfwd(jacrev(f))``, forward
    mode over reverse mode, as torch.func.hessian."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f, primals, tangents):
    """``(f(*primals), H v)``: the Hessian of ``f`` (one number out) times ``tangents``, computed as
    the JVP of the gradient (forward-over-reverse) without forming H. Same signature as ``jvp``;
    the same results as ``torch.autograd.functional.hvp``: ``H v`` has one entry per primal (a
    tuple for a tuple of primals, a Tensor for a Tensor)."""
    single = isinstance(primals, Tensor)
    primals = (primals,) if single else tuple(primals)
    tangents = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    keep = any(_is_traced(_as_tensor(p, "hvp")) for p in primals)
    gradient_and_value = grad_and_value(f, tuple(range(len(primals))))
    _, product, value = jvp(gradient_and_value, primals, tangents, has_aux=True)
    value = value if keep else forward_ad.unpack_dual(value, level=None)[0].detach() if forward_ad.active_levels() else value.detach()
    return value, (product[0] if single else product)


# ---- vmap -------------------------------------------------------------------------------------------


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """``func`` mapped over a batch dimension of its inputs, as ``torch.func.vmap``: ``func`` is
    written for one sample and runs once, on tensors that hold the whole batch (see batching.py);
    each primitive computes all samples at once by its batching rule.

    ``in_dims``: for each positional argument, the dimension to map over (an int), None to pass it
    to every sample unchanged, or a nested tuple/list/dict matching the argument's structure; one
    int or None applies to every argument. ``out_dims`` likewise for the outputs: where their
    batch dimension goes (None for an output that does not depend on the mapped inputs).
    ``randomness``: ``"error"`` (random ops such as dropout refuse, the default), ``"same"`` (one
    draw shared by the samples) or ``"different"`` (a draw per sample). ``chunk_size``: map that
    many samples at a time (less memory, the same results). Keyword arguments are passed unmapped.
    Transforms nest: ``vmap(grad(f))`` gives per-sample gradients, ``vmap(vmap(f))`` maps twice."""
    if randomness not in ("error", "same", "different"):
        raise ValueError(f"vmap: randomness must be 'error', 'same' or 'different', got {randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size must be a positive int or None, got {chunk_size!r}")

    def wrapped(*args, **kwargs):
        dims = _dims_for_args(in_dims, args)
        flat = _flatten(args, dims, "in_dims")
        sizes = {}
        for path, leaf, dim in flat:
            if dim is None:
                continue
            if not isinstance(leaf, Tensor):
                raise ValueError(f"vmap: in_dims gives {dim} for argument {path}, which is a "
                                 f"{type(leaf).__name__}, not a Tensor: give None for it")
            if not -leaf.ndim <= dim < leaf.ndim:
                raise ValueError(f"vmap: in_dims {dim} is out of range for argument {path} of shape {leaf.shape}")
            sizes[path] = leaf.shape[dim]
        if not sizes:
            raise ValueError("vmap: in_dims maps no input (all None): at least one Tensor argument must be mapped")
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{p}: {n}" for p, n in sizes.items())
            raise ValueError(f"vmap: the mapped dimensions of the inputs differ in size ({listed}); they must be equal")
        batch_size = next(iter(sizes.values()))
        if chunk_size is not None and chunk_size < batch_size:
            return _in_chunks(wrapped_once, args, kwargs, flat, batch_size)
        return wrapped_once(args, kwargs, flat, batch_size)

    def wrapped_once(args, kwargs, flat, batch_size):
        with batching.open_level(batch_size, randomness) as level, _running_f():
            batched = {path: batching.BatchedTensor(leaf, dim, level) for path, leaf, dim in flat if dim is not None}
            result = func(*_rebuild(args, batched), **kwargs)
            return _unbatch_outputs(result, out_dims, level, batch_size)

    def _in_chunks(run, args, kwargs, flat, batch_size):
        from .random import get_rng
        from .tensor_class import concatenate

        generator = get_rng().bit_generator
        first_draw, after_first_chunk = generator.state, None
        pieces = []
        for start in range(0, batch_size, chunk_size):
            stop = min(start + chunk_size, batch_size)
            if randomness == "same":  # one draw for the whole batch: each chunk replays the first chunk's numbers
                generator.state = first_draw
            chunk = {path: leaf.narrow(dim, start, stop - start) for path, leaf, dim in flat if dim is not None}
            sliced = _rebuild(args, chunk)
            pieces.append(run(sliced, kwargs, _flatten(sliced, _dims_for_args(in_dims, sliced), "in_dims"),
                              stop - start))
            if after_first_chunk is None:
                after_first_chunk = generator.state
        if randomness == "same":
            generator.state = after_first_chunk
        leaves = [_flatten(p, out_dims, "out_dims") for p in pieces]
        joined = {path: concatenate([ls[k][1] for ls in leaves], dim)
                  for k, (path, leaf, dim) in enumerate(leaves[0]) if isinstance(leaf, Tensor) and dim is not None}
        return _rebuild(pieces[0], joined)

    return wrapped


def _dims_for_args(in_dims, args: tuple):
    if isinstance(in_dims, int) or in_dims is None:
        return (in_dims,) * len(args)
    if not isinstance(in_dims, (tuple, list)):
        raise TypeError(f"vmap: in_dims must be an int, None or a tuple, got {type(in_dims).__name__}")
    if len(in_dims) != len(args):
        raise ValueError(f"vmap: in_dims has {len(in_dims)} entries for {len(args)} positional argument(s); "
                         "give one per argument")
    return tuple(in_dims)


def _flatten(tree, dims, what: str, path: str = "") -> list:
    """(path, leaf, dim) for every leaf of ``tree`` (tuples, lists and dicts of leaves), ``dims``
    being an int/None for the whole subtree or a matching structure."""
    if isinstance(tree, (tuple, list)):
        if isinstance(dims, (tuple, list)):
            if len(dims) != len(tree):
                raise ValueError(f"vmap: {what} {dims!r} does not match the structure of {path or 'the arguments'}")
            parts = zip(tree, dims)
        else:
            parts = ((t, dims) for t in tree)
        return [leaf for k, (t, d) in enumerate(parts) for leaf in _flatten(t, d, what, f"{path}[{k}]")]
    if isinstance(tree, dict):
        if isinstance(dims, dict):
            if set(dims) != set(tree):
                raise ValueError(f"vmap: {what} has keys {sorted(dims)} where {path or 'the argument'} has {sorted(tree)}")
            return [leaf for k in tree for leaf in _flatten(tree[k], dims[k], what, f"{path}[{k!r}]")]
        return [leaf for k in tree for leaf in _flatten(tree[k], dims, what, f"{path}[{k!r}]")]
    if isinstance(dims, (tuple, list, dict)):
        raise ValueError(f"vmap: {what} gives a structure {dims!r} for {path or 'an argument'}, which is a single value")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool)):
        raise TypeError(f"vmap: {what} entries must be ints or None, got {dims!r}")
    return [(path, tree, dims)]


def _rebuild(tree, replaced: dict, path: str = ""):
    if isinstance(tree, (tuple, list)):
        items = [_rebuild(t, replaced, f"{path}[{k}]") for k, t in enumerate(tree)]
        return type(tree)(items) if not hasattr(tree, "_fields") else type(tree)(*items)
    if isinstance(tree, dict):
        return type(tree)((k, _rebuild(v, replaced, f"{path}[{k!r}]")) for k, v in tree.items())
    return replaced.get(path, tree)


def _unbatch_outputs(result, out_dims, level: int, batch_size: int):
    """The physical outputs of ``func``: each output's batch dimension moved to its ``out_dims``
    entry, or added (repeated) for an output that does not depend on the mapped inputs."""
    flat = _flatten(result, out_dims, "out_dims")
    physical = {}
    for path, leaf, dim in flat:
        if not isinstance(leaf, Tensor):
            if dim is not None:
                raise ValueError(f"vmap: func returned a {type(leaf).__name__} at {path or 'its output'}; "
                                 "it must return Tensors (or give out_dims None there)")
            continue
        value, bdim = batching._unwrap(leaf, level)
        if dim is None:
            if bdim is not None:
                raise ValueError(f"vmap: out_dims is None for output {path or ''}, which depends on the mapped inputs; "
                                 "give the dimension to put the batch in")
            physical[path] = value
            continue
        if not -(value.ndim + (bdim is None)) <= dim < value.ndim + (bdim is None):
            raise ValueError(f"vmap: out_dims {dim} is out of range for an output of {value.ndim - (bdim is not None)} dimension(s)")
        value = batching.materialize(value, bdim, batch_size)
        physical[path] = batching.move_to_front(value, 0) if dim == 0 else value.movedim(0, dim)
    return _rebuild(result, physical)


# ---- transforms inside vmap: run on the whole batch's tensors ----------------------------------------


def _grad_and_value_in_vmap(f, argnums, has_aux: bool, args: tuple):
    """grad inside vmap: differentiate the physical computation, each chosen input given a batch
    dimension at every level (a shared input repeated, so each sample gets its own gradient). The
    samples never mix, so the gradient of the sum of their values is each one's gradient."""
    levels = batching.active_levels()
    chosen = _argnums(argnums, len(args), "grad")
    physical = tuple(batching.to_canonical(_as_tensor(a, "grad"), levels) if i in chosen else a
                     for i, a in enumerate(args))

    def summed(*xs):
        logical = [batching.from_canonical(x, levels) if i in chosen else x for i, x in enumerate(xs)]
        result, aux = _split_aux(f(*logical), has_aux, "grad")
        if not isinstance(result, Tensor):
            raise TypeError(f"grad: f must return a Tensor, got {type(result).__name__}")
        if result.numel() != 1:
            raise RuntimeError(f"grad: f must return a tensor with one element, got shape {result.shape} "
                               "(use vjp or jacrev for other outputs)")
        values = batching.to_canonical(result, levels)
        return values.sum(), (values, aux)

    gradient, (_, (values, aux)) = _grad_and_value(summed, argnums, True, physical)
    gradients = (gradient,) if isinstance(argnums, int) else gradient
    gradients = tuple(batching.from_canonical(g, levels) for g in gradients)
    value = batching.from_canonical(values, levels)
    gradient = gradients[0] if isinstance(argnums, int) else gradients
    return (gradient, (value, aux)) if has_aux else (gradient, value)


def _on_the_batch(f, levels, has_aux: bool, what: str):
    """``f`` as a function of the physical tensors of the open ``levels``: its arguments wrapped as
    one sample, its outputs given every batch dimension; ``single`` records whether ``f`` returned
    one Tensor (set on the first call)."""
    single = []

    def on_batch(*xs):
        result, aux = _split_aux(f(*(batching.from_canonical(x, levels) for x in xs)), has_aux, what)
        single.append(isinstance(result, Tensor))
        outputs = tuple(batching.to_canonical(o, levels) for o in _outputs(result, what))
        out = outputs[0] if single[0] else outputs
        return (out, aux) if has_aux else out

    return on_batch, single


def _vjp_in_vmap(f, primals: tuple, has_aux: bool):
    levels = batching.active_levels()
    physical = tuple(batching.to_canonical(_as_tensor(p, "vjp"), levels) for p in primals)
    on_batch, single = _on_the_batch(f, levels, has_aux, "vjp")

    results = _vjp(on_batch, physical, has_aux)
    out, physical_fn = results[0], results[1]
    outputs = (out,) if single[0] else out
    logical = tuple(batching.from_canonical(o, levels) for o in outputs)

    def vjp_fn(*cotangents):
        if len(cotangents) == 1 and isinstance(cotangents[0], (tuple, list)) and not single[0]:
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(logical):
            raise ValueError(f"vjp_fn: expected {len(logical)} cotangent(s), one per output of f, got {len(cotangents)}")
        for o, c in zip(logical, cotangents):
            if tuple(np.shape(c) if not isinstance(c, Tensor) else c.shape) != o.shape:
                raise ValueError(f"vjp_fn: a cotangent has shape {_as_tensor(c, 'vjp_fn').shape}, its output {o.shape}")
        if batching.active_levels() != levels:  # called inside a vmap opened after vjp: a sample at a time
            return batching.loop_over_batch(vjp_fn, *cotangents, what="vjp_fn of a vjp taken inside vmap")
        grads = physical_fn(*(batching.to_canonical(_as_tensor(c, "vjp_fn"), levels) for c in cotangents))
        return tuple(batching.from_canonical(g, levels) for g in grads)

    out = logical[0] if single[0] else logical
    return (out, vjp_fn, results[2]) if has_aux else (out, vjp_fn)


def _jvp_in_vmap(f, primals: tuple, tangents: tuple, has_aux: bool):
    levels = batching.active_levels()
    physical = tuple(batching.to_canonical(_as_tensor(p, "jvp"), levels) for p in primals)
    directions = tuple(batching.to_canonical(_as_tensor(t, "jvp"), levels) for t in tangents)
    on_batch, single = _on_the_batch(f, levels, has_aux, "jvp")

    results = _jvp(on_batch, physical, directions, has_aux)
    wrap = (lambda t: batching.from_canonical(t, levels)) if single[0] else \
        (lambda ts: tuple(batching.from_canonical(t, levels) for t in ts))
    out = (wrap(results[0]), wrap(results[1]))
    return (*out, results[2]) if has_aux else out


# ---- modules as functions -----------------------------------------------------------------------------


def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """``module(*args, **kwargs)`` computed with the given tensors in place of the named parameters
    and buffers (``{"features.0.weight": tensor, ...}``, or a tuple of such dicts), as
    ``torch.func.functional_call``: the module is left as it was. With it, the parameters become
    arguments a transform can differentiate or map over: ``grad(lambda p, x: loss(functional_call(
    model, p, (x,))))``. ``strict=True`` requires every parameter and buffer to be given."""
    dicts = parameter_and_buffer_dicts if isinstance(parameter_and_buffer_dicts, (tuple, list)) else (parameter_and_buffer_dicts,)
    given = {}
    for d in dicts:
        for name, value in d.items():
            if name in given:
                raise ValueError(f"functional_call: {name!r} is given twice")
            given[name] = value
    if tie_weights is not True:
        raise NotImplementedError("functional_call: only tie_weights=True (the default) is supported")
    slots = dict(_named_slots(module))
    unknown = sorted(set(given) - set(slots))
    if unknown:
        raise ValueError(f"functional_call: the module has no parameter or buffer named {unknown[0]!r}")
    if strict:
        missing = sorted(set(slots) - set(given))
        if missing:
            raise ValueError(f"functional_call(strict=True): no value given for {missing[0]!r}")
    args = args if isinstance(args, tuple) else (args,)
    saved = []
    try:
        for name, value in given.items():
            registry, key = slots[name]
            saved.append((registry, key, registry[key]))
            registry[key] = value
        return module(*args, **(kwargs or {}))
    finally:
        for registry, key, original in reversed(saved):
            registry[key] = original


def _named_slots(module, prefix: str = ""):
    """(dotted name, (the dict holding it, its key)) for every parameter and buffer of ``module``."""
    for kind in ("_parameters", "_buffers"):
        registry = getattr(module, kind)
        for key, value in registry.items():
            if value is not None:
                yield prefix + key, (registry, key)
    for name, child in module._modules.items():
        if child is not None:
            yield from _named_slots(child, f"{prefix}{name}.")
