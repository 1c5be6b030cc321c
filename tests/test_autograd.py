"""The engine (``tinygrad_cnn/autograd.py``): gradient accumulation over reused tensors, deep graphs,
freeing the graph, ``backward`` and ``grad()`` as in PyTorch, grad mode, and custom ``Function``s."""
import importlib.util
import pathlib
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import Function, Tensor
from tinygrad_cnn.autograd import is_anomaly_enabled
from tinygrad_cnn.testing import check_gradients, gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as S

# ---- accumulation over every path -------------------------------------------------------------------


def test_a_tensor_used_twice_gets_the_sum_of_both_paths():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, -3.0, 7.0])


def test_gradients_accumulate_over_backward_calls_until_reset():
    x = Tensor([2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0 + 4.0])
    x.grad = None
    (x * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [5.0])


# a random DAG: each step combines two earlier values (any of them, so values are reused)
STEPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "sub": lambda a, b: a - b,
    "tanh_mix": lambda a, b: (a * 0.5 + b).tanh(),
    "sigmoid": lambda a, b: a.sigmoid() * b,
}


@st.composite
def programs(draw):
    n_inputs = draw(st.integers(1, 3))
    steps = []
    for k in range(draw(st.integers(1, 8))):
        available = n_inputs + k
        steps.append((draw(st.sampled_from(sorted(STEPS))), draw(st.integers(0, available - 1)), draw(st.integers(0, available - 1))))
    shape = draw(S.shapes(max_dims=2))
    inputs = [draw(S.tensors(shape, elements=st.floats(-1.5, 1.5))) for _ in range(n_inputs)]
    return steps, inputs


def run_program(steps, *inputs):
    values = list(inputs)
    for name, i, j in steps:
        values.append(STEPS[name](values[i], values[j]))
    return values[-1]


@given(program=programs())
def test_random_graphs_that_reuse_values_have_correct_gradients(program):
    steps, inputs = program
    check_gradients(lambda *xs: run_program(steps, *xs), *inputs)


# ---- the engine's own sum of two gradients -----------------------------------------------------------

DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int64])


@given(shapes=S.broadcastable_shapes(), dtypes=st.tuples(DTYPES, DTYPES), data=st.data())
def test_the_engine_sums_two_gradients_as_the_tensor_add_does_bit_for_bit_into_a_fresh_array(shapes, dtypes, data):
    (shape_a, shape_b), _ = shapes
    a = Tensor(data.draw(S.arrays(shape_a, dtype=dtypes[0])))
    b = Tensor(data.draw(S.arrays(shape_b, dtype=dtypes[1])))
    with tg.no_grad():
        expected = a + b  # the Tensor op the engine stands in for
    total = tg.autograd._Walk(None, create_graph=False).sum_grads(a, b)
    assert type(total.data) is np.ndarray and total.grad_fn is None and not total.requires_grad
    assert total.dtype == expected.dtype and total.shape == expected.shape
    np.testing.assert_array_equal(total.data, expected.data, strict=True)
    assert not np.shares_memory(total.data, a.data) and not np.shares_memory(total.data, b.data)


def test_a_leaf_used_many_times_gets_the_same_gradient_whether_or_not_the_sums_are_recorded():
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    grads = []
    for create_graph in (False, True):  # without create_graph the engine adds the arrays itself
        x = Tensor(data, requires_grad=True)
        y = x
        for _ in range(20):
            y = (y * 1.001 + 0.5).tanh() - x
        y.sum().backward(create_graph=create_graph)
        grads.append(x.grad.data)
    np.testing.assert_array_equal(grads[0], grads[1], strict=True)


def test_an_overflowing_sum_of_gradients_is_still_caught_by_anomaly_mode():
    x = Tensor(np.array([1e-3], dtype=np.float16), requires_grad=True)
    with tg.autograd.detect_anomaly():
        y = x * 60000.0 + x * 60000.0  # each path's gradient is finite, their sum is not (float16)
        with pytest.raises(tg.autograd.AnomalyError, match="Add produced Inf"):
            y.sum().backward()


