"""The engine: graph nodes (``Function``) and the backward walk (``backward``, ``grad()``).

How the graph is recorded
-------------------------
Every differentiable op is a subclass of ``Function`` with two static methods:

* ``forward(ctx, *args)`` computes the result on plain NumPy arrays (every Tensor argument
  arrives as its ``.data``) and may call ``ctx.save_for_backward(...)``;
* ``backward(ctx, grad_output)`` receives the gradient of the loss with respect to the output
  as a ``Tensor`` and returns one gradient per positional argument of ``forward`` (``None`` where
  there is none). It is written with Tensor operations, so when ``create_graph=True`` the backward
  pass is itself recorded and can be differentiated again.

``Function.apply(*args)`` runs ``forward`` and, when grad mode is on and any Tensor argument
requires grad, returns a Tensor whose ``grad_fn`` is the ``ctx`` object: an instance of the op's
class holding the inputs and whatever was saved. Those ``ctx`` objects *are* the graph. An input
that another op made and this one did not save is held as an ``InputEdge``: the link to the node
that made it, without its array, so an activation no backward needs is freed as soon as the
forward pass has used it. ``Function.held_arrays`` lists what a node keeps for its backward; it is
what ``release`` drops and what ``explain`` reports.

How backward walks it
---------------------
``run_backward`` sorts the nodes reachable from the output topologically (an iterative depth-first
search, so a chain of 100,000 ops needs no recursion), then visits them from the output towards the
leaves: it *arrives* at a node once every consumer has sent its share of the gradient (so the
gradient of a tensor used twice is the sum of both paths), calls the node's ``backward``, and *sends*
each resulting gradient to the input it belongs to. Leaves (tensors with no ``grad_fn``) gather
theirs until the end of the walk, then accumulate into ``.grad``. Unless ``retain_graph=True``, each
node drops its inputs and saved arrays as soon as it has been visited, which releases the
activations while backward is still running.

Hooks (``Tensor.register_hook``) see a tensor's gradient once, summed over every path into it, and
may replace it: a non-leaf's hooks run when its node is visited, a leaf's as soon as the last node
that uses it has been visited, just before ``.grad`` is written (and then its post-accumulate
hooks run, ``Tensor.register_post_accumulate_grad_hook``). ``retain_grad`` keeps the gradient after the hooks.

Grad mode and anomaly mode live in ``modes.py`` (per thread); their names are exported here too.
"""
from __future__ import annotations

import contextvars
import itertools
import time
import weakref

import numpy as np

