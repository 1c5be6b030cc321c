"""The engine: graph nodes (``Function``), the backward walk, ``grad()``, grad mode and anomaly mode.

How the graph is recorded
-------------------------
Every differentiable op is a subclass of ``Function`` with two static methods:

* ``forward(ctx, *args)`` computes the result on plain NumPy arrays (every Tensor argument
  arrives as its ``.data``) and may call ``ctx.save_for_backward(...)``;
* ``backward(ctx, grad_output)`` receives the gradient of the loss with respect to the output
  as a ``Tensor`` and returns one gradient per positional argument of ``forward`` (``None`` where
  there is none). It is written with Tensor operations, so when ``create_graph=True`` the backward
  pass is itself recorded and can be differentiated again.

``Function.apply(*args)`` runs ``forward`` and, when any Tensor argument requires grad, returns a
Tensor whose ``grad_fn`` is the ``ctx`` object: an instance of the op's class holding the inputs and
whatever was saved. Those ``ctx`` objects *are* the graph. An input that another op made and this
one did not save is held as an ``InputEdge``: the link to the node that made it, without its
array, so an activation no backward needs is freed as soon as the forward pass has used it.

How backward walks it
---------------------
``backward`` sorts the nodes reachable from the output topologically (an iterative depth-first
search, so a chain of 100,000 ops needs no recursion), then visits them from the output towards the
leaves. A node is visited once, after every consumer has added its contribution, so the gradient of
a tensor used twice is the sum of both paths. Leaves (tensors with no ``grad_fn``) accumulate into
``.grad``. Unless ``retain_graph=True``, each node drops its inputs and saved arrays as soon as it
has been visited, which releases the activations while backward is still running.

Hooks (``Tensor.register_hook``) see a tensor's gradient once, summed over every path into it, and
may replace it: a non-leaf's hooks run when its node is visited, a leaf's after the walk, just
before ``.grad`` is written. ``retain_grad`` keeps the gradient after the hooks.
"""
from __future__ import annotations

import functools
import time
import traceback
import weakref

import numpy as np

from . import memory

# ----------------------------------------------------------------------------------------------
# Grad mode and anomaly mode
# ----------------------------------------------------------------------------------------------


class _Mode:
    grad_enabled = True
    detect_anomaly = False
    backward_node = None  # under detect_anomaly: the node whose backward is running, if any


def is_grad_enabled() -> bool:
    return _Mode.grad_enabled


class _GradModeContext:
    """Base of ``no_grad`` / ``enable_grad``: a context manager that also works as a decorator."""

    mode: bool

    def __enter__(self):
        self._previous = _Mode.grad_enabled
        _Mode.grad_enabled = self.mode

    def __exit__(self, *exc):
        _Mode.grad_enabled = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Operations inside record no graph: for evaluation and for in-place parameter updates."""

    mode = False


class enable_grad(_GradModeContext):
    """Turn recording back on inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``; as in torch it takes effect at once, and a ``with`` block restores it."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = _Mode.grad_enabled
        _Mode.grad_enabled = self.mode

    def __enter__(self):
        pass

    def __call__(self, fn):
        raise TypeError("set_grad_enabled is used as a context manager, not as a decorator")


class AnomalyError(RuntimeError):
    """Raised under ``detect_anomaly()`` when an op produces NaN or Inf."""


class detect_anomaly:
    """Under this context the first NaN or Inf produced in forward or backward raises an
    ``AnomalyError`` that names the op and the line of user code that created it.

    Each op records where it was created, so this is slow: use it to hunt a bug, not to train.
    """

    def __enter__(self):
        self._previous = _Mode.detect_anomaly
        _Mode.detect_anomaly = True

    def __exit__(self, *exc):
        _Mode.detect_anomaly = self._previous
        return False


def _creation_site() -> str:
    """The innermost stack frame outside this package: where the user wrote the op."""
    package = __name__.rsplit(".", 1)[0].replace(".", "/")
    for frame in reversed(traceback.extract_stack()[:-2]):
        if f"/{package}/" not in frame.filename.replace("\\", "/"):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}'
    return "(inside tinygrad_cnn)"


