"""``func.vmap`` against ``torch.func.vmap`` (float64) on drawn configurations of conv2d, pooling,
matmul, losses and small CNNs, with drawn ``in_dims``/``out_dims``, nested and composed with the
other transforms (per-sample gradients, Jacobians, Hessians, checkpoints); and vmap's own
semantics: its errors, randomness, chunks, the loop fallback, user Functions with their own
rules, and levels that belong to one thread.

The batching rule of each primitive is checked against a loop in ``tests/ops/test_forward_mode.py``."""
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Function, func, nn
from tinygrad_cnn.testing import check_batching_rule
from tinygrad_cnn.testing import strategies as S
from tinygrad_cnn.utils.checkpoint import checkpoint


def ours(a):
    return tg.Tensor(np.asarray(a, dtype=np.float64))


def same(a, b, tol=1e-9):
    a = a.data if isinstance(a, tg.Tensor) else a
    b = b.detach().numpy() if hasattr(b, "detach") else b
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def loop(f, batch, dim=0):
    return tg.stack([f(batch.select(dim, b)) for b in range(batch.shape[dim])], 0)


# ---- against torch.func.vmap ------------------------------------------------------------------------


def small_cnn(Fm, x, w1, w2):
    """conv, tanh, max-pool, conv, relu, mean over one image (C, H, W) batched as one."""
    h = Fm.max_pool2d(Fm.conv2d(x[None], w1, padding=1).tanh(), 2)
    return Fm.relu(Fm.conv2d(h, w2)).mean()


@settings(max_examples=6)
@given(data=st.data())
def test_vmap_of_a_small_cnn_and_its_per_sample_gradients_match_torch(data):
    torch = pytest.importorskip("torch")
    TF, tf = torch.nn.functional, torch.func
    batch, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    x, w1, w2 = (t.data / 8 for t in data.draw(S.distinct_values((batch, c, 6, 6), (2, c, 3, 3), (2, 2, 2, 2))))
    batch_dim = data.draw(st.integers(0, 3))  # where the batch dimension of the images is
    xs = np.moveaxis(x, 0, batch_dim)
    mine = func.vmap(lambda x, a, b: small_cnn(F, x, a, b), in_dims=(batch_dim, None, None))
    theirs = tf.vmap(lambda x, a, b: small_cnn(TF, x, a, b), in_dims=(batch_dim, None, None))
    T = lambda a: torch.tensor(a)  # noqa: E731
    same(mine(ours(xs), ours(w1), ours(w2)), theirs(T(xs), T(w1), T(w2)))
    grads = func.vmap(func.grad(lambda a, b, x: small_cnn(F, x, a, b), (0, 1)), in_dims=(None, None, batch_dim))
    t_grads = tf.vmap(tf.grad(lambda a, b, x: small_cnn(TF, x, a, b), (0, 1)), in_dims=(None, None, batch_dim))
    for g, t in zip(grads(ours(w1), ours(w2), ours(xs)), t_grads(T(w1), T(w2), T(xs))):
        same(g, t)


@settings(max_examples=8)
@given(config=S.conv2d_configs(max_groups=2), data=st.data())
def test_vmap_of_conv2d_with_batched_inputs_weights_or_both_matches_torch(config, data):
    torch = pytest.importorskip("torch")
    batch = data.draw(st.integers(1, 3))
    x_dim, w_dim = data.draw(st.sampled_from([(0, None), (None, 0), (0, 0), (1, 0)]))
    x = data.draw(S.arrays((batch, *config.input_shape) if x_dim is not None else config.input_shape))
    w = data.draw(S.arrays((batch, *config.weight_shape) if w_dim is not None else config.weight_shape))
    if x_dim == 1:
        x = np.moveaxis(x, 0, 1)
    kw = config.kwargs
    out_dim = data.draw(st.integers(0, 1))
    mine = func.vmap(lambda x, w: F.conv2d(x, w, **kw), in_dims=(x_dim, w_dim), out_dims=out_dim)
    theirs = torch.func.vmap(lambda x, w: torch.nn.functional.conv2d(x, w, **kw), in_dims=(x_dim, w_dim), out_dims=out_dim)
    same(mine(ours(x), ours(w)), theirs(torch.tensor(x), torch.tensor(w)))