from .kernels import active, memory
from .modes import _anomaly_enabled, _grad_enabled, _vmap_depth  # read directly on the hot path (see apply)
from .modes import backward_under_watch, check_finite, creation_site
from .modes import (  # noqa: F401 - the engine's public names include the modes: import them from here too
    AnomalyError,
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)


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
        data = tensor.data
        self.grad_fn, self.shape, self.dtype = tensor.grad_fn, data.shape, data.dtype
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
    # Defaults read on the hot path, so that a node without them needs no getattr fallback.
    _saved = ()  # until save_for_backward
    _output = None  # the output array, kept only when it is saved (else it is freed when unused)
    _jvp_args = None  # set while a JVP rule runs (see _attach_tangents)
    _output_tangents = None  # the saved output's forward-mode tangents, if it has any
    output_hooks = retained_output = None  # set by Tensor.register_hook and Tensor.retain_grad

    @staticmethod
    def forward(ctx, *args, **kwargs) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @staticmethod
    def jvp(ctx, *tangents):
        """Forward mode's rule: the output's tangent, given one tangent per positional argument of
        ``forward`` (None for a constant or an input without tangent). Written with Tensor ops, like
        ``backward``. An op without this rule cannot be used in forward mode (see ``_attach_tangents``)."""
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
        jvp_args = self._jvp_args
        inputs = self.inputs if jvp_args is None else jvp_args
        result = []
        for value in self._saved:
            if isinstance(value, np.ndarray):
                # an op has a few inputs: a loop is cheaper than a dict by id (the last input
                # holding the array wins, as it did in that dict)
                for source in reversed(inputs):
                    if isinstance(source, Tensor) and source.data is value:
                        if jvp_args is None and source._version_counter[0] != self._input_versions[id(source)]:
                            self._check_version(source)  # raises
                        value = source
                        break
                else:
                    if jvp_args is not None and value is self._jvp_result.data:
                        value = self._jvp_result
                    elif value is self._output:  # None for a node not in the graph
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
        tensor = _tensor_module.Tensor._from_op(self._output, True, self)
        tensor._tangents = self._output_tangents  # forward-over-reverse needs them
        return tensor

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

    # -- what a node holds ----------------------------------------------------------------------

    def held_arrays(self) -> list:
        """``(name, array)`` for each array this node keeps for its backward (the same array may
        come twice, under two names); empty once the node is freed.

        * each array passed to ``save_for_backward``: named ``input i`` when it is the array of
          positional argument ``i``, ``output`` when it is the op's result, ``saved[k]`` otherwise;
        * each array the op's ``forward`` stored as an attribute of ``ctx`` (a max-pool's
          ``argmax``, a relu's ``mask``), and the arrays inside a tuple or list attribute (an
          advanced ``index``: ``index[0]``, ``index[1]``).

        The rest of what a node holds is the graph's bookkeeping (``ENGINE_ATTRIBUTES``): Python
        values, and per input an ``InputEdge``, a leaf Tensor or a constant the caller passed.
        ``release`` drops exactly these arrays, and ``explain`` reports them.
        """
        if self.freed:
            return []
        input_arrays = [_array_of(a) for a in self.inputs]
        held = []
        for k, value in enumerate(self._saved):
            array = _array_of(value)
            if array is None:
                continue
            position = next((i for i, a in enumerate(input_arrays) if a is array), None)
            name = f"input {position}" if position is not None else "output" if array is self._output else f"saved[{k}]"
            held.append((name, array))
        for attribute in self._array_attributes():
            held.extend((attribute + suffix, array) for suffix, array in _arrays_in(getattr(self, attribute)))
        return held

    def _array_attributes(self) -> list:
        """The attributes the op's ``forward`` set on ``ctx`` that hold arrays."""
        return [name for name, value in vars(self).items() if name not in ENGINE_ATTRIBUTES and _holds_arrays(value)]

    def release(self) -> None:
        """Drop everything this node holds so its arrays can be freed (``held_arrays``): what it
        saved, its inputs, and the arrays it kept as attributes of its own."""
        attributes = vars(self)
        # Most ops' forwards set no attribute of their own: one check in C first (on a Mul's 10
        # attributes about 1,800 instructions, where the loop below takes 4,500; cachegrind).
        if not ENGINE_ATTRIBUTES.issuperset(attributes):
            dropped = ()  # those that hold arrays (as _array_attributes); a plain loop, as this runs
            for name in attributes:  # for many nodes (a set difference took about 1.5 times as long)
                if name not in ENGINE_ATTRIBUTES and _holds_arrays(attributes[name]):
                    dropped += (name,)
            for name in dropped:
                del attributes[name]
        self.freed = True
        self.inputs = None
        self._saved = ()
        if "_output" in attributes:  # only a node that saved its output has it (or its tangents)
            self._output = self._output_tangents = None

    # -- running the op --------------------------------------------------------------------------

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the arrays behind ``args`` and record the node when a gradient is needed.

        This runs for every op, in forward and in every backward written with Tensor ops, so it
        reads each per-thread mode once (a ``ContextVar.get``, no function around it) and builds
        no temporary it can avoid: the per-op overhead benchmark counts each of them. (Plain loops
        rather than comprehensions: in Python 3.11 each comprehension is a function call, and two
        of them cost about 0.25 us more than this loop, on ops that take 4 to 5 us in all.)"""
        if _vmap_depth.get() and any(type(a) is _batched_type() for a in args):
            return _batching().dispatch(cls, args, kwargs)  # inside vmap: the op's batching rule
        Tensor = _tensor_module.Tensor
        ctx = cls()
        arrays = []  # what forward receives: each Tensor's array, constants as they are
        if _grad_enabled.get():
            needs = []
            for a in args:
                if isinstance(a, Tensor):
                    arrays.append(a.data)
                    needs.append(a.requires_grad)
                else:
                    arrays.append(a)
                    needs.append(False)
            ctx.needs_input_grad = needs = tuple(needs)
        else:
            for a in args:
                arrays.append(a.data if isinstance(a, Tensor) else a)
            ctx.needs_input_grad = needs = _NO_GRADS[len(args)] if len(args) < 8 else (False,) * len(args)
        levels = _forward_levels.get()
        if levels:
            tangent_levels = _levels_with_tangents(args, levels)
            if tangent_levels:
                return cls._apply_with_tangents(ctx, args, arrays, kwargs, tangent_levels)
        # (a call without **kwargs when there are none: about 300 instructions less, cachegrind)
        output = cls.forward(ctx, *arrays, **kwargs) if kwargs else cls.forward(ctx, *arrays)
        if True not in needs and type(output) is np.ndarray and output.base is None and not _anomaly_enabled.get():
            # nothing to record, check or share (every op of a backward pass without create_graph)
            return Tensor._from_op(output, False, None)
        return cls._record(ctx, output, args)

    @classmethod
    def _apply_with_tangents(cls, ctx, args, arrays, kwargs, tangent_levels):
        """``apply`` when some argument carries a forward-mode tangent: the output, recorded as
        usual, gets its tangent at each of ``tangent_levels`` from the op's JVP rule."""
        # forward keeps what the JVP rule needs as well as what backward needs
        needs_grad = ctx.needs_input_grad
        ctx.needs_input_grad = tuple(n or _carries_tangent(a, tangent_levels) for n, a in zip(needs_grad, args))
        output = cls.forward(ctx, *arrays, **kwargs)
        ctx.needs_input_grad = needs_grad
        result = cls._record(ctx, output, args)
        observers = _JVP_OBSERVERS.get()
        if observers:  # explain_jvp is watching this thread's forward-mode pass
            start = time.perf_counter()
            _attach_tangents(cls, ctx, args, result, tangent_levels)
            seconds = time.perf_counter() - start
            for observe in observers:
                observe(cls, ctx, args, result, tangent_levels, seconds)
        else:
            _attach_tangents(cls, ctx, args, result, tangent_levels)
        return result

    @classmethod
    def _record(cls, ctx, output, args):
        """The output Tensor, and the node in the graph when a gradient is needed."""
        Tensor = _tensor_module.Tensor
        if not isinstance(output, np.ndarray):
            # NumPy returns scalars for 0-d inputs; a saved copy of that scalar must still be
            # recognised as the output, or the backward would treat it as a constant.
            scalar, output = output, np.asarray(output)
            ctx._saved = tuple(output if s is scalar else s for s in ctx._saved)
        if _anomaly_enabled.get():
            ctx.creation_site = creation_site()
            check_finite(output, ctx, "forward")
        if True not in ctx.needs_input_grad:
            result = Tensor._from_op(output, False, None)
            return result if output.base is None else _share_version_with_base(result, args)
        saved = ctx._saved
        if saved:  # versions are only checked for saved inputs
            ctx.inputs, ctx._input_versions = _inputs_to_keep(args, saved)
        else:
            ctx.inputs = _edges_of(args)
        ctx.sequence = next(_NODE_SEQUENCE)  # creation order: which nodes a block of code made
        ctx.output_shape, ctx.output_dtype = output.shape, output.dtype
        result = Tensor._from_op(output, True, ctx)
        if output.base is not None:
            _share_version_with_base(result, args)
        if saved:
            for s in saved:
                if s is output:
                    # Watch the output for in-place changes without keeping it alive (no reference cycle).
                    ctx._output = output
                    ctx._output_ref = weakref.ref(result)
                    ctx._output_version = result._version_counter[0]
                    break
        return result

    @property
    def next_functions(self) -> tuple:
        """torch's view of the graph from this node: one ``(node, 0)`` per positional input, the node
        that made it, an ``AccumulateGrad`` for a leaf that requires grad, or ``(None, 0)``."""
        if self.inputs is None:
            return ()
        edges = []
        for inp in self.inputs:
            producer = getattr(inp, "grad_fn", None)
            if producer is not None:
                edges.append((producer, 0))
            elif getattr(inp, "requires_grad", False):
                edges.append((AccumulateGrad(inp), 0))
            else:
                edges.append((None, 0))
        return tuple(edges)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node>"


