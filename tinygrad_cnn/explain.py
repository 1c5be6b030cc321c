"""``explain(loss)``: run backward and say what it did, one row per graph node, in the order
backward visited them; ``explain_jvp(f, primals, tangents)``: the same for a forward-mode pass,
one row per JVP rule, in the order they ran.

Call ``explain(loss)`` instead of ``loss.backward()``: it is the same backward pass (same arguments,
same gradients, the graph freed the same way), and it returns a ``BackwardReport`` whose ``rows``
hold, for every node, its op, its output, what it kept from forward for its backward, and the time
its backward took. ``print(report)`` shows them as a table.

What counts as "saved"
----------------------
Everything an op node keeps only so that its backward can run, as the engine lists it
(``Function.held_arrays``, the same list ``release`` drops):

* each array passed to ``ctx.save_for_backward``, named ``input i`` when it is the array of the
  op's positional argument ``i``, ``output`` when it is the op's result, and ``saved[k]`` otherwise;
* every NumPy array the op stored as an attribute of ``ctx`` (``argmax`` of max-pooling, the
  ``share`` mask of max, an advanced ``index``), including arrays inside tuple or list attributes.

Each distinct array counts once per node, at its ``nbytes`` (its logical size: a broadcast view
counts as if it were materialised). Not counted: Python values such as shapes and hyperparameters.
The graph holds no other arrays: an input made by another op that the node did not save is kept in
``ctx.inputs`` only as an ``InputEdge`` (the link to the op that made it), and the output only
when it is saved, so activations that no backward needs are freed during the forward pass.

An array whose memory belongs to one of the node's inputs or to its output is ``shared``: saving
it copies nothing, it keeps alive an activation that the forward pass made anyway. ``new_bytes``
counts the others, the memory that exists only because backward will need it.

Timings come from ``time.perf_counter`` around each node's ``backward`` and the routing of its
gradients; leaves' ``.grad`` are written after the walk and count only in ``wall_seconds``.

Forward mode: ``explain_jvp``
----------------------------
``explain_jvp(f, primals, tangents)`` is ``func.jvp(f, primals, tangents)`` (same arguments, same
results) that also says what the forward-mode pass did: one row per primitive whose JVP rule ran,
in the order they ran, with the shape of the tangent the rule made, which inputs brought a tangent,
the bytes of the output and of its tangent, whether a graph node was recorded too (under
forward-over-reverse, where ``f`` itself takes gradients), and how many bytes of the outputs and
tangents made so far were still alive when it finished.

Why a function of ``f`` and not ``explain(output)`` of a dual tensor: forward mode keeps no record
of what it did (that is its point: a tangent lives and dies with its value), so there is nothing to
read afterwards; ``explain_jvp`` has to run the pass itself, as ``explain`` runs backward.

"Alive" counts the memory the pass made, once per buffer: a tangent that is a view of another (a
reshape's) adds nothing, a view of a primal or tangent passed in (a weight's transpose) counts
nothing, and a tensor counts until Python drops its last reference. Sizes are logical, as
everywhere in ``explain`` (``nbytes`` of the tensors using a buffer, the largest of them), so they
do not depend on the kernels: a kernel may return a view of a somewhat larger workspace. The
``bytes`` column is the logical size of the output and its tangent, views included. The rule's time is measured around the
JVP rule alone (``Function.jvp``, at every level the op carries), not the op's forward kernel.

``tinygrad_cnn.explain`` is the function; import the rest with ``from tinygrad_cnn.explain import
BackwardReport, saved_arrays, explain_jvp, JvpReport``.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from . import autograd, forward_ad, func
from .tensor_class import Tensor

@dataclass(frozen=True)
class SavedArray:
    """One array a node keeps for its backward."""

    name: str  # "input 0", "output", "saved[2]", or the ctx attribute it is stored in ("argmax")
    shape: tuple
    dtype: np.dtype
    nbytes: int
    shared: bool  # its memory belongs to an input or the output of the node

    def __str__(self) -> str:
        return f"{self.name} {format_shape(self.shape)} {self.dtype}"


@dataclass(frozen=True)
class BackwardStep:
    """One node of the backward walk."""

    step: int  # 1 for the first node visited (the one that produced the loss)
    op: str
    output_shape: tuple
    output_dtype: np.dtype
    saved: tuple  # of SavedArray
    seconds: float  # time spent in this node's backward

    @property
    def saved_bytes(self) -> int:
        return sum(s.nbytes for s in self.saved)

    @property
    def new_bytes(self) -> int:
        return sum(s.nbytes for s in self.saved if not s.shared)


def format_shape(shape) -> str:
    """``(4, 8, 24, 24)``, ``(10,)``, ``()``: as Python prints a tuple of ints."""
    return str(tuple(int(n) for n in shape))


def saved_arrays(node) -> tuple:
    """What ``node`` (a graph node, ``tensor.grad_fn``) keeps for its backward, as ``SavedArray``s,
    each distinct array once.

    Call it before backward has visited the node: a visited node has already dropped them (unless
    ``retain_graph=True``). See the module docstring for what counts.
    """
    held = node.held_arrays()
    if not held:
        return ()
    inputs = [i.data if isinstance(i, Tensor) else i for i in node.inputs]
    owners = [a for a in inputs + [array for name, array in held if name == "output"] if isinstance(a, np.ndarray)]
    found, seen = [], set()
    for name, array in held:
        if id(array) in seen:
            continue
        seen.add(id(array))
        array = np.asarray(array)
        shared = any(np.may_share_memory(array, owner) for owner in owners)
        found.append(SavedArray(name, tuple(array.shape), array.dtype, int(array.nbytes), shared))
    return tuple(found)


class BackwardReport:
    """What ``explain`` returns: ``rows`` (``BackwardStep``s in visiting order) and totals;
    ``str(report)`` is the table, ``report.table(times=False)`` the same without timings."""

    def __init__(self, rows, unique_saved_bytes: int, wall_seconds: float):
        self.rows = rows
        self.unique_saved_bytes = unique_saved_bytes  # each array once, even if several nodes keep it
        self.wall_seconds = wall_seconds  # the whole backward call: sorting, nodes, writing .grad

    @property
    def saved_bytes(self) -> int:
        return sum(row.saved_bytes for row in self.rows)

    @property
    def new_bytes(self) -> int:
        return sum(row.new_bytes for row in self.rows)

    @property
    def backward_seconds(self) -> float:
        return sum(row.seconds for row in self.rows)

    def table(self, times: bool = True) -> str:
        """The rows as a text table, one saved array per line, then the totals."""
        headers = ["step", "op", "output", "saved for backward", "bytes", "new bytes"] + (["ms"] if times else [])
        lines = []
        for row in self.rows:
            saved = [str(s) for s in row.saved] or ["-"]
            output = f"{format_shape(row.output_shape)} {row.output_dtype}"
            lines.append([str(row.step), row.op, output, saved[0], f"{row.saved_bytes:,}", f"{row.new_bytes:,}",
                          f"{row.seconds * 1e3:.3f}"])
            lines.extend(["", "", "", more, "", "", ""] for more in saved[1:])
        total = ["", "total", f"{len(self.rows)} nodes", "", f"{self.saved_bytes:,}", f"{self.new_bytes:,}",
                 f"{self.backward_seconds * 1e3:.3f}"]
        text = _aligned(headers, lines, total, numeric=(0, 4, 5, 6))
        text.append(
            f"Distinct arrays kept for backward: {self.unique_saved_bytes:,} bytes ({_human(self.unique_saved_bytes)}); "
            f"kept only for backward: {self.new_bytes:,} bytes ({_human(self.new_bytes)})."
        )
        if times:
            text.append(
                f"Backward took {self.wall_seconds * 1e3:.3f} ms in all, {self.backward_seconds * 1e3:.3f} ms of it in the nodes."
            )
        return "\n".join(text)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__  # so that explain(loss) at the prompt shows the table


def _aligned(headers, lines, total, numeric) -> list:
    """The lines of a text table: the header, a rule, the lines, a rule, the total; the columns in
    ``numeric`` aligned right. There are as many columns as headers: a line's cells past them (its
    time, in a table without times) are left out."""
    columns = len(headers)
    widths = [max(len(line[i]) for line in [headers, *lines, total]) for i in range(columns)]

    def fmt(cells):
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width) for i, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [fmt(headers), rule, *map(fmt, lines), rule, fmt(total)]


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def explain(tensor, gradient=None, retain_graph=None, create_graph=False) -> BackwardReport:
    """``tensor.backward(gradient, retain_graph, create_graph)``, returning a ``BackwardReport`` of
    the walk: one row per node, in the order backward visited it.

    The gradients are those ``backward`` gives, and the graph is freed as it would be. What each
    node saved is read before the walk starts, while the graph is intact.
    """
    nodes = autograd.topological_order([tensor.grad_fn]) if tensor.grad_fn is not None else []
    before = {node: (type(node).__name__, node.output_shape, node.output_dtype, saved_arrays(node)) for node in nodes}
    # all arrays are alive until the walk starts, so their ids tell them apart
    unique = {id(array): np.asarray(array).nbytes for node in nodes for _, array in node.held_arrays()}
    visits = []
    start = perf_counter()
    autograd.backward(tensor, gradient, retain_graph, create_graph, observer=lambda node, seconds: visits.append((node, seconds)))
    wall = perf_counter() - start
    rows = [BackwardStep(step, *before[node], seconds) for step, (node, seconds) in enumerate(visits, 1)]
    return BackwardReport(rows, sum(unique.values()), wall)


# ---- forward mode ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JvpStep:
    """One primitive of a forward-mode pass: its JVP rule ran and gave its output a tangent."""

    step: int  # 1 for the first primitive that carried a tangent
    op: str
    output_shape: tuple
    output_dtype: np.dtype
    tangent_from: tuple  # positions of the arguments that brought a tangent
    tangent_shape: tuple
    output_bytes: int
    tangent_bytes: int
    graph_bytes: int | None  # what the node keeps for backward, when one was recorded (else None)
    alive_bytes: int  # outputs and tangents of the steps so far still alive after this one
    alive_tangent_bytes: int  # the tangents among them
    seconds: float  # time in the JVP rule


class JvpReport:
    """What ``explain_jvp`` returns: ``output`` and ``tangent`` (``func.jvp``'s results), ``rows``
    (``JvpStep``s in the order the rules ran) and totals; ``str(report)`` is the table,
    ``report.table(times=False)`` the same without timings."""

    def __init__(self, output, tangent, rows, wall_seconds: float, aux=None):
        self.output, self.tangent, self.rows, self.aux = output, tangent, rows, aux
        self.wall_seconds = wall_seconds  # the whole pass: forward kernels and JVP rules

    @property
    def tangent_bytes(self) -> int:
        """Every tangent the pass made, as if none were ever freed."""
        return sum(row.tangent_bytes for row in self.rows)

    @property
    def peak_alive_tangent_bytes(self) -> int:
        return max((row.alive_tangent_bytes for row in self.rows), default=0)

    @property
    def peak_alive_bytes(self) -> int:
        return max((row.alive_bytes for row in self.rows), default=0)

    @property
    def graph_nodes(self) -> int:
        return sum(row.graph_bytes is not None for row in self.rows)

    @property
    def graph_bytes(self) -> int:
        return sum(row.graph_bytes or 0 for row in self.rows)

    @property
    def jvp_seconds(self) -> float:
        return sum(row.seconds for row in self.rows)

    def table(self, times: bool = True) -> str:
        """The rows as a text table, then the totals."""
        headers = ["step", "op", "output", "tangent from", "tangent", "bytes", "graph bytes", "alive bytes"]
        headers += ["ms"] if times else []
        lines = [
            [str(r.step), r.op, f"{format_shape(r.output_shape)} {r.output_dtype}",
             ", ".join(f"input {i}" for i in r.tangent_from), format_shape(r.tangent_shape),
             f"{r.output_bytes + r.tangent_bytes:,}", "-" if r.graph_bytes is None else f"{r.graph_bytes:,}",
             f"{r.alive_bytes:,}", f"{r.seconds * 1e3:.3f}"]
            for r in self.rows
        ]
        total = ["", "total", f"{len(self.rows)} rules", "", "",
                 f"{sum(r.output_bytes + r.tangent_bytes for r in self.rows):,}", f"{self.graph_bytes:,}",
                 f"peak {self.peak_alive_bytes:,}", f"{self.jvp_seconds * 1e3:.3f}"]
        text = _aligned(headers, lines, total, numeric=(0, 5, 6, 7, 8))
        text.append(
            f"Tangents made: {self.tangent_bytes:,} bytes ({_human(self.tangent_bytes)}); at most "
            f"{self.peak_alive_tangent_bytes:,} bytes ({_human(self.peak_alive_tangent_bytes)}) of them alive at once. "
            f"Graph nodes recorded: {self.graph_nodes}, keeping {self.graph_bytes:,} bytes for backward."
        )
        if times:
            text.append(f"The pass took {self.wall_seconds * 1e3:.3f} ms in all, {self.jvp_seconds * 1e3:.3f} ms of it "
                        "in the JVP rules.")
        return "\n".join(text)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__


def explain_jvp(f, primals, tangents, has_aux: bool = False) -> JvpReport:
    """``func.jvp(f, primals, tangents, has_aux)``, returning a ``JvpReport`` of the pass: one row
    per primitive whose JVP rule ran, in order, with ``report.output`` and ``report.tangent`` (and
    ``report.aux``) the results ``func.jvp`` gives.

    It takes ``f`` rather than an output, unlike ``explain``: forward mode leaves nothing behind to
    read once a dual output exists, so the report must watch the pass as it runs, and ``func.jvp``'s
    signature is the one a user of forward mode already calls.

    Only this thread's pass is reported (as every engine mode, the watch is per thread), and only
    the rules of this pass's own level: a JVP nested inside ``f``, or one around this call, has its
    own level and its rules are not rows here. See the module docstring for what the columns count.
    """
    given = [x.data if isinstance(x, Tensor) else np.asarray(x) for x in (*primals, *tangents)]
    watch = _JvpWatch(set(forward_ad.active_levels()), {id(_buffer(a)) for a in given})
    # the engine calls the watch after each primitive's JVP rules, in this thread only
    token = autograd._JVP_OBSERVERS.set(autograd._JVP_OBSERVERS.get() + (watch.saw,))
    start = perf_counter()
    try:
        results = func.jvp(f, primals, tangents, has_aux=has_aux)
    finally:
        autograd._JVP_OBSERVERS.reset(token)
    wall = perf_counter() - start
    return JvpReport(results[0], results[1], watch.rows, wall, aux=results[2] if has_aux else None)


class _JvpWatch:
    """Collects the rows of one ``explain_jvp`` pass."""

    def __init__(self, levels_before: set, given_buffers: set):
        self.levels_before = levels_before  # the pass's own level is the outermost one opened after these
        self.given_buffers = given_buffers  # ids of the primals' and tangents' memory: not made by the pass
        self.rows = []
        # (weakref to the tensor, id of its buffer, its bytes, is a tangent) for everything made so far;
        # the buffers themselves are not kept, or the report would keep alive what it measures
        self.made = []

    def saw(self, cls, ctx, args, result, levels, seconds) -> None:
        # Levels are listed outermost first. Inside a JVP rule of this pass's level, that level is
        # not active (the rule's own ops carry only the tangents of outer levels): no row for them.
        level = next((level for level in forward_ad.active_levels() if level not in self.levels_before), None)
        if level is None or level not in levels or level not in (result._tangents or {}):
            return
        tangent = result._tangents[level]
        for tensor, is_tangent in ((result, False), (tangent, True)):
            buffer = id(_buffer(tensor.data))
            if buffer not in self.given_buffers:
                self.made.append((weakref.ref(tensor), buffer, int(tensor.data.nbytes), is_tangent))
        # buffer id -> (bytes, whether a tangent uses it); a tensor alive keeps its buffer alive, so
        # the ids of the buffers of live tensors are distinct buffers
        alive = {}
        for ref, buffer, nbytes, is_tangent in self.made:
            if ref() is not None:
                before_bytes, before_tangent = alive.get(buffer, (0, False))
                alive[buffer] = (max(before_bytes, nbytes), before_tangent or is_tangent)
        recorded = result.grad_fn is ctx
        self.rows.append(JvpStep(
            step=len(self.rows) + 1,
            op=cls.__name__,
            output_shape=tuple(result.shape),
            output_dtype=result.dtype,
            tangent_from=tuple(i for i, a in enumerate(args) if forward_ad.tangent_of(a, level) is not None),
            tangent_shape=tuple(tangent.shape),
            output_bytes=int(result.data.nbytes),
            tangent_bytes=int(tangent.data.nbytes),
            graph_bytes=sum(s.nbytes for s in saved_arrays(ctx)) if recorded else None,
            alive_bytes=sum(nbytes for nbytes, _ in alive.values()),
            alive_tangent_bytes=sum(nbytes for nbytes, is_tangent in alive.values() if is_tangent),
            seconds=seconds,
        ))


def _buffer(array: np.ndarray) -> np.ndarray:
    """The array that owns ``array``'s memory (itself, or the base of a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array