@settings(max_examples=8)
@given(config=S.pool2d_configs(), data=st.data())
def test_vmap_of_pooling_and_its_jacobian_matches_torch(config, data):
    torch = pytest.importorskip("torch")
    kw = {k: v for k, v in config.kwargs.items() if v is not None}
    x = data.draw(S.distinct_values((2, *config.input_shape)))
    pool, t_pool = (lambda x: F.max_pool2d(x, **kw)), (lambda x: torch.nn.functional.max_pool2d(x, **kw))
    same(func.vmap(pool)(x), torch.func.vmap(t_pool)(torch.tensor(x.data)))
    same(func.vmap(func.jacrev(pool))(x), torch.func.vmap(torch.func.jacrev(t_pool))(torch.tensor(x.data)))
    same(func.vmap(func.jacfwd(lambda x: F.avg_pool2d(x, **kw)))(x),
         torch.func.vmap(torch.func.jacfwd(lambda x: torch.nn.functional.avg_pool2d(x, **kw)))(torch.tensor(x.data)))


@settings(max_examples=10)
@given(data=st.data())
def test_vmap_of_matmul_and_losses_matches_torch(data):
    torch = pytest.importorskip("torch")
    batch, n, k, classes = (data.draw(st.integers(1, 3)) for _ in range(4))
    classes += 1
    x, w = data.draw(S.arrays((batch, n, k))), data.draw(S.arrays((k, classes)))
    labels = data.draw(S.arrays((batch, n), elements=st.integers(0, classes - 1), dtype=np.int64))
    smoothing = data.draw(st.sampled_from([0.0, 0.1]))

    def loss(w, x, y, F=F):
        return F.cross_entropy(x @ w, y, label_smoothing=smoothing)

    t_loss = lambda w, x, y: loss(w, x, y, torch.nn.functional)  # noqa: E731
    T = torch.tensor
    same(func.vmap(loss, in_dims=(None, 0, 0))(ours(w), ours(x), tg.Tensor(labels)),
         torch.func.vmap(t_loss, in_dims=(None, 0, 0))(T(w), T(x), T(labels)))
    same(func.vmap(func.hessian(loss), in_dims=(None, 0, 0))(ours(w), ours(x), tg.Tensor(labels)),
         torch.func.vmap(torch.func.hessian(t_loss), in_dims=(None, 0, 0))(T(w), T(x), T(labels)))
    v = data.draw(S.arrays(x.shape[1:]))  # a vector per sample: matmul of a batched vector
    same(func.vmap(lambda v, x: v @ x.T @ x @ v, in_dims=(None, 0))(ours(v[0]), ours(x)),
         torch.func.vmap(lambda v, x: v @ x.T @ x @ v, in_dims=(None, 0))(T(v[0]), T(x)))


def test_nested_vmaps_with_in_dims_out_dims_and_structures_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 4))

    def f(p):
        return (p["x"] * p["y"]).sum(), p["x"].exp()

    mine = func.vmap(func.vmap(f, in_dims=({"x": 0, "y": None},), out_dims=(0, 1)), in_dims=({"x": 1, "y": 1},))
    theirs = torch.func.vmap(torch.func.vmap(f, in_dims=({"x": 0, "y": None},), out_dims=(0, 1)), in_dims=({"x": 1, "y": 1},))
    for m, t in zip(mine({"x": ours(a), "y": ours(b)}), theirs({"x": torch.tensor(a), "y": torch.tensor(b)})):
        same(m, t)
    same(func.vmap(lambda x: x.sum(0), in_dims=-1, out_dims=-1)(ours(a)),
         torch.func.vmap(lambda x: x.sum(0), in_dims=-1, out_dims=-1)(torch.tensor(a)))
    # an output that does not depend on the mapped input is repeated along the batch, as torch
    same(func.vmap(lambda x: ours(b).sum())(ours(a)), torch.func.vmap(lambda x: torch.tensor(b).sum())(torch.tensor(a)))


# ---- semantics -----------------------------------------------------------------------------------


def test_per_sample_gradients_of_a_module_through_functional_call():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 4)).double()
    params = {name: p.detach() for name, p in model.named_parameters()}
    rng = np.random.default_rng(3)
    x, y = ours(rng.standard_normal((5, 1, 6, 6))), tg.Tensor(rng.integers(0, 4, 5))

    def loss(params, x, y):
        return F.cross_entropy(func.functional_call(model, params, (x[None],)), y[None])

    per_sample = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    for b in range(5):
        one = func.grad(loss)(params, x[b], y[b])
        for name in params:
            np.testing.assert_allclose(per_sample[name].data[b], one[name].data, rtol=1e-12, atol=1e-14)
    assert all(p is model._modules[n.split(".")[0]]._parameters[n.split(".")[1]] for n, p in model.named_parameters())


