"""Programs the distributed tests start under ``mpiexec -n N`` (one per scenario, chosen by the
first argument). Each prints or writes what the test in ``test_distributed.py`` then checks."""
import os
import signal
import sys

import numpy as np

import tinygrad_cnn as tg
import tinygrad_cnn.distributed as dist
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.nn.parallel import DistributedDataParallel

GLOBAL_BATCH, STEPS = 12, 5


class SmallCNN(nn.Module):
    """conv, relu, pool, dense: the layers of the seed net, small, without BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).reshape(x.shape[0], -1))


def batches(seed: int = 1):
    """The same STEPS global batches on every rank (and in the one-process reference)."""
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        yield rng.standard_normal((GLOBAL_BATCH, 1, 10, 10)), rng.integers(0, 10, GLOBAL_BATCH)


def train(model, params, rank: int, world: int, dtype, accumulate: int = 1):
    """SGD with momentum on each rank's share of every global batch; with ``accumulate`` > 1 the
    share is split again into micro-batches whose gradients add up under ``no_sync``."""
    optimizer = tg.optim.SGD(params, lr=0.1, momentum=0.9)
    for images, labels in batches():
        share = slice(rank, None, world)  # rank r takes samples r, r + world, ...
        images, labels = images[share].astype(dtype), labels[share]
        optimizer.zero_grad()
        micro = np.array_split(np.arange(len(labels)), accumulate)
        for i, part in enumerate(micro):
            context = model.no_sync() if i < accumulate - 1 and hasattr(model, "no_sync") else _nothing()
            with context:
                loss = F.cross_entropy(model(tg.Tensor(images[part])), tg.Tensor(labels[part])) * (len(part) / len(labels))
                loss.backward()
        optimizer.step()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def weights(module) -> dict:
    return {name: np.array(value) for name, value in module.state_dict().items()}


def equivalence(out: str, dtype: str, accumulate: str = "1") -> None:
    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    tg.manual_seed(100 + rank)  # different initial weights on each rank: DDP must broadcast rank 0's
    net = cast(SmallCNN(), dtype)
    model = DistributedDataParallel(net, bucket_cap_mb=0.001)  # several buckets even for this small net
    initial = weights(net) if rank == 0 else None
    train(model, model.parameters(), rank, world, np.dtype(dtype), int(accumulate))
    final = weights(net)
    gathered = dist._world().gather(final, root=0)
    if rank == 0:
        assert all(all(np.array_equal(g[k], final[k]) for k in final) for g in gathered), "ranks disagree"
        np.savez(out, **{"initial." + k: v for k, v in initial.items()}, **{"final." + k: v for k, v in final.items()})


def cast(module, dtype):
    for p in module.parameters():
        p.data = p.data.astype(dtype)
    return module


def die(how: str) -> None:
    dist.init_process_group()
    rank = dist.get_rank()
    model = DistributedDataParallel(SmallCNN())
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    for step, (images, labels) in enumerate(batches()):
        if rank == 1 and step == 2:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError("a bug on rank 1")
        optimizer.zero_grad()
        F.cross_entropy(model(tg.Tensor(images.astype(np.float32))), tg.Tensor(labels)).backward()
        optimizer.step()
    print(f"rank {rank} finished", flush=True)


if __name__ == "__main__":
    scenario, *arguments = sys.argv[1:]
    {"equivalence": equivalence, "die": die}[scenario](*arguments)
