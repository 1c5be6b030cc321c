"""Datasets, samplers and the DataLoader, at torch's path: ``tinygrad_cnn.utils.data`` is
``torch.utils.data``.

A *dataset* is anything with ``len(dataset)`` and ``dataset[i]``; a sample can be a tuple
``(image, label)``, a dict, a number, an array or a Tensor. A *sampler* says in which order the
indices are visited (``SequentialSampler``, ``RandomSampler``, ...), a *batch sampler* cuts that
order into lists of indices, and ``collate_fn`` turns the list of samples of one batch into a
batch of Tensors with the samples' structure (``default_collate``, as torch's).

The fast path. Datasets that keep every sample in NumPy arrays say so by exposing them as
``dataset.arrays``, promising ``dataset[i] == tuple(array[i] for array in dataset.arrays)``.
With the default ``collate_fn`` the DataLoader then builds a batch with one fancy-indexing
operation per array instead of a Python loop over samples, which is what makes an epoch over
tens of thousands of images cheap. ``TensorDataset``, ``ImageDataset`` and the datasets of
``tinygrad_cnn.data`` (the ones the command line trains on) are array-backed; the per-sample
datasets of ``tinygrad_cnn.vision`` (PIL images, per-sample transforms) are not, and take the
general path.

Workers. ``num_workers`` is accepted and ignored: batches are always made in the calling
process, one after the other (NumPy already uses several cores where it pays, and the fast
path spends its time in one gather per batch). So a program written for torch runs unchanged
and gives the same batches, with no worker processes to start, seed or stop; ``worker_init_fn``
is never called and ``get_worker_info()`` returns None, as in torch's main process. ``pin_memory`` is accepted and does nothing: there is only CPU memory.
"""
from __future__ import annotations

import bisect
import collections.abc
import itertools
import math
import numbers

import numpy as np

from ..random import get_rng
from ..tensor_class import Tensor


def as_array(value) -> np.ndarray:
    """The NumPy array behind ``value``: arrays pass through, our Tensors give their ``.data``."""
    # Checked first because ndarray has a `.data` attribute too (a raw memory buffer).
    if isinstance(value, np.ndarray):
        return value
    data = getattr(value, "data", None)
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(value)


# ---- datasets ---------------------------------------------------------------------------------------


