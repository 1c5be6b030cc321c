"""``explain(loss)``: run backward and say what it did, one row per graph node, in the order
backward visited them.

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

``tinygrad_cnn.explain`` is the function; import the rest with ``from tinygrad_cnn.explain import
BackwardReport, saved_arrays``.
"""
from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np

from . import autograd
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
        columns = len(headers)  # without times the last cell of each line is dropped
        widths = [max(len(line[i]) for line in [headers, *lines, total]) for i in range(columns)]

        def fmt(cells):
            numeric = (0, 4, 5, 6)
            return "  ".join(
                cell.rjust(width) if i in numeric else cell.ljust(width) for i, (cell, width) in enumerate(zip(cells, widths))
            ).rstrip()

        rule = "  ".join("-" * width for width in widths)
        text = [fmt(headers), rule, *map(fmt, lines), rule, fmt(total)]
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