def _check_finite(array: np.ndarray, node: Function, where: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        kind = "NaN" if np.isnan(array).any() else "Inf"
        if where == "forward" and _Mode.backward_node is not None:
            # an op run by another op's backward: blame that op, which is the one the user wrote
            node, where = _Mode.backward_node, f"backward (in a {type(node).__name__} step of it)"
        site = getattr(node, "creation_site", None) or "(unknown: created outside detect_anomaly)"
        raise AnomalyError(f"{type(node).__name__} produced {kind} in its {where}. The op was created at:\n{site}")


# ----------------------------------------------------------------------------------------------
# Function: one node of the graph
# ----------------------------------------------------------------------------------------------


class GraphFreedError(RuntimeError):
    pass


_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or to use saved tensors after they were "
    "freed). The graph is freed after .backward() or grad(); specify retain_graph=True on the first "
    "call if you need to backward through it again."
)


class InputEdge:
    """Stands in ``ctx.inputs`` for an input that came out of another op and whose value this node's
    backward does not need (it did not save it): the edge to the op that made it, without the
    array. The activation can then be freed as soon as nothing else uses it, as in torch, whose
    nodes keep edges to their producers (``next_functions``) rather than tensors."""

    __slots__ = ("grad_fn", "shape", "dtype", "requires_grad", "name")

    def __init__(self, tensor):
        self.grad_fn, self.shape, self.dtype = tensor.grad_fn, tensor.shape, tensor.dtype
        self.requires_grad, self.name = tensor.requires_grad, tensor.name

    def __repr__(self) -> str:
        return f"<edge from {type(self.grad_fn).__name__}: {self.shape} {self.dtype}>"


