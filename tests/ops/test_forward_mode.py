"""Forward mode and vmap for every primitive: its JVP rule against central differences
(``check_jvp``) and against its own VJP (``check_vjp_jvp_consistency``, to rounding precision), at
first order and for the gradient map (forward over reverse); and its batching rule against a loop
over samples (``check_batching_rule``: values, both modes' derivatives, two nested vmaps), with
each input mapped or shared; on Hypothesis-drawn shapes and hyperparameters.

Each case names the primitive it reaches; ``test_every_primitive_has_a_jvp_rule`` and
``test_every_primitive_has_a_batching_rule`` keep the list complete as primitives are added.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Function, Tensor, forward_ad, stack
from tinygrad_cnn.ops import conv, einsum, elementwise, indexing, matmul, movement, pool, product, reduce, scan, special, trigonometric
from tinygrad_cnn.ops.conv import Conv2dInputGrad, Conv2dWeightGrad, ConvGeometry
from tinygrad_cnn.ops.elementwise import BinaryOp, KeepWhere, LocallyConstant, TanhGrad
from tinygrad_cnn.ops.movement import Concatenate, GetItem, IndexAdd
from tinygrad_cnn.ops.pool import WindowGather, WindowScatter
from tinygrad_cnn.testing import check_batching_rule, check_gradients, check_jvp, check_vjp_jvp_consistency
from tinygrad_cnn.testing import strategies as S

SHAPE = S.shapes(max_dims=3, max_side=3)


def both_modes(fn, *inputs):
    check_gradients(fn, *inputs, order=2, modes=("fwd",))
    batched(fn, *inputs)


def batched(fn, *inputs):
    """``check_batching_rule`` on a batch of two samples of each input (the drawn one and a changed
    copy, which keeps the drawn constraints: positive, distinct, away from kinks), with every input
    mapped, each one alone mapped (the others shared by the samples), and the first one mapped
    along its last dimension."""
    samples = [stack([x, x * 0.5 + 0.25], 0) for x in inputs]
    check_batching_rule(fn, *samples, in_dims=0)
    if len(inputs) > 1:
        for k in range(len(inputs)):
            check_batching_rule(fn, *(samples[i] if i == k else x for i, x in enumerate(inputs)),
                                in_dims=tuple(0 if i == k else None for i in range(len(inputs))), nested=False)
    last = stack([inputs[0], inputs[0] * 0.5 + 0.25], inputs[0].ndim)
    check_batching_rule(fn, last, *samples[1:], in_dims=(inputs[0].ndim, *(0,) * (len(inputs) - 1)), nested=False)


UNARY = {
    "Neg": (lambda x: -x, S.tensors),
    "Exp": (lambda x: x.exp(), S.tensors),
    "Log": (lambda x: x.log(), lambda s: S.tensors(s, elements=st.floats(0.5, 3.0))),
    "Sqrt": (lambda x: x.sqrt(), lambda s: S.tensors(s, elements=st.floats(0.5, 3.0))),
    "Tanh": (lambda x: x.tanh(), S.tensors),
    "Sigmoid": (lambda x: x.sigmoid(), S.tensors),
    "Relu": (lambda x: x.relu(), lambda s: S.away_from_kinks(s, kinks=(0.0,))),
    "Abs": (lambda x: x.abs(), lambda s: S.away_from_kinks(s, kinks=(0.0,))),
    "Clip": (lambda x: x.clip(-1.0, 1.0), lambda s: S.away_from_kinks(s, kinks=(-1.0, 1.0))),
    "Cast": (lambda x: (x.astype(np.float32) * 1).astype(np.float64), S.tensors),
    "Erf": (special.Erf.apply, S.tensors),
    "Sin": (trigonometric.Sin.apply, S.tensors),
    "Cos": (trigonometric.Cos.apply, S.tensors),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary(name, data):
    op, inputs = UNARY[name]
    x = data.draw(inputs(data.draw(SHAPE)))
    if name == "Cast":  # the tangent passes through float32 too: float32 steps and rounding
        check_jvp(op, x, eps=1e-3, atol=1e-3, rtol=1e-2)
        check_vjp_jvp_consistency(op, x, atol=1e-6, rtol=1e-6)
        batched(op, x)
        return
    both_modes(op, x)


BINARY = {
    "Add": (lambda x, y: x + y, S.tensors, S.tensors),
    "Sub": (lambda x, y: x - y, S.tensors, S.tensors),
    "Mul": (lambda x, y: x * y, S.tensors, S.tensors),
    "Div": (lambda x, y: x / y, S.tensors, lambda s: S.away_from_kinks(s, kinks=(0.0,), margin=0.5)),
    "Pow": (lambda x, y: x ** y, lambda s: S.tensors(s, elements=st.floats(0.5, 2.0)), S.tensors),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_with_broadcasting(name, data):
    op, left, right = BINARY[name]
    x_shape, y_shape = data.draw(S.broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    both_modes(op, data.draw(left(x_shape)), data.draw(right(y_shape)))


@given(values=S.distinct_values((2, 3), (2, 3)))
def test_maximum(values):
    import tinygrad_cnn as tg

    both_modes(tg.maximum, *values)


@given(data=st.data())
def test_where_and_keep_where(data):
    import tinygrad_cnn as tg

    shape = data.draw(SHAPE)
    condition = data.draw(S.arrays(shape, elements=st.booleans(), dtype=bool))
    x, y = data.draw(S.tensors(shape)), data.draw(S.tensors(shape))
    both_modes(lambda x, y: tg.where(condition, x, y), x, y)
    both_modes(lambda x: KeepWhere.apply(x, condition), x)
    both_modes(LocallyConstant.apply, x, y)  # y's value, tied to x with a zero derivative


@given(data=st.data())
def test_tanh_grad(data):
    # tanh's gradient as one op (its own primitive, so forward-over-reverse goes through it)
    x_shape, y_shape = data.draw(S.broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    both_modes(TanhGrad.apply, data.draw(S.tensors(x_shape)), data.draw(S.tensors(y_shape)))


@given(data=st.data())
def test_sum_and_max(data):
    shape = data.draw(S.shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.sampled_from([None] + list(range(len(shape)))))
    keep = data.draw(st.booleans())
    x = data.draw(S.distinct_values(shape))
    both_modes(lambda x: x.sum(axis=axis, keepdims=keep), x)
    both_modes(lambda x: reduce.Max.apply(x, axis=axis, keepdims=keep), x)


@given(data=st.data())
def test_movement(data):
    x = data.draw(S.tensors((2, 3, 4)))
    both_modes(lambda x: movement.Reshape.apply(x, (4, 6)), x)
    both_modes(lambda x: movement.Permute.apply(x, (2, 0, 1)), x)
    both_modes(lambda x: movement.Expand.apply(x[:, :1], (2, 5, 4)), x)
    both_modes(lambda x: movement.Pad.apply(x, ((0, 1), (2, 0), (1, 1)), 0.0), x)
    index = data.draw(st.sampled_from([(slice(None), 1), (np.array([0, 0, 1]),), (slice(None), slice(None, None, 2))]))
    both_modes(lambda x: GetItem.apply(x, index), x)
    values = data.draw(S.tensors((3, 4)))
    both_modes(lambda v: IndexAdd.apply(v, (np.array([0, 2, 0]),), (3, 4)), values)
    y = data.draw(S.tensors((2, 1, 4)))
    both_modes(lambda x, y: Concatenate.apply(1, x, y), x, y)
    both_modes(lambda x: Concatenate.apply(1, x, Tensor(np.ones((2, 2, 4)))), x)  # one input without tangent


@given(data=st.data())
def test_matmul_with_broadcast_batches(data):
    batch_a, batch_b = data.draw(S.broadcastable_shapes(2, max_dims=2, max_side=2)).input_shapes
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    a, b = data.draw(S.tensors((*batch_a, n, k))), data.draw(S.tensors((*batch_b, k, m)))
    both_modes(matmul.MatMul.apply, a, b)


@given(config=S.conv2d_configs(max_groups=2), data=st.data())
def test_conv2d_and_its_gradient_primitives(config, data):
    x, w = data.draw(S.tensors(config.input_shape)), data.draw(S.tensors(config.weight_shape))
    b = None if config.bias_shape is None else data.draw(S.tensors(config.bias_shape))
    inputs = (x, w) if b is None else (x, w, b)
    both_modes(lambda *a: F.conv2d(*a, **config.kwargs), *inputs)
    kw = config.kwargs
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    geometry = ConvGeometry(kernel=w.shape[2:], stride=pair(kw["stride"]), padding=pair(kw["padding"]),
                            dilation=pair(kw["dilation"]), groups=kw["groups"])
    g = data.draw(S.tensors(F.conv2d(x, w, **kw).shape))
    both_modes(lambda g, w: Conv2dInputGrad.apply(g, w, x.shape, geometry), g, w)
    both_modes(lambda x, g: Conv2dWeightGrad.apply(x, g, w.shape, geometry), x, g)


@given(config=S.pool2d_configs(dilation=True), data=st.data())
def test_max_pool_and_its_scatter_gather(config, data):
    x = data.draw(S.distinct_values(config.input_shape))  # no ties: the argmax is unique
    both_modes(lambda x: F.max_pool2d(x, **config.kwargs), x)
    out = F.max_pool2d(x, **config.kwargs)
    argmax, geometry = out.grad_fn.argmax, out.grad_fn.geometry
    g = data.draw(S.tensors(out.shape))
    both_modes(lambda g: WindowScatter.apply(g, argmax, x.shape, geometry), g)
    both_modes(lambda x: WindowGather.apply(x, argmax, geometry), x)


@given(data=st.data())
def test_indexing_scans_products_and_einsum(data):
    x = data.draw(S.tensors((3, 4)))
    index = data.draw(S.arrays((2, 4), elements=st.integers(0, 2), dtype=np.int64))
    both_modes(lambda x: indexing.Gather.apply(x, 0, index), x)
    src = data.draw(S.tensors((2, 4)))
    both_modes(lambda base, src: indexing.ScatterAdd.apply(base, 0, index, src), x, src)
    both_modes(lambda src: indexing.ScatterAdd.apply(np.zeros((3, 4)), 0, index, src), src)  # base without tangent
    dim = data.draw(st.integers(0, 1))
    both_modes(lambda x: scan.Cumsum.apply(x, dim), x)
    keep = data.draw(st.booleans())
    both_modes(lambda x: product.Prod.apply(x, dim, keep), x)
    y = data.draw(S.tensors((4, 2)))
    both_modes(lambda x, y: einsum.Einsum.apply("ab,bc->ac", x, y), x, y)
    both_modes(lambda x: einsum.Einsum.apply("ab->b", x), x)


def _primitives():
    found = set()
    for module in (elementwise, reduce, movement, matmul, conv, pool, special, indexing, scan, product, einsum, trigonometric):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Function) and value not in (Function, BinaryOp):
                found.add(value)
    return found


def test_every_primitive_has_a_jvp_rule():
    missing = sorted(cls.__name__ for cls in _primitives() if cls.jvp is Function.jvp)
    assert not missing, f"primitives without a JVP rule: {missing}"
    tested = set(UNARY) | set(BINARY) | {"Maximum", "Where", "KeepWhere", "LocallyConstant", "TanhGrad", "Sum", "Max", "Reshape", "Permute", "Expand",
                                         "Pad", "GetItem", "IndexAdd", "Concatenate", "MatMul", "Conv2d",
                                         "Conv2dInputGrad", "Conv2dWeightGrad", "MaxPool2d", "WindowScatter", "WindowGather",
                                         "Gather", "ScatterAdd", "Cumsum", "Prod", "Einsum"}
    untested = sorted(cls.__name__ for cls in _primitives() if cls.__name__ not in tested)
    assert not untested, f"primitives whose JVP no test here checks: {untested}"


def test_every_primitive_has_a_batching_rule():
    missing = sorted(cls.__name__ for cls in _primitives() if getattr(cls, "vmap", None) is None)
    assert not missing, f"primitives without a batching rule: {missing}"


def test_a_function_without_a_jvp_rule_names_itself():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    with forward_ad.dual_level():
        x = forward_ad.make_dual(Tensor([1.0, 2.0]), Tensor([1.0, 0.0]))
        with pytest.raises(RuntimeError, match="Cube has no JVP rule"):
            Cube.apply(x)
        assert Cube.apply(Tensor([1.0])).data[0] == 1.0  # without a tangent, no rule is needed
