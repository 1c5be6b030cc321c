"""viz.to_dot / viz.render, and the walkthrough document generated with them."""
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn as nn
from tinygrad_cnn import Tensor, viz
from tinygrad_cnn.autograd import GraphFreedError

ROOT = Path(__file__).resolve().parents[1]

NODE = re.compile(r'^    (\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r'^    (\w+) -> (\w+)(?: \[label="(\d+)"\])?;$')


def parse(dot: str):
    """{id: (label lines, attributes)} and [(source, target, argument position or None)]."""
    lines = dot.splitlines()
    assert lines[0] == "digraph tinygrad_cnn {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if line.lstrip().startswith(("node [", "edge [")):
            continue
        if m := EDGE.match(line):
            edges.append((m[1], m[2], None if m[3] is None else int(m[3])))
        elif m := NODE.match(line):
            assert m[1] not in nodes, f"{m[1]} defined twice"
            nodes[m[1]] = (m[2].split("\\n"), m[3])
        else:
            raise AssertionError(f"unexpected DOT line: {line!r}")
    for source, target, _ in edges:  # every edge joins defined nodes, the source defined first
        ids = list(nodes)
        assert ids.index(source) < ids.index(target)
    return nodes, edges


def small_graph():
    """relu(x @ w + b).sum(), with x named by its attribute and w, b named by params."""
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    x.name = "x"
    w = Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
    b = Tensor(np.zeros(4, dtype=np.float32), requires_grad=True)
    hidden = (x @ w + b).relu()
    hidden.name = "hidden"
    loss = hidden.sum()
    loss.name = "loss"
    return loss, {"layer.weight": w, "layer.bias": b}


def by_title(nodes):
    return {lines[0]: node_id for node_id, (lines, _) in nodes.items()}


def test_to_dot_of_a_small_graph():
    loss, params = small_graph()
    nodes, edges = parse(viz.to_dot(loss, params=params))
    ops = {k: v for k, v in nodes.items() if k.startswith("n")}
    leaves = {k: v for k, v in nodes.items() if k.startswith("t")}
    assert [lines[0] for lines, _ in ops.values()] == ["MatMul", "Add", "hidden = Relu", "loss = Sum"]
    assert [lines[1] for lines, _ in ops.values()] == ["(2, 4) float32"] * 3 + ["() float32"]
    assert {lines[0]: lines[1:] for lines, _ in leaves.values()} == {
        "x": ["(2, 3) float32", "requires grad"],
        "layer.weight": ["(3, 4) float32", "parameter"],
        "layer.bias": ["(4,) float32", "parameter"],
    }
    ids = by_title(nodes)
    assert sorted(edges) == sorted([
        (ids["x"], ids["MatMul"], 0), (ids["layer.weight"], ids["MatMul"], 1),
        (ids["MatMul"], ids["Add"], 0), (ids["layer.bias"], ids["Add"], 1),
        (ids["Add"], ids["hidden = Relu"], None), (ids["hidden = Relu"], ids["loss = Sum"], None),
    ])
    assert "peripheries=2" in nodes[ids["loss = Sum"]][1]  # the result is marked
    assert "peripheries" not in nodes[ids["Add"]][1]
    assert "#cfe2ff" in nodes[ids["layer.weight"]][1] and "#fff3c4" in nodes[ids["x"]][1]


def test_to_dot_is_deterministic_and_ids_follow_the_visiting_order():
    first, params = small_graph()
    second, params2 = small_graph()
    text = viz.to_dot(first, params=params)
    assert text == viz.to_dot(first, params=params) == viz.to_dot(second, params=params2)
    ids = [NODE.match(line)[1] for line in text.splitlines() if NODE.match(line)]
    assert [i for i in ids if i.startswith("n")] == ["n0", "n1", "n2", "n3"]
    assert [i for i in ids if i.startswith("t")] == ["t0", "t1", "t2"]


def test_to_dot_show_saved_lists_what_each_op_keeps():
    loss, params = small_graph()
    nodes, _ = parse(viz.to_dot(loss, params=params, show_saved=True))
    labels = {lines[0]: lines[2:] for lines, _ in nodes.values()}
    assert labels["MatMul"] == ["saves input 0 (2, 3) float32", "saves input 1 (3, 4) float32"]
    assert labels["hidden = Relu"] == ["saves positive (2, 4) bool"]  # where its output is positive: a byte each
    assert labels["Add"] == ["saves nothing"]


def test_a_tensor_used_twice_is_one_node_with_two_edges():
    x = Tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse(viz.to_dot(x * x))
    assert len(nodes) == 2
    assert sorted(edges) == [("t0", "n0", 0), ("t0", "n0", 1)]


def test_constants_are_drawn_dashed_and_numbers_are_not_drawn():
    x = Tensor([1.0, 2.0], requires_grad=True)
    constant = Tensor([5.0, 6.0])
    out = (x - np.ones(2, dtype=np.float32)) * constant * 3
    nodes, edges = parse(viz.to_dot(out))
    labels = {node_id: lines for node_id, (lines, _) in nodes.items()}
    assert labels["c0"] == ["constant array", "(2,) float32"]
    assert labels["t1"] == ["(2,) float32", "no grad"]
    assert all("dashed" in nodes[i][1] for i in ("c0", "t1"))
    assert [lines[0] for i, lines in labels.items() if i.startswith("n")] == ["Sub", "Mul", "Mul"]
    assert ("t1", "n1", 1) in edges and len(edges) == 5  # x, c0 -> Sub; Sub, t1 -> Mul; Mul -> Mul (the 3 is not drawn)


def test_parameters_of_a_module_are_named_automatically():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    out = model(Tensor(np.ones((4, 3), dtype=np.float32))).sum()
    titles = {lines[0] for lines, _ in parse(viz.to_dot(out, params=model))[0].values()}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= titles
    # unnamed: Parameters are still marked as parameters
    nodes, _ = parse(viz.to_dot(out))
    assert sum(lines[-1] == "parameter" for lines, _ in nodes.values()) == 4
    nodes, _ = parse(viz.to_dot(out, params=list(model.parameters())))
    assert sum(lines[-1] == "parameter" for lines, _ in nodes.values()) == 4


def test_names_are_escaped():
    x = Tensor([1.0], requires_grad=True)
    x.name = 'say "hi" \\ bye'
    nodes, _ = parse(viz.to_dot(x * 2))
    assert nodes["t0"][0][0] == 'say \\"hi\\" \\\\ bye'


def test_a_lone_leaf_is_one_node():
    x = Tensor([1.0], requires_grad=True)
    x.name = "x"
    nodes, edges = parse(viz.to_dot(x))
    assert list(nodes) == ["t0"] and nodes["t0"][0] == ["x", "(1,) float32", "requires grad"] and edges == []


def test_to_dot_after_backward_explains_that_the_graph_is_freed():
    loss, _ = small_graph()
    loss.backward()
    with pytest.raises(GraphFreedError, match="to_dot.*retain_graph=True"):
        viz.to_dot(loss)
    kept, _ = small_graph()
    kept.backward(retain_graph=True)
    assert "MatMul" in viz.to_dot(kept)


# ---- render ---------------------------------------------------------------------------------------


def test_render_without_the_graphviz_package_writes_dot_text(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    loss, params = small_graph()
    with pytest.warns(viz.GraphvizMissingWarning, match="graphviz Python package"):
        written = viz.render(loss, tmp_path / "graph.svg", params=params)
    assert written == tmp_path / "graph.dot"
    assert written.read_text() == viz.to_dot(loss, params=params)
    assert not (tmp_path / "graph.svg").exists()


def test_render_without_the_dot_program_writes_dot_text(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    loss, _ = small_graph()
    with pytest.warns(viz.GraphvizMissingWarning, match="dot program"):
        written = viz.render(loss, tmp_path / "graph.png")
    assert written.suffix == ".dot" and written.read_text().startswith("digraph")


def test_render_dot_format_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    loss, _ = small_graph()
    written = viz.render(loss, tmp_path / "graph.dot")
    assert written.read_text() == viz.to_dot(loss)


def test_render_rejects_unknown_formats(tmp_path):
    loss, _ = small_graph()
    with pytest.raises(ValueError, match="format"):
        viz.render(loss, tmp_path / "graph.gif")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("format, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_render_with_graphviz(tmp_path, format, magic):
    pytest.importorskip("graphviz")
    loss, params = small_graph()
    written = viz.render(loss, tmp_path / f"graph.{format}", params=params)
    assert written == tmp_path / f"graph.{format}"
    image = written.read_bytes()
    assert image.startswith(magic)
    if format == "svg":
        assert all(word in image.decode() for word in ("MatMul", "layer.weight", "loss = Sum"))


# ---- the walkthrough document -----------------------------------------------------------------------


def load_walkthrough_script():
    spec = importlib.util.spec_from_file_location("make_walkthrough", ROOT / "scripts" / "make_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_walkthrough_document_is_up_to_date():
    script = load_walkthrough_script()
    markdown, dot = script.build()
    assert (ROOT / "docs" / "seed_cnn_graph.dot").read_text() == dot, "run python scripts/make_walkthrough.py"
    assert (ROOT / "docs" / "graph_walkthrough.md").read_text() == markdown, "run python scripts/make_walkthrough.py"
    # the committed drawing shows the same graph: every op and parameter of the DOT text is in it
    svg = (ROOT / "docs" / "seed_cnn_graph.svg").read_text()
    titles = {lines[0] for lines, _ in parse(dot)[0].values()}
    assert all(title in svg for title in titles)
    assert "MaxPool2d" in titles and "0.weight" in titles
