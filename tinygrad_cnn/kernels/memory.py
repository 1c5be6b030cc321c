"""A caching allocator for the large arrays the ops create.

Why: a training step allocates the same large arrays every time (activations, im2col columns,
gradients) and frees them at the end. glibc's malloc hands big freed blocks back to the operating
system, so the next step gets fresh pages, and the kernel zero-fills each 4 KiB page on its first
write: a *page fault*. In a LeNet-style step that was about 9,000 faults, some 40% of the step's
time. (PyTorch keeps freed GPU memory in a caching allocator for the same reason.)

How: ``empty(shape, dtype)`` hands out a view of a cached block (a 1-D byte array) of exactly the
requested size (or somewhat larger). A block is in use as long as any array made from it is alive, because NumPy views
keep a reference to the array that owns the memory; so a block is free exactly when the cache
holds the only reference to it (``sys.getrefcount``). Nothing has to be returned by hand, and an
array that lives on (a saved activation, a ``.grad``) simply keeps its block.

Two kinds of arrays share the cache without sharing blocks: results (arrays a kernel returns,
which may live on as activations or gradients) and *scratch* (``scratch``: temporaries a kernel
frees before it returns, such as im2col columns). Were they mixed, a long-lived activation would
settle in a free block left by a kernel's columns (a request may take a block up to ``MAX_SLACK``
times its size), and the next convolution would allocate its columns again. Measured on the seed
net's training step at batch 64: a peak of 10.4 MB with one kind, 8.9 MB with two (7.9 MB of arrays
alive at the peak, without the cache). Scratch requests may
also ask for a minimum block size (``reserve``), so that the columns of every convolution layer
take the same block. Only the columns are scratch: other temporaries (a padded input, a GEMM's
result) among them would settle in the columns' block in turn, and measured worse than none.

Only arrays of at least ``MIN_BYTES`` are cached: small ones are cheap for malloc and would cost
more in bookkeeping than they save. The cache holds at most ``limit`` bytes (blocks in use and
free, 1 GiB by default, ``TINYGRAD_CNN_CACHE_MB`` in the environment); past that, free blocks are
released, least recently used first, and if all are in use the array is allocated normally.

    tinygrad_cnn.memory.stats()        # bytes cached and in use, hits and misses
    tinygrad_cnn.memory.empty_cache()  # release every free block (as torch.cuda.empty_cache)
    tinygrad_cnn.memory.set_enabled(False)  # allocate everything with plain NumPy from now on

(``tinygrad_cnn.memory`` is the public face of this module: those user functions only.) The fast
kernels take their arrays from here; the reference kernels (``reference.py``) use plain NumPy.
"""
import bisect
import os
import sys
import threading

import numpy as np

from ..environment import EnvironmentVariableError

MIN_BYTES = 64 << 10
# A request may be served by a free block up to this many times its size: a step's arrays come in
# a few dozen sizes, and exact sizes only would hold a block of each even where one would do.
MAX_SLACK = 2


def _references(blocks: list, i: int) -> int:
    return sys.getrefcount(blocks[i])


# What ``_references`` reports for a block that only its list holds (2 on CPython: the list's
# reference and the argument's), measured rather than assumed, since interpreters differ.
_FREE = _references([np.empty(0, dtype=np.uint8)], 0)


class _Cache:
    def __init__(self, limit: int):
        self.limit = limit
        self.enabled = True
        self.blocks = {}  # nbytes -> list of blocks of that size
        self.scratch = set()  # id() of the blocks that serve scratch requests only
        self.sizes = []  # the keys of ``blocks``, sorted
        self.total = 0  # bytes held, in use or free
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    def take(self, nbytes: int, scratch: bool = False):
        """The smallest free block of ``nbytes`` to ``MAX_SLACK * nbytes`` bytes of the same kind
        (scratch or not), else a new block of ``nbytes``; None if that would pass the limit even
        after releasing free blocks."""
        if self.limit is None:  # read when first needed, so a bad value is reported where it is used
            self.limit = _limit_from_environment()
        with self.lock:
            for size in self.sizes[bisect.bisect_left(self.sizes, nbytes):]:
                if size > MAX_SLACK * nbytes:
                    break
                same_size = self.blocks[size]
                for i in range(len(same_size)):
                    # every live view adds a reference
                    if _references(same_size, i) == _FREE and (id(same_size[i]) in self.scratch) == scratch:
                        self.hits += 1
                        return same_size[i]
            self.misses += 1
            if self.total + nbytes > self.limit:
                self.release_free(self.total + nbytes - self.limit)
                if self.total + nbytes > self.limit:
                    return None
            if nbytes not in self.blocks:
                self.blocks[nbytes] = []
                bisect.insort(self.sizes, nbytes)
            block = np.empty(nbytes, dtype=np.uint8)
            self.blocks[nbytes].append(block)
            if scratch:
                self.scratch.add(id(block))
            self.total += nbytes
            return block

    def release_free(self, wanted: int = None) -> int:
        """Drop free blocks, largest first, until ``wanted`` bytes (or all free ones) are gone."""
        released = 0
        for size in reversed(list(self.sizes)):
            same_size = self.blocks[size]
            kept = []
            for i in range(len(same_size)):
                if (wanted is None or released < wanted) and _references(same_size, i) == _FREE:
                    released += size
                    self.scratch.discard(id(same_size[i]))
                else:
                    kept.append(same_size[i])
            if kept:
                self.blocks[size] = kept
            else:
                del self.blocks[size]
                self.sizes.remove(size)
        self.total -= released
        return released


