"""``DistributedDataParallel``: one model trained by several processes, each on its share of the batch.

Wrap the model after ``tinygrad_cnn.distributed.init_process_group()``::

    model = DistributedDataParallel(Net())
    loss = F.cross_entropy(model(images), labels)   # this rank's share of the batch
    loss.backward()                                 # .grad is now the average over every rank
    optimizer.step()                                # the same step on every rank

At wrap time every parameter and buffer is copied from rank 0, so the ranks start equal. During
backward each parameter's gradient, once accumulated into ``.grad``, joins a *bucket* (parameters
grouped in the reverse order of their registration, about the order backward reaches them, up to
``bucket_cap_mb``); a full bucket is packed into one array and its all-reduce is started without
waiting (``MPI_Iallreduce``), so the exchange of the last layers' gradients overlaps the backward
of the first layers. When the last bucket has started, the wrapper waits for all of them and
writes the averages back into ``.grad``. Averaging the gradients of the ranks' mean losses is the
gradient of the mean loss over the whole batch, so N ranks at a global batch B take the same step
as one process at batch B, up to the order of the floating-point sums.

``no_sync()`` skips the exchange: gradients accumulate locally, and the first backward outside it
averages everything accumulated (gradient accumulation over several micro-batches).

Buffers such as BatchNorm's running statistics are broadcast from rank 0 before each forward in
training mode (``broadcast_buffers``, as torch). The batch statistics a BatchNorm layer normalises
with are each rank's own (its share of the batch), as with torch's DDP without SyncBatchNorm: with
BatchNorm, N ranks are not exactly one process at the global batch.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .. import distributed as dist
from .module import Module


class _Bucket:
    """Parameters whose gradients travel together in one all-reduce."""

    def __init__(self, params: list):
        self.params = params
        self.ready: set = set()
        self.flat = None
        self.work = None

    def start(self) -> None:
        """Pack the gradients into one array and start summing it over the ranks."""
        self.flat = np.concatenate([p.grad.data.reshape(-1) for p in self.params])
        self.work = dist.all_reduce(self.flat, dist.ReduceOp.SUM, async_op=True)

    def finish(self, world_size: int) -> None:
        """Wait for the sum and write each parameter's share of it, divided by the ranks, into .grad."""
        self.work.wait()
        offset = 0
        for p in self.params:
            size = p.grad.data.size
            np.divide(self.flat[offset : offset + size].reshape(p.grad.shape), world_size, out=p.grad.data)
            offset += size
        self.ready.clear()
        self.flat = self.work = None


class DistributedDataParallel(Module):
    """Average the gradients of ``module`` over every rank of the process group during backward.

    ``state_dict()`` keys carry the ``module.`` prefix, as torch's; ``model.module`` is the
    wrapped network (save ``model.module.state_dict()`` to load it without the wrapper).
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, broadcast_buffers: bool = True,
                 find_unused_parameters: bool = False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call tinygrad_cnn.distributed.init_process_group() first")
        if find_unused_parameters:
            raise NotImplementedError("DistributedDataParallel: find_unused_parameters=True is not supported; "
                                      "every parameter that requires grad must receive a gradient each step")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.world_size = dist.get_world_size()
        self._require_sync = True
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor, src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _make_buckets(params[::-1], int(bucket_cap_mb * (1 << 20)))
        self._started = 0
        self._hook_handles = []
        for bucket in self._buckets:
            for p in bucket.params:
                self._hook_handles.append(p.register_post_accumulate_grad_hook(self._on_gradient(bucket)))

    def forward(self, *args, **kwargs):
        if any(bucket.ready for bucket in self._buckets):
            missing = sum(len(b.params) - len(b.ready) for b in self._buckets if b.ready)
            raise RuntimeError(
                f"DistributedDataParallel: the previous backward gave no gradient to {missing} parameter(s) "
                "that require grad, so their average was never taken; every parameter must be used in "
                "the loss (or set requires_grad=False on those not trained)"
            )
        if self.broadcast_buffers and self.training and self.world_size > 1:
            for buffer in self.module.buffers():
                dist.broadcast(buffer, src=0)
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self):
        """Inside this block backward accumulates gradients locally without exchanging them."""
        previous, self._require_sync = self._require_sync, False
        try:
            yield
        finally:
            self._require_sync = previous

    def _on_gradient(self, bucket: _Bucket):
        def hook(param):
            if not self._require_sync or self.world_size == 1:
                return
            bucket.ready.add(id(param))
            if len(bucket.ready) == len(bucket.params):
                bucket.start()
                self._started += 1
                if self._started == len(self._buckets):
                    self._started = 0
                    for each in self._buckets:
                        each.finish(self.world_size)

        return hook


def _make_buckets(params: list, cap_bytes: int) -> list:
    """Consecutive parameters of one dtype, each bucket up to ``cap_bytes`` (at least one parameter)."""
    buckets, current, size, dtype = [], [], 0, None
    for p in params:
        nbytes = p.data.nbytes
        if current and (p.dtype != dtype or size + nbytes > cap_bytes):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
        dtype = p.dtype
    if current:
        buckets.append(_Bucket(current))
    return buckets
