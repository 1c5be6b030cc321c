"""The one place that checks sliding-window hyperparameters: a layer (when built) and its function
(when called) accept the same spellings and refuse the same mistakes with the same message, and a
pooling stride left out is the kernel size for both."""
import numpy as np
import pytest

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn.hyperparameters import default_stride, ints, pair


def test_ints_and_pair_accept_an_int_or_one_per_axis():
    assert pair(3, "kernel_size", "op") == (3, 3)
    assert pair([2, np.int64(4)], "kernel_size", "op") == (2, 4)
    assert ints(5, 1, "stride", "op") == (5,)
    for bad in ("3", 2.0, None, (1, 2, 3), True):
        with pytest.raises(TypeError, match=r"^op: kernel_size must be an int or a pair of ints"):
            pair(bad, "kernel_size", "op")
    with pytest.raises(TypeError, match=r"^op: stride must be an int, got \(1, 2\)"):
        ints((1, 2), 1, "stride", "op")


def test_default_stride_is_the_kernel_size():
    assert default_stride(None, 3) == 3
    assert default_stride((), (2, 3)) == (2, 3)
    assert default_stride(1, 3) == 1
    x = Tensor(np.arange(36.0).reshape(1, 1, 6, 6))
    for layer, function in ((nn.MaxPool2d(3), F.max_pool2d), (nn.AvgPool2d(3), F.avg_pool2d)):
        assert layer.stride == 3
        np.testing.assert_array_equal(layer(x).data, function(x, 3).data)
        np.testing.assert_array_equal(layer(x).data, function(x, 3, stride=3).data)


@pytest.mark.parametrize("build, call, message", [
    (lambda: nn.Conv2d(1, 1, "3"), lambda x: F.conv2d(x, Tensor(np.zeros((1, 1, 3, 3))), stride="3"),
     r"must be an int or a pair of ints, got '3'"),
    (lambda: nn.MaxPool2d((2, 2, 2)), lambda x: F.max_pool2d(x, (2, 2, 2)),
     r"kernel_size must be an int or a pair of ints, got \(2, 2, 2\)"),
    (lambda: nn.AvgPool2d(2.5), lambda x: F.avg_pool2d(x, 2.5), r"kernel_size must be an int or a pair of ints, got 2.5"),
])
def test_layers_and_functions_refuse_the_same_spellings(build, call, message):
    with pytest.raises(TypeError, match=message):
        build()
    with pytest.raises(TypeError, match=message):
        call(Tensor(np.zeros((1, 1, 4, 4))))
