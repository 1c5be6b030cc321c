"""An adversarial review of ``func.vmap``: each test is a case found to go wrong, written as the
behaviour ``torch.func.vmap`` (float64) or a loop over the samples gives.

Kept apart from ``test_vmap.py`` (the design's own suite) so that each finding stays one small,
named test: a user mistake that must be refused, a library function that must see a batched
tensor's shape rather than its values, a checkpoint inside vmap that must give what the plain graph
gives."""
import warnings

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import func
from tinygrad_cnn.utils.checkpoint import checkpoint


def ours(a):
    return tg.Tensor(np.asarray(a, dtype=np.float64))


def same(a, b, tol=1e-12):
    a = a.data if isinstance(a, tg.Tensor) else a
    b = b.detach().numpy() if hasattr(b, "detach") else b
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def loop(f, *batches):
    return tg.stack([f(*(x[b] for x in batches)) for b in range(batches[0].shape[0])], 0)


# ---- indexing: a sample's index must not reach the batch dimension ---------------------------------


def test_an_index_with_more_entries_than_a_sample_has_dimensions_is_refused():
    # torch: IndexError (too many indices for tensor of dimension 1). Before the fix, a[0, :] on a
    # 1-D sample indexed the batch dimension and returned x[:, 0] silently; a[0, 0] died in a
    # ZeroDivisionError inside BatchedTensor.__init__.
    x = ours(np.arange(12.0).reshape(3, 4))
    with pytest.raises(IndexError, match="too many indices"):
        func.vmap(lambda a: a[0, :])(x)
    with pytest.raises(IndexError, match="too many indices"):
        func.vmap(lambda a: a[0, 0])(x)
    with pytest.raises(IndexError, match="too many indices"):
        func.vmap(lambda a: a[..., 1, None, :])(x)
    same(func.vmap(lambda a: a[..., 1, None])(x), x.data[:, 1, None])  # a full index is still fine


# ---- library code that needs a batched tensor's shape or dtype, not its values ----------------------


def test_like_factories_and_the_as_methods_take_a_samples_shape():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    cases = {
        "zeros_like": lambda T: lambda a: T.zeros_like(a) + a,
        "ones_like": lambda T: lambda a: T.ones_like(a) * a,
        "full_like": lambda T: lambda a: T.full_like(a, 2.0) * a,
        "type_as": lambda T: lambda a: a.type_as(a) * 2,
        "view_as": lambda T: lambda a: a.flatten().view_as(a),
        "reshape_as": lambda T: lambda a: a.flatten().reshape_as(a),
        "expand_as": lambda T: lambda a: a[:1].expand_as(a),
    }
    for make in cases.values():
        same(func.vmap(make(tg))(ours(x)), torch.func.vmap(make(torch))(torch.tensor(x)))


def test_clone_of_a_batched_tensor():
    x = ours(np.random.default_rng(1).standard_normal((3, 4)))
    same(func.vmap(lambda a: a.clone() * 2)(x), x.data * 2)
    same(func.vmap(func.grad(lambda a: (a.clone() ** 2).sum()))(x), 2 * x.data)


def test_max_pool2d_with_indices_under_vmap_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((3, 1, 2, 6, 6))
    values, indices = func.vmap(lambda a: F.max_pool2d(a, 2, return_indices=True))(ours(x))
    theirs = torch.func.vmap(lambda a: torch.nn.functional.max_pool2d(a, 2, return_indices=True))(torch.tensor(x))
    same(values, theirs[0])
    np.testing.assert_array_equal(indices.data, theirs[1].numpy())


def test_one_hot_under_vmap_matches_torch():
    torch = pytest.importorskip("torch")
    labels = np.random.default_rng(3).integers(0, 4, (3, 5))
    mine = func.vmap(lambda y: F.one_hot(y, 4))(tg.Tensor(labels))
    np.testing.assert_array_equal(mine.data, torch.func.vmap(lambda y: torch.nn.functional.one_hot(y, 4))(torch.tensor(labels)).numpy())
    with pytest.raises(ValueError, match="give num_classes"):  # each sample would have its own count of classes
        func.vmap(lambda y: F.one_hot(y))(tg.Tensor(labels))


def test_cross_entropy_with_a_weight_per_sample_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    logits, labels, weights = rng.standard_normal((3, 5, 4)), rng.integers(0, 4, (3, 5)), rng.random((3, 4)) + 0.1
    mine = func.vmap(lambda a, y, w: F.cross_entropy(a, y, weight=w))(ours(logits), tg.Tensor(labels), ours(weights))
    theirs = torch.func.vmap(lambda a, y, w: torch.nn.functional.cross_entropy(a, y, weight=w))(
        torch.tensor(logits), torch.tensor(labels), torch.tensor(weights))
    same(mine, theirs)
    probabilities = rng.random((3, 5, 4))  # the other kind of target
    mine = func.vmap(lambda a, p, w: F.cross_entropy(a, p, weight=w))(ours(logits), ours(probabilities), ours(weights))
    theirs = torch.func.vmap(lambda a, p, w: torch.nn.functional.cross_entropy(a, p, weight=w))(
        torch.tensor(logits), torch.tensor(probabilities), torch.tensor(weights))
    same(mine, theirs)


