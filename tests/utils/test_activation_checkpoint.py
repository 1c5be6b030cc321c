"""``utils.checkpoint.checkpoint``: the same gradients as the plain graph, bit for bit, at first and
second order, in forward mode and inside ``func`` transforms, with dropout replayed; less memory
kept; clear errors."""
import tracemalloc

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn as nn
from tinygrad_cnn import func
from tinygrad_cnn.utils.checkpoint import checkpoint


def blocks(n=3, channels=4, dropout=0.3, dtype=np.float64):
    tg.manual_seed(0)
    net = [nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                         nn.Conv2d(channels, channels, 3, padding=1), nn.Tanh()) for _ in range(n)]
    for module in net:
        for p in module.parameters():
            p.data = p.data.astype(dtype)
    return net


def forward(net, x, use):
    tg.manual_seed(7)  # the same dropout masks for both ways
    for block in net:
        x = checkpoint(block, x) if use else block(x)
    return x


def image(dtype=np.float64):
    return tg.Tensor(np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(dtype), requires_grad=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_are_the_plain_graphs_bit_for_bit(dtype):
    net, x = blocks(dtype=dtype), image(dtype)
    params = [p for b in net for p in b.parameters()]
    plain = tg.grad((forward(net, x, False) ** 2).sum(), [x, *params])
    checked = tg.grad((forward(net, x, True) ** 2).sum(), [x, *params])
    for a, b in zip(plain, checked):
        assert a.dtype == b.dtype and np.array_equal(a.data, b.data)


def test_backward_fills_the_parameters_grad():
    net, x = blocks(), image()
    (forward(net, x, False) ** 2).sum().backward()
    plain = [p.grad.data.copy() for b in net for p in b.parameters()] + [x.grad.data.copy()]
    for b in net:
        b.zero_grad()
    x.grad = None
    (forward(net, x, True) ** 2).sum().backward()
    again = [p.grad.data for b in net for p in b.parameters()] + [x.grad.data]
    assert all(np.array_equal(a, b) for a, b in zip(plain, again))


def test_dropout_draws_the_same_numbers_again_and_the_generator_goes_on():
    net, x = blocks(n=1, dropout=0.5), image()
    tg.manual_seed(3)
    out = checkpoint(net[0], x)
    after_forward = tg.random.get_rng().bit_generator.state
    (out ** 2).sum().backward()
    assert tg.random.get_rng().bit_generator.state == after_forward  # the replay left it where it was
    tg.manual_seed(3)
    assert np.array_equal(net[0](x).data, out.data)


def test_second_order_through_checkpoints():
    net, x = blocks(dropout=0.0), image()
    params = [p for b in net for p in b.parameters()]

    def second(use):
        (g,) = tg.grad(forward(net, x, use).sum(), [x], create_graph=True)
        return tg.grad((g * g).sum(), [x, *params])

    # the double backward walks the recomputed blocks in another order than the plain graph, so the
    # contributions meeting at a tensor add up in another order: equal to rounding, not bit for bit
    for a, b in zip(second(False), second(True)):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-15)


def test_forward_mode_and_transforms_through_checkpoints():
    net, x = blocks(n=2, dropout=0.0), image()
    v = tg.Tensor(np.random.default_rng(1).standard_normal(x.shape))
    _, plain = func.jvp(lambda x: forward(net, x, False), (x.detach(),), (v,))
    _, checked = func.jvp(lambda x: forward(net, x, True), (x.detach(),), (v,))
    np.testing.assert_array_equal(plain.data, checked.data)
    small = tg.Tensor(np.random.default_rng(2).standard_normal((1, 4, 3, 3)))
    h_plain = func.hessian(lambda x: forward(net, x, False).sum())(small)
    h_checked = func.hessian(lambda x: forward(net, x, True).sum())(small)
    np.testing.assert_allclose(h_plain.data, h_checked.data, rtol=1e-12, atol=1e-12)


def peak_mb(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - before) / 2**20


def test_checkpointed_blocks_keep_less_memory_and_explain_shows_it():
    net = blocks(n=4, channels=8, dropout=0.0, dtype=np.float32)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((8, 8, 16, 16)).astype(np.float32), requires_grad=True)

    def kept_after_forward(use):
        box = {}

        def run():
            box["out"] = forward(net, x, use)
        return peak_mb(run), box["out"]

    _, plain_out = kept_after_forward(False)
    report_plain = tg.explain((plain_out ** 2).sum())
    _, checked_out = kept_after_forward(True)
    report_checked = tg.explain((checked_out ** 2).sum())
    assert "Checkpoint" in str(report_checked)
    assert report_checked.saved_bytes < report_plain.saved_bytes / 2


def test_errors_and_the_no_grad_path():
    net, x = blocks(n=1), image()
    with pytest.raises(TypeError, match="a Tensor or a tuple of Tensors, got str"):
        checkpoint(lambda x: "x", x)
    outside = x * 2  # computed outside the function and used again after it
    (g_plain,) = tg.grad(((x.detach() + outside).tanh() * outside).sum(), [x])
    outside = x * 2
    (g_checked,) = tg.grad((checkpoint(lambda y: (y + outside).tanh(), x.detach()) * outside).sum(), [x])
    np.testing.assert_array_equal(g_plain.data, g_checked.data)
    with tg.no_grad():
        out = checkpoint(net[0], x)
    assert out.grad_fn is None


def test_a_function_returning_several_tensors():
    rng = np.random.default_rng(3)
    w = tg.Tensor(rng.standard_normal((4, 4)), requires_grad=True)
    x = tg.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    block = lambda u: ((u @ w).tanh(), (u * u).sum(-1))  # noqa: E731

    def gradients(use):
        w.grad = x.grad = None
        a, b = checkpoint(block, x) if use else block(x)
        assert a.shape == (3, 4) and b.shape == (3,)
        (a.sum() * 2 + (b ** 2).sum()).backward()
        return w.grad.data, x.grad.data

    for plain, kept in zip(gradients(False), gradients(True)):
        np.testing.assert_array_equal(plain, kept)
    def loss(f):  # of one sample: the block run once
        def of_sample(v):
            a, b = f(v)
            return a.sum() + b
        return of_sample

    np.testing.assert_array_equal(func.vmap(func.grad(loss(lambda v: checkpoint(block, v))))(x.detach()).data,
                                  func.vmap(func.grad(loss(block)))(x.detach()).data)
    with pytest.raises(TypeError, match="Tensors of one dtype"):
        checkpoint(lambda u: (u, 3), x)
