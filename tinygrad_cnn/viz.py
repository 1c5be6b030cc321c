"""Draw the graph behind a tensor: ``to_dot`` writes Graphviz DOT text, ``render`` turns it into an
SVG or PNG when Graphviz is installed (and writes the DOT text otherwise).

The drawing shows what backward will walk, in data-flow direction (inputs at the top, the result at
the bottom):

* an ellipse per op node (``tensor.grad_fn`` and everything reachable from it): the op's name and
  its output's shape and dtype, prefixed by the tensor's name when it has one (``loss = Div``);
  the result's node has a double border;
* a box per leaf tensor: blue for parameters, yellow for other tensors that require grad, dashed
  grey for tensors that need no gradient ("no grad", such as the input images) and for NumPy arrays
  passed to an op ("constant array", such as the one-hot targets of cross-entropy);
  Python numbers and hyperparameters (shapes, strides) are not drawn;
* an edge from each input to the op that consumes it, labelled with the argument's position when
  the op has several drawn inputs (``Sub`` and ``MatMul`` care about order).

Node ids are given in a fixed visiting order (``n0, n1, ...`` for ops in ``topological_order``,
``t0, ...`` for leaves, ``c0, ...`` for constant arrays), so the same graph always gives the same
text.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from . import autograd
from .explain import format_shape, saved_arrays
from .nn.module import Parameter
from .tensor_class import Tensor

_DASHED_GREY = 'shape=box, style="rounded,dashed", color="#888888", fontcolor="#555555"'
_LEAF_STYLES = {
    "parameter": 'shape=box, style="rounded,filled", fillcolor="#cfe2ff"',
    "requires grad": 'shape=box, style="rounded,filled", fillcolor="#fff3c4"',
    "no grad": _DASHED_GREY,
    "constant array": _DASHED_GREY,
}


class GraphvizMissingWarning(UserWarning):
    """``render`` could not find the ``graphviz`` package or the ``dot`` program and wrote DOT text."""


def _parameter_names(params) -> dict:
    """id(tensor) -> name (None when unnamed), from a Module (its ``named_parameters()``), a dict
    name -> tensor, (name, tensor) pairs, or plain tensors (``model.parameters()``)."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    items = params.items() if isinstance(params, dict) else params
    pairs = ((None, item) if isinstance(item, Tensor) else item for item in items)
    return {id(tensor): name for name, tensor in pairs}


def _describe(array) -> str:
    return f"{format_shape(np.shape(array))} {np.asarray(array).dtype}"