def test_a_chain_of_100000_ops_backpropagates_without_recursion():
    x = Tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward(Tensor(np.array([2.0])))
    np.testing.assert_array_equal(y.data, [100_000.5])
    np.testing.assert_array_equal(x.grad.data, [2.0])


# ---- the graph is freed ------------------------------------------------------------------------------------


def test_a_second_backward_through_a_freed_graph_asks_for_retain_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    z = (x.exp() * x).sum()
    tg.grad(z, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        tg.grad(z, x)


def test_retain_graph_allows_a_second_backward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0]))))


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(Tensor([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, 20.0])


def test_backward_returning_the_wrong_number_of_gradients_is_named():
    class TwoInputsOneGradient(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="TwoInputsOneGradient.backward returned 1 gradients, expected 2"):
        TwoInputsOneGradient.apply(x, x).sum().backward()


# ---- grad() ------------------------------------------------------------------------------------------------


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    x.grad = Tensor([100.0, 100.0])
    gx, gy = tg.grad((x * y).sum(), (x, y))
    np.testing.assert_array_equal(gx.data, [3.0, 4.0])
    np.testing.assert_array_equal(gy.data, [1.0, 2.0])
    np.testing.assert_array_equal(x.grad.data, [100.0, 100.0])
    assert y.grad is None
    (only,) = tg.grad((x * y).sum(), x)
    assert isinstance(only, Tensor) and not only.requires_grad


def test_grad_of_an_unused_input_needs_allow_unused():
    x, unused = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tg.grad((x * 2).sum(), (x, unused))
    gx, g_unused = tg.grad((x * 2).sum(), (x, unused), allow_unused=True)
    np.testing.assert_array_equal(gx.data, [2.0])
    assert g_unused is None


def test_grad_with_create_graph_can_be_differentiated_again():
    x = Tensor([0.5, -2.0], requires_grad=True)
    (first,) = tg.grad((x**3).sum(), x, create_graph=True)  # 3x^2
    assert first.requires_grad
    np.testing.assert_allclose(first.data, 3 * x.data**2)
    (second,) = tg.grad(first.sum(), x, create_graph=True)  # 6x
    np.testing.assert_allclose(second.data, 6 * x.data)
    (third,) = tg.grad(second.sum(), x)  # 6
    np.testing.assert_allclose(third.data, [6.0, 6.0])
    assert x.grad is None


def test_grad_with_grad_outputs_is_a_vector_jacobian_product():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = tg.grad(x * x, x, grad_outputs=Tensor([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(g.data, [2.0, 0.0, -6.0])


def test_grad_with_respect_to_an_intermediate_tensor():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    (gh,) = tg.grad((h * h).sum(), h)
    np.testing.assert_array_equal(gh.data, 2 * h.data)


# ---- grad mode ---------------------------------------------------------------------------------------------


def test_no_grad_and_enable_grad_as_context_managers():
    x = Tensor([1.0], requires_grad=True)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            z = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_and_enable_grad_as_decorators():
    @tg.no_grad()
    def evaluate(t):
        assert not tg.is_grad_enabled()
        return t * 2

    @tg.enable_grad()
    def train_step(t):
        return t * 2

    x = Tensor([1.0], requires_grad=True)
    assert not evaluate(x).requires_grad
    with tg.no_grad():
        assert train_step(x).requires_grad
    assert tg.is_grad_enabled()
    assert evaluate.__name__ == "evaluate"


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_set_grad_enabled():
    with tg.set_grad_enabled(False):
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_the_engine_module_exports_the_modes_and_the_walk():
    from tinygrad_cnn import autograd, modes

    for name in ("no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "detect_anomaly",
                 "is_anomaly_enabled", "AnomalyError"):
        assert getattr(autograd, name) is getattr(modes, name)
    for name in ("Function", "InputEdge", "GraphFreedError", "grad", "backward", "run_backward", "topological_order"):
        assert callable(getattr(autograd, name))


def test_set_grad_enabled_called_without_with_takes_effect_at_once():
    x = Tensor([1.0], requires_grad=True)
    try:
        tg.set_grad_enabled(False)
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
        tg.set_grad_enabled(True)
        assert (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)


def test_mode_blocks_restore_what_they_found_when_nested_reused_and_left_by_an_exception():
    block = tg.no_grad()
    with block:
        with tg.set_grad_enabled(True):
            with block:  # the same block object, entered again inside itself
                assert not tg.is_grad_enabled()
            assert tg.is_grad_enabled()
        with pytest.raises(ZeroDivisionError), tg.enable_grad(), tg.detect_anomaly():
            assert tg.is_grad_enabled() and is_anomaly_enabled()
            1 / 0
        assert not tg.is_grad_enabled() and not is_anomaly_enabled()
    assert tg.is_grad_enabled()


# ---- what a node holds -------------------------------------------------------------------------------------


class KeepsArrays(Function):
    """y = 2x, keeping arrays every way a node can: saved input, output and a new array, an array
    attribute and a tuple of arrays; and a Python value, which is not an array."""

    @staticmethod
    def forward(ctx, x):
        y = 2 * x
        ctx.mask = x > 0
        ctx.index = (np.arange(x.shape[0]),)
        ctx.input_shape = x.shape
        ctx.save_for_backward(x, y, np.ones(3))
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


def test_held_arrays_names_what_a_node_keeps_and_release_drops_all_of_it():
    x = Tensor([1.0, -2.0], requires_grad=True)
    y = KeepsArrays.apply(x)
    node = y.grad_fn
    held = node.held_arrays()
    assert [name for name, _ in held] == ["input 0", "output", "saved[2]", "mask", "index[0]"]
    assert held[0][1] is x.data and held[1][1] is y.data
    index_array = weakref.ref(node.index[0])
    del held
    y.sum().backward()
    assert node.freed and node.held_arrays() == []
    assert not hasattr(node, "mask") and not hasattr(node, "index") and node.input_shape == (2,)
    assert index_array() is None, "an array inside a tuple attribute outlived the release"
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


# ---- custom ops with Function ----------------------------------------------------------------------------------


class ScaledProduct(Function):
    """f(x, y, c) = c * x * y with a constant c: two gradients and a None."""

    @staticmethod
    def forward(ctx, x, y, c):
        ctx.c = c
        ctx.save_for_backward(x, y)
        return c * x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        needs_x, needs_y, _ = ctx.needs_input_grad
        return (grad * y * ctx.c if needs_x else None, grad * x * ctx.c if needs_y else None, None)


@given(data=st.data())
def test_a_custom_function_passes_the_gradient_checks(data):
    shape = data.draw(S.shapes(), label="shape")
    x, y = data.draw(S.tensors(shape), label="x"), data.draw(S.tensors(shape), label="y")
    out = ScaledProduct.apply(x, y, 2.5)
    np.testing.assert_allclose(out.data, 2.5 * x.data * y.data)
    assert isinstance(out.grad_fn, ScaledProduct)
    assert gradcheck(lambda a, b: ScaledProduct.apply(a, b, 2.5), (x, y))
    assert gradgradcheck(lambda a, b: ScaledProduct.apply(a, b, 2.5), (x, y))


def load_example(name):
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_custom_op_example_is_importable_and_its_op_is_proven():
    example = load_example("custom_op")
    x = Tensor(np.array([-2.0, 0.0, 1.5]), requires_grad=True)
    np.testing.assert_allclose(example.softplus(x).data, np.log1p(np.exp(x.data)))
    assert check_gradients(example.softplus, x)
    example.test_softplus_gradients()  # the example's own property test, run by Hypothesis