class AccumulateGrad:
    """Where ``next_functions`` ends at a leaf that requires grad (torch's name): backward adds the
    gradient into ``variable.grad`` there."""

    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def __repr__(self) -> str:
        return f"<AccumulateGrad for a leaf of shape {self.variable.shape}>"


# What apply() and Tensor (hooks, retain_grad) set on every node for the graph's own bookkeeping. Any
# other attribute holding arrays was set by the op's forward for its backward (see held_arrays).
ENGINE_ATTRIBUTES = frozenset(
    {"inputs", "needs_input_grad", "_saved", "_output", "output_shape", "output_dtype", "_output_ref",
     "_output_version", "_input_versions", "creation_site", "output_hooks", "retained_output", "freed",
     "sequence", "_output_tangents", "_jvp_args", "_jvp_result"}
)
_NODE_SEQUENCE = itertools.count()
# Called as observe(cls, ctx, args, result, levels, seconds) after each primitive's JVP rules ran in
# this thread (explain_jvp's report): per thread, as every engine mode.
_JVP_OBSERVERS = contextvars.ContextVar("tinygrad_cnn JVP observers", default=())
_NO_GRADS = tuple((False,) * n for n in range(8))  # needs_input_grad under no_grad, by argument count


def _levels_with_tangents(args, levels) -> tuple:
    """The active forward-mode levels at which some Tensor argument carries a tangent."""
    found = set()
    for a in args:
        tangents = getattr(a, "_tangents", None)
        if tangents:
            found.update(level for level in tangents if level in levels)
    return tuple(level for level in levels if level in found)