# ---- random numbers follow vmap's randomness ---------------------------------------------------------


def test_random_factories_follow_vmap_randomness():
    # torch: randn inside vmap refuses in "error" mode and draws per sample in "different" mode; here
    # tg.randn ignored vmap: no error, and the same numbers for every sample under "different".
    x = ours(np.zeros((3, 4)))
    for factory in (tg.randn, tg.rand):
        def drawn(a, factory=factory):
            return factory(4) + a

        with pytest.raises(RuntimeError, match="randomness"):
            func.vmap(drawn)(x)
        different = func.vmap(drawn, randomness="different")(x).data
        assert not np.array_equal(different[0], different[1])
        shared = func.vmap(drawn, randomness="same")(x).data
        assert all(np.array_equal(shared[0], row) for row in shared)
    different = func.vmap(lambda a: tg.randn_like(a), randomness="different")(x).data
    assert different.shape == (3, 4) and not np.array_equal(different[0], different[1])


def test_integer_random_factories_follow_vmap_randomness():
    # randint, randint_like and randperm ignored vmap too (no error under "error", one draw under "different")
    x = tg.Tensor(np.zeros((3, 20), dtype=np.int64))
    for factory in (lambda a: tg.randint(0, 1000, (20,)) + a, lambda a: tg.randint_like(a, 1000) + a,
                    lambda a: tg.randperm(20) + a):
        with pytest.raises(RuntimeError, match="randomness"):
            func.vmap(factory)(x)
        different = func.vmap(factory, randomness="different")(x).data
        assert different.dtype == np.int64 and not np.array_equal(different[0], different[1])
        shared = func.vmap(factory, randomness="same")(x).data
        assert all(np.array_equal(shared[0], row) for row in shared)
    permutations = func.vmap(lambda a: tg.randperm(20) + a, randomness="different")(x).data
    assert all(sorted(row) == list(range(20)) for row in permutations)


# ---- checkpoint inside vmap -------------------------------------------------------------------------


def test_checkpoint_with_an_unbatched_tensor_argument_gives_identical_gradients_in_grad_of_vmap():
    # issue 14: a checkpoint's gradients are identical (bit for bit) to the plain graph's, inside
    # vmap/grad too. Passing the shared weights as an argument (not a closure) changed the order of
    # the sums: the checkpoint repeated them along the batch before differentiating.
    rng = np.random.default_rng(5)
    w, x = ours(rng.standard_normal((4, 4))), ours(rng.standard_normal((3, 4)))
    block = lambda v, w_: (v @ w_).tanh() @ w_  # noqa: E731
    plain = func.grad(lambda w_: func.vmap(lambda v: block(v, w_).sum())(x).pow(2).sum())(w)
    kept = func.grad(lambda w_: func.vmap(lambda v: checkpoint(block, v, w_).sum())(x).pow(2).sum())(w)
    np.testing.assert_array_equal(plain.data, kept.data)


def test_checkpoint_of_dropout_inside_vmap_with_a_draw_per_sample():
    # issue 14: checkpoint replays random ops and works inside vmap; with randomness="different" it
    # raised "this code reads a tensor's NumPy values" instead.
    x = ours(np.random.default_rng(6).standard_normal((3, 8)))
    block = lambda v: F.dropout(v, 0.5) * v  # noqa: E731
    tg.manual_seed(0)
    plain = func.vmap(func.grad(lambda v: block(v).sum()), randomness="different")(x)
    tg.manual_seed(0)
    kept = func.vmap(func.grad(lambda v: checkpoint(block, v).sum()), randomness="different")(x)
    np.testing.assert_array_equal(plain.data, kept.data)


# ---- user mistakes get one clear line ----------------------------------------------------------------


