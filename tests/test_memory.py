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
import tinygrad_cnn.models
from tinygrad_cnn import Function, Tensor, nn, optim
from tinygrad_cnn.kernels import memory


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
    convolved = F.conv2d(x, w)
    hidden = convolved.relu()
    pooled = F.max_pool2d(hidden, 2)
    loss = pooled.sum()
    # relu's backward needs only where its output is positive: a mask it keeps, not the output
    needed = [weakref.ref(hidden.grad_fn.positive), weakref.ref(hidden.grad_fn)]
    not_needed = [weakref.ref(convolved.data), weakref.ref(hidden.data), weakref.ref(pooled.data)]  # no backward uses these
    del convolved, hidden, pooled
    assert all(ref() is not None for ref in needed), "the graph keeps what its backward needs"
    assert all(ref() is None for ref in not_needed), "the graph must not keep values no backward needs"
    loss.backward()
    assert all(ref() is None for ref in needed), "backward must drop the activations it no longer needs"
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


# ---- the array cache (tinygrad_cnn.memory) ----------------------------------------------------------


@pytest.fixture
def fresh_cache():
    """The cache with its free blocks released and the default settings, restored afterwards. Arrays of
    earlier tests may still hold blocks, so the tests look at changes and use sizes of their own."""
    limit = memory.stats()["limit_bytes"]
    memory.set_enabled(True)
    gc.collect()
    memory.empty_cache()
    yield memory.stats()
    memory.set_enabled(True)
    memory.set_limit(limit)
    memory.empty_cache()


def _block(array):
    return array.base if array.base is not None else array


def test_a_cached_block_is_reused_only_when_no_view_of_it_is_alive(fresh_cache):
    first = memory.empty((256, 257), np.float32)
    view = first[::2].T  # views keep the block in use
    first[:] = 1.0
    del first
    second = memory.empty((256, 257), np.float32)
    assert not np.shares_memory(second, view)
    second[:] = 2.0
    assert (view == 1.0).all(), "a live view's memory was handed out again"
    block = id(_block(view))  # the id only: a reference would keep the block in use
    del view
    third = memory.empty((128, 514), np.float32)  # same number of bytes, any shape or dtype
    assert id(_block(third)) == block
    assert memory.stats()["hits"] == fresh_cache["hits"] + 1


def test_scratch_and_result_arrays_never_share_a_block(fresh_cache):
    # a free scratch block of a fitting size is not handed to a result, nor the other way round
    columns = memory.scratch((256, 257), np.float32)
    scratch_block = id(_block(columns))
    del columns
    result = memory.empty((256, 257), np.float32)
    assert id(_block(result)) != scratch_block
    result_block = id(_block(result))
    del result
    again = memory.scratch((256, 257), np.float32)
    assert id(_block(again)) == scratch_block, "a scratch request takes the free scratch block"
    del again
    assert id(_block(memory.empty((256, 257), np.float32))) == result_block


def test_scratch_reserve_lets_different_sizes_share_one_block(fresh_cache):
    reserve = 8 * memory.MIN_BYTES
    small = memory.scratch((memory.MIN_BYTES,), np.uint8, reserve=reserve)
    assert small.shape == (memory.MIN_BYTES,) and _block(small).nbytes == reserve
    block = id(_block(small))
    del small
    larger = memory.scratch((5 * memory.MIN_BYTES,), np.uint8, reserve=reserve)  # not within MAX_SLACK of the first
    assert id(_block(larger)) == block


def test_the_columns_of_every_convolution_layer_share_one_block(fresh_cache):
    # the seed net's two convolutions have columns of different sizes (1 -> 8 and 8 -> 8 channels, 5x5)
    tg.manual_seed(0)
    model = tinygrad_cnn.models.seed_net()
    images = Tensor(np.random.default_rng(0).standard_normal((16, 1, 28, 28)).astype(np.float32))
    model(images).sum().backward()
    scratch_blocks = [id(b) for blocks in memory._cache.blocks.values() for b in blocks if id(b) in memory._cache.scratch]
    assert len(scratch_blocks) == 1


