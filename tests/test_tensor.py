"""The Tensor class itself: constructor dtype rules, leaves and graph nodes, detach, item."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Function, Tensor

# ---- dtype rules: Python data becomes float32, NumPy data keeps its dtype ---------------------


@pytest.mark.parametrize("data", [3, 2.5, True, [1, 2, 3], [[1.5, 2.0], [3.0, 4.0]], (1, 2), [[True, False]]])
def test_python_scalars_and_lists_become_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.array(data, dtype=np.float32))


@given(array=hnp.arrays(st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_]), hnp.array_shapes(min_dims=0, max_dims=3)))
def test_numpy_arrays_keep_their_dtype_and_values(array):
    t = Tensor(array)
    assert t.dtype == array.dtype
    assert t.shape == array.shape and t.ndim == array.ndim and t.numel() == array.size
    np.testing.assert_array_equal(t.numpy(), array)


@pytest.mark.parametrize("scalar", [np.float64(1.5), np.float32(1.5), np.int64(3)])
def test_numpy_scalars_keep_their_dtype(scalar):
    assert Tensor(scalar).dtype == scalar.dtype


def test_an_explicit_dtype_wins():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(np.arange(3), dtype=np.float32).dtype == np.float32


def test_python_numbers_in_arithmetic_keep_float32():
    x = Tensor([1.0, 2.0])
    for result in (x + 1, 2 * x, x / 3, 1 - x, x**2, 2**x, x.mean(), x.var()):
        assert result.dtype == np.float32


@pytest.mark.parametrize("data", ["text", None, {"a": 1}, np.array(["a", "b"])])
def test_non_numeric_data_is_refused(data):
    with pytest.raises(TypeError):
        Tensor(data)


def test_only_floating_point_tensors_can_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)


# ---- leaves, grad_fn, detach, item -------------------------------------------------------------------------


def test_created_tensors_are_leaves_and_op_results_are_nodes():
    x = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])
    y = x * c
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert c.is_leaf and not c.requires_grad
    assert not y.is_leaf and y.requires_grad
    assert isinstance(y.grad_fn, Function) and type(y.grad_fn).__name__ == "Mul"
    constant_only = c * c
    assert constant_only.is_leaf and not constant_only.requires_grad and constant_only.grad_fn is None


def test_detach_shares_the_data_and_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.data is y.data
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    (x * d).sum().backward()  # d is a constant: only the direct path to x counts
    np.testing.assert_array_equal(x.grad.data, d.data)


def test_item_gives_a_python_number_for_one_element():
    assert Tensor([[2.5]]).item() == 2.5 and isinstance(Tensor([[2.5]]).item(), float)
    assert Tensor(np.int64(3)).item() == 3 and isinstance(Tensor(np.int64(3)).item(), int)
    with pytest.raises(ValueError, match="one element"):
        Tensor([1.0, 2.0]).item()


def test_requires_grad_cannot_be_turned_off_on_a_node():
    y = Tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_length_iteration_and_conversion():
    x = Tensor(np.arange(6.0).reshape(3, 2))
    assert len(x) == 3
    assert x.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert float(Tensor([1.5])) == 1.5 and int(Tensor([2.0])) == 2


def test_tensors_hash_by_identity_since_equality_is_elementwise():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2
    assert (a == b).data.all()


def test_the_gradient_of_a_float32_leaf_is_float32():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (2**x * x.exp()).sum().backward()
    assert x.grad.dtype == np.float32
    (g,) = tg.grad((2**x * x.exp()).sum(), x)
    assert g.dtype == np.float32
