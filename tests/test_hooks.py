"""Gradient hooks (``Tensor.register_hook``, ``retain_grad``) and module forward hooks.

A tensor hook sees the gradient with respect to its tensor once, summed over every path, and may
replace it; the replacement is what flows on (non-leaf) or lands in ``.grad`` (leaf).
"""
import numpy as np
import pytest

import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, grad, manual_seed


def leaf(values):
    return Tensor(np.asarray(values, dtype=np.float32), requires_grad=True)


# ---- seeing and changing a gradient -------------------------------------------------------------


def test_leaf_hook_sees_the_gradient_and_can_replace_it():
    x = leaf([1.0, 2.0, 3.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.data.copy()))
    x.register_hook(lambda g: g * 10)
    (x * Tensor([4.0, 5.0, 6.0])).sum().backward()
    np.testing.assert_array_equal(seen[0], [4, 5, 6])
    np.testing.assert_array_equal(x.grad.data, [40, 50, 60])


def test_leaf_hook_runs_once_on_the_gradient_summed_over_all_paths():
    # x * x sends two contributions to x; a hook must see their sum once, so that a nonlinear
    # hook such as clipping acts on the true gradient 2x, not on each half separately
    x = leaf([1.0, 2.0, 3.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.data.copy()))
    x.register_hook(lambda g: g.clip(-3, 3))
    (x * x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [2, 4, 6])
    np.testing.assert_array_equal(x.grad.data, [2, 3, 3])


def test_non_leaf_hook_changes_what_flows_to_the_inputs():
    x = leaf([1.0, -2.0])
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    y.register_hook(lambda g: -g)
    (y * y).sum().backward()  # dL/dy = 2y = [6, -12]
    np.testing.assert_array_equal(seen[0], [6, -12])
    np.testing.assert_array_equal(x.grad.data, [-18, 36])  # 3 * (-dL/dy)


def test_hooks_run_in_registration_order():
    x = leaf([1.0])
    y = x + 0
    y.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [20])  # (1 + 1) * 10, not 1 * 10 + 1


def test_hook_on_the_root_sees_the_seed_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    y.backward(Tensor([0.5, -1.0]))
    np.testing.assert_array_equal(seen[0], [0.5, -1.0])
    np.testing.assert_array_equal(x.grad.data, [1.0, -2.0])


def test_hook_may_return_an_array():
    x = leaf([1.0, 2.0])
    y = x * 1
    y.register_hook(lambda g: g.data * 2)
    x.register_hook(lambda g: np.asarray(g.data) + 1)
    y.sum().backward()
    assert isinstance(x.grad, Tensor)
    np.testing.assert_array_equal(x.grad.data, [3, 3])


@pytest.mark.parametrize("on_leaf", [True, False])
def test_hook_changing_the_shape_is_an_error(on_leaf):
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1
    (x if on_leaf else y).register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"hook .* shape \(\).* shape \(3,\)"):
        y.sum().backward()


def test_hook_on_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(lambda g: g)


# ---- removing hooks -------------------------------------------------------------------------------


@pytest.mark.parametrize("on_leaf", [True, False])
def test_removed_hook_no_longer_runs(on_leaf):
    x = leaf([1.0, 2.0])
    y = x * 2
    target = x if on_leaf else y
    calls = []
    handle = target.register_hook(lambda g: calls.append(1) or g * 100)
    y.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.data, [200, 200])
    handle.remove()
    handle.remove()  # a second remove is harmless
    x.grad = None
    y.sum().backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(x.grad.data, [2, 2])


def test_hook_that_removes_itself_does_not_skip_the_next_one():
    x = leaf([1.0])
    order = []

    def once(g):
        order.append("once")
        handle.remove()

    handle = x.register_hook(once)
    x.register_hook(lambda g: order.append("always"))
    (x * 1).sum().backward(retain_graph=True)
    (x * 1).sum().backward()
    assert order == ["once", "always", "always"]


def test_removing_one_of_two_registrations_of_the_same_function_keeps_the_other():
    x = leaf([1.0])
    calls = []

    def count(g):
        calls.append(1)

    first = x.register_hook(count)
    x.register_hook(count)
    first.remove()
    (x * 1).sum().backward()
    assert len(calls) == 1


# ---- retain_grad ------------------------------------------------------------------------------------


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    z = y * y
    z.sum().backward()
    np.testing.assert_array_equal(y.grad.data, [6, 12])  # 2y
    assert z.grad is None  # not retained


def test_retain_grad_twice_does_not_double_the_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    y.retain_grad()
    y.sum().backward()
    np.testing.assert_array_equal(y.grad.data, [1, 1])