@pytest.mark.parametrize("write", ["add_", "iadd", "setitem", "fill_", "zero_", "copy_"])
def test_in_place_writes_to_a_batched_tensor_compute_like_torch_or_say_in_place(write):
    """torch computes these; a clear refusal naming the in-place write is acceptable too. Before,
    the message blamed code reading NumPy values, which the user did not write."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).standard_normal((3, 4))

    def make(T):
        def f(a):
            y = a * 1
            if write == "add_":
                y.add_(1.0)
            elif write == "iadd":
                y += a
            elif write == "setitem":
                y[0] = 5.0
            elif write == "fill_":
                y.fill_(2.0)
            elif write == "zero_":
                y.zero_()
            else:
                y.copy_(a * 3)
            return y
        return f

    try:
        mine = func.vmap(make(tg))(ours(x))
    except RuntimeError as error:
        assert "in-place" in str(error) and "NumPy values" not in str(error), str(error)
        return
    same(mine, torch.func.vmap(make(torch))(torch.tensor(x)))


def test_in_dims_of_a_bool_is_refused():
    # torch refuses in_dims=True; a bool here is a mistake, not the dimension 1
    with pytest.raises(TypeError, match="in_dims"):
        func.vmap(lambda a: a.sum(0), in_dims=True)(ours(np.ones((3, 2))))
    with pytest.raises(TypeError, match="out_dims"):
        func.vmap(lambda a: a, out_dims=False)(ours(np.ones((3, 2))))



def test_checkpoint_inside_vmap_of_hessian_gives_the_plain_hessian():
    # jacfwd maps its directions with a vmap of its own, so the checkpointed function meets tangents
    # batched at that level: a fix for random draws must not hide the levels from the ops
    rng = np.random.default_rng(14)
    w, x = ours(rng.standard_normal((4, 4))), ours(rng.standard_normal((3, 4)))
    block = lambda v, w_: (v @ w_).tanh() @ w_  # noqa: E731
    plain = func.vmap(func.hessian(lambda v: block(v, w).sum()))(x)
    kept = func.vmap(func.hessian(lambda v: checkpoint(block, v, w).sum()))(x)
    np.testing.assert_array_equal(plain.data, kept.data)

def test_checkpoint_inside_vmap_of_a_function_that_closes_over_a_batched_tensor():
    # torch.utils.checkpoint inside vmap takes the closure as it is; here the checkpoint's own vmap
    # met a tensor of the enclosing level and stopped with "a tensor from inside a vmap that has
    # returned" (the vmap had not returned) or "reads a tensor's NumPy values". Computing it as torch
    # does, or saying to pass the tensor as an argument, both fix it.
    rng = np.random.default_rng(8)
    x, y = ours(rng.standard_normal((3, 4))), ours(rng.standard_normal((3, 4)))
    try:
        same(func.vmap(lambda a, b: checkpoint(lambda u: (u * b).sin(), a))(x, y), np.sin(x.data * y.data))
        same(func.vmap(func.grad(lambda a, b: checkpoint(lambda u: (u * b).sin(), a).sum()))(x, y),
             y.data * np.cos(x.data * y.data))
    except RuntimeError as error:
        assert "pass that tensor to checkpoint as an argument" in str(error), str(error)
    # as an argument it works
    same(func.vmap(func.grad(lambda a, b: checkpoint(lambda u, v: (u * v).sin(), a, b).sum()))(x, y),
         y.data * np.cos(x.data * y.data))


# ---- modules as functions ---------------------------------------------------------------------------


def test_an_ensemble_with_batch_norm_buffers_per_model_matches_torch():
    # torch.func's model ensembling maps functional_call over stacked parameters *and buffers*;
    # BatchNorm in eval mode read running_mean.data, which a batched buffer cannot give
    torch = pytest.importorskip("torch")
    from tinygrad_cnn import nn

    rng = np.random.default_rng(9)
    means, variances, x = rng.standard_normal((2, 3)), rng.random((2, 3)) + 0.5, rng.standard_normal((4, 3, 2, 2))
    mine, theirs = nn.BatchNorm2d(3).double().eval(), torch.nn.BatchNorm2d(3).double().eval()
    got = func.vmap(lambda m, v: func.functional_call(mine, {"running_mean": m, "running_var": v}, (ours(x),)))(
        ours(means), ours(variances))
    expected = torch.func.vmap(lambda m, v: torch.func.functional_call(theirs, {"running_mean": m, "running_var": v},
                                                                       (torch.tensor(x),)))(torch.tensor(means), torch.tensor(variances))
    same(got, expected)


# ---- hooks ------------------------------------------------------------------------------------------


def test_a_hook_on_a_tensor_inside_vmap_of_grad_changes_the_gradient_as_in_torch():
    # the hook was kept on the BatchedTensor wrapper, which the backward pass never visits: the
    # gradient came out as if there were no hook, silently
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(10).standard_normal((3, 4))

    def make(hook):
        def f(a):
            b = a * 2
            b.register_hook(hook)
            return (b ** 2).sum()
        return f

    tripled = lambda g: g * 3  # noqa: E731
    same(func.vmap(func.grad(make(tripled)))(ours(x)), torch.func.vmap(torch.func.grad(make(tripled)))(torch.tensor(x)))
    seen = []
    func.vmap(func.grad(make(lambda g: seen.append(g.shape))))(ours(x))
    assert seen == [(4,)]  # the hook sees one sample's gradient, as torch's does


def test_autograd_grad_inside_vmap_says_what_to_use_instead():
    # as x.backward() inside vmap does; it blamed code reading NumPy values, which the user did not write
    x, w = ours(np.ones((3, 4))), tg.Tensor(np.ones((4, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="func.grad"):
        func.vmap(lambda a: tg.autograd.grad((a @ w).sum(), w)[0])(x)


def test_forward_ad_inside_vmap_computes_like_torch_or_names_func_jvp():
    # make_dual on a batched tensor read its NumPy values; torch computes it. func.jvp inside vmap works.
    torch = pytest.importorskip("torch")
    from tinygrad_cnn import forward_ad

    x = np.random.default_rng(11).standard_normal((3, 4))

    def make(fw):
        def f(a, t):
            with fw.dual_level():
                out = (fw.make_dual(a, t).sin() * a).sum()
                return fw.unpack_dual(out).tangent
        return f

    try:
        mine = func.vmap(make(forward_ad))(ours(x), ours(np.ones((3, 4))))
    except RuntimeError as error:
        assert "func.jvp" in str(error), str(error)
        return
    same(mine, torch.func.vmap(make(torch.autograd.forward_ad))(torch.tensor(x), torch.ones(3, 4, dtype=torch.float64)))


# ---- randomness and chunks ----------------------------------------------------------------------------


def test_randomness_same_gives_every_sample_the_same_draw_across_chunks():
    # torch: with randomness="same" every sample sees one draw, chunk_size or not; here each chunk drew
    # its own mask, so samples in different chunks differed
    x = ours(np.ones((4, 30)))
    masks = func.vmap(lambda a: F.dropout(a, 0.5), randomness="same", chunk_size=2)(x).data
    assert all(np.array_equal(masks[0], row) for row in masks)
    tg.manual_seed(3)
    whole = func.vmap(lambda a: F.dropout(a, 0.5), randomness="same")(x)
    after_whole = tg.rand(1)
    tg.manual_seed(3)
    chunked = func.vmap(lambda a: F.dropout(a, 0.5), randomness="same", chunk_size=3)(x)
    np.testing.assert_array_equal(chunked.data, whole.data)  # "the same results", as vmap's docstring says
    np.testing.assert_array_equal(tg.rand(1).data, after_whole.data)  # and the generator left where one draw leaves it


def test_index_select_with_indices_per_sample_matches_torch():
    # index_select read its index's NumPy values, which a batched index cannot give
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x, index, columns = rng.standard_normal((3, 4, 2)), rng.integers(0, 4, (3, 2)), rng.integers(0, 2, (3, 3))
    with warnings.catch_warnings():  # slices beside a per-sample index run in a loop, which warns once per process
        warnings.simplefilter("ignore", RuntimeWarning)
        mine = func.vmap(lambda a, i: a.index_select(1, i))(ours(x), tg.Tensor(columns))
    same(mine, torch.func.vmap(lambda a, i: a.index_select(1, i))(torch.tensor(x), torch.tensor(columns)))
    same(func.vmap(lambda a, i: a.index_select(0, i))(ours(x), tg.Tensor(index)),
         torch.func.vmap(lambda a, i: a.index_select(0, i))(torch.tensor(x), torch.tensor(index)))


def test_argmax_over_all_of_a_sample_with_keepdim_matches_a_loop():
    # batching.values gave np.argmax a tuple of axes (all of a sample's) when keepdim was asked for.
    # Against the loop, not torch: torch's vmap gives (1,) per sample where its unbatched argmax gives (1, 1).
    x = ours(np.random.default_rng(13).standard_normal((3, 2, 4)))
    for located in (lambda a: a.argmax(keepdim=True), lambda a: a.argmin(keepdim=True)):
        np.testing.assert_array_equal(func.vmap(located)(x).data, loop(located, x).data)


@pytest.mark.parametrize("write", ["add_", "iadd", "copy_", "setitem value", "setitem index"])
def test_in_place_writes_of_per_sample_values_into_a_shared_tensor_say_in_place(write):
    # torch refuses too ("output with shape [4] doesn't match the broadcast shape [3, 4]"); here the
    # message blamed code reading NumPy values
    x, index = ours(np.ones((3, 4))), tg.Tensor(np.array([0, 1, 2]))

    def f(a, i):
        shared = tg.zeros(4, dtype=np.float64)
        if write == "add_":
            shared.add_(a)
        elif write == "iadd":
            shared += a
        elif write == "copy_":
            shared.copy_(a)
        elif write == "setitem value":
            shared[0] = a[0]
        else:
            shared[i] = 1.0
        return shared

    with pytest.raises(RuntimeError, match="in-place") as error:
        func.vmap(f)(x, index)
    assert "NumPy values" not in str(error.value)