def _carries_tangent(a, levels) -> bool:
    tangents = getattr(a, "_tangents", None)
    return bool(tangents) and any(level in tangents for level in levels)


def _attach_tangents(cls, ctx, args, result, levels) -> None:
    """Give ``result`` its tangent at each level, outermost first, from the op's JVP rule.

    The rule for level L runs with only the levels before L active, so it computes ``J(x) dx``
    for that level's ``dx`` and carries the outer levels' tangents through that computation (a
    derivative of a derivative), never mixing in L's own."""
    Tensor = _tensor_module.Tensor
    if cls.jvp is Function.jvp:
        raise RuntimeError(
            f"{cls.__name__} has no JVP rule, so forward mode cannot go through it: define "
            f"jvp(ctx, *tangents) on {cls.__name__} (next to its backward), returning the output's tangent"
        )
    ctx._jvp_args, ctx._jvp_result = args, result
    ctx.output_shape, ctx.output_dtype = result.shape, result.dtype
    try:
        for level in levels:
            tangents = [forward_ad.tangent_of(a, level) if isinstance(a, Tensor) else None for a in args]
            if all(t is None for t in tangents):
                continue
            with forward_ad._only_levels_below(level):
                tangent = cls.jvp(ctx, *tangents)
            if tangent is None:
                continue
            if not isinstance(tangent, Tensor):
                tangent = Tensor(np.asarray(tangent, dtype=result.dtype))
            if tangent.shape != result.shape:
                raise RuntimeError(f"{cls.__name__}.jvp returned a tangent of shape {tangent.shape} for an output "
                                   f"of shape {result.shape}")
            if result._tangents is None:
                result._tangents = {}
                if getattr(ctx, "_output", None) is not None:  # the saved output: its backward must see them too
                    ctx._output_tangents = result._tangents
            result._tangents[level] = tangent
    finally:
        del ctx._jvp_args, ctx._jvp_result