def _limit_from_environment() -> int:
    """``TINYGRAD_CNN_CACHE_MB`` in bytes (1024 MB when unset); anything but a whole number of
    megabytes is refused with one line naming the variable, where it is read."""
    text = os.environ.get("TINYGRAD_CNN_CACHE_MB", "1024")
    try:
        megabytes = int(text)
    except ValueError:
        megabytes = -1
    if megabytes < 0:
        raise EnvironmentVariableError(
            f"TINYGRAD_CNN_CACHE_MB={text!r}: expected a whole number of megabytes (0 or more), e.g. 1024")
    return megabytes << 20


_cache = _Cache(None)  # the limit is read from the environment at the first allocation (see take)


def empty(shape, dtype) -> np.ndarray:
    """Like ``np.empty(shape, dtype)`` (contents undefined), from the cache when it is large."""
    return _from_cache(shape, dtype, False, 0)


def scratch(shape, dtype, reserve: int = 0) -> np.ndarray:
    """``empty`` for a temporary that the calling kernel frees before it returns, from the scratch
    blocks. ``reserve``: take a block of at least that many bytes even if the array needs fewer, so
    that temporaries of one kind but different sizes (the columns of each convolution) share one."""
    return _from_cache(shape, dtype, True, reserve)


def _from_cache(shape, dtype, scratch: bool, reserve: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if nbytes < MIN_BYTES or not _cache.enabled:
        return np.empty(shape, dtype=dtype)
    block = _cache.take(max(nbytes, reserve), scratch)
    if block is None:
        return np.empty(shape, dtype=dtype)
    return block[:nbytes].view(dtype).reshape(shape)


def zeros(shape, dtype) -> np.ndarray:
    out = empty(shape, dtype)
    out.fill(0)
    return out


def full(shape, value, dtype) -> np.ndarray:
    out = empty(shape, dtype)
    out.fill(value)
    return out


_constant_rows = {}  # (value, dtype) -> a read-only row of that value, as long as the longest asked for


def constant_row(value, length: int, dtype) -> np.ndarray:
    """A read-only row of ``length`` copies of ``value`` in ``dtype``: a view of one row kept per
    value and dtype, grown when a longer one is asked for. Operands such as relu's zeros and a
    sum's ones, made once; outside the cache, as nothing ever writes to them."""
    key = (value, np.dtype(dtype))
    row = _constant_rows.get(key)
    if row is None or len(row) < length:
        row = np.full(length, value, dtype)
        row.flags.writeable = False
        _constant_rows[key] = row  # a thread racing here stores the same values
    return row[:length]


def copy(array, dtype=None) -> np.ndarray:
    """A C-contiguous copy of ``array`` (optionally cast to ``dtype``), like ``np.array(array)``."""
    array = np.asarray(array)
    out = empty(array.shape, array.dtype if dtype is None else dtype)
    np.copyto(out, array, casting="unsafe" if dtype is not None else "no")
    return out


def ufunc(fn, *operands, dtype=None):
    """``fn(*operands)`` written into a cached array when the result is large.

    The result's dtype is ``dtype`` when given (``bool`` for a comparison), else the promoted type
    of the operands, which is what arithmetic ufuncs (add, multiply, maximum, exp, ...) return for
    floating-point operands; a result that would not be floating point is left to NumPy's own
    allocation. NumPy's own errors come through unchanged, so callers can catch a broadcasting error."""
    for a in operands:  # the common small case returns after a look at each operand's size
        if isinstance(a, np.ndarray) and a.nbytes >= MIN_BYTES:
            break
    else:
        return fn(*operands)
    if not _cache.enabled:
        return fn(*operands)
    if dtype is None:
        dtype = np.result_type(*operands)
        if dtype.kind != "f":
            return fn(*operands)
    shape = np.broadcast_shapes(*(np.shape(a) for a in operands))
    return fn(*operands, out=empty(shape, dtype))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` for operands with at least two dimensions, into a cached array when large."""
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    dtype = np.result_type(a, b)
    if dtype.kind != "f":
        return np.matmul(a, b)
    return np.matmul(a, b, out=empty(shape, dtype))


def stats() -> dict:
    """Bytes held by the cache, of which in use, number of blocks, and hits and misses so far."""
    with _cache.lock:
        blocks = in_use = 0
        for nbytes, same_size in _cache.blocks.items():
            blocks += len(same_size)
            in_use += nbytes * sum(_references(same_size, i) != _FREE for i in range(len(same_size)))
        return {
            "enabled": _cache.enabled,
            "limit_bytes": _cache.limit if _cache.limit is not None else _limit_from_environment(),
            "cached_bytes": _cache.total,
            "in_use_bytes": in_use,
            "blocks": blocks,
            "hits": _cache.hits,
            "misses": _cache.misses,
        }


def empty_cache() -> int:
    """Release every free block to the allocator below; returns the number of bytes released."""
    with _cache.lock:
        return _cache.release_free()


def set_enabled(enabled: bool) -> None:
    """Turn the cache on or off (off: every array comes from plain NumPy; cached blocks are released)."""
    _cache.enabled = bool(enabled)
    if not enabled:
        empty_cache()


def set_limit(limit_bytes: int) -> None:
    """Cap the bytes the cache holds, in use and free; free blocks beyond it are released."""
    with _cache.lock:
        _cache.limit = int(limit_bytes)
        if _cache.total > _cache.limit:
            _cache.release_free(_cache.total - _cache.limit)
