"""Nothing leaks: graphs are released by backward (without waiting for the cycle collector),
memory stays level over a training run, and very deep graphs work.

The figures over 1,000 steps and the timing of deep graphs are printed by
``benchmarks/memory_and_depth.py``; here only the properties are checked.
"""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Function, Tensor, nn, optim


@pytest.fixture
def no_cycle_collector():
    """Run the test with the cyclic GC off: anything freed was freed by reference counting, i.e.
    the graph holds no reference cycles."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(4 * 4 * 4, 10),
    )


# ---- the graph is released ---------------------------------------------------------------------------


def test_backward_releases_activations_while_the_loss_is_still_alive(no_cycle_collector):
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    w = Tensor(np.ones((3, 1, 3, 3), np.float32), requires_grad=True)
    hidden = F.conv2d(x, w).relu()
    pooled = F.max_pool2d(hidden, 2)
    loss = pooled.sum()
    watched = [weakref.ref(hidden), weakref.ref(pooled), weakref.ref(hidden.data), weakref.ref(hidden.grad_fn)]
    del hidden, pooled
    assert all(ref() is not None for ref in watched), "the graph keeps its activations until backward"
    loss.backward()
    assert all(ref() is None for ref in watched), "backward must drop the activations it no longer needs"
    assert loss.grad_fn.inputs is None
    root_node = weakref.ref(loss.grad_fn)
    del loss
    assert root_node() is None
    assert w.grad is not None


def test_retained_graph_is_freed_with_the_loss(no_cycle_collector):
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    hidden = a.exp()
    loss = (hidden * hidden).sum()
    watched = [weakref.ref(hidden), weakref.ref(hidden.grad_fn), weakref.ref(loss.grad_fn)]
    del hidden
    loss.backward(retain_graph=True)
    assert all(ref() is not None for ref in watched)
    loss.backward()
    del loss
    assert all(ref() is None for ref in watched), "a graph must not keep itself alive through a cycle"


def test_graph_with_create_graph_is_freed(no_cycle_collector):
    a = Tensor(np.full(3, 2.0, np.float32), requires_grad=True)
    loss = (a * a * a).sum()
    (grad,) = tg.grad(loss, a, create_graph=True)
    second = grad.sum()
    second.backward()
    watched = [weakref.ref(loss.grad_fn), weakref.ref(grad), weakref.ref(second.grad_fn)]
    del loss, grad, second
    assert all(ref() is None for ref in watched)
    np.testing.assert_allclose(a.grad.data, 6 * 2.0)  # d/da sum(3 a^2) = 6 a


def test_no_grad_records_nothing():
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    with tg.no_grad():
        out = (a * 2).exp().sum()
    assert out.grad_fn is None and not out.requires_grad


# ---- memory over a training run ---------------------------------------------------------------------


def _live_graph_objects() -> tuple:
    objects = gc.get_objects()
    return (
        sum(issubclass(type(o), Tensor) for o in objects),
        sum(issubclass(type(o), Function) for o in objects),
    )


def _bytes_in_large_blocks(threshold: int = 1024) -> int:
    """Traced bytes in blocks of at least 1 KiB, i.e. the arrays. Smaller blocks also hold Python's
    free lists and NumPy's small-allocation cache, which fill up over a few hundred steps and then
    stay level (see benchmarks/memory_and_depth.py), so they cannot show a trend over 200 steps."""
    return sum(trace.size for trace in tracemalloc.take_snapshot().traces if trace.size >= threshold)


def test_training_memory_stays_flat():
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    model = small_cnn()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    checkpoints = {20: None, 100: None, 200: None}
    first_loss = last_loss = None
    gc.collect()
    tracemalloc.start()
    try:
        for step in range(1, 201):
            batch = slice((step * 8) % 32, (step * 8) % 32 + 8)
            loss = F.cross_entropy(model(Tensor(images[batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            last_loss = loss.item()
            first_loss = last_loss if first_loss is None else first_loss
            del loss
            if step in checkpoints:
                checkpoints[step] = (_bytes_in_large_blocks(), _live_graph_objects(), len(gc.get_objects()))
    finally:
        tracemalloc.stop()
    assert last_loss < first_loss, "the run must actually train"
    (arrays_20, graph_20, _), (arrays_100, graph_100, objects_100), (arrays_200, graph_200, objects_200) = (
        checkpoints[20], checkpoints[100], checkpoints[200])
    # a leaked activation per step would add at least 180 x 256 bytes; the parameters and the momentum
    # buffers are all that should be held, and they are the same arrays at every step
    assert arrays_200 - arrays_20 < 4096, f"arrays grew from {arrays_20} to {arrays_200} bytes"
    assert arrays_100 == arrays_200
    # no Tensor or graph node survives a step: the same count (parameters, momentum buffers) each time
    assert graph_20 == graph_100 == graph_200, f"live (Tensor, Function) counts: {graph_20}, {graph_100}, {graph_200}"
    assert graph_200[1] == 0, "graph nodes outlived their step"
    assert abs(objects_200 - objects_100) < 100, f"live Python objects went from {objects_100} to {objects_200}"


# ---- deep graphs ----------------------------------------------------------------------------------


def test_backward_through_100k_op_chain():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 == 0 else y + 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])
    np.testing.assert_array_equal(y.data, [50_001.0, 50_002.0])


def test_grad_of_a_100k_chain_and_deleting_one_unused():
    x = Tensor(np.float32(0.5), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + x  # x used 100,001 times: its gradient accumulates over every use
    (gx,) = tg.grad(y, x)
    assert gx.item() == 100_001.0
    z = x
    for _ in range(100_000):
        z = z * 1.0
    del z  # dropping a deep graph without backward must not overflow the C stack