def _array_of(value):
    """The NumPy array behind a saved value or an input (a Tensor's ``.data``), else None."""
    if isinstance(value, _tensor_module.Tensor):
        value = value.data
    return value if isinstance(value, _ARRAY_TYPES) else None


_ARRAY_TYPES = (np.ndarray, np.generic)


def _arrays_in(value) -> list:
    """``(suffix, array)`` for the NumPy arrays in an attribute: itself, or the items of a tuple or list."""
    if isinstance(value, _ARRAY_TYPES):
        return [("", value)]
    if isinstance(value, (tuple, list)):
        return [(f"[{i}]", v) for i, v in enumerate(value) if isinstance(v, _ARRAY_TYPES)]
    return []


def _holds_arrays(value) -> bool:
    """Whether ``_arrays_in(value)`` is not empty; cheap, as ``release`` asks it of every attribute."""
    if isinstance(value, _ARRAY_TYPES):
        return True
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, _ARRAY_TYPES):
                return True
    return False


def _inputs_to_keep(args, saved) -> tuple:
    """``args`` with each op-made input that ``saved`` does not mention replaced by its edge, and the
    version of each Tensor argument by id (``saved_tensors`` checks those of the saved ones)."""
    Tensor = _tensor_module.Tensor
    kept, versions = None, {}
    for i, a in enumerate(args):
        if not isinstance(a, Tensor):
            continue
        versions[id(a)] = a._version_counter[0]
        if a.grad_fn is not None:
            for s in saved:
                if s is a.data:
                    break
            else:
                if kept is None:
                    kept = list(args)
                kept[i] = InputEdge(a)
    return (args if kept is None else tuple(kept)), versions


def _edges_of(args) -> tuple:
    """``_inputs_to_keep`` for a node that saved nothing: every op-made input becomes its edge."""
    Tensor = _tensor_module.Tensor
    edges = []
    for a in args:  # a loop, not a comprehension: see apply
        edges.append(InputEdge(a) if isinstance(a, Tensor) and a.grad_fn is not None else a)
    return tuple(edges)


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


def run_backward(roots, root_grads, retain_graph: bool, create_graph: bool, targets=None, observer=None):
    """Propagate ``root_grads`` from ``roots`` (Tensors) to the leaves.

    With ``targets`` (a tuple of Tensors, as in ``grad()``) the gradients with respect to those
    tensors are returned and no ``.grad`` is touched; otherwise leaves accumulate into ``.grad``.
    ``observer(node, seconds)`` is called after each node's backward (used by ``explain``).
    """
    walk = _Walk(targets, create_graph)
    for root, g in zip(roots, root_grads):
        walk.send(root, g)
    order = topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
    if targets is not None:
        order = walk.prune(order)
    else:
        walk.plan_leaf_deliveries(order)
    last_users = walk.leaves_last_used_by  # read once: the loop below runs for every node
    anomaly = _anomaly_enabled.get()  # likewise: under anomaly mode every gradient is checked
    timer = time.perf_counter
    with set_grad_enabled(create_graph):  # in this thread only: the backward ops record a graph iff asked
        for node in reversed(order):  # from the output towards the leaves
            grad = walk.arrive(node)
            if grad is not None:  # else no gradient reaches this node
                start = timer() if observer else 0.0
                _send_input_grads(walk, node, grad, anomaly)
                if observer:
                    observer(node, timer() - start)
            if node in last_users:
                walk.deliver_leaves_of(node)
            if not retain_graph:
                node.release()
        walk.deliver_to_leaves()
    return walk.target_grads()