class Dataset:
    """A collection of samples: a subclass defines ``__getitem__`` (and usually ``__len__``).
    ``a + b`` is their concatenation, as in torch."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: a subclass defines ``__iter__``. The DataLoader batches the samples
    in the order the stream gives them (no sampler, no shuffling)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``dataset[i] == (a[i], b[i], ...)``.

    Accepts NumPy arrays or Tensors (anything with an ndarray ``.data``) and stores the arrays,
    without copying, in ``self.arrays``. A row of an array given as a Tensor comes back as a
    Tensor (as in torch), a row of a NumPy array as a NumPy array.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(as_array(array) for array in arrays)
        self._rows_as_tensors = tuple(isinstance(array, Tensor) for array in arrays)
        if any(array.ndim == 0 for array in self.arrays):
            raise ValueError("TensorDataset arrays need a first (sample) dimension, got a scalar")
        lengths = [len(array) for array in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset arrays must all have the same length, got lengths {lengths}")

    @property
    def tensors(self) -> tuple:
        """The arrays as Tensors (torch's attribute name)."""
        return tuple(Tensor(array) for array in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index) -> tuple:
        return tuple(Tensor(array[index]) if as_tensor else array[index]
                     for array, as_tensor in zip(self.arrays, self._rows_as_tensors))


class ImageDataset(TensorDataset):
    """Labelled images in memory, the common shape of every built-in dataset.

    ``images``: float32 (N, C, H, W) with values in [0, 1] (uint8 input is divided by 255).
    ``labels``: int64 (N,), each an index into ``classes`` (the class names).
    ``dataset[i]`` is ``(image (C, H, W), label)``, a float32 array and an int64 number.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        if images.dtype == np.uint8:
            # A C-ordered copy even if `images` is a transposed view: later gathers and
            # convolutions are faster on contiguous memory.
            images = np.ascontiguousarray(images, dtype=np.float32)
            images /= 255
        elif images.dtype != np.float32:
            raise ValueError(f"images must be uint8 or float32, got {images.dtype}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}")
        self.classes = list(classes)
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}), "
                             f"got values from {labels.min()} to {labels.max()}")
        super().__init__(images, labels.astype(np.int64))

    @property
    def images(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]

    def subset(self, index) -> ImageDataset:
        """The images and labels selected by ``index`` (a slice or integer array), same classes."""
        return ImageDataset(self.images[index], self.labels[index], self.classes)

    def __repr__(self) -> str:
        channels, height, width = self.images.shape[1:]
        return (f"{type(self).__name__}({len(self)} images of {channels}x{height}x{width}, "
                f"{len(self.classes)} classes)")


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


class ConcatDataset(Dataset):
    """Several datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise TypeError("ConcatDataset does not take an IterableDataset (it has no length to index by)")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"index {index} is out of range for a dataset of {len(self)} samples")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator: np.random.Generator | None = None) -> list:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given ``lengths`` (counts
    summing to ``len(dataset)``, or fractions summing to 1, as in torch: the samples left over by
    rounding the fractions down go one each to the first subsets)."""
    total = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(total * fraction)) for fraction in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, "
                         f"but the dataset has {total} samples")
    order = (generator if generator is not None else get_rng()).permutation(total).tolist()
    ends = list(itertools.accumulate(lengths))
    return [Subset(dataset, order[end - length:end]) for length, end in zip(lengths, ends)]


# ---- samplers -----------------------------------------------------------------------------------------
# Random samplers draw from their ``generator`` (a NumPy Generator; torch takes a torch.Generator),
# or else from the library generator looked up at each epoch, so that a manual_seed() called after
# the loader was built still takes effect.


class Sampler:
    """An iterable of dataset indices (or, for a batch sampler, of lists of indices)."""

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def order(self) -> np.ndarray:
        """This epoch's indices as one array (the DataLoader's fast path slices it)."""
        return np.arange(len(self.data_source))

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new random permutation every epoch, or ``num_samples`` indices drawn with replacement."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: np.random.Generator | None = None):
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive integer, got {num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def order(self) -> np.ndarray:
        """This epoch's indices as one array (the DataLoader's fast path slices it)."""
        rng = self.generator if self.generator is not None else get_rng()
        size = len(self.data_source)
        if self.replacement:
            return rng.integers(0, size, self.num_samples)
        # Whole permutations, as many as needed to cover num_samples.
        rounds = [rng.permutation(size) for _ in range(max(1, math.ceil(self.num_samples / max(size, 1))))]
        return np.concatenate(rounds)[:self.num_samples]

    def __iter__(self):
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices``, in a new random order every epoch."""

    def __init__(self, indices, generator: np.random.Generator | None = None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        rng = self.generator if self.generator is not None else get_rng()
        return iter([self.indices[i] for i in rng.permutation(len(self.indices))])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator: np.random.Generator | None = None):
        self.weights = np.asarray(as_array(weights), dtype=np.float64)
        if self.weights.ndim != 1 or (self.weights < 0).any() or not self.weights.sum() > 0:
            raise ValueError("WeightedRandomSampler: weights must be a 1-D sequence of non-negative numbers, not all 0")
        if not replacement and num_samples > np.count_nonzero(self.weights):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                             f"from {np.count_nonzero(self.weights)} with non-zero weight")
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self):
        rng = self.generator if self.generator is not None else get_rng()
        chosen = rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                            p=self.weights / self.weights.sum())
        return iter(chosen.tolist())

    def __len__(self) -> int:
        return self.num_samples


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


