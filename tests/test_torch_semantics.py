"""The Tensor speaks torch: where torch and NumPy disagree, torch's meaning (``size()``, ``max(dim)``,
unbiased ``var``, ``transpose(d0, d1)``, ``tensor([1, 2])`` is int64); NumPy's spellings that do
not conflict still work (``axis=``, ``keepdims=``, ``.shape``, ``astype``).

Each behaviour is checked on its own and, where torch is installed, side by side with torch on
the same call (the differentiable ops have their property tests in tests/ops/)."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7


def both(call):
    """``call(tg)`` and, where torch is installed, ``call(torch)``: the same program on both."""
    ours = call(tg)
    try:
        import torch
    except ImportError:
        return ours, None
    return ours, call(torch)


def same(ours, theirs):
    """Equal values and dtypes (ours a Tensor, theirs a torch tensor), or equal Python values."""
    if theirs is None:
        return
    if isinstance(ours, Tensor):
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)
    elif isinstance(ours, tuple) and ours and isinstance(ours[0], Tensor):
        for o, t in zip(ours, theirs):
            same(o, t)
    else:
        assert ours == theirs


@pytest.mark.parametrize("call", [
    lambda m: m.tensor([1, 2]), lambda m: m.tensor([1.0, 2]), lambda m: m.tensor([True, False]),
    lambda m: m.tensor(3), lambda m: m.tensor(2.5), lambda m: m.tensor([[1, 2], [3, 4]], dtype=m.float64),
    lambda m: m.tensor(np.array([1, 2], dtype=np.int32)), lambda m: m.arange(5), lambda m: m.arange(1, 7, 2),
    lambda m: m.arange(0, 1, 0.25), lambda m: m.arange(3.0), lambda m: m.linspace(0, 1, 5),
    lambda m: m.zeros(2, 3), lambda m: m.ones((2, 3)), lambda m: m.full((2,), 7), lambda m: m.full((2,), 0.5),
    lambda m: m.full((2,), True), lambda m: m.zeros(2, dtype=m.long), lambda m: m.eye(3),
    lambda m: m.zeros_like(m.tensor([1, 2])), lambda m: m.ones_like(m.tensor([1.0]), dtype=m.float64),
    lambda m: m.full_like(m.tensor([1.0, 2.0]), 3), lambda m: m.empty(2, 3).shape,
], ids=lambda c: "")
def test_creation_dtypes_and_values_as_torch(call):
    same(*both(call))


def test_tensor_copies_from_numpy_shares_as_tensor_shares_when_it_can():
    array = np.zeros(3, dtype=np.float32)
    copied, shared, maybe = tg.tensor(array), tg.from_numpy(array), tg.as_tensor(array)
    array[0] = 5
    assert copied[0].item() == 0 and shared[0].item() == 5 and maybe[0].item() == 5
    assert tg.as_tensor(array, dtype=tg.float64).dtype == tg.float64
    with pytest.raises(TypeError, match="^from_numpy: expected a NumPy array"):
        tg.from_numpy([1, 2])


def test_the_constructor_keeps_torch_Tensor_s_float32_rule():
    assert Tensor([1, 2]).dtype == tg.float32  # as torch.Tensor([1, 2]); tg.tensor([1, 2]) is int64


def test_random_factories_follow_manual_seed_and_their_dtypes():
    tg.manual_seed(3)
    first = [tg.rand(2, 3), tg.randn(2), tg.randint(0, 5, (4,)), tg.randint(5, (2,)), tg.randperm(4)]
    tg.manual_seed(3)
    again = [tg.rand(2, 3), tg.randn(2), tg.randint(0, 5, (4,)), tg.randint(5, (2,)), tg.randperm(4)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.data, b.data)
    assert [t.dtype for t in first] == [tg.float32, tg.float32, tg.int64, tg.int64, tg.int64]
    assert 0 <= first[2].data.min() and first[2].data.max() < 5
    like = tg.randn_like(tg.zeros(2, 2, dtype=tg.float64))
    assert like.shape == (2, 2) and like.dtype == tg.float64
    assert tg.rand_like(tg.zeros(3)).shape == (3,) and tg.randint_like(tg.zeros(3), 4).dtype == tg.float32
    with pytest.raises(TypeError, match="^randn: needs a floating-point dtype"):
        tg.randn(2, dtype=tg.int64)


def test_size_numel_dim_and_shape():
    x = Tensor(X)
    assert x.size() == (2, 3, 4) and x.size(0) == 2 and x.size(-1) == 4 and x.shape == (2, 3, 4)
    assert x.numel() == 24 and tg.numel(x) == 24 and x.dim() == 3 and x.ndim == 3
    with pytest.raises(IndexError, match="size: axis 3 is out of range"):
        x.size(3)


def test_max_min_return_named_pairs_and_unpack_as_torch():
    ours, theirs = both(lambda m: m.tensor(X).max(1))
    values, indices = ours
    assert ours.values is values and ours.indices is indices
    same(tuple(ours), None if theirs is None else tuple(theirs))
    _, predicted = tg.max(Tensor(X[0]), 1)  # the accuracy idiom of the tutorials
    assert predicted.tolist() == [3, 3, 3]
    same(*both(lambda m: m.tensor(X).min(dim=2, keepdim=True)))
    same(*both(lambda m: m.tensor(X).max()))
    same(*both(lambda m: m.tensor(X).amax(dim=(0, 2))))
    same(*both(lambda m: m.tensor(X).amin(1, keepdim=True)))
    same(*both(lambda m: m.max(m.tensor([1.0, 5.0]), m.tensor([3.0, 2.0]))))


def test_argmax_sum_mean_all_any_with_torch_arguments():
    for call in (lambda m: m.tensor(X).argmax(dim=1, keepdim=True), lambda m: m.tensor(X).argmax(),
                 lambda m: m.tensor(X).sum(dim=(0, 1), keepdim=True), lambda m: m.tensor([1, 2]).sum(),
                 lambda m: m.tensor([True, True]).sum(), lambda m: m.tensor([1, 2]).sum(dtype=m.float64),
                 lambda m: m.tensor(X).mean(2), lambda m: m.tensor(X).mean(dim=-1, keepdim=True),
                 lambda m: (m.tensor(X) > 1).all(dim=1), lambda m: (m.tensor(X) > 1).any(),
                 lambda m: m.tensor(X).var(), lambda m: m.tensor(X).std(1), lambda m: m.tensor(X).prod(2),
                 lambda m: m.tensor(X).cumsum(dim=1), lambda m: m.tensor(X).norm(), lambda m: m.tensor(X).norm(p=1, dim=1)):
        same(*both(call))


def test_numpy_aliases_are_accepted_but_not_together_with_the_torch_names():
    x = Tensor(X)
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).data, X.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(x.amax(axis=(0, 2)).data, X.max(axis=(0, 2)))
    np.testing.assert_allclose(x.var(axis=1, ddof=0).data, X.var(axis=1), rtol=1e-6)
    with pytest.raises(TypeError, match="^sum: give dim= or its NumPy alias axis=, not both"):
        x.sum(dim=1, axis=1)
    with pytest.raises(TypeError, match="^mean: give keepdim= or its NumPy alias keepdims=, not both"):
        x.mean(1, keepdim=True, keepdims=True)


def test_movement_with_torch_meanings():
    for call in (lambda m: m.tensor(X).transpose(0, 2), lambda m: m.tensor(X).permute(2, 0, 1),
                 lambda m: m.tensor(X[0]).t(), lambda m: m.tensor(X).flatten(1), lambda m: m.flatten(m.tensor(X), 0, 1),
                 lambda m: m.tensor(X).view(4, -1), lambda m: m.tensor(X).view_as(m.zeros(6, 4)),
                 lambda m: m.tensor(X)[:1].squeeze(0), lambda m: m.tensor(X).squeeze(1),
                 lambda m: m.tensor(X).unsqueeze(dim=-1), lambda m: m.tensor(X[:, :1]).expand(2, 5, 4),
                 lambda m: m.tensor(X).repeat(1, 2, 1), lambda m: m.tensor(X).flip(0, 2),
                 lambda m: m.tensor(X).roll(1, 2), lambda m: m.tensor(X).index_select(1, m.tensor([2, 0])),
                 lambda m: m.tensor(X).gather(2, m.tensor([[[0], [1], [3]]] * 2)),
                 lambda m: m.tensor(X).masked_fill(m.tensor(X) > 2, 0.0), lambda m: m.tensor(X).clamp(0.5, 2.0),
                 lambda m: m.where(m.tensor(X) > 1, m.tensor(X), m.zeros(1)), lambda m: m.tensor(X).T):
        same(*both(call))
    same(*both(lambda m: m.tensor(X).split(2, dim=2)))
    same(*both(lambda m: m.chunk(m.tensor(X), 2, 1)))
    same(*both(lambda m: m.stack([m.tensor(X), m.tensor(X)], dim=1)))
    same(*both(lambda m: m.cat([m.tensor(X), m.tensor(X)], dim=-1)))
    same(*both(lambda m: m.tensor(X).sort(dim=1, descending=True)))
    same(*both(lambda m: m.topk(m.tensor(X), 2)))
    same(*both(lambda m: m.einsum("bij,bkj->bik", m.tensor(X), m.tensor(X))))
    same(*both(lambda m: m.logsumexp(m.tensor(X), dim=1)))


def test_comparisons_and_bool_and_equal():
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        same(*both(lambda m: getattr(m.tensor(X), name)(m.tensor(X).flip(0))))
        same(*both(lambda m: getattr(m, name)(m.tensor(X), 1.0)))
    pred, target = tg.tensor([[1], [2]]), tg.tensor([1, 3])
    assert pred.eq(target.view_as(pred)).sum().item() == 1  # the MNIST example's accuracy line
    assert bool(tg.tensor([3.0]) > 2) and not bool(tg.tensor(0))
    assert tg.equal(tg.tensor([1, 2]), tg.tensor([1, 2])) and not tg.tensor([1, 2]).equal(tg.tensor([1, 2, 3]))


def test_index_iteration_and_python_conversions():
    assert [10, 20, 30][tg.tensor(1)] == 20 and range(5)[tg.tensor(3)] == 3
    with pytest.raises(TypeError, match="only one-element integer tensors"):
        [1, 2][tg.tensor(1.0)]
    rows = list(Tensor(X))
    assert len(rows) == 2 and rows[1].shape == (3, 4)
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(tg.tensor(1.0))
    x = tg.tensor([[1.5, 2.0]])
    assert x.tolist() == [[1.5, 2.0]] and x[0, 1].item() == 2.0 and float(x[0, 0]) == 1.5 and x.numpy() is x.data


def test_dtype_conversions_and_names():
    x = tg.tensor([1.7, -2.2])
    for method, dtype in [("long", tg.int64), ("int", tg.int32), ("float", tg.float32), ("double", tg.float64),
                          ("half", tg.float16), ("bool", tg.bool), ("short", tg.int16), ("byte", tg.uint8)]:
        assert getattr(x, method)().dtype == dtype
    same(*both(lambda m: m.tensor([1.7, -2.2]).long()))
    assert x.to(tg.float64).dtype == tg.float64 and x.to(tg.zeros(1, dtype=tg.int64)).dtype == tg.int64
    assert x.to("cpu") is x and x.to(tg.device("cpu"), dtype=tg.float64).dtype == tg.float64 and x.cpu() is x
    assert x.type_as(tg.tensor([1])).dtype == tg.long and tg.float == tg.float32 and tg.double == tg.float64
    assert x.dtype == np.float32 and tg.long == np.int64 and tg.int == tg.int32


def test_device_is_always_the_cpu_and_cuda_says_so():
    x = tg.zeros(2, device="cpu")
    assert x.device == "cpu" and x.device == tg.device("cpu") and str(x.device) == "cpu" and not x.is_cuda
    with pytest.raises(RuntimeError, match=r"^cuda\(\): tinygrad_cnn runs on the CPU only"):
        x.cuda()
    with pytest.raises(RuntimeError, match=r"^device 'cuda:0': tinygrad_cnn runs on the CPU only"):
        x.to("cuda:0")
    with pytest.raises(RuntimeError, match="CPU only"):
        tg.zeros(2, device="cuda")


def test_requires_grad_and_clone():
    x = tg.ones(3).requires_grad_()
    assert x.requires_grad and x.is_leaf
    y = x.clone()
    (y * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, 2, 2])
    y.data[0] = 9
    assert x[0].item() == 1


def test_numpy_and_matplotlib_accept_a_tensor():
    x = Tensor(X)
    assert np.asarray(x) is x.data and np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(x) is not x.data and np.array_equal(np.array(x), X)
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(x, dtype=np.float64, copy=False)
    np.testing.assert_array_equal(np.concatenate([x, x]), np.concatenate([X, X]))
    plt = pytest.importorskip("matplotlib.pyplot")
    figure, axes = plt.subplots()
    try:
        image = axes.imshow(Tensor(X[0]))
        np.testing.assert_array_equal(image.get_array(), X[0])
        axes.plot(tg.arange(3), tg.tensor([1.0, 2.0, 0.5]))
    finally:
        plt.close(figure)


def test_functions_accept_numpy_arrays_where_a_tensor_is_expected():
    assert tg.cat([X, Tensor(X)]).shape == (4, 3, 4)
    assert tg.max(X[0], 1).indices.tolist() == [3, 3, 3]
    assert tg.einsum("ij->j", X[0]).shape == (4,) and tg.sum(X).item() == pytest.approx(X.sum(), rel=1e-6)
    assert tg.where(X > 1, X, 0.0).shape == X.shape
    assert math.isclose(tg.norm(np.array([3.0, 4.0])).item(), 5.0)


def test_operator_methods_and_the_device_choice_of_torch_programs():
    same(*both(lambda m: m.tensor(X).mul(m.tensor(X)).add(m.tensor(X), alpha=2).sub(1).div(3).neg()))
    same(*both(lambda m: m.add(m.tensor(X), 1, alpha=0.5)))
    assert not tg.cuda.is_available() and tg.cuda.device_count() == 0
    device = tg.device("cuda" if tg.cuda.is_available() else "cpu")
    assert tg.ones(2).to(device).device == "cpu"


def test_new_tensors_contiguous_and_softmax_methods():
    x = tg.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=tg.float64)
    assert x.new_zeros(3).dtype == tg.float64 and x.new_zeros(1, dtype=tg.float32).dtype == tg.float32 and x.new_ones((2, 2)).shape == (2, 2)
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_tensor([1, 2]).dtype == tg.float64
    assert x.contiguous() is x and x.is_contiguous()
    same(*both(lambda m: m.tensor([[1.0, 2.0], [0.5, -1.0]]).softmax(dim=1)))
    same(*both(lambda m: m.tensor([[1.0, 2.0], [0.5, -1.0]]).log_softmax(0)))
