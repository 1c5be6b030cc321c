"""Third derivatives of a few primitives, in both modes: ``check_gradients(order=3)`` checks the
first derivatives of each one's second derivative map (reverse mode three times over, and forward
mode over two reverse passes), so the backward of the backward of its backward must be right and
differentiable. The op suite checks every primitive to order 2; these are the ones whose third
derivative is not zero (plus matmul and conv2d, whose backward-of-backward is itself a product and
a convolution), on tiny shapes: an order-3 check costs three nested backward passes per probe."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.ops import special, trigonometric
from tinygrad_cnn.testing import check_gradients
from tinygrad_cnn.testing import strategies as S

TINY = S.shapes(max_dims=2, max_side=2)
POSITIVE = st.floats(0.5, 2.0)

UNARY = {
    "Exp": (lambda x: x.exp(), S.tensors),
    "Log": (lambda x: x.log(), lambda s: S.tensors(s, elements=POSITIVE)),
    "Sqrt": (lambda x: x.sqrt(), lambda s: S.tensors(s, elements=POSITIVE)),
    "Tanh": (lambda x: x.tanh(), S.tensors),
    "Sigmoid": (lambda x: x.sigmoid(), S.tensors),
    "Erf": (special.Erf.apply, S.tensors),
    "Sin": (trigonometric.Sin.apply, S.tensors),
}


def third_order(fn, *inputs):
    assert check_gradients(fn, *inputs, order=3, modes=("rev", "fwd"))


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary(name, data):
    op, inputs = UNARY[name]
    third_order(op, data.draw(inputs(TINY)))


BINARY = {
    "Mul": (lambda x, y: x * y, S.tensors),
    "Div": (lambda x, y: x / y, lambda s: S.away_from_kinks(s, kinks=(0.0,), margin=0.5)),
    "Pow": (lambda x, y: x**y, lambda s: S.tensors(s, elements=POSITIVE)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_with_broadcasting(name, data):
    op, right = BINARY[name]
    x_shape, y_shape = data.draw(S.broadcastable_shapes(2, max_dims=2, max_side=2)).input_shapes
    left = S.tensors(x_shape, elements=POSITIVE) if name == "Pow" else S.tensors(x_shape)
    third_order(op, data.draw(left), data.draw(right(y_shape)))


@given(data=st.data())
def test_matmul(data):
    n, k, m = data.draw(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)))
    third_order(lambda a, b: a @ b, data.draw(S.tensors((n, k))), data.draw(S.tensors((k, m))))


@given(config=S.conv2d_configs(max_batch=1, max_group_channels=1, max_groups=2, max_kernel=2), data=st.data())
def test_conv2d(config, data):
    inputs = [data.draw(S.tensors(config.input_shape)), data.draw(S.tensors(config.weight_shape))]
    if config.bias_shape is not None:
        inputs.append(data.draw(S.tensors(config.bias_shape)))
    third_order(lambda *args: F.conv2d(*args, **config.kwargs), *inputs)