class BatchSampler(Sampler):
    """Cut the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter, unless
    ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not _is_positive_int(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def index_arrays(self):
        """The same batches as NumPy index arrays, for the DataLoader's fast path: slices of one
        order array when the sampler gives one (no Python list per batch), else converted lists."""
        if not hasattr(self.sampler, "order"):
            yield from (np.asarray(batch, dtype=np.intp) for batch in self)
            return
        order = self.sampler.order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield order[start:start + self.batch_size]

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return math.ceil(len(self.sampler) / self.batch_size)



class DistributedSampler(Sampler):
    """The indices of a dataset that one rank reads in an epoch, as torch's ``DistributedSampler``.

    Every epoch the indices ``0..len(dataset)-1`` are put in one order, the same on every rank
    (shuffled with ``seed + epoch`` when ``shuffle``, so call ``set_epoch(epoch)`` at the start of
    each epoch), then dealt out: rank r takes positions r, r + R, r + 2R, ... of that order. So the
    ranks read disjoint samples that together cover the dataset once. When the length does not
    divide by the number of ranks R, the order is padded with its own first indices (each rank
    gets ``ceil(len / R)``), or with ``drop_last`` the tail is dropped (``floor(len / R)`` each).
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .. import distributed

            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch``: without it every epoch would repeat the same shuffle."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # pad with the order's own beginning, repeated if need be
            order = np.resize(order, self.total_size)
        else:
            order = order[: self.total_size]
        return iter(order[self.rank : self.total_size : self.num_replicas].tolist())

# ---- collation -------------------------------------------------------------------------------------


def _collate_error(value) -> TypeError:
    return TypeError(f"default_collate: a batch must hold Tensors, NumPy arrays, numbers, strings, dicts or "
                     f"sequences of them, found {type(value).__name__}"
                     f"{' of dtype ' + str(value.dtype) if isinstance(value, np.ndarray) else ''}; "
                     "convert the samples (a vision transform such as ToTensor) or pass a collate_fn")