def _label(*lines) -> str:
    """A quoted DOT label; ``\\n`` between lines is DOT's centred line break."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def to_dot(tensor: Tensor, params=None, show_saved: bool = False) -> str:
    """Graphviz DOT text of the graph behind ``tensor`` (see the module docstring).

    ``params`` names the parameters: a Module (its ``named_parameters()``), a dict name -> tensor,
    (name, tensor) pairs, or tensors; a tensor without a name there is labelled with its ``name``
    attribute. Instances of ``nn.Parameter`` are marked as parameters even when not listed.
    With ``show_saved=True`` each op also lists what it keeps for backward (``explain.saved_arrays``).
    Call it before ``backward``, which frees the graph (or pass ``retain_graph=True`` to backward).
    """
    names = _parameter_names(params)
    try:
        order = autograd.topological_order([tensor.grad_fn]) if tensor.grad_fn is not None else []
    except autograd.GraphFreedError:
        raise autograd.GraphFreedError(
            "to_dot: the graph behind this tensor was freed by backward; draw it before calling "
            "backward, or call backward(retain_graph=True)"
        ) from None

    ids: dict = {}  # id(node or leaf or constant array) -> DOT id
    leaf_count = {"t": 0, "c": 0}
    lines = ["digraph tinygrad_cnn {", '    node [fontname="Helvetica", fontsize=10];', '    edge [color="#444444", fontname="Helvetica", fontsize=9];']
    # names of non-leaf tensors are only visible where they are used as inputs (and for the result)
    output_names = {id(tensor.grad_fn): tensor.name} if tensor.name else {}
    for node in order:
        for inp in node.inputs:
            if isinstance(inp, (Tensor, autograd.InputEdge)) and inp.grad_fn is not None and inp.name:
                output_names.setdefault(id(inp.grad_fn), inp.name)

    def leaf_id(value) -> str:
        if id(value) in ids:
            return ids[id(value)]
        if isinstance(value, Tensor):
            prefix = "t"
            name = names.get(id(value)) or value.name
            kind = "parameter" if id(value) in names or isinstance(value, Parameter) else (
                "requires grad" if value.requires_grad else "no grad"
            )
            label = _label(*([name] if name else []), _describe(value.data), kind)
        else:
            prefix, kind, label = "c", "constant array", _label("constant array", _describe(value))
        dot_id = ids[id(value)] = f"{prefix}{leaf_count[prefix]}"
        leaf_count[prefix] += 1
        lines.append(f"    {dot_id} [label={label}, {_LEAF_STYLES[kind]}];")
        return dot_id

    if tensor.grad_fn is None:  # a lone leaf
        leaf_id(tensor)
    for number, node in enumerate(order):
        inputs = [(position, inp) for position, inp in enumerate(node.inputs)
                  if isinstance(inp, (Tensor, autograd.InputEdge, np.ndarray))]
        sources = [ids[id(inp.grad_fn)] if getattr(inp, "grad_fn", None) is not None else leaf_id(inp) for _, inp in inputs]
        dot_id = ids[id(node)] = f"n{number}"
        title = type(node).__name__
        if id(node) in output_names:
            title = f"{output_names[id(node)]} = {title}"
        label_lines = [title, f"{format_shape(node.output_shape)} {node.output_dtype}"]
        if show_saved:
            saved = saved_arrays(node)
            label_lines += [f"saves {s}" for s in saved] or ["saves nothing"]
        extra = ", peripheries=2" if node is tensor.grad_fn else ""
        lines.append(f"    {dot_id} [label={_label(*label_lines)}{extra}];")
        for (position, _), source in zip(inputs, sources):
            edge_label = f' [label="{position}"]' if len(inputs) > 1 else ""
            lines.append(f"    {source} -> {dot_id}{edge_label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor: Tensor, path, format: str = None, params=None, show_saved: bool = False) -> Path:
    """Draw the graph behind ``tensor`` into ``path`` and return the path written.

    ``format`` is ``"svg"`` or ``"png"`` (by default the extension of ``path``, else svg). This needs
    the ``graphviz`` Python package and Graphviz's ``dot`` program; without them the DOT text is
    written next to it (``path`` with the suffix ``.dot``), a ``GraphvizMissingWarning`` says so,
    and that ``.dot`` path is returned.
    """
    path = Path(path)
    format = (format or path.suffix.lstrip(".") or "svg").lower()
    if format not in ("svg", "png", "dot"):
        raise ValueError(f"render: format must be 'svg', 'png' or 'dot', got {format!r}")
    text = to_dot(tensor, params=params, show_saved=show_saved)
    if format != "dot":
        image, reason = _run_dot(text, format)
        if image is not None:
            path.write_bytes(image)
            return path
        warnings.warn(f"render: {reason}; wrote the DOT text instead", GraphvizMissingWarning, stacklevel=2)
        path = path.with_suffix(".dot")
    path.write_text(text)
    return path


def _run_dot(text: str, format: str):
    """(image bytes, None), or (None, why not) when Graphviz is missing."""
    try:
        import graphviz
    except ImportError:
        return None, "the graphviz Python package is not installed (pip install graphviz)"
    try:
        return graphviz.Source(text).pipe(format=format), None
    except graphviz.ExecutableNotFound:
        return None, "Graphviz's dot program was not found on PATH (install Graphviz, e.g. apt install graphviz)"
