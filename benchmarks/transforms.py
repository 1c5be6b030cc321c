"""What vmap buys the function transforms: Jacobians, Hessians and per-sample gradients computed
with one batched pass against the same thing computed one pass at a time.

    python benchmarks/transforms.py            medians of 7 repeats
    python benchmarks/transforms.py --quick    3 repeats

Both ways run in this process with the same library (nothing is compared across libraries), and
the script checks they give the same numbers before it times them. "One at a time" is what the
transforms did before they used vmap: ``jacrev`` one ``vjp_fn`` call per output element,
``jacfwd`` one ``jvp`` per input element, per-sample gradients one ``grad`` per sample.
"""
import argparse
import os
import time

import numpy as np

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import func, models


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def jacrev_one_at_a_time(f, x):
    out, vjp_fn = func.vjp(f, x)
    rows = []
    for index in np.ndindex(out.shape):
        cotangent = np.zeros(out.shape)
        cotangent[index] = 1
        rows.append(vjp_fn(tg.Tensor(cotangent))[0])
    return tg.stack(rows).reshape(*out.shape, *x.shape)


def jacfwd_one_at_a_time(f, x):
    columns = []
    for index in np.ndindex(x.shape):
        direction = np.zeros(x.shape)
        direction[index] = 1
        columns.append(func.jvp(f, (x,), (tg.Tensor(direction),))[1])
    out_ndim = columns[0].ndim
    stacked = tg.stack(columns).reshape(*x.shape, *columns[0].shape)
    return stacked.permute(*range(x.ndim, x.ndim + out_ndim), *range(x.ndim))


def hessian_one_at_a_time(f, x):
    return jacfwd_one_at_a_time(lambda w: jacrev_one_at_a_time(f, w), x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((8, 1, 8, 8)))
    w = tg.Tensor(rng.standard_normal((4, 1, 3, 3)))
    y = tg.Tensor(rng.integers(0, 4, 8))

    def features(w):
        return F.max_pool2d(F.conv2d(x, w).tanh(), 2)

    def loss(w):
        return F.cross_entropy(features(w).mean((2, 3)), y)

    model = models.seed_net()
    params = {name: p.detach() for name, p in model.named_parameters()}
    images = tg.Tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32))
    labels = tg.Tensor(rng.integers(0, 10, 32))

    def sample_loss(params, image, label):
        return F.cross_entropy(func.functional_call(model, params, (image[None],)), label[None])

    per_sample = func.vmap(func.grad(sample_loss), in_dims=(None, 0, 0))
    one_grad = func.grad(sample_loss)

    def per_sample_one_at_a_time():
        grads = [one_grad(params, images[i], labels[i]) for i in range(images.shape[0])]
        return {name: tg.stack([g[name] for g in grads]) for name in params}

    cases = [
        ("jacrev of conv-tanh-maxpool, (8, 4, 3, 3) out x 36 weights", lambda: func.jacrev(features)(w),
         lambda: jacrev_one_at_a_time(features, w)),
        ("jacfwd of the same", lambda: func.jacfwd(features)(w), lambda: jacfwd_one_at_a_time(features, w)),
        ("hessian of its cross-entropy loss, 36 x 36", lambda: func.hessian(loss)(w),
         lambda: hessian_one_at_a_time(loss, w)),
        ("per-sample gradients of the seed CNN, 32 images", lambda: per_sample(params, images, labels),
         per_sample_one_at_a_time),
    ]
    print(f"host: {_cpu_model()}, {os.cpu_count()} cores; median of {repeats} repeats")
    print("| transform | with vmap | one pass at a time | speed-up |\n|---|---|---|---|")
    for name, batched, looped in cases:
        a, b = batched(), looped()
        for p, q in zip(a.values() if isinstance(a, dict) else [a], b.values() if isinstance(b, dict) else [b]):
            np.testing.assert_allclose(p.data, q.data, rtol=1e-5, atol=1e-6)
        t_batched, t_looped = median_ms(batched, repeats), median_ms(looped, repeats)
        print(f"| {name} | {t_batched:.1f} ms | {t_looped:.1f} ms | {t_looped / t_batched:.1f}x |")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


if __name__ == "__main__":
    main()
