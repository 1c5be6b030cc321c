"""``detect_anomaly()``: the first NaN or Inf made in forward or backward raises an error naming the
op that made it and the line of user code that created that op; outside the context, nothing."""
import re

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import AnomalyError, Function, Tensor

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own divide/log warnings

THIS_FILE = re.escape(__file__)


def _site_pattern(line_text: str) -> str:
    """The 'created at' part of the message: this file, some line, and the source line itself."""
    return rf'The op was created at:\nFile "{THIS_FILE}", line \d+, in \w+\n +{re.escape(line_text)}'


def test_anomaly_error_is_a_runtime_error():
    assert issubclass(AnomalyError, RuntimeError)


def test_forward_log_of_negative():
    x = Tensor([1.0, -1.0], requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"^Log produced NaN in its forward\. " + _site_pattern("x.log()")):
            x.log()


def test_forward_zero_divided_by_zero():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"^Div produced NaN in its forward\. " + _site_pattern("x / x")):
            x / x


def test_forward_inf_is_reported_as_inf():
    x = Tensor([1000.0])
    with tg.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"^Exp produced Inf in its forward"):
            x.exp()


def test_forward_anomaly_inside_a_composed_function_names_the_primitive_and_the_user_line():
    logits = Tensor([[0.0, np.nan]], requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"produced NaN in its forward\. " + _site_pattern("F.softmax(logits)")):
            F.softmax(logits)


def test_backward_sqrt_at_zero_names_sqrt_and_where_it_was_created():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()  # forward is finite: sqrt(0) = 0
        loss = y.sum()
        with pytest.raises(AnomalyError, match=r"^Sqrt produced Inf in its backward .*" + _site_pattern("y = x.sqrt()")):
            loss.backward()
    assert x.grad is None  # backward stopped before reaching the leaf


def test_backward_nan_from_a_backward_written_with_numpy():
    """A custom op whose backward returns a raw array: caught when the gradient is delivered."""

    class BadGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return np.full(grad.shape, np.nan, dtype=grad.dtype)

    x = Tensor([1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly():
        loss = BadGrad.apply(x).sum()
        with pytest.raises(AnomalyError, match=r"^BadGrad produced NaN in its backward\. " + _site_pattern("loss = BadGrad.apply(x).sum()")):
            loss.backward()


def test_graph_built_outside_the_context_still_names_the_op():
    x = Tensor([0.0], requires_grad=True)
    loss = x.sqrt().sum()
    with tg.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"^Sqrt produced Inf in its backward.*\n\(unknown: created outside detect_anomaly\)"):
            loss.backward()


def test_outside_the_context_nothing_is_raised():
    x = Tensor([0.0, -1.0], requires_grad=True)
    y = x.log() + x / x
    assert np.isnan(y.data).all()
    z = Tensor([0.0], requires_grad=True)
    z.sqrt().sum().backward()
    assert np.isinf(z.grad.data).all()


def test_mode_is_restored_after_an_error_and_when_nested():
    x = Tensor([-1.0])
    with pytest.raises(AnomalyError):
        with tg.detect_anomaly():
            x.log()
    assert np.isnan(x.log().data).all()  # off again
    with tg.detect_anomaly():
        with tg.detect_anomaly():
            pass
        with pytest.raises(AnomalyError):
            x.log()  # still on after the inner block
    x.log()


def test_finite_computation_under_anomaly_mode_gives_the_same_gradients():
    rng = np.random.default_rng(0)
    x_data, w_data = rng.standard_normal((2, 3, 6, 6)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)

    def run():
        x, w = Tensor(x_data, requires_grad=True), Tensor(w_data, requires_grad=True)
        F.max_pool2d(F.conv2d(x, w, padding=1).relu(), 2).sum().backward()
        return x.grad.data, w.grad.data

    plain = run()
    with tg.detect_anomaly():
        checked = run()
    for a, b in zip(plain, checked):
        np.testing.assert_array_equal(a, b)
