"""The testing kit proves gradients only if it can also *disprove* them: a wrong backward must fail
with a message that points at the input and element, and gives both values; a backward that is right
at first order but not differentiable correctly must fail the second-order check, and one right up
to order k must pass every order up to k and fail order k + 1, naming it, in both modes. And the
strategies must draw what they promise."""
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Function, Tensor
from tinygrad_cnn.testing import GradcheckError, check_dtype_preserved, check_gradients, gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as S

# ---- cube(x) = x^3 with three backward rules ---------------------------------------------------------


class Cube(Function):
    """Right: 3 x^2, written with Tensor ops on the saved input, so it is differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class CubeWrongRule(Cube):
    """Wrong at first order: 2x is the derivative of x^2, not of x^3."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x


class CubeBackwardOnData(Cube):
    """Right values, but built from ``x.data``: a constant to the graph, so d(backward)/dx is lost."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Tensor(3 * x.data**2)


class CubeBackwardDetachesGrad(Cube):
    """Right values, but the incoming gradient is cut from the graph: the backward is no longer
    linear in ``grad`` as far as the graph knows, which only the second-order check sees."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.detach() * 3 * x * x


# 2x = 3x^2 at 0 and 2/3, where the wrong rule happens to be right; 6x = 0 at 0
cube_inputs = S.away_from_kinks(kinks=(0.0, 2.0 / 3.0), margin=0.1)


@given(x=cube_inputs)
def test_the_right_rule_passes_both_orders(x):
    assert check_gradients(Cube.apply, x)
    assert check_dtype_preserved(Cube.apply, x)


@given(x=cube_inputs)
def test_a_wrong_first_order_rule_fails_gradcheck(x):
    with pytest.raises(GradcheckError, match="^gradcheck: input 0"):
        check_gradients(CubeWrongRule.apply, x, order=1)


@given(x=cube_inputs)
def test_a_backward_on_data_passes_first_order_and_fails_second_order(x):
    assert check_gradients(CubeBackwardOnData.apply, x, order=1)
    with pytest.raises(GradcheckError, match="^gradgradcheck: input 0"):
        check_gradients(CubeBackwardOnData.apply, x, order=2)


@given(x=cube_inputs)
def test_a_backward_that_detaches_the_incoming_gradient_fails_second_order_on_it(x):
    assert gradcheck(CubeBackwardDetachesGrad.apply, (x,))
    with pytest.raises(GradcheckError, match=r"^gradgradcheck: grad_outputs\[0\]"):
        gradgradcheck(CubeBackwardDetachesGrad.apply, (x,))


MESSAGE = re.compile(
    r"input (?P<input>\d+) \('(?P<name>\w+)'\) \(shape (?P<shape>\([\d, ]*\))\), element (?P<element>\([\d, ]*\)): "
    r"analytic (?P<analytic>\S+), numerical (?P<numeric>\S+) \(difference \S+; (?P<wrong>\d+) of (?P<size>\d+) elements disagree"
)


def test_the_error_names_input_element_and_both_values_and_they_are_the_true_ones():
    x = Tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True)
    x.name = "cube_input"
    ok = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError) as caught:
        gradcheck(lambda a, b: (a * 2, CubeWrongRule.apply(b)), (ok, x))
    found = MESSAGE.search(str(caught.value))
    assert found, str(caught.value)
    assert (found["input"], found["name"], found["shape"]) == ("1", "cube_input", "(2, 2)")
    element = tuple(int(k) for k in found["element"].strip("()").split(",") if k.strip())
    value = x.data[element]
    # analytic = v * 2x, numerical = v * 3x^2 for the same projection v: their ratio is known
    np.testing.assert_allclose(float(found["analytic"]) / float(found["numeric"]), 2 * value / (3 * value**2), rtol=1e-5)
    assert (found["wrong"], found["size"]) == ("4", "4")  # 2x = 3x^2 nowhere among these values


def test_gradcheck_works_on_copies_and_needs_something_to_check():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    before = x.data.copy()
    assert gradcheck(Cube.apply, (x,))
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is None
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(Cube.apply, (Tensor([1.0]),))


def test_check_gradients_rejects_orders_that_are_not_whole_numbers_from_one():
    for order in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=r"^check_gradients: order must be a whole number >= 1, got"):
            check_gradients(Cube.apply, Tensor([1.0], requires_grad=True), order=order)


