"""``tinygrad_cnn.func`` against ``torch.func`` (float64) on drawn configurations of conv2d, pooling,
matmul, losses and small CNNs, for every transform and the compositions users write; and the
transforms' own semantics (argnums, has_aux, errors, nesting, threads)."""
import threading

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import forward_ad, func
from tinygrad_cnn.testing import strategies as S

torch = pytest.importorskip("torch")
tf = torch.func
TF = torch.nn.functional


def ours(a):
    return tg.Tensor(np.asarray(a, dtype=np.float64))


def theirs(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def same(a, b, tol=1e-9):
    a = a.data if isinstance(a, tg.Tensor) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def small_cnn(lib, x, w1, w2):
    """conv, tanh, max-pool, conv, relu, mean: both libraries, the same code."""
    Fm = F if lib == "ours" else TF
    h = Fm.max_pool2d(Fm.conv2d(x, w1, padding=1).tanh(), 2)
    return Fm.relu(Fm.conv2d(h, w2)).mean() if lib == "ours" else Fm.relu(Fm.conv2d(h, w2)).mean()


@st.composite
def cnn_problems(draw):
    c = draw(st.integers(1, 2))
    x, w1, w2 = (t.data for t in draw(S.distinct_values((draw(st.integers(1, 2)), c, 6, 6), (2, c, 3, 3), (2, 2, 2, 2))))
    x, w1, w2 = x / 8, w1 / 8, w2 / 8  # within about [-1, 1]: tanh away from saturation
    # Max-pooling is not differentiable where two values of a window tie, nor relu at 0: there the
    # two libraries may differ by which side rounding picks, so such points are not drawn.
    pooled_input = F.conv2d(ours(x), ours(w1), padding=1).tanh().data
    windows = pooled_input[:, :, :6, :6].reshape(*pooled_input.shape[:2], 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5)
    top_two = np.sort(windows.reshape(*windows.shape[:4], 4), axis=-1)[..., -2:]
    assume(np.all(top_two[..., 1] - top_two[..., 0] > 1e-6))
    relu_input = F.conv2d(F.max_pool2d(ours(pooled_input), 2), ours(w2)).data
    assume(np.all(np.abs(relu_input) > 1e-6))
    return x, w1, w2


@settings(max_examples=4)
@given(problem=cnn_problems())
def test_transforms_of_a_small_cnn(problem):
    x, w1, w2 = problem

    def f_ours(w1, w2):
        return small_cnn("ours", ours(x), w1, w2)

    def f_theirs(w1, w2):
        return small_cnn("torch", theirs(x), w1, w2)

    a, b = (ours(w1), ours(w2)), (theirs(w1), theirs(w2))
    for g1, g2 in zip(func.grad(f_ours, (0, 1))(*a), tf.grad(f_theirs, (0, 1))(*b)):
        same(g1, g2)
    same(func.jacrev(f_ours)(*a), tf.jacrev(f_theirs)(*b))
    same(func.jacfwd(f_ours, 1)(*a), tf.jacfwd(f_theirs, 1)(*b))
    same(func.hessian(f_ours, 1)(*a), tf.hessian(f_theirs, 1)(*b))
    v = np.random.default_rng(0).standard_normal(w1.shape)
    out, tangent = func.jvp(lambda w: f_ours(w, a[1]), (a[0],), (ours(v),))
    t_out, t_tangent = tf.jvp(lambda w: f_theirs(w, b[1]), (b[0],), (theirs(v),))
    same(out, t_out)
    same(tangent, t_tangent)
    value, hv = func.hvp(f_ours, a, (ours(v), ours(np.ones(w2.shape))))
    t_value, t_hv = torch.autograd.functional.hvp(f_theirs, b, (theirs(v), theirs(np.ones(w2.shape))))
    same(value, t_value)
    for mine, theirs_ in zip(hv, t_hv):
        same(mine, theirs_)


@settings(max_examples=10)
@given(config=S.conv2d_configs(max_groups=2), data=st.data())
def test_jvp_and_vjp_of_conv2d(config, data):
    x, w = data.draw(S.arrays(config.input_shape)), data.draw(S.arrays(config.weight_shape))
    tx, tw = data.draw(S.arrays(config.input_shape)), data.draw(S.arrays(config.weight_shape))
    kw = config.kwargs
    out, tangent = func.jvp(lambda x, w: F.conv2d(x, w, **kw), (ours(x), ours(w)), (ours(tx), ours(tw)))
    t_out, t_tangent = tf.jvp(lambda x, w: TF.conv2d(x, w, **kw), (theirs(x), theirs(w)), (theirs(tx), theirs(tw)))
    same(out, t_out)
    same(tangent, t_tangent)
    u = np.random.default_rng(1).standard_normal(out.shape)
    _, vjp_fn = func.vjp(lambda x, w: F.conv2d(x, w, **kw), ours(x), ours(w))
    _, t_vjp_fn = tf.vjp(lambda x, w: TF.conv2d(x, w, **kw), theirs(x), theirs(w))
    for mine, theirs_ in zip(vjp_fn(ours(u)), t_vjp_fn(theirs(u))):
        same(mine, theirs_)


@settings(max_examples=10)
@given(config=S.pool2d_configs(), data=st.data())
def test_jacobians_of_max_pooling(config, data):
    x = data.draw(S.distinct_values(config.input_shape))
    kw = {k: v for k, v in config.kwargs.items() if v is not None}
    same(func.jacfwd(lambda x: F.max_pool2d(x, **kw))(x), tf.jacfwd(lambda x: TF.max_pool2d(x, **kw))(theirs(x.data)))
    same(func.jacrev(lambda x: F.max_pool2d(x, **kw))(x), tf.jacrev(lambda x: TF.max_pool2d(x, **kw))(theirs(x.data)))


@settings(max_examples=10)
@given(data=st.data())
def test_losses_and_matmul(data):
    n, k, classes = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    x, w = data.draw(S.arrays((n, k))), data.draw(S.arrays((k, classes)))
    labels = data.draw(S.arrays((n,), elements=st.integers(0, classes - 1), dtype=np.int64))

    def loss_ours(w):
        return F.cross_entropy(ours(x) @ w, tg.Tensor(labels))

    def loss_theirs(w):
        return TF.cross_entropy(theirs(x) @ w, torch.tensor(labels))

    same(func.hessian(loss_ours)(ours(w)), tf.hessian(loss_theirs)(theirs(w)))
    same(func.jacfwd(func.jacrev(loss_ours))(ours(w)), tf.jacfwd(tf.jacrev(loss_theirs))(theirs(w)))
    same(func.jacrev(func.jacrev(loss_ours))(ours(w)), tf.jacrev(tf.jacrev(loss_theirs))(theirs(w)))
    same(func.grad(lambda w: (func.grad(loss_ours)(w) ** 2).sum())(ours(w)),
         tf.grad(lambda w: (tf.grad(loss_theirs)(w) ** 2).sum())(theirs(w)))


def test_the_hessian_of_a_piecewise_linear_net_is_zero():
    x = tg.Tensor(np.random.default_rng(2).standard_normal((1, 2, 4, 4)))
    hessian = func.hessian(lambda x: F.max_pool2d(F.relu(x), 2).sum())(x)
    expected = tf.hessian(lambda x: TF.max_pool2d(TF.relu(x), 2).sum())(theirs(x.data))
    assert hessian.shape == tuple(expected.shape)
    assert not hessian.data.any() and not expected.numpy().any()


def test_argnums_has_aux_and_results_outside_any_graph():
    x, y = ours([1.0, 2.0]), ours([3.0, -1.0])
    gradient, aux = func.grad(lambda x, y: ((x * y).sum(), "aux"), argnums=1, has_aux=True)(x, y)
    same(gradient, x.data)
    assert aux == "aux" and not gradient.requires_grad
    (gx, gy), value = func.grad_and_value(lambda x, y: (x * y).sum(), argnums=(0, 1))(x, y)
    same(gx, y.data), same(gy, x.data), same(value, 1.0)
    out, tangent, aux = func.jvp(lambda x: (x.exp(), 7), (x,), (ours([1.0, 0.0]),), has_aux=True)
    assert aux == 7 and not out.requires_grad and out._tangents is None
    with pytest.raises(RuntimeError, match="one element"):
        func.grad(lambda x: x * 2)(x)
    with pytest.raises(ValueError, match="argnums"):
        func.grad(lambda x: x.sum(), argnums=3)(x)
    with pytest.raises(TypeError, match="tuples"):
        func.jvp(lambda x: x, x, x)


def test_user_graph_flows_through_a_transform():
    """A transform's result stays differentiable by the caller's own backward, as torch.func's."""
    w = tg.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    g = func.grad(lambda x: (x * x * w).sum())(ours([1.0, 2.0]))  # 2 x w
    g.sum().backward()
    same(w.grad, [2.0, 4.0])


def test_forward_levels_are_per_thread():
    errors = []

    def other():
        try:
            assert forward_ad.active_levels() == ()
            out, tangent = func.jvp(lambda x: x * x, (ours([3.0]),), (ours([1.0]),))
            same(tangent, [6.0])
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    with forward_ad.dual_level():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert len(forward_ad.active_levels()) == 1
    assert not errors, errors


def test_forward_mode_through_ops_with_constant_arrays_and_losses():
    """A constant NumPy operand is saved as an array (no Tensor): forward mode must take it as such."""
    w, v = ours(np.arange(12.0).reshape(4, 3) / 10), ours(np.ones((4, 3)))
    _, tangent = func.jvp(lambda w: (w * np.full((4, 3), 2.0)).sum(), (w,), (v,))
    same(tangent, 24.0)
    labels = tg.Tensor(np.array([0, 2, 1, 2]))
    loss = lambda w: F.cross_entropy(w, labels)  # noqa: E731
    _, tangent = func.jvp(loss, (w,), (v,))
    t_out, t_tangent = tf.jvp(lambda w: TF.cross_entropy(w, torch.tensor(labels.data)), (theirs(w.data),), (theirs(v.data),))
    same(tangent, t_tangent)
    same(func.jacfwd(loss)(w), tf.jacfwd(lambda w: TF.cross_entropy(w, torch.tensor(labels.data)))(theirs(w.data)))


def test_second_derivatives_come_back_cut_from_the_graph_as_torch_funcs():
    x = ours([1.0, 2.0])
    hessian = func.hessian(lambda x: (x ** 3).sum())(x)
    _, (hv,) = func.hvp(lambda x: (x ** 3).sum(), (x,), (x,))
    assert not hessian.requires_grad and not hv.requires_grad
    same(hessian, np.diag([6.0, 12.0]))
    same(hv, [6.0, 24.0])


def test_an_outer_transform_still_sees_a_parameter_an_inner_one_captured():
    def outer(w):
        return func.jvp(lambda x: (x * w).sin().sum(), (ours([1.0, 2.0]),), (ours([1.0, 1.0]),))[1]

    def outer_torch(w):
        return tf.jvp(lambda x: (x * w).sin().sum(), (theirs([1.0, 2.0]),), (theirs([1.0, 1.0]),))[1]

    same(func.grad(outer)(ours([0.3, 0.7])), tf.grad(outer_torch)(theirs([0.3, 0.7])))


def test_batch_norm_in_training_mode_refuses_a_transform_and_keeps_its_statistics():
    bn = tg.nn.BatchNorm1d(2, dtype=np.float64)
    x = ours([[1.0, 2.0], [3.0, 5.0], [0.0, 1.0]])
    with pytest.raises(RuntimeError, match="running statistics.*eval"):
        func.hessian(lambda w: (bn(x @ w) ** 2).sum())(ours(np.ones((2, 2))))
    assert int(bn.num_batches_tracked.item()) == 0 and not bn.running_mean.data.any()
    bn.eval()
    assert func.hessian(lambda w: (bn(x @ w) ** 2).sum())(ours(np.ones((2, 2)))).shape == (2, 2, 2, 2)
