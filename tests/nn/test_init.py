"""nn.init: gains and fans against torch's formulas, and the drawn distributions checked
statistically (bounds, mean, standard deviation) on tensors large enough that the tolerances are
many standard errors wide. Also: float32 stays float32, draws come from the library generator,
and the default initialisation of Linear and Conv2d is torch's."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.nn import init


def empty(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def assert_uniform(values: np.ndarray, bound: float) -> None:
    """Values from U(-bound, bound): inside the bounds, reaching close to them, with std bound/sqrt(3)."""
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.999 * bound
    n = values.size
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    # the sample std of a uniform has relative standard error sqrt(0.8 / (4 n)) ~ 0.45 / sqrt(n)
    assert abs(values.std() / (bound / math.sqrt(3)) - 1) < 5 * 0.45 / math.sqrt(n)


def assert_normal(values: np.ndarray, std: float) -> None:
    n = values.size
    assert abs(values.mean()) < 5 * std / math.sqrt(n)
    # the sample std of a normal has relative standard error 1 / sqrt(2 n)
    assert abs(values.std() / std - 1) < 5 / math.sqrt(2 * n)


def test_calculate_gain_assert_matches_torch_formulas():
    assert init.calculate_gain("linear") == init.calculate_gain("conv2d") == init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ValueError):
        init.calculate_gain("softmax")
    torch = pytest.importorskip("torch")
    for args in [("linear",), ("tanh",), ("relu",), ("leaky_relu",), ("leaky_relu", 0.2), ("selu",)]:
        assert init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args), rel=1e-12)


def test_fans():
    assert init.calculate_fan_in_and_fan_out(empty(16, 8, 3, 5)) == (8 * 15, 16 * 15)
    assert init.calculate_fan_in_and_fan_out(empty(4, 7)) == (7, 4)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_uniform_(empty(5))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_uniform(mode):
    w = empty(128, 64, 3, 3)
    fan = 64 * 9 if mode == "fan_in" else 128 * 9
    assert init.kaiming_uniform_(w, a=0.1, mode=mode, nonlinearity="leaky_relu") is w
    assert_uniform(w.data, math.sqrt(3) * math.sqrt(2 / (1 + 0.1**2)) / math.sqrt(fan))
    init.kaiming_uniform_(w, mode=mode, nonlinearity="relu")
    assert_uniform(w.data, math.sqrt(3) * math.sqrt(2) / math.sqrt(fan))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_normal(mode):
    w = empty(96, 300)
    init.kaiming_normal_(w, mode=mode, nonlinearity="relu")
    assert_normal(w.data, math.sqrt(2) / math.sqrt(300 if mode == "fan_in" else 96))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(w, mode="fan_avg")


def test_xavier():
    w = empty(200, 100, 2, 2)
    fan_in, fan_out = 400, 800
    init.xavier_uniform_(w, gain=2.0)
    assert_uniform(w.data, 2.0 * math.sqrt(6 / (fan_in + fan_out)))
    init.xavier_normal_(w, gain=init.calculate_gain("tanh"))
    assert_normal(w.data, 5 / 3 * math.sqrt(2 / (fan_in + fan_out)))


def test_uniform_normal_and_constants():
    w = empty(100_000)
    init.uniform_(w, -2.0, 4.0)
    assert w.data.min() >= -2 and w.data.max() < 4
    assert_uniform(w.data - 1, 3.0)
    init.normal_(w, mean=3.0, std=0.5)
    assert_normal(w.data - 3, 0.5)
    assert not init.zeros_(w).data.any()
    assert (init.ones_(w).data == 1).all()


@pytest.mark.parametrize("fn", [
    init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
    init.kaiming_normal_, init.zeros_, init.ones_,
])
def test_init_keeps_dtype_fills_in_place_and_bumps_the_version(fn):
    for dtype in (np.float32, np.float64):
        w = empty(4, 5, dtype=dtype)
        data, version = w.data, w._version
        fn(w)  # on a Parameter that requires grad: the functions work outside the graph
        assert w.dtype == dtype and w.data is data and w._version > version


def test_draws_come_from_the_library_generator():
    tg.manual_seed(11)
    first = init.kaiming_uniform_(empty(5, 5)).data.copy(), nn.Linear(3, 2).state_dict(), nn.Conv2d(1, 2, 3).state_dict()
    tg.manual_seed(11)
    again = init.kaiming_uniform_(empty(5, 5)).data.copy(), nn.Linear(3, 2).state_dict(), nn.Conv2d(1, 2, 3).state_dict()
    np.testing.assert_array_equal(first[0], again[0])
    for state, state_again in zip(first[1:], again[1:]):
        for name in state:
            np.testing.assert_array_equal(state[name], state_again[name])
    tg.manual_seed(12)
    assert not np.array_equal(init.kaiming_uniform_(empty(5, 5)).data, first[0])


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(500, 400), 500),
    (lambda: nn.Conv2d(16, 256, 5), 16 * 25),
    (lambda: nn.Conv2d(16, 256, 5, groups=4), 4 * 25),
])
def test_default_init_of_linear_and_conv_is_torchs(make, fan_in):
    """torch: kaiming_uniform_(a=sqrt(5)) for the weight, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    and the bias uniform in the same bounds."""
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    assert_uniform(layer.weight.data, bound)
    assert np.abs(layer.bias.data).max() <= bound and layer.bias.dtype == layer.weight.dtype == np.float32
    assert_uniform(np.concatenate([make().bias.data for _ in range(40)]), bound)


def test_default_init_statistics_match_torchs():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs, ours = torch.nn.Conv2d(8, 64, 3).weight.detach().numpy(), nn.Conv2d(8, 64, 3).weight.data
    assert abs(ours.std() / theirs.std() - 1) < 0.05
    assert abs(np.abs(ours).max() / np.abs(theirs).max() - 1) < 0.01


def test_batchnorm_init():
    layer = nn.BatchNorm2d(4)
    assert (layer.weight.data == 1).all() and not layer.bias.data.any()
    with tg.no_grad():
        layer.weight.mul_(3.0)
        layer.running_var.add_(2.0)
    layer.reset_parameters()
    assert (layer.weight.data == 1).all() and (layer.running_var.data == 1).all()