def test_constant_and_integer_inputs_pass_through():
    logits = Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    assert check_gradients(lambda t, labels: F.cross_entropy(t, labels), logits, np.array([2]))


# ---- any order: x^n whose derivatives are right up to some order -----------------------------------------


class Monomial(Function):
    """``x ** n``, whose derivative ``n x^(n-1)`` is another Monomial for the next ``exact - 1``
    orders and then a NumPy constant: the first ``exact`` derivatives are right in both modes, and
    the graph loses the one after (a backward written on ``.data``, one level down)."""

    @staticmethod
    def forward(ctx, x, n, exact):
        ctx.save_for_backward(x)
        ctx.n, ctx.exact = n, exact
        return x**n

    @staticmethod
    def derivative(ctx, x):
        if ctx.exact > 1:
            return ctx.n * Monomial.apply(x, ctx.n - 1, ctx.exact - 1)
        return Tensor(ctx.n * x.data ** (ctx.n - 1))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Monomial.derivative(ctx, x), None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        (x,) = ctx.saved_tensors
        return tangent * Monomial.derivative(ctx, x)


# positive and away from 0, where x^n and its derivatives (of degree >= 1 here) are well scaled
monomial_inputs = S.tensors(S.shapes(max_dims=2, max_side=2), elements=st.floats(0.5, 1.5))
MODES = [("rev",), ("fwd",)]


@pytest.mark.parametrize("modes", MODES)
@given(x=monomial_inputs, exact=st.integers(1, 3))
def test_a_rule_right_up_to_order_k_passes_up_to_k_and_fails_k_plus_1_naming_it(modes, x, exact):
    def quintic(t):
        return Monomial.apply(t, 5, exact)

    assert check_gradients(quintic, x, order=exact, modes=modes)
    first_wrong = exact + 1
    check = "gradcheck" if modes == ("rev",) else "check_jvp"
    label = {(2, "gradcheck"): "gradgradcheck"}.get((first_wrong, check), f"order-{first_wrong} {check}")
    where = "input 0" if check == "gradcheck" else r"output 0 \(the derivative with respect to input 0\)"
    with pytest.raises(GradcheckError, match=f"^{label}: {where}"):
        check_gradients(quintic, x, order=exact + 1, modes=modes)
    with pytest.raises(GradcheckError, match=f"^{label}: "):  # a higher order asked: the lowest wrong one is named
        check_gradients(quintic, x, order=4, modes=modes)


class CubeGradient(Function):
    """The backward of a cube, ``g * 3 x^2``, as an op of its own whose backward is right in value
    but cuts its incoming gradient from the graph in the part that goes to ``g``: orders 1 and 2
    pass, and order 3 sees that the second backward pass is not linear in its cotangent."""

    @staticmethod
    def forward(ctx, g, x):
        ctx.save_for_backward(g, x)
        return g * 3 * x**2

    @staticmethod
    def backward(ctx, grad):
        g, x = ctx.saved_tensors
        return grad.detach() * 3 * x * x, grad * g * 6 * x


class CubeWithBackwardOp(Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return CubeGradient.apply(grad, x)


@given(x=cube_inputs)
def test_order_3_names_the_cotangent_of_the_second_backward_pass(x):
    assert check_gradients(CubeWithBackwardOp.apply, x, order=2)
    with pytest.raises(GradcheckError, match=r"^order-3 gradcheck: grad_outputs\[0\] of backward pass 2 \(shape"):
        check_gradients(CubeWithBackwardOp.apply, x, order=3)


def small(shape=None):
    """Tensors of at most 4 elements: an order-4 check runs four nested backward passes per probe."""
    return S.tensors(S.shapes(min_dims=1, max_dims=2, max_side=2) if shape is None else shape)


@given(x=small(), y=small())
def test_orders_3_and_4_pass_on_a_product_with_a_sine_in_both_modes(x, y):
    def fn(a, b):
        return a * b.sin()

    assert check_gradients(fn, x, y, order=3, modes=("rev", "fwd"))
    assert check_gradients(fn, x, y, order=4, modes=("rev", "fwd"))


@given(data=st.data())
def test_order_3_passes_on_tanh_of_a_matmul_in_both_modes(data):
    n, k, m = data.draw(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2)))
    a, b = data.draw(small((n, k))), data.draw(small((k, m)))
    assert check_gradients(lambda p, q: (p @ q).tanh(), a, b, order=3, modes=("rev", "fwd"))