def test_errors_name_the_problem():
    x, y = ours(np.ones((3, 2))), ours(np.ones((4, 2)))
    with pytest.raises(ValueError, match="mapped dimensions of the inputs differ in size"):
        func.vmap(lambda a, b: a + b)(x, y)
    with pytest.raises(ValueError, match="maps no input"):
        func.vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="out of range for argument"):
        func.vmap(lambda a: a, in_dims=2)(x)
    with pytest.raises(ValueError, match="in_dims has 2 entries for 1"):
        func.vmap(lambda a: a, in_dims=(0, 0))(x)
    with pytest.raises(ValueError, match="which is a int, not a Tensor"):
        func.vmap(lambda a, n: a * n, in_dims=(0, 0))(x, 3)
    with pytest.raises(ValueError, match="out_dims is None for output"):
        func.vmap(lambda a: a * 2, out_dims=None)(x)
    with pytest.raises(RuntimeError, match="reads a tensor's NumPy values"):
        func.vmap(lambda a: a.sum().item())(x)
    with pytest.raises(RuntimeError, match="backward\\(\\) cannot run inside vmap"):
        func.vmap(lambda a: a.sum().backward())(x)
    with pytest.raises(RuntimeError, match="dropout draws random numbers"):
        func.vmap(lambda a: F.dropout(a, 0.5))(x)
    with pytest.raises(ValueError, match="randomness must be"):
        func.vmap(lambda a: a, randomness="sometimes")
    bn, batches = nn.BatchNorm1d(2).double(), ours(np.random.default_rng(0).standard_normal((3, 4, 2)))
    with pytest.raises(RuntimeError, match="BatchNorm1d: a function transform"):
        func.vmap(bn)(batches)
    bn.eval()
    same(func.vmap(bn)(batches), loop(bn, batches))


def test_randomness_same_and_different():
    x = ours(np.ones((4, 50)))
    tg.manual_seed(0)
    same_masks = func.vmap(lambda a: F.dropout(a, 0.5), randomness="same")(x).data
    assert all(np.array_equal(same_masks[0], row) for row in same_masks)
    different = func.vmap(lambda a: F.dropout(a, 0.5), randomness="different")(x).data
    assert not all(np.array_equal(different[0], row) for row in different)
    assert set(np.unique(different)) <= {0.0, 2.0}


def test_chunks_give_the_same_results():
    x = ours(np.random.default_rng(1).standard_normal((7, 3)))
    f = lambda a: ((a * a).sum(), a.exp())  # noqa: E731
    for whole, chunked in zip(func.vmap(f)(x), func.vmap(f, chunk_size=3)(x)):
        np.testing.assert_array_equal(whole.data, chunked.data)


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


