"""``manual_seed(seed)`` seeds every source of randomness the library uses (initialisation,
dropout, shuffling, augmentation), so the same seed repeats a training run bit for bit."""
import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.data import DataLoader, TensorDataset, transforms
from tinygrad_cnn.random import get_rng

# The data is fixed by its own generator: only the library's randomness varies with the seed.
_data_rng = np.random.default_rng(1234)
IMAGES = _data_rng.standard_normal((40, 1, 8, 8)).astype(np.float32)
LABELS = _data_rng.integers(0, 3, 40)


def train(seed: int, steps_per_epoch_limit: int = 5, epochs: int = 2):
    """A short run that uses every source of randomness; returns (losses, final parameters)."""
    tg.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 4 * 4, 3),
    )
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    augment = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomCrop(8, padding=1)])
    loader = DataLoader(TensorDataset(IMAGES, LABELS), batch_size=8, shuffle=True, transform=augment)
    losses = []
    for _ in range(epochs):
        for step, (images, labels) in enumerate(loader):
            if step == steps_per_epoch_limit:
                break
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.data.copy())
    return np.array(losses), model.state_dict()


def test_same_seed_gives_bit_identical_losses_and_weights():
    losses_a, weights_a = train(seed=7)
    np.random.seed(99)  # NumPy's global generator is not the library's: it must not matter
    np.random.random(10)
    losses_b, weights_b = train(seed=7)
    assert losses_a.dtype == np.float32 and len(losses_a) == 10
    assert losses_a.tobytes() == losses_b.tobytes(), f"{losses_a} != {losses_b}"
    for name in weights_a:
        assert weights_a[name].tobytes() == weights_b[name].tobytes(), name


def test_different_seed_gives_a_different_run():
    losses_a, _ = train(seed=7)
    losses_b, _ = train(seed=8)
    assert not np.array_equal(losses_a, losses_b)


def test_manual_seed_returns_the_library_generator():
    rng = tg.manual_seed(3)
    assert rng is get_rng()
    assert isinstance(rng, np.random.Generator)


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda: nn.Conv2d(2, 3, 3).weight.data.copy(), id="conv-init"),
        pytest.param(lambda: nn.Linear(5, 4).weight.data.copy(), id="linear-init"),
        pytest.param(lambda: F.dropout(Tensor(np.ones((4, 5), np.float32)), 0.5).data, id="dropout"),
        pytest.param(lambda: nn.Dropout(0.5)(Tensor(np.ones((4, 5), np.float32))).data, id="Dropout-layer"),
        pytest.param(
            lambda: np.concatenate([b[1].data for b in DataLoader(TensorDataset(IMAGES, LABELS), 8, shuffle=True)]),
            id="shuffle",
        ),
        pytest.param(lambda: transforms.RandomCrop(8, padding=2)(IMAGES[:6]), id="random-crop"),
        pytest.param(lambda: transforms.RandomHorizontalFlip()(IMAGES[:6]), id="random-flip"),
    ],
)
def test_each_source_of_randomness_follows_manual_seed(draw):
    tg.manual_seed(11)
    first = draw()
    second = draw()  # the generator moves on: a second draw differs
    tg.manual_seed(11)
    again = draw()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)


def test_manual_seed_after_building_the_loader_still_applies():
    loader = DataLoader(TensorDataset(IMAGES, LABELS), batch_size=40, shuffle=True)
    tg.manual_seed(5)
    (_, first), = list(loader)
    tg.manual_seed(5)
    (_, second), = list(loader)
    np.testing.assert_array_equal(first.data, second.data)


def test_functional_run_with_rng_based_init_is_reproducible():
    """The same guarantee without nn or optim: init drawn from get_rng(), dropout, plain SGD."""

    def run(seed):
        tg.manual_seed(seed)
        rng = get_rng()
        w = Tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32) * 0.3, requires_grad=True)
        v = Tensor(rng.standard_normal((3, 27)).astype(np.float32) * 0.1, requires_grad=True)
        losses = []
        for step in range(5):
            x = Tensor(IMAGES[step * 8:(step + 1) * 8])
            h = F.dropout(F.max_pool2d(F.conv2d(x, w).relu(), 2).reshape(8, -1), 0.2)
            loss = F.cross_entropy(F.linear(h, v), LABELS[step * 8:(step + 1) * 8])
            loss.backward()
            with tg.no_grad():
                for p in (w, v):
                    p.sub_(p.grad * 0.1)
                    p.grad = None
            losses.append(loss.data.copy())
        return np.array(losses)

    assert run(0).tobytes() == run(0).tobytes()
    assert run(0).tobytes() != run(1).tobytes()