def test_retained_gradient_is_the_one_after_the_hooks_whenever_they_were_registered():
    # as in PyTorch, .grad of a non-leaf is what flows on to its inputs
    x = leaf([1.0])
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_array_equal(y.grad.data, [10])
    np.testing.assert_array_equal(x.grad.data, [20])


def test_retained_gradient_accumulates_over_backward_calls():
    x = leaf([1.0, 2.0])
    s = x * 1
    s.retain_grad()
    loss = s.sum() * 2
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(s.grad.data, [4, 4])


def test_retained_gradient_is_a_writable_array_of_its_own():
    # the gradient reaching s through s.sum() is a read-only broadcast view; .grad must not be
    x = leaf([1.0, 2.0])
    s = x * 1
    s.retain_grad()
    s.sum().backward()
    s.grad.data[0] = 5
    np.testing.assert_array_equal(x.grad.data, [1, 1])


def test_retain_grad_on_a_leaf_changes_nothing():
    x = leaf([1.0])
    x.retain_grad()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3])


# ---- hooks under grad() -----------------------------------------------------------------------------


def test_a_leaf_is_delivered_once_as_soon_as_the_last_node_that_takes_it_is_visited():
    w_late, w_early = leaf([2.0]), leaf([3.0])  # w_early is taken by the first op and by the last
    h = (leaf([1.0]) * w_early).tanh()
    y = (h * w_late) * w_early
    events = []
    h.register_hook(lambda g: events.append("h"))  # runs when the walk reaches tanh's node
    for name, w in (("w_late", w_late), ("w_early", w_early)):
        w.register_post_accumulate_grad_hook(lambda t, name=name: events.append((name, t.grad.data.item())))
    y.sum().backward()
    h_value = np.tanh(np.float32(3.0))
    dh = np.float32(2.0) * np.float32(3.0) * (1 - h_value * h_value)  # d y / d h, times d h / d w_early:
    assert events == [("w_late", pytest.approx(h_value * 3.0)), "h",
                      ("w_early", pytest.approx(h_value * 2.0 + dh * 1.0))]


def test_hooks_apply_to_the_gradients_grad_returns():
    x = leaf([1.0, 2.0])
    y = x * 3
    x.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: g * 2)
    gx, gy = grad((y * y).sum(), [x, y])
    np.testing.assert_array_equal(gy.data, [12, 24])  # 2 * 2y
    np.testing.assert_array_equal(gx.data, [37, 73])  # 3 * gy + 1
    assert x.grad is None


def test_grad_runs_no_hook_on_tensors_it_does_not_differentiate():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    fired = []
    w.register_hook(lambda g: fired.append("w"))
    (gx,) = grad((x * w).sum(), x)
    np.testing.assert_array_equal(gx.data, [3, 4])
    assert fired == [] and w.grad is None


def test_grad_leaves_retained_gradients_alone():
    x = leaf([1.0])
    y = x * 2
    y.retain_grad()
    grad(y.sum(), x)
    assert y.grad is None


def test_hooks_see_differentiable_gradients_under_create_graph():
    x = leaf([2.0])
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.requires_grad))
    handle = x.register_hook(lambda g: g * x)  # the hook's own product is recorded too
    (gx,) = grad((y * 1).sum(), x, create_graph=True)
    np.testing.assert_array_equal(gx.data, [8])  # 2x * x
    handle.remove()
    (ggx,) = grad(gx.sum(), x)
    np.testing.assert_array_equal(ggx.data, [8])  # d(2x^2)/dx = 4x
    assert seen == [False]  # the seed gradient of y is a constant


# ---- module forward hooks: capturing activations -----------------------------------------------------


def test_forward_hooks_capture_conv_activations_of_a_small_cnn():
    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    captured = {}
    handles = [
        module.register_forward_hook(lambda m, inputs, out, name=name: captured.__setitem__(name, out))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    logits = model(x)
    assert sorted(captured) == ["0", "2"]
    first = dict(model.named_modules())["0"]
    expected = F.conv2d(x, first.weight, first.bias)
    np.testing.assert_allclose(captured["0"].data, expected.data, rtol=1e-6)
    assert captured["2"].shape == (2, 2, 4, 4)
    # the captured activation is part of the graph: a hook on it sees its gradient
    seen = []
    captured["2"].register_hook(lambda g: seen.append(g.shape))
    logits.sum().backward()
    assert seen == [(2, 2, 4, 4)]
    for handle in handles:
        handle.remove()
    captured.clear()
    model(x)
    assert captured == {}