class _Walk:
    """The state of one backward pass: gradients waiting at nodes until every consumer has sent its
    share, gradients gathered per leaf until the end, and, under ``grad()``, the targets' gradients."""

    def __init__(self, targets, create_graph: bool):
        self.create_graph = create_graph
        # Whether two gradients reaching one tensor can be summed by one NumPy add rather than a
        # Tensor add (see ``sum_grads``): read once per walk, as neither changes during it.
        self.plain_sums = not create_graph and not _anomaly_enabled.get()
        self.pending: dict = {}  # node -> gradient with respect to its output, summed over consumers
        self.leaf_grads: dict = {}  # id(leaf) -> (leaf, gradient summed over every path)
        self.targets = targets
        self.found = [None] * len(targets) if targets is not None else []
        # under grad(): which nodes' outputs are targets (-> their position), which leaves are
        self.target_nodes = {} if targets is None else {
            id(t.grad_fn): i for i, t in enumerate(targets) if t.grad_fn is not None
        }
        self.target_leaves = None if targets is None else {id(t) for t in targets if t.grad_fn is None}
        self.leaves_last_used_by = {}  # node -> the leaves it is the last to take (plan_leaf_deliveries)
        self.delivered: set = set()

    def send(self, tensor, g) -> None:
        """Add ``g`` to the gradient of ``tensor`` (a Tensor or an ``InputEdge``): waiting at the node
        that made it, or gathered for the leaf (under ``grad()``, only for the leaves asked for)."""
        node = tensor.grad_fn
        if node is not None:
            previous = self.pending.get(node)
            self.pending[node] = g if previous is None else self.sum_grads(previous, g)
        elif self.target_leaves is None or id(tensor) in self.target_leaves:
            previous = self.leaf_grads.get(id(tensor))
            self.leaf_grads[id(tensor)] = (tensor, g if previous is None else self.sum_grads(previous[1], g))

    def sum_grads(self, a, b):
        """``a + b``, two gradients of one tensor. When the sum is not recorded (no ``create_graph``),
        not checked (no anomaly mode), and carries no forward-mode tangent nor vmap's batch (both
        plain Tensors without tangents), it is the add that the Tensor op would compute, without the
        op's node: ``Add.forward``'s kernel on the two arrays, into a fresh array (never into ``a``
        or ``b``, which may be held elsewhere). torch's engine sums its gradients outside autograd
        too. In the overhead benchmark's chain (issue 15) a quarter of the backward ops are these
        sums: about 24,500 instructions each as a Tensor op, 12,500 this way (cachegrind, 4x4 float32)."""
        if self.plain_sums and type(a) is type(b) is _tensor_module.Tensor and a._tangents is b._tangents is None:
            total = active().elementwise(np.add, a.data, b.data)  # NumPy's broadcasting and type promotion
            return _tensor_module.Tensor._from_op(total if type(total) is np.ndarray else np.asarray(total), False, None)
        return a + b

    def arrive(self, node):
        """The whole gradient with respect to ``node``'s output, now that every consumer has sent
        its share, after that tensor's hooks; kept where ``retain_grad`` or ``grad()`` asked for it.
        None when no gradient reached the node."""
        grad = self.pending.pop(node, None)
        if grad is None:
            return None
        hooks = node.output_hooks
        if hooks:
            grad = _run_hooks(hooks, grad)
        if self.targets is None:
            retained = node.retained_output  # set by Tensor.retain_grad, a weakref
            if retained is not None and retained() is not None:
                _store_grad(retained(), grad, self.create_graph)
        elif id(node) in self.target_nodes:
            self.found[self.target_nodes[id(node)]] = grad
        return grad

    def plan_leaf_deliveries(self, order) -> None:
        """Under ``backward()``: the last node of the walk that takes each leaf as an input, so that
        the leaf's gradient is delivered as soon as that node has been visited
        (``deliver_leaves_of``) rather than after the whole walk; a data-parallel wrapper's
        post-accumulate hooks can then start sending the last layers' gradients while backward goes
        on through the first ones. The walk visits ``order`` backwards: the last to take a leaf is
        the first in ``order``. (Only those nodes are marked, so the walk asks one dict per node
        rather than counting down every use: 250 uses of one leaf in the overhead chain.)"""
        last_users = self.leaves_last_used_by
        seen = set()
        for node in order:
            for inp in node.inputs:  # a plain loop: most nodes take no leaf, and a comprehension costs a call
                if getattr(inp, "grad_fn", 1) is None and inp.requires_grad and id(inp) not in seen:
                    seen.add(id(inp))
                    last_users.setdefault(node, []).append(id(inp))

    def deliver_leaves_of(self, node) -> None:
        """``node`` has been visited: deliver each leaf that no node still to come takes."""
        for key in self.leaves_last_used_by[node]:
            if key in self.leaf_grads:
                self._deliver(key)

    def deliver_to_leaves(self) -> None:
        """After the walk, the leaves not delivered yet (under ``grad()``, all of them)."""
        for key in list(self.leaf_grads):
            if key not in self.delivered:
                self._deliver(key)

    def _deliver(self, key) -> None:
        """A leaf's hooks see its whole gradient once, as a node's hooks do; then it accumulates into
        ``.grad`` (under ``grad()`` it is kept to be returned instead)."""
        leaf, g = self.leaf_grads[key]
        g = _run_hooks(leaf._hooks or (), g)
        if self.targets is None:
            _store_grad(leaf, g, self.create_graph)
        self.leaf_grads[key] = (leaf, g)
        self.delivered.add(key)

    def target_grads(self):
        """Under ``grad()``, one gradient per target (None where none reached it); else None."""
        if self.targets is None:
            return None
        for i, t in enumerate(self.targets):
            if t.grad_fn is None and id(t) in self.leaf_grads:
                self.found[i] = self.leaf_grads[id(t)][1]
        return tuple(self.found)

    def prune(self, order) -> list:
        """Keep only the nodes through which a gradient can reach one of ``grad()``'s targets."""
        useful = set()
        for node in order:  # inputs first, so a node's parents are already classified
            if id(node) in self.target_nodes or any(
                (getattr(inp, "grad_fn", None) in useful) or id(inp) in self.target_leaves for inp in node.inputs
            ):
                useful.add(node)
        return [node for node in order if node in useful]


