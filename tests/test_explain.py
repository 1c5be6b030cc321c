"""explain(loss): the backward walk as rows, saved bytes per node, and the same gradients as backward;
explain_jvp(f, primals, tangents): a forward-mode pass as rows, one per JVP rule, and the same
results as func.jvp."""
import threading

import numpy as np
import pytest

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Function, Tensor, explain, func
from tinygrad_cnn.autograd import GraphFreedError, topological_order
from tinygrad_cnn.explain import BackwardReport, JvpReport, explain_jvp, saved_arrays


def small_cnn(seed=0):
    """Conv -> relu -> max-pool -> flatten -> dense -> cross-entropy, with its parameters."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
    params = {
        "conv.weight": Tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32), requires_grad=True),
        "conv.bias": Tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True),
        "fc.weight": Tensor(rng.standard_normal((4, 27)).astype(np.float32), requires_grad=True),
        "fc.bias": Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True),
    }
    h = F.relu(F.conv2d(x, params["conv.weight"], params["conv.bias"]))
    h = F.max_pool2d(h, 2).flatten(1)
    loss = F.cross_entropy(F.linear(h, params["fc.weight"], params["fc.bias"]), np.array([0, 3]))
    return loss, params


def row(report, op):
    (found,) = [r for r in report.rows if r.op == op]
    return found


# ---- the order of the rows ---------------------------------------------------------------------


def test_rows_follow_the_backward_visiting_order():
    loss, _ = small_cnn()
    order = topological_order([loss.grad_fn])
    expected = [(type(n).__name__, n.output_shape) for n in reversed(order)]
    report = explain(loss)
    assert [(r.op, r.output_shape) for r in report.rows] == expected
    assert [r.step for r in report.rows] == list(range(1, len(order) + 1))
    assert report.rows[0].op == "Div" and report.rows[0].output_shape == ()  # the mean: created last


def test_a_node_used_twice_is_visited_once_after_both_consumers():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    ops = [r.op for r in explain((y * 2 + y.log()).sum()).rows]
    assert sorted(ops) == sorted(["Sum", "Add", "Mul", "Log", "Exp"])
    assert ops.index("Exp") > max(ops.index("Mul"), ops.index("Log"))
    np.testing.assert_allclose(x.grad.data, 2 * np.exp([1.0, 2.0]) + 1, rtol=1e-6)


# ---- what counts as saved ------------------------------------------------------------------------


def test_matmul_saves_both_operands():
    a = Tensor(np.ones((3, 5), dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones((5, 2), dtype=np.float64), requires_grad=True)
    (matmul,) = [n for n in topological_order([(a.double() @ b).grad_fn]) if type(n).__name__ == "MatMul"]
    saved = saved_arrays(matmul)
    assert [(s.name, s.shape, s.dtype) for s in saved] == [("input 0", (3, 5), np.float64), ("input 1", (5, 2), np.float64)]
    assert sum(s.nbytes for s in saved) == 3 * 5 * 8 + b.data.nbytes
    report = explain((a.double() @ b).sum())
    mm = row(report, "MatMul")
    assert mm.saved_bytes == 3 * 5 * 8 + b.data.nbytes and mm.new_bytes == 0  # both are its inputs


def test_relu_keeps_a_mask_exp_its_output_and_add_nothing():
    x = Tensor(np.ones((4, 6), dtype=np.float32), requires_grad=True)
    report = explain((x + 1).relu().exp().sum())
    relu = row(report, "Relu")  # where its output is positive, a byte each: new memory
    assert [(s.name, s.dtype, s.shared) for s in relu.saved] == [("positive", np.dtype(bool), False)]
    assert relu.saved_bytes == relu.new_bytes == 4 * 6
    exp = row(report, "Exp")  # its own output, which exists anyway: shared
    assert [(s.name, s.shared) for s in exp.saved] == [("output", True)]
    assert exp.saved_bytes == 4 * 6 * 4 and exp.new_bytes == 0
    assert row(report, "Add").saved == ()


def test_max_pool_keeps_its_argmax_as_new_memory():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    pool = row(explain(F.max_pool2d(x, 2).sum()), "MaxPool2d")
    assert [(s.name, s.shape, s.dtype, s.shared) for s in pool.saved] == [("argmax", (2, 3, 4, 4), np.uint8, False)]
    assert pool.saved_bytes == pool.new_bytes == 2 * 3 * 4 * 4


def test_max_keeps_its_share_mask():
    x = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    maximum = row(explain(x.amax(dim=1).sum()), "Max")
    assert [(s.name, s.shape) for s in maximum.saved] == [("share", (3, 4))]
    assert maximum.new_bytes == 12 * 4


def test_an_array_kept_twice_counts_once():
    x = Tensor(np.ones(10, dtype=np.float32), requires_grad=True)
    mul = row(explain((x * x).sum()), "Mul")
    assert [s.name for s in mul.saved] == ["input 0"] and mul.saved_bytes == 40


def test_advanced_index_arrays_are_counted():
    x = Tensor(np.ones((5, 3), dtype=np.float32), requires_grad=True)
    index = np.array([0, 2, 2, 4])
    getitem = row(explain(x[index].sum()), "GetItem")
    assert [(s.name, s.shape) for s in getitem.saved] == [("index[0]", (4,))]
    assert getitem.saved_bytes == index.nbytes


def test_arrays_made_in_forward_and_saved_are_new_memory():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            twice = 2 * x  # a fresh array, saved for backward
            ctx.save_for_backward(twice)
            ctx._scratch = np.zeros(7)  # any ndarray attribute counts, underscores too
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (twice,) = ctx.saved_tensors
            return grad * twice

    x = Tensor(np.arange(3, dtype=np.float32), requires_grad=True)
    square = row(explain(Square.apply(x).sum()), "Square")
    assert [(s.name, s.shared, s.nbytes) for s in square.saved] == [("saved[0]", False, 12), ("_scratch", False, 56)]
    np.testing.assert_array_equal(x.grad.data, [0, 2, 4])


def test_saved_views_of_an_input_are_shared():
    class FirstColumn(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x[:, :1])  # a view: no memory of its own
            ctx.shape = x.shape
            return x[:, 0].copy()

        @staticmethod
        def backward(ctx, grad):
            out = np.zeros(ctx.shape, dtype=grad.dtype)
            out[:, 0] = grad.data
            return Tensor(out)

    x = Tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
    node = FirstColumn.apply(x).grad_fn
    assert [(s.name, s.shared, s.nbytes) for s in saved_arrays(node)] == [("saved[0]", True, 16)]


def test_totals_count_rows_and_distinct_arrays():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    w = Tensor(np.ones((3, 3), dtype=np.float32), requires_grad=True)
    report = explain((x.exp() @ w).sum())
    exp, mm = row(report, "Exp"), row(report, "MatMul")
    assert report.saved_bytes == exp.saved_bytes + mm.saved_bytes == 2 * x.data.nbytes + w.data.nbytes
    # exp's output is also MatMul's input 0: one array, counted once among the distinct ones
    assert report.unique_saved_bytes == mm.saved_bytes == x.data.nbytes + w.data.nbytes
    assert report.new_bytes == 0
    loss, _ = small_cnn()
    report = explain(loss)
    own = [r.new_bytes for r in report.rows if r.op in ("MaxPool2d", "Relu")]  # argmax, masks
    assert report.new_bytes == sum(r.new_bytes for r in report.rows) == sum(own) > 0


# ---- the same backward as .backward() -------------------------------------------------------------


def test_gradients_after_explain_equal_those_after_backward():
    loss, params = small_cnn(seed=1)
    loss.backward()
    expected = {name: p.grad.data.copy() for name, p in params.items()}
    loss, params = small_cnn(seed=1)
    report = explain(loss)
    for name, p in params.items():
        np.testing.assert_array_equal(p.grad.data, expected[name], err_msg=name)
    assert isinstance(report, BackwardReport)


def test_explain_frees_the_graph_like_backward_and_keeps_it_when_asked():
    loss, params = small_cnn()
    explain(loss)
    with pytest.raises(GraphFreedError):
        explain(loss)
    loss, params = small_cnn()
    first = explain(loss, retain_graph=True)
    once = params["fc.weight"].grad.data.copy()
    second = explain(loss)
    np.testing.assert_allclose(params["fc.weight"].grad.data, 2 * once, rtol=1e-6)
    assert [(r.op, r.saved_bytes) for r in first.rows] == [(r.op, r.saved_bytes) for r in second.rows]


def test_explain_passes_gradient_and_create_graph_on():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="scalar outputs"):
        explain(y)
    explain(y, gradient=Tensor([1.0, 10.0]), create_graph=True)
    np.testing.assert_array_equal(x.grad.data, [2, 40])
    assert x.grad.requires_grad  # differentiable, as with backward(create_graph=True)


def test_hooks_run_under_explain():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 0)
    explain((x * 3).sum())
    np.testing.assert_array_equal(x.grad.data, [0, 0])


# ---- the table ---------------------------------------------------------------------------------------


def test_table_has_one_line_per_row_and_per_extra_saved_array():
    loss, _ = small_cnn()
    report = explain(loss)
    lines = str(report).splitlines()
    header = lines[0].split()
    assert header == ["step", "op", "output", "saved", "for", "backward", "bytes", "new", "bytes", "ms"]
    body = lines[2 : 2 + sum(max(len(r.saved), 1) for r in report.rows)]
    steps = [line.split()[0] for line in body if line[:4].strip()]
    assert steps == [str(r.step) for r in report.rows]
    conv = next(line for line in body if " Conv2d " in line)
    assert f"{row(report, 'Conv2d').saved_bytes:,}" in conv and "input 0 (2, 1, 8, 8) float32" in conv
    total = lines[2 + len(body) + 1]
    assert total.split()[:3] == ["total", str(len(report.rows)), "nodes"]
    assert f"{report.saved_bytes:,}" in total and f"{report.new_bytes:,}" in total
    assert all(r.seconds >= 0 for r in report.rows)
    assert report.backward_seconds <= report.wall_seconds
    assert "ms" not in report.table(times=False).splitlines()[0].split()
    assert repr(report) == str(report)


# ---- explain_jvp: a forward-mode pass ------------------------------------------------------------------


def small_cnn_logits(x, conv_w, conv_b, fc_w, fc_b):
    """Conv -> relu -> max-pool -> flatten -> linear, as a function of all its tensors."""
    h = F.max_pool2d(F.relu(F.conv2d(x, conv_w, conv_b)), 2).flatten(1)
    return F.linear(h, fc_w, fc_b)


def small_cnn_arguments(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(2, 1, 6, 6), (3, 1, 3, 3), (3,), (4, 12), (4,)]
    primals = tuple(Tensor(rng.standard_normal(s)) for s in shapes)
    tangents = tuple(Tensor(rng.standard_normal(s)) for s in shapes)
    return primals, tangents


def test_a_jvp_of_a_small_cnn_lists_one_rule_per_primitive_in_order_with_tangent_shapes():
    primals, tangents = small_cnn_arguments()
    report = explain_jvp(small_cnn_logits, primals, tangents)
    assert isinstance(report, JvpReport)
    expected = [  # (op, output and tangent shape, arguments that brought a tangent)
        ("Conv2d", (2, 3, 4, 4), (0, 1, 2)),
        ("Relu", (2, 3, 4, 4), (0,)),
        ("MaxPool2d", (2, 3, 2, 2), (0,)),
        ("Reshape", (2, 12), (0,)),  # flatten
        ("Permute", (12, 4), (0,)),  # the transpose of the dense weight
        ("MatMul", (2, 4), (0, 1)),
        ("Add", (2, 4), (0, 1)),  # the bias
    ]
    assert [(r.op, r.tangent_shape, r.tangent_from) for r in report.rows] == expected
    assert [r.output_shape for r in report.rows] == [shape for _, shape, _ in expected]
    assert [r.step for r in report.rows] == list(range(1, 8))
    for r in report.rows:
        assert r.output_bytes == r.tangent_bytes == 8 * int(np.prod(r.output_shape))
        assert r.graph_bytes is None  # forward mode alone records no graph
    out, tangent = func.jvp(small_cnn_logits, primals, tangents)
    np.testing.assert_allclose(report.output.data, out.data, rtol=1e-12)
    np.testing.assert_allclose(report.tangent.data, tangent.data, rtol=1e-12)
    assert report.graph_nodes == report.graph_bytes == 0
    # the transpose of the dense weight is a view of a primal, its tangent a view of a tangent passed
    # in: no memory made, so nothing more alive than after the flatten (itself a view of the pool's)
    flatten, permute = report.rows[3], report.rows[4]
    assert permute.alive_bytes == flatten.alive_bytes == 2 * 8 * 2 * 12


def test_aux_passes_through_as_with_func_jvp():
    report = explain_jvp(lambda t: (t.exp(), {"note": 1}), (Tensor([0.0]),), (Tensor([3.0]),), has_aux=True)
    assert report.aux == {"note": 1} and [r.op for r in report.rows] == ["Exp"]
    np.testing.assert_allclose(report.tangent.data, [3.0])


def test_only_the_arguments_that_carry_tangents_run_rules():
    primals, tangents = small_cnn_arguments()
    zero = [Tensor(np.zeros(p.shape)) for p in primals]
    only_image = (tangents[0], *zero[1:])
    ops = [r.op for r in explain_jvp(lambda x: small_cnn_logits(x, *primals[1:]), primals[:1], only_image[:1]).rows]
    assert ops == ["Conv2d", "Relu", "MaxPool2d", "Reshape", "MatMul", "Add"]  # no Permute: the weight is a constant


def test_a_tangent_lives_as_long_as_its_value():
    x, v = Tensor(np.ones(1000)), Tensor(np.full(1000, 0.5))
    report = explain_jvp(lambda t: t.exp().exp().exp(), (x,), (v,))
    assert [r.op for r in report.rows] == ["Exp"] * 3
    assert report.tangent_bytes == 3 * 8000
    # while exp k runs, exp k - 1 (its argument) and its tangent are alive; the one before is gone
    assert [r.alive_tangent_bytes for r in report.rows] == [8000, 16000, 16000]
    assert [r.alive_bytes for r in report.rows] == [16000, 32000, 32000]
    assert report.peak_alive_tangent_bytes == 16000 < report.tangent_bytes


def test_forward_over_reverse_lists_the_backward_primitives_and_the_graph_they_record():
    primals, tangents = small_cnn_arguments(seed=1)
    x, w = primals[0], primals[1]

    def loss(weight):
        return (small_cnn_logits(x, weight, *primals[2:]) ** 2).sum()

    report = explain_jvp(func.grad(loss), (w,), (tangents[1],))
    _, hvp = func.hvp(loss, (w,), (tangents[1],))
    np.testing.assert_allclose(report.tangent.data, hvp[0].data, rtol=1e-10)
    ops = [r.op for r in report.rows]
    assert ops.index("Conv2d") < ops.index("Sum") < ops.index("Conv2dWeightGrad") == len(ops) - 1  # forward, then backward
    assert report.graph_nodes > 0 and report.graph_bytes > 0  # grad needs the forward's graph
    conv = report.rows[ops.index("Conv2d")]
    assert conv.tangent_from == (1,) and conv.graph_bytes > 0


def test_a_report_inside_an_outer_jvp_lists_only_its_own_level():
    x, v, outer = Tensor(np.array([0.5, 1.0])), Tensor(np.array([1.0, 2.0])), Tensor(np.array([1.0, 0.0]))
    reports = []

    def inner(t):
        reports.append(explain_jvp(lambda y: y.exp(), (t,), (v,)))
        return reports[-1].tangent

    _, second = func.jvp(inner, (x,), (outer,))
    (report,) = reports
    assert [r.op for r in report.rows] == ["Exp"]  # not the Mul of Exp's rule, carrying the outer tangent
    np.testing.assert_allclose(second.data, np.exp(x.data) * v.data * outer.data)


def test_a_jvp_nested_inside_f_is_not_listed_even_when_it_runs_first():
    def f(x):
        _, inner = func.jvp(lambda c: c.exp(), (Tensor([1.0]),), (Tensor([1.0]),))  # its own level, on a constant
        return x.sin() * inner

    report = explain_jvp(f, (Tensor([0.5]),), (Tensor([2.0]),))
    assert [(r.op, r.tangent_from) for r in report.rows] == [("Sin", (0,)), ("Mul", (0,))]
    np.testing.assert_allclose(report.tangent.data, np.cos(0.5) * 2.0 * np.e)


def test_the_watch_is_per_thread():
    barrier = threading.Barrier(2, timeout=30)

    def mine(t):
        y = t.exp()
        barrier.wait()  # the other thread runs its JVP now
        barrier.wait()
        return y.sin()

    def other():
        barrier.wait()
        func.jvp(lambda t: t.tanh().cos(), (Tensor([1.0]),), (Tensor([1.0]),))
        barrier.wait()

    thread = threading.Thread(target=other)
    thread.start()
    report = explain_jvp(mine, (Tensor([0.5]),), (Tensor([1.0]),))
    thread.join()
    assert [r.op for r in report.rows] == ["Exp", "Sin"]


def test_the_jvp_table_has_a_line_per_rule_and_totals():
    primals, tangents = small_cnn_arguments()
    report = explain_jvp(small_cnn_logits, primals, tangents)
    lines = report.table(times=False).splitlines()
    assert lines[0].split()[:5] == ["step", "op", "output", "tangent", "from"] and "ms" not in lines[0].split()
    body = lines[2 : 2 + len(report.rows)]
    assert [line.split()[1] for line in body] == [r.op for r in report.rows]
    assert "input 0, input 1, input 2" in body[0] and "(2, 3, 4, 4)" in body[0]
    total = lines[3 + len(report.rows)]
    assert total.split()[:3] == ["total", "7", "rules"] and f"peak {report.peak_alive_bytes:,}" in total
    assert f"Tangents made: {report.tangent_bytes:,} bytes" in lines[-1]
    assert str(report).splitlines()[0].split()[-1] == "ms" and repr(report) == str(report)