def default_collate(batch: list):
    """Join a list of samples into one batch with the samples' structure, as torch's
    ``default_collate``: Tensors and NumPy arrays are stacked along a new first dimension
    (keeping their dtype); Python ints become an int64 Tensor, floats float64, bools bool;
    NumPy scalars keep their dtype; strings stay a list; a dict becomes a dict of batches; a
    named tuple a named tuple of batches; another tuple or a list a *list* of batches, one per
    position (torch's rule)."""
    first = batch[0]
    if isinstance(first, Tensor):
        return Tensor(np.stack([t.data for t in batch]))
    if isinstance(first, np.ndarray):
        if first.dtype.kind not in "biufc":
            raise _collate_error(first)
        return Tensor(np.stack(batch))
    if isinstance(first, np.generic) and first.dtype.kind in "biufc":
        return Tensor(np.array(batch))
    if isinstance(first, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(first, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(first, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        collated = {key: default_collate([sample[key] for sample in batch]) for key in first}
        try:
            return type(first)(collated)   # an OrderedDict stays one
        except TypeError:                  # a mapping type that cannot be built from a dict
            return collated
    if isinstance(first, tuple) and hasattr(first, "_fields"):   # a named tuple
        return type(first)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(first, collections.abc.Sequence):
        if any(len(sample) != len(first) for sample in batch):
            raise RuntimeError("default_collate: each sample of the batch should be a sequence of the same length, "
                               f"got lengths {sorted({len(sample) for sample in batch})}")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise _collate_error(first)


def default_convert(sample):
    """What the DataLoader does to each sample when ``batch_size=None`` (no batching): NumPy
    arrays and numbers become Tensors, containers are converted element by element."""
    if isinstance(sample, np.ndarray) and sample.dtype.kind in "biufc":
        return Tensor(sample)
    if isinstance(sample, np.generic) and sample.dtype.kind in "biufc":
        return Tensor(np.asarray(sample))
    if isinstance(sample, collections.abc.Mapping):
        return {key: default_convert(value) for key, value in sample.items()}
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(default_convert(value) for value in sample))
    if isinstance(sample, (list, tuple)):
        return [default_convert(value) for value in sample]
    return sample


def get_worker_info():
    """None: batches are made in the calling process, where torch's answer is None too. An
    IterableDataset that splits its stream between workers then yields all of it."""
    return None


# ---- the loader -------------------------------------------------------------------------------------


class DataLoader:
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader``.

    For an image dataset a batch is ``[images, labels]``: float32 (B, C, H, W) and int64 (B,)
    Tensors. ``len(loader)`` is the number of batches per epoch; the last one is smaller unless
    ``drop_last`` is set, in which case it is skipped. The torch arguments behave as in torch
    (``sampler``, ``batch_sampler``, ``collate_fn``, ``batch_size=None`` for no batching); see
    the module docstring for ``num_workers`` and ``pin_memory``, accepted and without effect.

    Shuffling draws a new permutation every epoch from ``generator`` (a NumPy Generator), or
    from the library generator (``tinygrad_cnn.random``), looked up each epoch so that
    ``manual_seed`` makes a whole run repeat. Two additions of this library:

    - ``seed``: the loader owns a generator seeded once, so its sequence of epochs is the same on
      every run whatever else draws random numbers (``generator=np.random.default_rng(seed)``);
    - ``transform`` (see ``tinygrad_cnn.data.transforms``): applied to each *batch* of the first
      field (the images) once it is gathered, so augmentation runs vectorised on the whole batch.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator: np.random.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True,
                 seed: int | None = None, transform=None):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be non-negative, got {timeout}")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: give seed or generator, not both")
        if seed is not None:
            generator = np.random.default_rng(seed)
        self.dataset = dataset
        # Kept for programs that read them back; none changes how batches are made (module docstring).
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.prefetch_factor = worker_init_fn, prefetch_factor
        self.persistent_workers = persistent_workers
        self.generator, self.transform = generator, transform
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self._default_collate = collate_fn is None
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader: an IterableDataset gives its own order; "
                             "shuffle, sampler and batch_sampler do not apply to it")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, "
                                 "sampler and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None (no batching) is mutually exclusive with drop_last")
        elif batch_size is not None and not _is_positive_int(batch_size):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is mutually exclusive with shuffle (the sampler sets the order)")
        if not self._iterable and sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if not self._iterable and batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last, self.shuffle = batch_size, drop_last, bool(shuffle)
        self.sampler, self.batch_sampler = sampler, batch_sampler

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)   # a TypeError, as in torch, if the stream has no length
            if self.batch_size is None:
                return length
            return length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        if self._iterable:
            yield from self._iterate_stream()
            return
        if self.batch_sampler is None:   # batch_size=None: every sample on its own
            for index in self.sampler:
                yield default_convert(self.dataset[index]) if self._default_collate \
                    else self.collate_fn(self.dataset[index])
            return
        arrays = getattr(self.dataset, "arrays", None)
        if arrays is None or not self._default_collate:
            for indices in self.batch_sampler:
                yield self._with_transform(self.collate_fn([self.dataset[index] for index in indices]))
            return
        # The fast path: one gather per array, no per-sample Python.
        batches = self.batch_sampler.index_arrays() if type(self.batch_sampler) is BatchSampler else self.batch_sampler
        for indices in batches:
            fields = [array[indices] for array in arrays]
            if self.transform is not None:
                fields[0] = self.transform(fields[0])
            yield [Tensor(field) for field in fields]

    def _iterate_stream(self):
        samples = iter(self.dataset)
        if self.batch_size is None:
            for sample in samples:
                yield default_convert(sample) if self._default_collate else self.collate_fn(sample)
            return
        while batch := list(itertools.islice(samples, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield self._with_transform(self.collate_fn(batch))

    def _with_transform(self, batch):
        """Apply the batch ``transform`` to the first field of a collated list or tuple batch."""
        if self.transform is None:
            return batch
        if not isinstance(batch, (list, tuple)) or not batch:
            raise TypeError(f"DataLoader: transform applies to the first field of a batch, but the batch is a "
                            f"{type(batch).__name__}; transform the samples in the dataset instead")
        first = self.transform(as_array(batch[0]))
        return type(batch)([Tensor(first), *batch[1:]])
