"""The everyday torch ops the Tensor composes from primitives: cat, split, chunk, stack, flatten,
flip, roll, repeat, clamp, logsumexp, norm, pow, abs(), matmul(out=), max/min(dim), sort, topk,
var/std.

Each: forward against NumPy, gradients of first and second order by ``check_gradients`` in
float64, and torch's values and gradients where torch is installed.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from torch_comparison import assert_matches_torch


def check(op, torch_op, expected, *inputs):
    """Forward against NumPy's ``expected`` (an array or a list of arrays), both orders of gradient,
    float32 kept, torch's values and gradients."""
    out = op(*inputs)
    for o, e in zip(out if isinstance(out, (tuple, list)) else [out], expected if isinstance(expected, list) else [expected]):
        assert o.shape == np.shape(e)
        np.testing.assert_allclose(o.data, e, rtol=1e-12, atol=1e-12)
    check_gradients(op, *inputs)
    check_dtype_preserved(op, *inputs)
    assert_matches_torch(op, torch_op, *inputs)


def a_dim(data, x, label="dim"):
    return data.draw(st.integers(-x.ndim, x.ndim - 1), label=label)


# ---- joining and splitting ---------------------------------------------------------------------------


@given(data=st.data())
def test_cat_and_stack(data):
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    lengths = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="lengths")
    pieces = [data.draw(S.tensors(shape[: dim % len(shape)] + (n,) + shape[dim % len(shape) + 1 :])) for n in lengths]
    torch = pytest.importorskip("torch")
    check(lambda *ts: tg.cat(ts, dim=dim), lambda *ts: torch.cat(ts, dim=dim),
          np.concatenate([p.data for p in pieces], axis=dim), *pieces)
    same = [data.draw(S.tensors(shape)) for _ in lengths]
    new_dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="stack dim")
    check(lambda *ts: tg.stack(ts, dim=new_dim), lambda *ts: torch.stack(ts, dim=new_dim),
          np.stack([p.data for p in same], axis=new_dim), *same)


@given(data=st.data())
def test_split_and_chunk(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1, max_side=5)), label="x")
    dim = a_dim(data, x)
    n = x.shape[dim]
    size = data.draw(st.integers(1, n + 1), label="split_size")
    check(lambda t: t.split(size, dim), lambda t: t.split(size, dim),
          [x.data[(slice(None),) * (dim % x.ndim) + (slice(a, a + size),)] for a in range(0, n, size)], x)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=2), label="cuts"))
    sections = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    check(lambda t: tg.split(t, sections, dim), lambda t: t.split(sections, dim),
          np.split(x.data, cuts, axis=dim), x)
    chunks = data.draw(st.integers(1, 4), label="chunks")
    step = math.ceil(n / chunks)
    check(lambda t: t.chunk(chunks, dim), lambda t: t.chunk(chunks, dim),
          [x.data[(slice(None),) * (dim % x.ndim) + (slice(a, a + step),)] for a in range(0, n, step)], x)


# ---- rearranging ---------------------------------------------------------------------------------------


