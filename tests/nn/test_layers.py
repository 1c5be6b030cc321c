"""The layers: output values against NumPy formulas (and torch when it is installed), shapes,
float32 in -> float32 out, BatchNorm's statistics in train and eval mode, Dropout, Sequential,
gradient checks of each parameterised layer's forward in float64, and the activation, Embedding
and Dropout2d modules against torch's (printout, values, state_dict both ways). The other new
layers are tested with their functions: test_convolution.py, test_pooling.py, test_resampling.py,
test_normalization.py, test_loss.py."""
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn


def randn(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check_layer_gradients(layer, x: np.ndarray) -> None:
    """gradcheck of layer(x) with respect to x and the layer's own parameters.

    gradcheck calls the function with float64 *copies* of its inputs, so the function puts the
    copies in the layer's parameter slots before calling it."""
    names = [name for name, _ in layer.named_parameters(recurse=False)]

    def forward(x, *params):
        layer._parameters.update(zip(names, params))
        return layer(x)

    params = [layer._parameters[name] for name in names]
    assert tg.gradcheck(forward, (Tensor(x, requires_grad=True), *params))


# ---- Linear and Conv2d ------------------------------------------------------------------------------


def test_linear_computes_x_times_weight_transposed_plus_bias():
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    x = randn(5, 4)
    out = layer(Tensor(x))
    assert out.shape == (5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-6, atol=1e-6)
    no_bias = nn.Linear(4, 3, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    np.testing.assert_allclose(no_bias(Tensor(x)).data, x @ no_bias.weight.data.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, out_hw",
    [
        (dict(), (5, 6)),
        (dict(stride=2, padding=1), (4, 4)),
        (dict(padding=(2, 1), dilation=2), (7, 7)),
        (dict(groups=2, bias=False), (5, 6)),
        (dict(padding="same"), (7, 7)),
        (dict(padding="same", dilation=(1, 2)), (7, 7)),
        (dict(padding="valid"), (5, 6)),
    ],
)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_conv2d_shapes_and_values_against_torch(kwargs, out_hw):
    layer = nn.Conv2d(4, 6, (3, 2), **kwargs)
    assert layer.weight.shape == (6, 4 // kwargs.get("groups", 1), 3, 2)
    x = randn(2, 4, 7, 7)
    out = layer(Tensor(x))
    assert out.shape == (2, 6, *out_hw) and out.dtype == np.float32
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Conv2d(4, 6, (3, 2), **kwargs)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


def test_linear_and_conv2d_gradients():
    tg.manual_seed(0)
    check_layer_gradients(nn.Linear(3, 2, dtype=np.float64), randn(4, 3, dtype=np.float64))
    check_layer_gradients(nn.Conv2d(2, 2, 2, stride=1, padding=1, dtype=np.float64), randn(2, 2, 3, 3, dtype=np.float64))


def test_conv2d_keeps_a_string_padding_in_repr_and_forward(monkeypatch):
    layer = nn.Conv2d(2, 3, (2, 3), padding="same", bias=False)
    assert layer.padding == "same"
    assert repr(layer) == "Conv2d(2, 3, kernel_size=(2, 3), stride=(1, 1), padding=same, bias=False)"
    assert repr(nn.Conv2d(2, 3, 3, padding="valid")) == "Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=valid)"
    paddings = []
    conv2d = nn.functional.conv2d
    monkeypatch.setattr(nn.functional, "conv2d", lambda *args: paddings.append(args[4]) or conv2d(*args))
    assert layer(Tensor(randn(1, 2, 4, 5))).shape == (1, 3, 4, 5)
    assert paddings == ["same"]
    monkeypatch.undo()
    tg.manual_seed(0)
    check_layer_gradients(nn.Conv2d(2, 2, 2, padding="same", dtype=np.float64), randn(1, 2, 3, 3, dtype=np.float64))
    with pytest.raises(ValueError, match=r"^Conv2d: padding='same' is not supported for strided convolutions"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"^Conv2d: padding must be .*\('valid', 'same'\), got 'full'"):
        nn.Conv2d(2, 3, 3, padding="full")


# ---- pooling, flatten, activations ---------------------------------------------------------------------


def test_pooling_layers():
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    out = nn.MaxPool2d(2)(Tensor(x))  # stride defaults to the kernel size
    np.testing.assert_array_equal(out.data, x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    np.testing.assert_array_equal(nn.AvgPool2d(2)(Tensor(x)).data, x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(3, 5)))
    assert nn.MaxPool2d(3, stride=1, padding=1)(Tensor(x)).shape == (1, 2, 4, 4)
    padded = nn.AvgPool2d(2, stride=2, padding=1)(Tensor(np.ones((1, 1, 2, 2), dtype=np.float32)))
    np.testing.assert_array_equal(padded.data, np.full((1, 1, 2, 2), 0.25, dtype=np.float32))  # padding counts


def test_flatten():
    x = Tensor(randn(2, 3, 4, 5))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0)(x).shape == (120,)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    np.testing.assert_array_equal(nn.Flatten()(x).data, x.data.reshape(2, 60))


@pytest.mark.parametrize(
    "layer, formula",
    [
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
        (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh(), np.tanh),
    ],
)
def test_activations(layer, formula):
    x = randn(3, 4)
    out = layer(Tensor(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, formula(x.astype(np.float64)), rtol=1e-6, atol=1e-7)


# ---- Dropout --------------------------------------------------------------------------------------------


def test_dropout_in_training_zeros_a_fraction_p_and_rescales_the_rest():
    tg.manual_seed(0)
    layer = nn.Dropout(0.3)
    x = Tensor(np.ones(100_000, dtype=np.float32), requires_grad=True)
    out = layer(x)
    assert out.dtype == np.float32
    dropped = out.data == 0
    # the fraction of zeros is binomial: standard deviation sqrt(0.3 * 0.7 / n) ~ 0.0015
    assert abs(dropped.mean() - 0.3) < 0.0075
    np.testing.assert_allclose(out.data[~dropped], 1 / 0.7, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, out.data)  # the gradient is the same mask and scale


def test_dropout_draws_from_the_library_generator_and_is_identity_in_eval():
    layer = nn.Dropout()
    x = Tensor(randn(50))
    tg.manual_seed(3)
    first = layer(x).data
    tg.manual_seed(3)
    np.testing.assert_array_equal(layer(x).data, first)
    assert layer.eval()(x) is x
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


# ---- BatchNorm ------------------------------------------------------------------------------------------


def batch_norm_reference(x, weight, bias, eps, axes):
    """Normalisation with the batch's biased variance, in float64."""
    x = x.astype(np.float64)
    shape = [1] * x.ndim
    shape[1] = -1
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("layer_type, shape, axes", [
    (nn.BatchNorm2d, (4, 3, 5, 5), (0, 2, 3)),
    (nn.BatchNorm1d, (8, 3), (0,)),
    (nn.BatchNorm1d, (4, 3, 6), (0, 2)),
])
def test_batchnorm_training_and_running_statistics(layer_type, shape, axes):
    layer = layer_type(3, momentum=0.2)
    with tg.no_grad():
        layer.weight.copy_(np.array([1.0, 2.0, 0.5], dtype=np.float32))
        layer.bias.copy_(np.array([0.0, -1.0, 3.0], dtype=np.float32))
    running_mean, running_var = np.zeros(3), np.ones(3)
    count = int(np.prod([shape[a] for a in axes]))
    for step in range(3):
        x = randn(*shape, seed=step) * 2 + 1
        out = layer(Tensor(x))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, batch_norm_reference(x, layer.weight.data, layer.bias.data, 1e-5, axes),
                                   rtol=1e-5, atol=1e-5)
        # the running variance uses the unbiased estimate: divided by count - 1
        running_mean = 0.8 * running_mean + 0.2 * x.mean(axis=axes)
        running_var = 0.8 * running_var + 0.2 * x.astype(np.float64).var(axis=axes) * count / (count - 1)
    np.testing.assert_allclose(layer.running_mean.data, running_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var.data, running_var, rtol=1e-5)
    assert layer.running_mean.dtype == layer.running_var.dtype == np.float32
    assert int(layer.num_batches_tracked.item()) == 3

    layer.eval()
    x = randn(*shape, seed=10)
    channel = [1] * len(shape)
    channel[1] = 3
    expected = ((x - running_mean.reshape(channel)) / np.sqrt(running_var.reshape(channel) + 1e-5)
                * layer.weight.data.reshape(channel) + layer.bias.data.reshape(channel))
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)
    assert int(layer.num_batches_tracked.item()) == 3  # eval mode does not move the statistics


def test_batchnorm_momentum_none_is_a_cumulative_average():
    layer = nn.BatchNorm1d(2, momentum=None)
    batches = [randn(5, 2, seed=s) + s for s in range(4)]
    for x in batches:
        layer(Tensor(x))
    np.testing.assert_allclose(layer.running_mean.data, np.mean([x.mean(axis=0) for x in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.data, np.mean([x.var(axis=0, ddof=1) for x in batches], axis=0), rtol=1e-5)


def test_batchnorm_without_running_stats_or_affine():
    layer = nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    assert list(layer.state_dict()) == [] and list(layer.parameters()) == []
    x = randn(3, 2, 2, 2)
    # without running statistics even eval mode normalises with the batch's
    np.testing.assert_allclose(layer(Tensor(x)).data, batch_norm_reference(x, np.ones(2), np.zeros(2), 1e-5, (0, 2, 3)),
                               rtol=1e-5, atol=1e-5)


def test_batchnorm_input_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(Tensor(randn(1, 3)))
    nn.BatchNorm1d(3).eval()(Tensor(randn(1, 3)))  # fine in eval mode
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(Tensor(randn(2, 3)))
    with pytest.raises(ValueError, match="expected 3"):
        nn.BatchNorm2d(3)(Tensor(randn(2, 4, 2, 2)))


def test_batchnorm_gradients_in_train_and_eval_mode():
    layer = nn.BatchNorm2d(2, dtype=np.float64)
    with tg.no_grad():
        layer.weight.copy_(np.array([1.5, -0.5]))
        layer.bias.copy_(np.array([0.1, 0.2]))
    x = randn(3, 2, 2, 2, dtype=np.float64)
    check_layer_gradients(layer, x)
    check_layer_gradients(layer.eval(), x)
    check_layer_gradients(nn.BatchNorm1d(3, dtype=np.float64), randn(4, 3, dtype=np.float64))


def test_batchnorm_assert_matches_torch_in_train_and_eval_mode():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    with tg.no_grad():
        ours.weight.copy_(randn(3, seed=7))
        ours.bias.copy_(randn(3, seed=8))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    direction = randn(4, 3, 5, 5, seed=9)
    for step in range(3):
        x = randn(4, 3, 5, 5, seed=step) * 3 - 1
        x_ours, x_theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        (ours(x_ours) * direction).sum().backward()
        (theirs(x_theirs) * torch.from_numpy(direction)).sum().backward()
        np.testing.assert_allclose(x_ours.grad.data, x_theirs.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    x = randn(2, 3, 5, 5, seed=20)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


# ---- Sequential -------------------------------------------------------------------------------------------


def test_sequential_indexing_length_iteration_and_names():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    assert [name for name, _ in tail.named_children()] == ["1", "2"]  # slices keep the names, as torch
    with pytest.raises(IndexError):
        model[3]
    x = Tensor(randn(4, 2))
    np.testing.assert_array_equal(model(x).data, layers[2](layers[1](layers[0](x))).data)
    model.append(nn.Sigmoid())
    assert len(model) == 4 and [name for name, _ in model.named_children()][-1] == "3"
    named = nn.Sequential({"features": nn.Linear(2, 2), "act": nn.Tanh()})
    assert [name for name, _ in named.named_parameters()] == ["features.weight", "features.bias"]


def test_numpy_float64_hyperparameters_do_not_upcast_float32():
    x = Tensor(randn(4, 2, 3, 3))
    layer = nn.BatchNorm2d(2, eps=np.float64(1e-3), momentum=np.float64(0.2))
    out = layer(x)
    assert out.dtype == layer.running_mean.dtype == layer.running_var.dtype == np.float32
    assert nn.LeakyReLU(np.float64(0.1))(x).dtype == np.float32


# ---- the layers torch users reach for: printout, state_dict both ways, forward as torch ------------------------


SIMPLE_LAYERS = [
    ("Identity", (), (2, 3)),
    ("GELU", (), (2, 3)),
    ("GELU", ("tanh",), (2, 3)),
    ("SiLU", (), (2, 3)),
    ("ELU", (0.5,), (2, 3)),
    ("Softmax", (1,), (2, 3, 2)),
    ("LogSoftmax", (-1,), (2, 3, 2)),
]


@pytest.mark.parametrize("name, args, shape", SIMPLE_LAYERS)
def test_activation_modules_as_torch(name, args, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    x = randn(*shape, dtype=np.float64)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-15)
    assert ours(Tensor(x.astype(np.float32))).dtype == np.float32


def test_embedding_layer_state_dict_both_ways_and_padding_row():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Embedding(5, 3, padding_idx=-1, dtype=np.float64), torch.nn.Embedding(5, 3, padding_idx=-1, dtype=torch.float64)
    assert repr(ours) == repr(theirs)
    np.testing.assert_array_equal(ours.weight.data[4], 0)  # the padding row starts at zero
    indices = np.array([[0, 4, 2], [4, 4, 1]])
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    out, expected = ours(indices), theirs(torch.from_numpy(indices))
    np.testing.assert_array_equal(out.data, expected.detach().numpy())
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_array_equal(ours.weight.grad.data, theirs.weight.grad.numpy())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in nn.Embedding(5, 3).state_dict().items()})
    with pytest.raises(ValueError, match=r"^embedding: index 5 is out of range for 5 embeddings"):
        ours(np.array([5]))


def test_dropout2d_layer():
    layer = nn.Dropout2d(0.5)
    x = Tensor(randn(4, 6, 2, 2))
    tg.manual_seed(1)
    out = layer(x)
    rows, inputs = out.data.reshape(24, -1), x.data.reshape(24, -1)
    dropped = (rows == 0).all(axis=1)
    assert dropped.any() and not dropped.all()
    np.testing.assert_allclose(rows[~dropped], inputs[~dropped] * 2, rtol=1e-6)  # kept channels whole, scaled by 1/(1-p)
    assert layer.eval()(x) is x
    assert repr(layer) == "Dropout2d(p=0.5)"


def test_embedding_from_pretrained_copies_and_freezes():
    rows = randn(4, 2, dtype=np.float64)
    layer = nn.Embedding.from_pretrained(rows)
    assert not layer.weight.requires_grad and layer.weight.dtype == np.float64
    np.testing.assert_array_equal(layer(np.array([3, 0])).data, rows[[3, 0]])
    rows[0] = 7  # a copy: changing the source later changes nothing
    assert layer.weight.data[0, 0] != 7
    trainable = nn.Embedding.from_pretrained(Tensor(rows), freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad and trainable.padding_idx == 1
    np.testing.assert_array_equal(trainable.weight.data[1], rows[1])  # the padding row keeps its pretrained value


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv_padding_mode_gradients(padding_mode):
    tg.manual_seed(0)
    check_layer_gradients(nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode=padding_mode, dtype=np.float64),
                          randn(1, 2, 3, 3, dtype=np.float64))
    check_layer_gradients(nn.Conv1d(1, 2, 2, padding="same", padding_mode=padding_mode, dtype=np.float64),
                          randn(2, 1, 4, dtype=np.float64))


# ---- more activation, distance, reshaping, padding and 1-D pooling modules, as torch's ----------------------

MORE_LAYERS = [
    ("Softplus", (), {"beta": 2.0, "threshold": 5.0}, (2, 3)),
    ("Hardtanh", (-0.5, 0.5), {}, (2, 3)),
    ("ReLU6", (), {}, (2, 3)),
    ("LogSigmoid", (), {}, (2, 3)),
    ("Softmin", (1,), {}, (2, 3, 2)),
    ("Softsign", (), {}, (2, 3)),
    ("Tanhshrink", (), {}, (2, 3)),
    ("Threshold", (0.1, 20.0), {}, (2, 3)),
    ("SELU", (), {}, (2, 3)),
    ("CELU", (0.5,), {}, (2, 3)),
    ("GLU", (), {"dim": 1}, (2, 4)),
    ("Mish", (), {}, (2, 3)),
    ("Hardswish", (), {}, (2, 3)),
    ("PReLU", (), {}, (2, 3)),
    ("PReLU", (3,), {"init": 0.1}, (2, 3, 4)),
    ("Unflatten", (1, (2, 3)), {}, (2, 6)),
    ("ZeroPad2d", ((1, 0, 2, 1),), {}, (1, 2, 3, 3)),
    ("ZeroPad2d", (1,), {}, (1, 2, 3, 3)),
    ("MaxPool1d", (3, 2, 1), {}, (2, 3, 7)),
    ("MaxPool1d", (2,), {"ceil_mode": True}, (3, 5)),
    ("AvgPool1d", (3, 2, 1), {"count_include_pad": False}, (2, 3, 7)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 7)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", MORE_LAYERS)
def test_more_modules_as_torch(name, args, kwargs, shape):
    torch = pytest.importorskip("torch")
    from torch_comparison import assert_matches_torch

    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs).double()
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: Tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = Tensor(randn(*shape, dtype=np.float64) * 3, requires_grad=True)
    assert_matches_torch(ours, theirs, x)
    assert getattr(nn, name)(*args, **kwargs)(Tensor(x.data.astype(np.float32))).dtype == np.float32
    if list(ours.parameters()):
        check_layer_gradients(ours, x.data[:1])


@pytest.mark.parametrize("name", ["CosineSimilarity", "PairwiseDistance"])
def test_distance_modules_as_torch(name):
    torch = pytest.importorskip("torch")
    from torch_comparison import assert_matches_torch

    a, b = (Tensor(randn(3, 4, seed=s, dtype=np.float64), requires_grad=True) for s in (1, 2))
    assert_matches_torch(getattr(nn, name)(), getattr(torch.nn, name)(), a, b)


def test_hardsigmoid_module():
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32 even in float64 (its
    # gradient is 0.1666666716...), so the gradient is checked by gradcheck, the values by torch's
    torch = pytest.importorskip("torch")
    assert repr(nn.Hardsigmoid()) == repr(torch.nn.Hardsigmoid())
    x = randn(2, 5, dtype=np.float64) * 3
    np.testing.assert_allclose(nn.Hardsigmoid()(Tensor(x)).data, torch.nn.Hardsigmoid()(torch.tensor(x)).numpy(),
                               rtol=1e-12, atol=1e-15)


def test_more_modules_refuse_bad_arguments_in_one_line():
    with pytest.raises(ValueError, match=r"^Hardtanh: min_val \(1\) must not be greater than max_val \(0\)$"):
        nn.Hardtanh(1, 0)
    with pytest.raises(ValueError, match="^glu: the halved dimension must have an even size"):
        nn.GLU()(tg.ones(2, 3))
    with pytest.raises(ValueError, match="^prelu: weight has 2 slopes, the input has 3 channels"):
        nn.PReLU(2)(tg.ones(2, 3))
    with pytest.raises(ValueError, match=r"^max_pool1d: input must be 3-D \(N, C, L\) or 2-D \(C, L\)"):
        nn.MaxPool1d(2)(tg.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"^max_pool1d: max_pool2d: kernel of size \(1, 3\).* \(as a 2-D pool over one row"):
        nn.MaxPool1d(3)(tg.ones(1, 1, 2))
    with pytest.raises(TypeError, match="^Softplus: unexpected argument 'alpha'"):
        nn.Softplus(alpha=1)
