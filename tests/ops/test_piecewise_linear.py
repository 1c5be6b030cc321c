"""Second derivatives of piecewise-linear ops: relu, abs, clamp, maximum, minimum, max (reduce),
max_pool2d and avg_pool2d.

Away from their kinks these ops are linear in x, so the gradient taken with ``create_graph=True``
does not change with x: differentiating it again with respect to x gives zeros. The gradient stays
connected to x in the graph (as torch's does for relu, abs, max_pool2d and avg_pool2d), so asking
for that second derivative is not an error. Values are drawn without ties and away from the kinks,
where the first derivative is defined.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, grad
from tinygrad_cnn.ops.reduce import Max

# name -> (ours, torch's or None where torch itself raises "does not require grad" on the second
# derivative: its clamp, maximum, minimum and amax gradients are cut from x; ours give zeros)
OPS = {
    "relu": (lambda x: x.relu(), lambda t, x: t.relu(x)),
    "abs": (lambda x: x.abs(), lambda t, x: t.abs(x)),
    "clamp": (lambda x: x.clip(-0.5, 0.5), None),
    "maximum": (lambda x: tg.maximum(x, Tensor(np.zeros(x.shape[-1]))), None),
    "minimum": (lambda x: tg.minimum(x, Tensor(np.zeros(x.shape[-1]))), None),
    "max": (lambda x: Max.apply(x, axis=1), None),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda t, x: t.nn.functional.max_pool2d(x, 2)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2, padding=1), lambda t, x: t.nn.functional.avg_pool2d(x, 2, padding=1)),
}

def drawn_input(data):
    """Distinct values (no ties for max and the poolings) from 0.125 + 0.25 k: an eighth away from
    every kink above (0 and ±0.5)."""
    shape = data.draw(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5)), label="shape")
    order = np.array(data.draw(st.permutations(range(int(np.prod(shape)))), label="order"), dtype=np.float64)
    return ((order - order.size // 2) * 0.25 + 0.125).reshape(shape)


@pytest.mark.parametrize("name", OPS)
@given(data=st.data())
def test_second_derivative_is_zero_and_connected(name, data):
    ours, _ = OPS[name]
    x = Tensor(drawn_input(data), requires_grad=True)
    weights = np.random.default_rng(0).standard_normal(ours(x).shape)
    (g,) = grad((ours(x) * Tensor(weights)).sum(), x, create_graph=True)
    assert g.requires_grad, f"{name}: the recorded gradient is cut from x"
    v = Tensor(np.random.default_rng(1).standard_normal(x.shape))
    (gg,) = grad((g * v).sum(), x)
    np.testing.assert_array_equal(gg.data, np.zeros(x.shape))
    assert gg.dtype == x.dtype


@pytest.mark.parametrize("name", [name for name, (_, theirs) in OPS.items() if theirs is not None])
@given(data=st.data())
def test_second_derivative_matches_torch(name, data):
    torch = pytest.importorskip("torch")
    ours, theirs = OPS[name]
    x_data = drawn_input(data)
    x, tx = Tensor(x_data, requires_grad=True), torch.tensor(x_data, requires_grad=True)
    weights = np.random.default_rng(0).standard_normal(ours(x).shape)
    (g,) = grad((ours(x) * Tensor(weights)).sum(), x, create_graph=True)
    (tg_,) = torch.autograd.grad((theirs(torch, tx) * torch.tensor(weights)).sum(), tx, create_graph=True)
    np.testing.assert_allclose(g.data, tg_.detach().numpy(), rtol=1e-12, atol=1e-12)
    v = np.random.default_rng(1).standard_normal(x_data.shape)
    (gg,) = grad((g * Tensor(v)).sum(), x)
    (tgg,) = torch.autograd.grad((tg_ * torch.tensor(v)).sum(), tx)
    np.testing.assert_array_equal(gg.data, tgg.numpy(force=True))  # torch: a ZeroTensor


def test_a_first_order_backward_records_nothing_new():
    # The tie to x is made only when the gradient itself is recorded: a plain backward of relu
    # gives a gradient without a graph, as before.
    x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    (g,) = grad(x.relu().sum(), x)
    assert not g.requires_grad and g.grad_fn is None
    np.testing.assert_array_equal(g.data, [0.0, 1.0])
