"""Einsum: drawn equations (explicit, implicit, with ``...`` and broadcasting) against sums over
every letter written out here, with gradients of first and second order and torch's values."""
import itertools
import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.testing import check_dtype_preserved, check_gradients
from tinygrad_cnn.testing import strategies as S

from torch_comparison import assert_matches_torch


@st.composite
def einsum_problems(draw):
    """Up to three operands over up to four letters (each letter at most once per operand), an
    output of some of the letters, and operands whose sizes fit, some broadcasting with size 1."""
    letters = string.ascii_lowercase[: draw(st.integers(1, 4))]
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    subscripts = [draw(st.permutations(letters)).__getitem__(slice(0, draw(st.integers(0, len(letters)))))
                  for _ in range(draw(st.integers(1, 3)))]
    subscripts = ["".join(s) for s in subscripts]
    used = sorted(set("".join(subscripts)))
    output = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
    explicit = draw(st.booleans())
    equation = ",".join(subscripts) + ("->" + output if explicit else "")
    if not explicit:
        output = "".join(sorted(c for c in used if "".join(subscripts).count(c) == 1))
    shapes = [tuple(sizes[c] if draw(st.integers(0, 4)) else 1 for c in s) for s in subscripts]
    operands = [draw(S.tensors(shape), label=f"operand {i}") for i, shape in enumerate(shapes)]
    return equation, subscripts, output, sizes, operands


def reference_einsum(subscripts, output, sizes, arrays):
    """Loop over every assignment of the letters; a size-1 dimension broadcasts."""
    letters = sorted(sizes)
    out = np.zeros(tuple(sizes[c] for c in output))
    for values in itertools.product(*(range(sizes[c]) for c in letters)):
        at = dict(zip(letters, values))
        term = 1.0
        for s, a in zip(subscripts, arrays):
            term *= a[tuple(at[c] if n > 1 else 0 for c, n in zip(s, a.shape))]
        out[tuple(at[c] for c in output)] += term
    return out


@given(problem=einsum_problems())
def test_einsum(problem):
    equation, subscripts, output, sizes, operands = problem
    sizes = {c: n for c, n in sizes.items() if c in "".join(subscripts)}
    # a letter whose every operand has size 1 has size 1
    sizes = {c: max([a.shape[s.index(c)] for s, a in zip(subscripts, operands) if c in s]) for c in sizes}
    op = lambda *ts: tg.einsum(equation, *ts)  # noqa: E731
    np.testing.assert_allclose(op(*operands).data, reference_einsum(subscripts, output, sizes, [o.data for o in operands]),
                               rtol=1e-12, atol=1e-12)
    check_gradients(op, *operands)
    check_dtype_preserved(op, *operands)
    torch = pytest.importorskip("torch")
    assert_matches_torch(op, lambda *ts: torch.einsum(equation, *ts), *operands)


@given(data=st.data())
def test_einsum_with_ellipsis_is_a_batched_matmul(data):
    (a_shape, b_shape), _ = data.draw(S.broadcastable_shapes(2, max_dims=2), label="batch shapes")
    a, b = data.draw(S.tensors(a_shape + (2, 3))), data.draw(S.tensors(b_shape + (3, 2)))
    op = lambda x, y: tg.einsum("...ij,...jk->...ik", x, y)  # noqa: E731
    np.testing.assert_allclose(op(a, b).data, np.matmul(a.data, b.data), rtol=1e-12, atol=1e-12)
    check_gradients(op, a, b)


def test_einsum_refuses_what_it_cannot_do_in_one_line():
    x = tg.ones(2, 2)
    with pytest.raises(ValueError, match="^einsum: subscripts 'ii' repeat a letter"):
        tg.einsum("ii->i", x)
    with pytest.raises(ValueError, match="^einsum: the equation 'ij,jk' has 2 operands, 1 were given"):
        tg.einsum("ij,jk", x)
    with pytest.raises(ValueError, match="^einsum: letter 'j' has sizes 2 and 3"):
        tg.einsum("ij,jk->ik", x, tg.ones(3, 2))