def test_order_4_passes_on_a_tiny_convolution_through_tanh_in_both_modes():
    rng = np.random.default_rng(0)
    image = Tensor(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)
    weight = Tensor(rng.standard_normal((2, 1, 2, 2)), requires_grad=True)
    bias = Tensor(rng.standard_normal(2), requires_grad=True)
    assert check_gradients(lambda i, w, b: F.conv2d(i, w, b).tanh(), image, weight, bias, order=4, modes=("rev", "fwd"))


# ---- check_dtype_preserved ------------------------------------------------------------------------------------


class CubeWithFloat64Backward(Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x * np.float64(1.0)  # a NumPy float64 scalar promotes float32


class CubeWithFloat64Forward(Cube):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.astype(np.float64) ** 3


def test_check_dtype_preserved_catches_promotion_in_forward_and_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(AssertionError, match="gradient with respect to input 0 has dtype float64"):
        check_dtype_preserved(CubeWithFloat64Backward.apply, x)
    with pytest.raises(AssertionError, match="output 0 has dtype float64"):
        check_dtype_preserved(CubeWithFloat64Forward.apply, x)
    assert check_dtype_preserved(Cube.apply, x)


# ---- the strategies draw what they promise ---------------------------------------------------------------------


@given(x=S.tensors(dtype=np.float32, requires_grad=False))
def test_tensors_have_the_asked_dtype_and_flag(x):
    assert x.dtype == np.float32 and not x.requires_grad
    assert np.isfinite(x.data).all() and (np.abs(x.data) <= 3).all()


@given(shapes=S.broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes):
    assert np.broadcast_shapes(*shapes.input_shapes) == shapes.result_shape


@given(x=S.away_from_kinks(kinks=(-1.0, 0.0, 1.0), margin=0.2))
def test_away_from_kinks_keeps_the_margin(x):
    for kink in (-1.0, 0.0, 1.0):
        assert (np.abs(x.data - kink) >= 0.2).all()


@given(pair=S.distinct_values((2, 3), (3,), spacing=0.5))
def test_distinct_values_are_jointly_well_separated(pair):
    a, b = pair
    assert a.shape == (2, 3) and b.shape == (3,)
    values = np.sort(np.concatenate([a.data.ravel(), b.data.ravel()]))
    np.testing.assert_array_less(0.5 - 1e-9, np.diff(values))


@given(config=S.conv2d_configs())
def test_conv2d_configs_are_valid_calls(config):
    out = F.conv2d(Tensor(np.zeros(config.input_shape)), Tensor(np.zeros(config.weight_shape)),
                   None if config.bias_shape is None else Tensor(np.zeros(config.bias_shape)), **config.kwargs)
    assert out.shape[:2] == (config.input_shape[0], config.weight_shape[0])
    assert min(out.shape[2:]) >= 1


@given(config=S.pool2d_configs(dilation=True))
def test_pool2d_configs_respect_padding_and_every_window_holds_input(config):
    def pair(v):
        return v if isinstance(v, tuple) else (v, v)

    assert all(p <= k // 2 for p, k in zip(pair(config.padding), pair(config.kernel_size)))
    out = F.max_pool2d(Tensor(np.zeros(config.input_shape)), **config.kwargs)
    assert np.isfinite(out.data).all()  # a window of padding alone would give -inf


def test_the_kit_imports_without_hypothesis_and_strategies_say_how_to_install_it():
    root = pathlib.Path(__file__).resolve().parents[1]
    script = (
        "import sys; sys.modules['hypothesis'] = None\n"  # as if Hypothesis were not installed
        "import numpy as np\n"
        "from tinygrad_cnn import Tensor\n"
        "from tinygrad_cnn.testing import check_gradients\n"
        "assert check_gradients(lambda t: t * t, Tensor(np.array([1.0, 2.0]), requires_grad=True))\n"
        "try:\n"
        "    import tinygrad_cnn.testing.strategies\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install tinygrad_cnn[testing]" in result.stdout