@given(data=st.data())
def test_flatten_flip_roll_repeat(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    start = data.draw(st.integers(0, x.ndim - 1), label="start_dim")
    check(lambda t: tg.flatten(t, start), lambda t: t.flatten(start), x.data.reshape(x.shape[:start] + (-1,)), x)
    dims = tuple(data.draw(st.lists(st.integers(0, x.ndim - 1), unique=True, min_size=1), label="flip dims"))
    check(lambda t: t.flip(dims), lambda t: t.flip(dims), np.flip(x.data, dims), x)
    shifts = tuple(data.draw(st.integers(-4, 4)) for _ in dims)
    check(lambda t: t.roll(shifts, dims), lambda t: t.roll(shifts, dims), np.roll(x.data, shifts, dims), x)
    check(lambda t: t.roll(shifts[0]), lambda t: t.roll(shifts[0]), np.roll(x.data, shifts[0]), x)
    sizes = tuple(data.draw(st.integers(1, 2)) for _ in range(x.ndim + data.draw(st.integers(0, 1))))
    check(lambda t: t.repeat(*sizes), lambda t: t.repeat(*sizes), np.tile(x.data, sizes), x)


# ---- elementwise ---------------------------------------------------------------------------------------


@given(data=st.data())
def test_clamp_with_numbers_and_tensors(data):
    low, high = sorted(data.draw(st.lists(st.sampled_from([-1.0, -0.5, 0.5, 1.0]), min_size=2, max_size=2, unique=True)))
    # kinks at the bounds: the clamp is not differentiable there
    x = data.draw(S.away_from_kinks(kinks=(low, high)), label="x")
    check(lambda t: tg.clamp(t, low, high), lambda t: t.clamp(low, high), np.clip(x.data, low, high), x)
    check(lambda t: t.clip(min=low), lambda t: t.clip(min=low), np.maximum(x.data, low), x)
    x, bound = data.draw(S.distinct_values(x.shape, x.shape), label="x and a bound")  # no ties with the bound
    check(lambda t, b: t.clamp(max=b), lambda t, b: t.clamp(max=b), np.minimum(x.data, bound.data), x, bound)


@given(data=st.data())
def test_pow_and_abs(data):
    x = data.draw(S.away_from_kinks(low=-2.0, high=2.0), label="x")  # abs has its kink at 0
    exponent = data.draw(st.sampled_from([2, 3, 2.0, -1.0]), label="exponent")
    check(lambda t: tg.pow(t, exponent), lambda t: t.pow(exponent), np.power(x.data, exponent), x)
    check(lambda t: abs(t), lambda t: abs(t), np.abs(x.data), x)
    positive = data.draw(S.tensors(x.shape, elements=st.floats(0.5, 2.0)), label="base")
    check(lambda b, e: b.pow(e), lambda b, e: b.pow(e), positive.data ** x.data, positive, x)


@given(data=st.data())
def test_matmul_with_out(data):
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    a, b = data.draw(S.tensors((n, k))), data.draw(S.tensors((k, m)))
    out = tg.empty(n, m, dtype=tg.float64)
    result = tg.matmul(a.detach(), b.detach(), out=out)
    assert result is out
    np.testing.assert_allclose(out.data, a.data @ b.data, rtol=1e-12)
    check(lambda x, y: tg.matmul(x, y), lambda x, y: x.matmul(y), a.data @ b.data, a, b)
    with pytest.raises(ValueError, match=rf"^matmul: out= has shape \({n + 1}, {m}\)"):
        tg.matmul(a, b, out=tg.empty(n + 1, m))


# ---- reductions ----------------------------------------------------------------------------------------


@given(data=st.data())
def test_logsumexp(data):
    x = data.draw(S.tensors(S.shapes(min_dims=1), elements=st.floats(-30, 30)), label="x")
    dim = a_dim(data, x)
    keepdim = data.draw(st.booleans(), label="keepdim")
    shift = x.data.max(axis=dim, keepdims=True)
    expected = np.log(np.exp(x.data - shift).sum(axis=dim, keepdims=True)) + shift
    check(lambda t: t.logsumexp(dim, keepdim), lambda t: t.logsumexp(dim, keepdim),
          expected if keepdim else expected.squeeze(dim), x)


def test_logsumexp_does_not_overflow_and_handles_all_minus_inf():
    assert tg.tensor([1000.0, 1000.0]).logsumexp(0).item() == pytest.approx(1000 + math.log(2))
    assert tg.tensor([-math.inf, -math.inf]).logsumexp(0).item() == -math.inf


@pytest.mark.parametrize("p", [2, 1, math.inf, -math.inf, 3])
@given(data=st.data())
def test_norm(p, data):
    # |x| has a kink at 0 (and the 2-norm at the all-zero vector); max/min of |x| need no ties
    x = data.draw(S.distinct_values(S.shapes(min_dims=1)), label="x")
    if p in (math.inf, -math.inf):  # ties in |x| (x and -x) are kinks too: all positive, still distinct
        x = Tensor(x.data - x.data.min() + 0.25, requires_grad=True)
    else:
        x = Tensor(np.where(np.abs(x.data) < 0.1, 0.3, x.data), requires_grad=True)
    dim = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)), label="dim")
    order = p
    magnitude = np.abs(x.data)
    if order == math.inf:
        expected = magnitude.max(axis=dim)
    elif order == -math.inf:
        expected = magnitude.min(axis=dim)
    else:
        expected = (magnitude ** order).sum(axis=dim) ** (1 / order)
    check(lambda t: t.norm(p, dim), lambda t: t.norm(p, dim), expected, x)