def test_an_op_without_a_rule_runs_in_a_loop_and_warns_once_naming_it():
    x = ours(np.random.default_rng(2).standard_normal((4, 3)))
    with pytest.warns(RuntimeWarning, match="Cube has no batching rule"):
        out = func.vmap(Cube.apply)(x)
    same(out, x.data ** 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        func.vmap(Cube.apply)(x)  # once per op
    same(func.vmap(func.grad(lambda a: Cube.apply(a).sum()))(x), 3 * x.data ** 2)
    with pytest.raises(AssertionError, match="Cube has no batching rule"):
        check_batching_rule(Cube.apply, x)


def test_a_user_function_with_its_own_rule_is_batched_by_it():
    calls = []

    class Square(Cube):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * grad * x

        @staticmethod
        def vmap(info, in_dims, x):
            calls.append((info.batch_size, in_dims))
            return Square.apply(x), in_dims[0]

    x = ours(np.random.default_rng(3).standard_normal((4, 3)))
    assert check_batching_rule(Square.apply, x, in_dims=1, modes=("rev",))  # Square has no JVP rule
    assert calls[0] == (3, (0,))


def test_grad_of_vmap_vmap_of_grad_and_vmap_of_jvp():
    rng = np.random.default_rng(4)
    w, x = ours(rng.standard_normal((3, 2))), ours(rng.standard_normal((5, 3)))
    f = lambda w, x: (x @ w).tanh().sum()  # noqa: E731
    summed = func.grad(lambda w: func.vmap(f, in_dims=(None, 0))(w, x).sum())(w)
    per_sample = func.vmap(func.grad(f), in_dims=(None, 0))(w, x)
    same(summed, per_sample.sum(0))
    same(per_sample, loop(lambda xb: func.grad(f)(w, xb), x))
    v = ours(rng.standard_normal((3, 2)))
    tangents = func.vmap(lambda xb: func.jvp(lambda w: f(w, xb), (w,), (v,))[1])(x)
    same(tangents, loop(lambda xb: func.jvp(lambda w: f(w, xb), (w,), (v,))[1], x))
    hessians = func.vmap(func.hessian(f), in_dims=(None, 0))(w, x)
    same(hessians, loop(lambda xb: func.hessian(f)(w, xb), x))
    twice = func.vmap(func.vmap(func.grad(f), in_dims=(None, 0)), in_dims=(None, 0))(w, x.reshape(5, 1, 3))
    same(twice.reshape(5, 3, 2), per_sample)


def test_checkpoint_inside_vmap_gives_identical_gradients():
    rng = np.random.default_rng(5)
    w, x = ours(rng.standard_normal((4, 4))), ours(rng.standard_normal((6, 3, 4)))
    block = lambda v: (v @ w).tanh() @ w  # noqa: E731
    plain = func.vmap(func.grad(lambda v: block(v).sum()))(x)
    kept = func.vmap(func.grad(lambda v: checkpoint(block, v).sum()))(x)
    np.testing.assert_array_equal(plain.data, kept.data)
    outer = lambda w_, f: func.vmap(lambda v: f(lambda u: (u @ w_).tanh().sum(), v))(x).sum()  # noqa: E731
    np.testing.assert_array_equal(func.grad(lambda w_: outer(w_, lambda g, v: g(v)))(w).data,
                                  func.grad(lambda w_: outer(w_, checkpoint))(w).data)


@pytest.mark.parametrize("randomness", ["different", "same"])
def test_checkpoint_inside_vmap_replays_dropout(randomness):
    rng = np.random.default_rng(8)
    w, x = ours(rng.standard_normal((6, 6))), ours(rng.standard_normal((4, 6)))
    block = lambda u: F.dropout((u @ w).tanh(), 0.5) @ w  # noqa: E731
    tg.manual_seed(5)
    plain = func.vmap(func.grad(lambda v: block(v).sum()), randomness=randomness)(x)
    tg.manual_seed(5)
    kept = func.vmap(func.grad(lambda v: checkpoint(block, v).sum()), randomness=randomness)(x)
    np.testing.assert_array_equal(plain.data, kept.data)


def test_vmap_levels_belong_to_their_thread():
    x = ours(np.ones((3, 2)))
    inside, other = threading.Event(), []

    def mapped(a):
        inside.set()
        thread.join()
        return a * 2

    def elsewhere():
        inside.wait()
        y = ours(np.ones(2)) * 3  # an op in another thread while vmap runs: not batched
        other.append(type(y).__name__ + str(y.shape))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    same(func.vmap(mapped)(x), np.full((3, 2), 2.0))
    assert other == ["Tensor(2,)"]


def test_a_tensor_kept_from_inside_vmap_names_the_problem():
    kept = []
    func.vmap(lambda a: kept.append(a) or a)(ours(np.ones((3, 2))))
    with pytest.raises(RuntimeError, match="from inside a vmap that has returned"):
        kept[0] * 2


def _library_cases():
    rng = np.random.default_rng(6)
    T = lambda *s: ours(rng.standard_normal(s))  # noqa: E731
    ints = lambda high, shape: tg.Tensor(rng.integers(0, high, shape))  # noqa: E731
    probabilities = lambda *s: ours(rng.random(s))  # noqa: E731
    return {
        "sort, topk, argsort": (lambda a: a.sort(1).values + a.topk(5, 1).values + a.argsort(1).astype(a.dtype), T(3, 4, 5)),
        "flip, roll, repeat": (lambda a: a.flip(1).roll(1, 1).repeat(2, 1), T(3, 4, 5)),
        "split, chunk, unbind, narrow": (lambda a: a.split(2, 1)[0] + a.chunk(2, 1)[1] + a.unbind(0)[1][:2] + a.narrow(0, 1, 1)[:, :2],
                                         T(3, 4, 4)),
        "masked_fill, where, clamp": (lambda a, b: a.masked_fill(a > 0, 0.0) + tg.where(b > 0, a, b) + a.clamp(min=b), T(3, 4), T(3, 4)),
        "layer_norm": (lambda a: F.layer_norm(a, (5,)), T(3, 4, 5)),
        "adaptive and average pooling": (lambda a: F.adaptive_avg_pool2d(a, 2) + F.avg_pool2d(a, 2, ceil_mode=True), T(3, 1, 2, 4, 4)),
        "interpolate": (lambda a: F.interpolate(a, scale_factor=2), T(3, 1, 2, 3, 3)),
        "conv_transpose2d, conv1d": (lambda a, b: F.conv_transpose2d(a, ours(np.ones((2, 3, 3, 3)))).sum() + F.conv1d(b, ours(np.ones((3, 2, 3)))).sum(),
                                     T(3, 1, 2, 4, 4), T(3, 1, 2, 6)),
        "embedding": (lambda i: F.embedding(i, ours(np.arange(20.0).reshape(5, 4)), padding_idx=1), ints(5, (3, 2))),
        "advanced index per sample": (lambda a, i: a[i].sum(1) + a[i, i], T(3, 5, 5), ints(5, (3, 2))),
        "gather and sort with per-sample indices": (lambda a, i: a.gather(0, i).sort(0).values, T(3, 4, 2), ints(4, (3, 1, 2))),
        "softmax family": (lambda a: F.gelu(a) + F.silu(a) + F.log_softmax(a, 0) + F.softmax(a, 1) + a.logsumexp(1, keepdim=True), T(3, 4, 2)),
        "regression losses": (lambda a, b: F.mse_loss(a, b) + F.l1_loss(a, b) + F.binary_cross_entropy_with_logits(a, b.sigmoid()),
                              T(3, 4), T(3, 4)),
        "binary_cross_entropy": (lambda a, p: F.binary_cross_entropy(a.sigmoid(), p), T(3, 4), probabilities(3, 4)),
        "nll_loss, cross_entropy with weights": (lambda a, y: F.nll_loss(F.log_softmax(a, 1), y, weight=ours([1.0, 2, 3, 4]))
                                                 + F.cross_entropy(a, y, ignore_index=0), T(3, 2, 4), ints(4, (3, 2))),
        "cross_entropy with probabilities": (lambda a, p: F.cross_entropy(a, p), T(3, 2, 4), probabilities(3, 2, 4)),
        "reductions": (lambda a: a.mean(0) + a.var(0) + a.std() + a.min() + a.norm(1) + a.prod(1).sum() + a.cumsum(0).sum(0), T(3, 4, 5)),
        "argmax compared with labels": (lambda a, y: (a.argmax(1) == y).astype(a.dtype).mean(), T(3, 4, 5), ints(5, (3, 4))),
        "matrix products": (lambda a, b: a @ b + tg.einsum("ij,jk->ik", a, b) + a.mT.mT @ b, T(3, 2, 4), T(3, 4, 2)),
    }


@pytest.mark.parametrize("name", sorted(_library_cases()))
def test_library_functions_under_vmap_match_a_loop(name):
    f, *inputs = _library_cases()[name]
    modes = ("rev", "fwd") if all(x.dtype.kind == "f" for x in inputs) else ()
    assert check_batching_rule(f, *inputs, modes=modes)


def test_composites_that_need_each_samples_values_loop_and_say_so():
    rng = np.random.default_rng(7)
    x, index = ours(rng.standard_normal((3, 1, 2, 5, 5))), tg.Tensor(rng.integers(0, 4, (3, 1, 2)))
    with pytest.warns(RuntimeWarning, match="adaptive_max_pool2d has no batching rule"):
        same(func.vmap(lambda a: F.adaptive_max_pool2d(a, 2))(x), loop(lambda a: F.adaptive_max_pool2d(a, 2), x))
    y = ours(rng.standard_normal((3, 4, 2)))
    with pytest.warns(RuntimeWarning, match="scatter has no batching rule"):
        same(func.vmap(lambda a, i: a.scatter(0, i, 1.0))(y, index), tg.stack([y[b].scatter(0, index[b], 1.0) for b in range(3)]))
    with pytest.raises(RuntimeError, match="boolean mask that differs per sample"):
        func.vmap(lambda a: a[a > 0])(y)