def _send_input_grads(walk, node, grad, anomaly: bool) -> None:
    """Send each input of ``node`` that needs one its gradient, from ``node.backward``, checked: one
    gradient per positional argument of forward, each of its input's shape (and, under anomaly mode,
    finite). ``node.backward`` is watched under anomaly mode (see ``backward_under_watch``)."""
    grads = backward_under_watch(node, grad) if anomaly else node.backward(node, grad)
    if not isinstance(grads, tuple):
        grads = (grads,)
    inputs = node.inputs
    if len(grads) != len(inputs):
        raise RuntimeError(
            f"{type(node).__name__}.backward returned {len(grads)} gradients, expected "
            f"{len(inputs)} (one per positional argument of forward, None where there is none)"
        )
    Tensor = _tensor_module.Tensor
    for inp, g, needed in zip(inputs, grads, node.needs_input_grad):
        if g is None or not needed:
            continue
        if not isinstance(g, Tensor):
            g = Tensor(g)
        if g.shape != inp.shape:  # one sample's shape when vmap maps this backward (jacrev)
            raise RuntimeError(
                f"{type(node).__name__}.backward returned a gradient of shape {g.shape} for an "
                f"input of shape {inp.shape}"
            )
        if anomaly:
            check_finite(g.data, node, "backward")
        walk.send(inp, g)


def _accumulate(current, new):
    return new if current is None else current + new


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
    for hook in tuple(getattr(tensor, "_post_accumulate_hooks", None) or ()):
        hook(tensor)


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
    if _batching().is_batched(*outputs, *inputs):
        raise RuntimeError("vmap: autograd.grad cannot run inside vmap (it would add up the samples' gradients); "
                           "use tinygrad_cnn.func.grad or func.vjp inside vmap instead")
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
from . import forward_ad  # noqa: E402
from .forward_ad import _ACTIVE as _forward_levels  # noqa: E402  (forward_ad.active_levels, on the hot path)

from . import tensor_class as _tensor_module  # noqa: E402


def _batching():
    """batching.py, imported when first needed (it builds on the Tensor, which builds on this)."""
    from . import batching

    return batching


def _batched_type():
    return _batching().BatchedTensor