class Function:
    """Base class of every differentiable op; subclass it to add your own.

    The instance created by ``apply`` is both the ``ctx`` passed to ``forward``/``backward`` and the
    graph node stored in the output's ``grad_fn``. Attributes set on ``ctx`` in ``forward`` (shapes,
    hyperparameters) are there in ``backward``.
    """

    # Set by apply(): the positional arguments (Tensors and constants; an ``InputEdge`` for an
    # op's output that backward does not need), which of them need a gradient, the saved arrays,
    # the output's shape and dtype (and the array itself if it is saved), and the versions of
    # saved input Tensors.
    inputs: tuple | None
    needs_input_grad: tuple
    freed = False

    @staticmethod
    def forward(ctx, *args, **kwargs) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    # -- saving for backward -------------------------------------------------------------------

    def save_for_backward(self, *arrays) -> None:
        """Keep values for backward. Pass the NumPy arrays ``forward`` received or returned: they
        come back from ``saved_tensors`` as the corresponding graph Tensors, so a backward written
        with them is differentiable again. Any other array comes back as a constant Tensor."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self.freed:
            raise GraphFreedError(_FREED_MESSAGE)
        Tensor = _tensor_module.Tensor
        by_id = {id(a.data): a for a in self.inputs if isinstance(a, Tensor)}
        result = []
        for value in self._saved:
            if isinstance(value, np.ndarray):
                source = by_id.get(id(value))
                if source is not None:
                    self._check_version(source)
                    value = source
                elif value is self._output:
                    value = self._output_tensor()
                else:
                    value = Tensor(value)
            result.append(value)
        return tuple(result)

    def _output_tensor(self):
        """A Tensor standing for this node's output: same data, same grad_fn, so gradients that
        flow into it during a double backward reach this node again."""
        output = self._output_ref()
        if output is not None and output._version != self._output_version:
            raise RuntimeError(self._modified_message("its output"))
        return _tensor_module.Tensor._from_op(self._output, True, self)

    def _check_version(self, tensor) -> None:
        if tensor._version != self._input_versions[id(tensor)]:
            raise RuntimeError(self._modified_message(f"an input of shape {tensor.shape}"))

    def _modified_message(self, what: str) -> str:
        return (
            f"{type(self).__name__} saved {what} for backward, and it has been modified by an "
            "in-place operation since (for example an optimizer step between forward and backward). "
            "Its gradient would be wrong, so backward refuses: recompute the forward pass after "
            "modifying the tensor."
        )

    # -- running the op --------------------------------------------------------------------------

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the arrays behind ``args`` and record the node when a gradient is needed."""
        Tensor = _tensor_module.Tensor
        ctx = cls()
        if _Mode.grad_enabled:
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        else:
            ctx.needs_input_grad = (False,) * len(args)
        ctx._saved = ()
        output = cls.forward(ctx, *[a.data if isinstance(a, Tensor) else a for a in args], **kwargs)
        if not isinstance(output, np.ndarray):
            # NumPy returns scalars for 0-d inputs; a saved copy of that scalar must still be
            # recognised as the output, or the backward would treat it as a constant.
            scalar, output = output, np.asarray(output)
            ctx._saved = tuple(output if s is scalar else s for s in ctx._saved)
        if _Mode.detect_anomaly:
            ctx.creation_site = _creation_site()
            _check_finite(output, ctx, "forward")
        if not any(ctx.needs_input_grad):
            return _share_version_with_base(Tensor._from_op(output, False, None), args)
        ctx.inputs = _inputs_to_keep(args, ctx._saved)
        if ctx._saved:  # versions are only checked for saved inputs
            ctx._input_versions = {id(a): a._version for a in args if isinstance(a, Tensor)}
        ctx.output_shape, ctx.output_dtype = output.shape, output.dtype
        saves_output = any(s is output for s in ctx._saved)
        ctx._output = output if saves_output else None  # else the output is freed when unused
        result = _share_version_with_base(Tensor._from_op(output, True, ctx), args)
        if saves_output:
            # Watch the output for in-place changes without keeping it alive (no reference cycle).
            ctx._output_ref = weakref.ref(result)
            ctx._output_version = result._version
        return result

    def release(self) -> None:
        """Drop everything this node holds so its arrays can be freed: what it saved, and arrays it
        kept as attributes of its own (a max-pool's argmax, a relu's mask)."""
        self.freed = True
        self.inputs = None
        self._saved = ()
        self._output = None
        for name in [k for k, v in vars(self).items() if isinstance(v, np.ndarray)]:
            delattr(self, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node>"


def _inputs_to_keep(args, saved) -> tuple:
    """``args`` with each op-made input that ``saved`` does not mention replaced by its edge."""
    Tensor = _tensor_module.Tensor
    kept = list(args)
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a.grad_fn is not None:
            for s in saved:
                if s is a.data:
                    break
            else:
                kept[i] = InputEdge(a)
    return tuple(kept)


def _share_version_with_base(result, args):
    """A result that views an input's memory (reshape, transpose, slice) shares its version counter,
    so an in-place change through either is seen when a saved view is checked in backward."""
    base = result.data.base
    if base is not None:
        for a in args:
            if isinstance(a, _tensor_module.Tensor) and (base is a.data or base is a.data.base):
                result._version_counter = a._version_counter
                break
    return result


# ----------------------------------------------------------------------------------------------
# The backward walk
# ----------------------------------------------------------------------------------------------


def topological_order(roots) -> list:
    """Nodes reachable from ``roots``, each after all of its inputs' nodes (iterative DFS)."""
    order, visited = [], set()
    stack = [(node, False) for node in roots]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        if node.freed:
            raise GraphFreedError(_FREED_MESSAGE)
        stack.append((node, True))
        for inp in node.inputs:
            parent = getattr(inp, "grad_fn", None)
            if parent is not None and parent not in visited:
                stack.append((parent, False))
    return order


def _as_tuple(grads, node) -> tuple:
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(node.inputs):
        raise RuntimeError(
            f"{type(node).__name__}.backward returned {len(grads)} gradients, expected "
            f"{len(node.inputs)} (one per positional argument of forward, None where there is none)"
        )
    return grads


def _accumulate(current, new):
    return new if current is None else current + new


def run_backward(roots, root_grads, retain_graph: bool, create_graph: bool, targets=None, observer=None):
    """Propagate ``root_grads`` from ``roots`` (Tensors) to the leaves.

    With ``targets`` (a tuple of Tensors, as in ``grad()``) the gradients with respect to those
    tensors are returned and no ``.grad`` is touched; otherwise leaves accumulate into ``.grad``.
    ``observer(node, seconds)`` is called after each node's backward (used by ``explain``).
    """
    Tensor = _tensor_module.Tensor
    pending: dict = {}  # node -> gradient with respect to its output, summed over consumers
    leaf_grads: dict = {}  # id(leaf) -> (leaf, gradient summed over every path), delivered after the walk
    target_nodes, target_leaves = {}, None
    if targets is not None:
        target_nodes = {id(t.grad_fn): i for i, t in enumerate(targets) if t.grad_fn is not None}
        target_leaves = {id(t) for t in targets if t.grad_fn is None}
    found = [None] * (len(targets) if targets is not None else 0)

    for root, g in zip(roots, root_grads):
        if root.grad_fn is None:  # a leaf used directly as an output
            _gather_leaf_grad(root, g, leaf_grads, target_leaves)
        else:
            pending[root.grad_fn] = _accumulate(pending.get(root.grad_fn), g)

    order = topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
    if targets is not None:
        order = _prune_to_targets(order, target_nodes, target_leaves)

    timer = time.perf_counter if observer else None
    with set_grad_enabled(create_graph):
        for node in reversed(order):
            grad = pending.pop(node, None)
            if grad is None:
                continue
            grad = _run_hooks(getattr(node, "output_hooks", ()), grad)
            retained = getattr(node, "retained_output", None)  # set by Tensor.retain_grad, a weakref
            if targets is None and retained is not None and retained() is not None:
                _store_grad(retained(), grad, create_graph)
            if id(node) in target_nodes:
                found[target_nodes[id(node)]] = grad
            start = timer() if timer else 0.0
            grads = _as_tuple(_call_backward(node, grad), node)
            for inp, g, needed in zip(node.inputs, grads, node.needs_input_grad):
                if g is None or not needed:
                    continue
                if not isinstance(g, Tensor):
                    g = Tensor(g)
                if g.shape != inp.shape:
                    raise RuntimeError(
                        f"{type(node).__name__}.backward returned a gradient of shape {g.shape} for an "
                        f"input of shape {inp.shape}"
                    )
                if _Mode.detect_anomaly:
                    _check_finite(g.data, node, "backward")
                if inp.grad_fn is None:
                    _gather_leaf_grad(inp, g, leaf_grads, target_leaves)
                else:
                    pending[inp.grad_fn] = _accumulate(pending.get(inp.grad_fn), g)
            if observer:
                observer(node, timer() - start)
            if not retain_graph:
                node.release()
        # Leaves last, so that each leaf's hooks see its whole gradient once, as a node's hooks do.
        for key, (leaf, g) in leaf_grads.items():
            g = _run_hooks(leaf._hooks or (), g)
            if targets is None:
                _store_grad(leaf, g, create_graph)
            leaf_grads[key] = (leaf, g)

    if targets is None:
        return None
    for i, t in enumerate(targets):
        if t.grad_fn is None and id(t) in leaf_grads:
            found[i] = leaf_grads[id(t)][1]
    return tuple(found)


def _call_backward(node, grad):
    """``node.backward``; under anomaly mode the node is remembered while it runs, so that a NaN or
    Inf made by one of the ops its backward is written with is reported as this node's."""
    if not _Mode.detect_anomaly:
        return node.backward(node, grad)
    previous, _Mode.backward_node = _Mode.backward_node, node
    try:
        return node.backward(node, grad)
    finally:
        _Mode.backward_node = previous


def _gather_leaf_grad(leaf, g, leaf_grads, target_leaves) -> None:
    """Sum the contributions reaching a leaf; under ``grad()`` only the leaves asked for count."""
    if target_leaves is not None and id(leaf) not in target_leaves:
        return
    previous = leaf_grads.get(id(leaf), (leaf, None))[1]
    leaf_grads[id(leaf)] = (leaf, _accumulate(previous, g))


def _run_hooks(hooks, grad):
    """Call each ``register_hook`` hook in order; one that returns a value replaces the gradient."""
    Tensor = _tensor_module.Tensor
    for hook in tuple(hooks):  # a copy: a hook may remove itself
        replaced = hook(grad)
        if replaced is None:
            continue
        if not isinstance(replaced, Tensor):
            replaced = Tensor(np.asarray(replaced, dtype=grad.dtype))
        if replaced.shape != grad.shape:
            name = getattr(hook, "__qualname__", repr(hook))
            raise RuntimeError(
                f"hook {name} returned a gradient of shape {replaced.shape} for a tensor of shape {grad.shape}"
            )
        grad = replaced
    return grad


def _store_grad(tensor, g, create_graph) -> None:
    """Accumulate ``g`` into ``tensor.grad`` (a leaf, or a non-leaf after ``retain_grad``)."""
    if not tensor.requires_grad:
        return
    if not create_graph:
        # A fresh writable array: the same gradient object may reach several leaves (x + y) or be a
        # read-only broadcast view, and optimizers update .grad in place.
        g = _tensor_module.Tensor(memory.copy(g.data, tensor.dtype))
    tensor.grad = _accumulate(tensor.grad, g)


def _prune_to_targets(order, target_nodes, target_leaves) -> list:
    """Keep only the nodes through which a gradient can reach one of ``grad()``'s inputs."""
    useful = set()
    for node in order:  # inputs first, so a node's parents are already classified
        if id(node) in target_nodes or any(
            (getattr(inp, "grad_fn", None) in useful) or id(inp) in target_leaves for inp in node.inputs
        ):
            useful.add(node)
    return [node for node in order if node in useful]


def _initial_grads(outputs, grad_outputs):
    Tensor = _tensor_module.Tensor
    grads = []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(
                "element of the outputs does not require grad and has no grad_fn: nothing to "
                "differentiate (was it computed under no_grad, or from tensors without requires_grad=True?)"
            )
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs, but the output has shape "
                    f"{out.shape}; pass gradient= (a tensor of that shape), or reduce it first, e.g. .sum()"
                )
            g = Tensor(np.ones_like(out.data))
        elif not isinstance(g, Tensor):
            g = Tensor(np.asarray(g, dtype=out.dtype))
        if g.shape != out.shape:
            raise RuntimeError(f"gradient has shape {g.shape}, but the output has shape {out.shape}")
        grads.append(g)
    return grads


def backward(tensor, gradient=None, retain_graph=None, create_graph=False, observer=None) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's ``.grad`` (what ``Tensor.backward`` calls).
    ``observer`` is passed to ``run_backward`` (``explain`` uses it)."""
    if retain_graph is None:
        retain_graph = create_graph
    grads = _initial_grads([tensor], [gradient])
    run_backward([tensor], grads, retain_graph, create_graph, observer=observer)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple (``.grad`` is untouched).

    As ``torch.autograd.grad``: ``grad_outputs`` defaults to ones for scalar outputs; with
    ``create_graph=True`` the returned gradients are themselves differentiable.
    """
    Tensor = _tensor_module.Tensor
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"input {i} of grad() does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    root_grads = _initial_grads(outputs, grad_outputs)
    found = run_backward(list(outputs), root_grads, retain_graph, create_graph, targets=inputs)
    for i, g in enumerate(found):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"input {i} of grad() (shape {inputs[i].shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    if not create_graph:
        found = tuple(None if g is None else g.detach() for g in found)
    return found


# The engine creates Tensors and Tensors call the engine. Importing the module object (not the
# class) at the bottom works whichever of the two modules is imported first.
from . import tensor_class as _tensor_module  # noqa: E402
