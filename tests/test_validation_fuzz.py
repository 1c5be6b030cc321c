"""Hypothesis fuzzes the Tensor constructor: nested lists of numbers, ragged or not, mixed with
things that are not numbers (None, strings, complex numbers, dicts). Rectangular numbers give a
float32 tensor of the nested shape; anything else a TypeError or ValueError that says what Tensor
data must be. (The ops' argument fuzzing is in tests/ops/test_validation_fuzz.py.)
"""
import numbers

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor

leaves = st.one_of(
    st.integers(-5, 5), st.floats(-10, 10, width=32), st.booleans(),
    st.none(), st.text(max_size=2), st.complex_numbers(max_magnitude=2), st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)
nested = st.recursive(leaves, lambda children: st.lists(children, max_size=3), max_leaves=8)


def leaves_of(data):
    return [leaf for item in data for leaf in leaves_of(item)] if isinstance(data, list) else [data]


def nested_shape(data):
    """Shape of a rectangular nested list of numbers, or a string saying why it is not one (a
    non-number anywhere comes first: it is the error the user most needs to hear about)."""
    if not all(isinstance(leaf, numbers.Real) for leaf in leaves_of(data)):
        return "not a number"
    if not isinstance(data, list):
        return ()
    shapes = {nested_shape(item) for item in data}
    if len(shapes) > 1 or "ragged" in shapes:
        return "ragged"
    return (len(data), *(shapes.pop() if shapes else ()))


@given(nested)
def test_constructor_takes_rectangular_numbers_and_refuses_the_rest(data):
    shape = nested_shape(data)
    if shape == "not a number":
        try:
            Tensor(data)
        except TypeError as error:
            assert str(error).startswith("Tensor data must"), str(error)
        else:
            raise AssertionError(f"accepted {data!r}")
    elif shape == "ragged":
        try:
            Tensor(data)
        except ValueError as error:
            assert str(error).startswith("Tensor data must be a rectangular"), str(error)
        else:
            raise AssertionError(f"accepted {data!r}")
    else:
        t = Tensor(data)
        assert t.shape == shape and t.dtype == np.float32
        np.testing.assert_array_equal(t.data, np.array(data, dtype=np.float32).reshape(shape))
