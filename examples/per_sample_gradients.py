"""Per-sample gradients of the seed CNN with ``vmap(grad(...))``, used for DP-SGD training.

Differentially private SGD (Abadi et al., 2016) needs the gradient of every sample on its own: each
is clipped to a norm of at most C before they are summed and Gaussian noise of scale sigma * C is
added, so no single image can move the weights much. A plain backward pass only gives the sum.
``func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, images, labels)`` gives all of them in
one pass: ``grad`` differentiates the loss of one image, ``vmap`` maps it over the batch, and every
primitive computes the whole batch at once by its batching rule (the convolutions with one group of
filters per sample, the max-pool over all images at once).

The script first checks the vmap gradients against a Python loop over the samples (one ``grad``
call per image) on the same batch, printing the largest difference and both times and their
ratio, then trains the seed CNN with DP-SGD and prints its test accuracy.

    python examples/per_sample_gradients.py            full Fashion-MNIST if found, else the
                                                       embedded subset; 2 epochs of DP-SGD
    python examples/per_sample_gradients.py --quick    a few seconds, to check it runs
"""
import argparse
import time

import numpy as np

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import data, func, models


def load_data(quick: bool):
    if not quick:
        try:
            return data.FashionMNIST(train=True), data.FashionMNIST(train=False)
        except data.DatasetError:
            print("full Fashion-MNIST not found; using the embedded subset")
    train_set, test_set = data.load_embedded(train=True), data.load_embedded(train=False)
    if quick:
        train_set, test_set = train_set.subset(slice(256)), test_set.subset(slice(None, None, 20))
    return train_set, test_set


def make_loss(model):
    def loss(params, image, label):
        """The loss of ONE image (C, H, W) and its label: what grad differentiates."""
        logits = func.functional_call(model, params, (image[None],))
        return F.cross_entropy(logits, label[None])

    return loss


per_sample_grads = None  # set in main: func.vmap(func.grad(loss), in_dims=(None, 0, 0))


def loop_grads(loss, params, images, labels):
    """The same per-sample gradients, one grad call per image, stacked."""
    one = func.grad(loss)
    grads = [one(params, images[i], labels[i]) for i in range(images.shape[0])]
    return {name: tg.stack([g[name] for g in grads]) for name in params}


def clipped_noisy_mean(grads: dict, clip: float, noise: float, rng) -> dict:
    """DP-SGD's update direction: each sample's gradient scaled to norm <= clip, summed, plus
    N(0, (noise * clip)^2) noise, divided by the batch size."""
    batch = next(iter(grads.values())).shape[0]
    squared = sum((g * g).reshape(batch, -1).sum(1) for g in grads.values())
    scale = (clip / (squared.sqrt() + 1e-12)).clip(None, 1.0)  # min(1, C / ||g_i||)
    update = {}
    for name, g in grads.items():
        clipped_sum = (g * scale.reshape(batch, *(1,) * (g.ndim - 1))).sum(0)
        update[name] = (clipped_sum + tg.Tensor(rng.normal(0, noise * clip, clipped_sum.shape).astype(g.dtype))) / batch
    return update


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compare_with_loop(loss, params, images, labels, repeats: int) -> None:
    vmapped = per_sample_grads(params, images, labels)
    looped = loop_grads(loss, params, images, labels)
    difference = max(float(np.max(np.abs(vmapped[n].data - looped[n].data))) for n in params)
    scale = max(float(np.max(np.abs(looped[n].data))) for n in params)
    print(f"per-sample gradients of {images.shape[0]} images, {sum(p.numel() for p in params.values()):,} "
          f"parameters each: largest difference vmap vs loop {difference:.2e} (largest gradient entry {scale:.2e})")
    t_vmap = timed(lambda: per_sample_grads(params, images, labels), repeats)
    t_loop = timed(lambda: loop_grads(loss, params, images, labels), repeats)
    print(f"time per batch (median of {repeats}): vmap {t_vmap * 1e3:.1f} ms, loop over samples "
          f"{t_loop * 1e3:.1f} ms: vmap is {t_loop / t_vmap:.1f}x faster")


def accuracy(model, dataset) -> float:
    correct = 0
    with tg.no_grad():
        for images, labels in data.DataLoader(dataset, batch_size=500):
            correct += int((model(images).argmax(1) == labels).sum().item())
    return correct / len(dataset)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few batches of the embedded data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--clip", type=float, default=1.0, help="C: the largest norm of one sample's gradient")
    parser.add_argument("--noise", type=float, default=0.5, help="sigma: the noise scale, in units of C")
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()
    global per_sample_grads

    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    train_set, test_set = load_data(args.quick)
    model = models.seed_net()
    loss = make_loss(model)
    per_sample_grads = func.vmap(func.grad(loss), in_dims=(None, 0, 0))
    params = {name: p.detach() for name, p in model.named_parameters()}

    images, labels = next(iter(data.DataLoader(train_set, batch_size=args.batch_size)))
    compare_with_loop(loss, params, images, labels, repeats=2 if args.quick else 5)

    epochs = 1 if args.quick else args.epochs
    start = time.perf_counter()
    for epoch in range(epochs):
        for images, labels in data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True):
            update = clipped_noisy_mean(per_sample_grads(params, images, labels), args.clip, args.noise, rng)
            for name, parameter in model.named_parameters():
                parameter.data -= args.lr * update[name].data
        print(f"epoch {epoch + 1}: DP-SGD (clip {args.clip}, noise {args.noise}), "
              f"{time.perf_counter() - start:.0f} s so far")
    print(f"test accuracy after DP-SGD: {accuracy(model, test_set):.2%}")


if __name__ == "__main__":
    main()