@given(data=st.data())
def test_var_and_std_are_unbiased_by_default(data):
    x = data.draw(S.distinct_values(S.shapes(min_dims=1)), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1).filter(lambda d: x.shape[d] > 1), label="dim")
    check(lambda t: t.var(dim), lambda t: t.var(dim), np.var(x.data, axis=dim, ddof=1), x)
    check(lambda t: t.std(dim, keepdim=True), lambda t: t.std(dim, keepdim=True),
          np.std(x.data, axis=dim, ddof=1, keepdims=True), x)
    # the biased estimate is the same graph with another divisor: its values are enough
    np.testing.assert_allclose(x.var(dim, unbiased=False).data, np.var(x.data, axis=dim), rtol=1e-12)
    np.testing.assert_allclose(x.var(dim, correction=0).data, np.var(x.data, axis=dim), rtol=1e-12)
    with pytest.raises(TypeError, match="^var: give at most one of"):
        x.var(dim, unbiased=True, correction=0)


@pytest.mark.parametrize("name", ["max", "min"])
@given(data=st.data())
def test_max_and_min_with_dim_return_values_and_indices(name, data):
    x = data.draw(S.distinct_values(S.shapes(min_dims=1)), label="x")
    dim = a_dim(data, x)
    keepdim = data.draw(st.booleans(), label="keepdim")
    find = np.argmax if name == "max" else np.argmin
    indices = find(x.data, axis=dim, keepdims=keepdim)
    values, got = getattr(tg, name)(x, dim, keepdim)
    np.testing.assert_array_equal(got.data, indices)
    assert got.dtype == tg.int64
    reduce = np.amax if name == "max" else np.amin
    check(lambda t: getattr(t, name)(dim, keepdim=keepdim).values, lambda t: getattr(t, name)(dim, keepdim=keepdim).values,
          reduce(x.data, axis=dim, keepdims=keepdim), x)
    check(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), reduce(x.data), x)


@given(data=st.data())
def test_sort_argsort_topk(data):
    x = data.draw(S.distinct_values(S.shapes(min_dims=1)), label="x")
    dim = a_dim(data, x)
    descending = data.draw(st.booleans(), label="descending")
    order = np.argsort(-x.data if descending else x.data, axis=dim)
    values, indices = x.sort(dim, descending=descending)
    np.testing.assert_array_equal(indices.data, order)
    np.testing.assert_array_equal(tg.argsort(x, dim, descending).data, order)
    check(lambda t: t.sort(dim, descending).values, lambda t: t.sort(dim, descending).values,
          np.take_along_axis(x.data, order, dim), x)
    k = data.draw(st.integers(1, x.shape[dim]), label="k")
    largest = data.draw(st.booleans(), label="largest")
    top = np.argsort(-x.data if largest else x.data, axis=dim)[(slice(None),) * (dim % x.ndim) + (slice(0, k),)]
    np.testing.assert_array_equal(x.topk(k, dim, largest).indices.data, top)
    check(lambda t: tg.topk(t, k, dim, largest).values, lambda t: t.topk(k, dim, largest).values,
          np.take_along_axis(x.data, top, dim), x)


def test_sort_is_stable_in_both_directions():
    x = tg.tensor([2.0, 1.0, 2.0, 1.0])
    assert x.sort().indices.tolist() == [1, 3, 0, 2]
    assert x.sort(descending=True).indices.tolist() == [0, 2, 1, 3]


# ---- step functions, remainders, diagonals --------------------------------------------------------


@given(data=st.data())
def test_floor_ceil_round_trunc_sign_have_zero_gradient(data):
    # away from the jumps (integers, and half-integers for round), where each is differentiable
    x = data.draw(S.away_from_kinks(data.draw(S.shapes(max_dims=2, max_side=3)), kinks=tuple(np.arange(-4, 4.5, 0.5)), margin=0.05))
    for name in ("floor", "ceil", "round", "trunc", "sign"):
        op = lambda t, name=name: getattr(t, name)()  # noqa: E731
        check(op, op, getattr(np, "rint" if name == "round" else name)(x.data), x)


