"""The testing kit proves gradients only if it can also *disprove* them: a wrong backward must fail
with a message that points at the input and element, and gives both values; a backward that is right
at first order but not differentiable correctly must fail the second-order check. And the
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


def test_check_gradients_rejects_other_orders():
    with pytest.raises(ValueError, match="order"):
        check_gradients(Cube.apply, Tensor([1.0], requires_grad=True), order=3)


def test_constant_and_integer_inputs_pass_through():
    logits = Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    assert check_gradients(lambda t, labels: F.cross_entropy(t, labels), logits, np.array([2]))


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