def test_small_arrays_bypass_the_cache(fresh_cache):
    small = memory.empty((4, 4), np.float32)
    assert small.base is None and memory.stats()["blocks"] == fresh_cache["blocks"]


def test_limit_and_empty_cache(fresh_cache):
    size = memory.MIN_BYTES + 3
    held = fresh_cache["cached_bytes"]
    memory.set_limit(held + 3 * size)
    kept = [memory.empty((size,), np.uint8) for _ in range(3)]
    beyond = memory.empty((size,), np.uint8)
    assert beyond.base is None, "past the limit arrays come from plain NumPy"
    assert memory.stats()["cached_bytes"] == held + 3 * size
    del kept[0]
    assert memory.empty_cache() == size, "only the free block is released"
    after = memory.stats()
    assert (after["cached_bytes"], after["blocks"]) == (held + 2 * size, fresh_cache["blocks"] + 2)


def test_disabled_cache_gives_plain_arrays(fresh_cache):
    memory.set_enabled(False)
    assert memory.empty((512, 512), np.float32).base is None
    assert memory.ufunc(np.add, np.ones((512, 512), np.float32), 1.0).base is None


def test_blocks_are_never_shared_between_threads(fresh_cache):
    import threading

    failures = []

    def work(value):
        for _ in range(200):
            a = memory.empty((128, 128), np.float32)
            a.fill(value)
            b = memory.empty((128, 128), np.float32)
            b.fill(-value)
            if not ((a == value).all() and (b == -value).all()):
                failures.append(value)

    threads = [threading.Thread(target=work, args=(v,)) for v in (1.0, 2.0, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.parametrize("fn, dtypes, shapes", [
    (np.add, ("float32", "float32"), ((64, 1, 32), (1, 16, 32))),
    (np.multiply, ("float32", "bool"), ((64, 16, 32), (64, 16, 32))),
    (np.subtract, ("float64", "float32"), ((32,), (64, 16, 32))),
    (np.true_divide, ("int64", "int64"), ((64, 16, 32), (64, 16, 32))),  # int / int -> float64: left to NumPy
    (np.maximum, ("float32", None), ((64, 16, 32), ())),  # a Python number as the other operand
])
def test_cached_ufunc_results_match_numpy(fresh_cache, monkeypatch, fn, dtypes, shapes):
    monkeypatch.setattr(memory, "MIN_BYTES", 1)
    rng = np.random.default_rng(0)
    operands = [rng.integers(1, 5, shape).astype(dtype) if dtype else 2 for dtype, shape in zip(dtypes, shapes)]
    expected, got = fn(*operands), memory.ufunc(fn, *operands)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_training_steps_reuse_the_cache_and_compute_the_same(fresh_cache):
    def losses(enabled):
        memory.set_enabled(enabled)
        tg.manual_seed(0)
        model = tinygrad_cnn.models.lenet()
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        images = Tensor(rng.standard_normal((16, 1, 28, 28)).astype(np.float32))
        labels = rng.integers(0, 10, 16)
        out = []
        for step in range(4):
            if step == 2:
                misses = memory.stats()["misses"]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            out.append(loss.item())
        return out, memory.stats()["misses"] - misses

    cached, new_blocks = losses(True)
    plain, _ = losses(False)
    assert cached == plain, "the cache must not change a single bit"
    assert new_blocks == 0, "after the first steps every large array should come from the cache"


def test_the_public_memory_module_is_the_caches_controls():
    # tinygrad_cnn.memory, as the README documents it, drives the cache the fast kernels use
    for name in ("stats", "empty_cache", "set_enabled", "set_limit"):
        assert getattr(tg.memory, name) is getattr(memory, name)