@given(data=st.data())
def test_remainder_and_floor_divide_follow_the_sign_of_the_divisor(data):
    shape = data.draw(S.shapes(max_dims=2, max_side=3))
    x = data.draw(S.tensors(shape, elements=st.floats(-9, 9)))
    y = data.draw(S.away_from_kinks(shape, kinks=(0.0,), margin=0.5))
    # away from the jumps of floor(x / y): there the remainder is x - y * (a constant)
    quotient = x.data / y.data
    if np.any(np.abs(quotient - np.round(quotient)) < 1e-3):
        return
    np.testing.assert_allclose((x % y).data, np.remainder(x.data, y.data), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((x // y).data, np.floor_divide(x.data, y.data))
    check_gradients(lambda a: a % y, x)
    assert_matches_torch(lambda a: a % y, lambda a: a % __import__("torch").tensor(y.data), x)
    i = data.draw(S.arrays(shape, elements=st.integers(-9, 9), dtype=np.int64))
    j = data.draw(S.arrays(shape, elements=st.integers(1, 4), dtype=np.int64)) * data.draw(st.sampled_from([1, -1]))
    assert (tg.Tensor(i) % tg.Tensor(j)).tolist() == np.remainder(i, j).tolist()
    assert (tg.Tensor(i) // 3).dtype == np.int64 and (tg.Tensor(i) // 3).tolist() == (i // 3).tolist()
    assert (7 % tg.Tensor(j)).tolist() == np.remainder(7, j).tolist()


@given(data=st.data())
def test_diag_builds_and_reads_diagonals(data):
    diagonal = data.draw(st.integers(-3, 3))
    v = data.draw(S.tensors((data.draw(st.integers(1, 4)),)))
    check(lambda t: tg.diag(t, diagonal), lambda t: __import__("torch").diag(t, diagonal), np.diag(v.data, diagonal), v)
    m = data.draw(S.tensors(data.draw(S.shapes(min_dims=2, max_dims=2, max_side=4))))
    check(lambda t: tg.diag(t, diagonal), lambda t: __import__("torch").diag(t, diagonal), np.diag(m.data, diagonal), m)


# ---- more everyday ops: elementwise, triangles, products, scans, grids ---------------------------------


@given(data=st.data())
def test_elementwise_math(data):
    torch = pytest.importorskip("torch")
    x = data.draw(S.tensors(elements=st.floats(-0.9, 3.0, allow_subnormal=False)), label="x")
    check(tg.log1p, torch.log1p, np.log1p(x.data), x)
    check(tg.expm1, torch.expm1, np.expm1(x.data), x)
    check(tg.erf, torch.erf, np.vectorize(math.erf)(x.data), x)
    check(tg.square, torch.square, x.data ** 2, x)
    away = data.draw(S.away_from_kinks(x.shape, kinks=(0.5,)), label="away from 0.5")  # the clamps' kink
    check(lambda t: t.clamp_min(0.5), lambda t: t.clamp_min(0.5), np.maximum(away.data, 0.5), away)
    check(lambda t: tg.clamp_max(t, 0.5), lambda t: torch.clamp_max(t, 0.5), np.minimum(away.data, 0.5), away)
    positive = data.draw(S.tensors(x.shape, elements=st.floats(0.5, 3.0)), label="positive")
    check(tg.reciprocal, torch.reciprocal, 1 / positive.data, positive)
    check(tg.rsqrt, torch.rsqrt, 1 / np.sqrt(positive.data), positive)
    end, weight = data.draw(S.tensors(x.shape)), data.draw(S.tensors(x.shape, elements=st.floats(0, 1, allow_subnormal=False)))
    check(tg.lerp, torch.lerp, x.data + weight.data * (end.data - x.data), x, end, weight)
    check(lambda a, b: tg.lerp(a, b, 0.25), lambda a, b: torch.lerp(a, b, 0.25), x.data + 0.25 * (end.data - x.data), x, end)


@given(st.floats(-1e-2, 1e-2, allow_subnormal=False))
def test_log1p_and_expm1_keep_the_digits_of_small_values(v):
    # where 1 + x rounds away x's low digits (the series' range): every digit kept, as NumPy's log1p/expm1
    x = tg.tensor([v], dtype=tg.float64)
    np.testing.assert_allclose(x.log1p().data, np.log1p([v]), rtol=1e-14, atol=0)
    np.testing.assert_allclose(x.expm1().data, np.expm1([v]), rtol=1e-14, atol=0)


def test_value_tests_and_nan_to_num():
    torch = pytest.importorskip("torch")
    x = tg.tensor([1.0, math.nan, math.inf, -math.inf, -2.0, 0.0], dtype=tg.float64, requires_grad=True)
    twin = torch.tensor(x.data)
    assert tg.isinf(x).tolist() == torch.isinf(twin).tolist()
    assert tg.isclose(x, x + 1e-9).tolist() == torch.isclose(twin, twin + 1e-9).tolist()
    assert x.isclose(x, equal_nan=True).tolist() == twin.isclose(twin, equal_nan=True).tolist()
    assert tg.count_nonzero(x).item() == 5 and tg.count_nonzero(tg.eye(3), dim=1).tolist() == [1, 1, 1]
    assert tg.count_nonzero(tg.eye(3), dim=(0, 1)).dtype == tg.int64
    a, b = tg.tensor([True, True, False]), tg.tensor([True, False, False])
    for name in ("logical_and", "logical_or", "logical_xor"):
        assert getattr(tg, name)(a, b).tolist() == getattr(torch, name)(torch.tensor(a.data), torch.tensor(b.data)).tolist()
    assert_matches_torch(lambda t: tg.nan_to_num(t), torch.nan_to_num, x)
    assert_matches_torch(lambda t: t.nan_to_num(1.5, 9.0, -9.0), lambda t: t.nan_to_num(1.5, 9.0, -9.0), x)
    assert x.float().nan_to_num()[2].item() == np.finfo(np.float32).max


@given(data=st.data())
def test_tril_triu_and_trace(data):
    torch = pytest.importorskip("torch")
    x = data.draw(S.tensors(S.shapes(min_dims=2, max_side=4)), label="x")
    k = data.draw(st.integers(-4, 4), label="diagonal")
    check(lambda t: tg.tril(t, k), lambda t: torch.tril(t, k), np.tril(x.data, k), x)
    check(lambda t: t.triu(diagonal=k), lambda t: t.triu(diagonal=k), np.triu(x.data, k), x)
    m = x.reshape(x.shape[-2], -1)
    m = Tensor(m.data, requires_grad=True)
    check(tg.trace, torch.trace, np.trace(m.data), m)
    with pytest.raises(ValueError, match="^tril: expected a tensor of at least 2 dimensions"):
        tg.tril(tg.ones(3))


@given(data=st.data())
def test_outer_dot_inner(data):
    torch = pytest.importorskip("torch")
    n, m = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    u, v, w = data.draw(S.tensors((n,))), data.draw(S.tensors((m,))), data.draw(S.tensors((n,)))
    check(tg.outer, torch.outer, np.outer(u.data, v.data), u, v)
    check(tg.dot, torch.dot, np.dot(u.data, w.data), u, w)
    a = data.draw(S.tensors(S.shapes(max_dims=3).map(lambda s: s + (n,))), label="a")
    b = data.draw(S.tensors(S.shapes(max_dims=2).map(lambda s: s + (n,))), label="b")
    check(tg.inner, torch.inner, np.inner(a.data, b.data), a, b)
    with pytest.raises(ValueError, match="^dot: expected two 1-D tensors of the same length"):
        tg.dot(tg.ones(2), tg.ones(3))


@given(data=st.data())
def test_cumprod_and_diff(data):
    torch = pytest.importorskip("torch")
    x = data.draw(S.tensors(S.shapes(min_dims=1, max_side=4), elements=st.floats(-2, 2, allow_subnormal=False)), label="x")
    dim = a_dim(data, x)
    check(lambda t: tg.cumprod(t, dim), lambda t: torch.cumprod(t, dim), np.cumprod(x.data, axis=dim), x)
    with_zero = Tensor(np.where(np.arange(x.numel()) % 3 == 1, 0.0, x.data.ravel()).reshape(x.shape), requires_grad=True)
    assert_matches_torch(lambda t: t.cumprod(dim), lambda t: t.cumprod(dim), with_zero)  # zeros: exact gradients
    n = data.draw(st.integers(1, 3), label="n")
    check(lambda t: tg.diff(t, n, dim), lambda t: torch.diff(t, n, dim), np.diff(x.data, n, axis=dim), x)
    edge_shape = x.shape[: dim % x.ndim] + (2,) + x.shape[dim % x.ndim + 1 :]
    before, after = data.draw(S.tensors(edge_shape)), data.draw(S.tensors(edge_shape))
    check(lambda t, p, a: t.diff(1, dim, p, a), lambda t, p, a: t.diff(1, dim, p, a),
          np.diff(x.data, 1, axis=dim, prepend=before.data, append=after.data), x, before, after)


@given(data=st.data())
def test_repeat_interleave_tile_broadcast_to(data):
    torch = pytest.importorskip("torch")
    x = data.draw(S.tensors(S.shapes(min_dims=1)), label="x")
    dim = a_dim(data, x)
    r = data.draw(st.integers(0, 3), label="repeats")
    check(lambda t: tg.repeat_interleave(t, r, dim), lambda t: torch.repeat_interleave(t, r, dim),
          np.repeat(x.data, r, axis=dim), x)
    check(lambda t: t.repeat_interleave(r), lambda t: t.repeat_interleave(r), np.repeat(x.data, r), x)
    counts = data.draw(st.lists(st.integers(0, 2), min_size=x.shape[dim], max_size=x.shape[dim]), label="counts")
    check(lambda t: t.repeat_interleave(tg.tensor(counts), dim), lambda t: t.repeat_interleave(torch.tensor(counts), dim),
          np.repeat(x.data, counts, axis=dim), x)
    dims = tuple(data.draw(st.lists(st.integers(1, 2), min_size=1, max_size=4), label="tile dims"))
    check(lambda t: tg.tile(t, dims), lambda t: torch.tile(t, dims),
          np.tile(x.data, dims), x)
    size = (2,) + x.shape
    check(lambda t: tg.broadcast_to(t, size), lambda t: torch.broadcast_to(t, size), np.broadcast_to(x.data, size), x)
    with pytest.raises(ValueError, match="^repeat_interleave: repeats must hold one non-negative count"):
        x.repeat_interleave([1] * (x.shape[dim] + 1), dim)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
@given(data=st.data())
def test_meshgrid(indexing, data):
    torch = pytest.importorskip("torch")
    vectors = [data.draw(S.tensors((data.draw(st.integers(1, 3)),))) for _ in range(data.draw(st.integers(1, 3)))]
    check(lambda *ts: tg.meshgrid(*ts, indexing=indexing), lambda *ts: torch.meshgrid(*ts, indexing=indexing),
          list(np.meshgrid(*[v.data for v in vectors], indexing=indexing)), *vectors)


def test_the_new_ops_under_vmap_equal_a_loop_over_samples():
    # composed without reading values, so each runs batched; per sample it must give the same
    from tinygrad_cnn import func
    import tinygrad_cnn.nn.functional as F

    rng = np.random.default_rng(0)
    x, y = tg.tensor(rng.standard_normal((3, 4, 4))), tg.tensor(rng.standard_normal((3, 4, 4)))
    functions = [
        lambda t, u: t.tril(-1) + t.triu(1).log1p().nan_to_num() + t.expm1().cumprod(1),
        lambda t, u: t.diff(dim=0).sum() + t.trace() + tg.inner(t, u).sum() + t.lerp(u, 0.3).sum(),
        lambda t, u: t.repeat_interleave(2, dim=1).tile((2, 1)).sum(0) * t.count_nonzero(),
        lambda t, u: F.cosine_similarity(t, u) + F.softplus(t).sum(1) + F.glu(t).sum(1) + F.logsigmoid(u).sum(0),
        lambda t, u: F.smooth_l1_loss(t, u) + F.kl_div(F.log_softmax(t, dim=1), F.softmax(u, dim=1), reduction="batchmean")
                     + F.triplet_margin_loss(t, u, -u) + F.margin_ranking_loss(t[0], u[0], tg.ones(4)),
    ]
    for f in functions:
        batched = func.vmap(f)(x, y)
        looped = tg.stack([f(a, b) for a, b in zip(x, y)])
        np.testing.assert_allclose(batched.data, looped.data, rtol=1e-12, atol=1e-12)
