"""The model zoo: output shapes, parameter counts, and rebuilding a model from its config."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor, manual_seed, models, nn

GREY, COLOUR = (1, 28, 28), (3, 32, 32)


def _output_shape(model, input_shape, batch=2):
    model.eval()
    return model(Tensor(np.zeros((batch, *input_shape), dtype=np.float32))).shape


@pytest.mark.parametrize("name", ["seed", "lenet", "cifar", "mlp"])
@pytest.mark.parametrize("input_shape", [GREY, COLOUR, (1, 32, 32), (3, 28, 28)])
def test_every_model_adapts_to_the_input_shape(name, input_shape):
    model = models.MODELS[name](input_shape, num_classes=7)
    assert _output_shape(model, input_shape, batch=3) == (3, 7)


def test_seed_net_parameter_count_on_fashion_mnist():
    # conv 1->8 5x5: 8*25 + 8; conv 8->8 5x5: 8*8*25 + 8; 24x24 -> 20x20 -> pool -> 8*10*10 = 800 features;
    # dense 800->128: 800*128 + 128; dense 128->10: 128*10 + 10
    expected = (8 * 25 + 8) + (8 * 8 * 25 + 8) + (800 * 128 + 128) + (128 * 10 + 10)
    assert models.count_parameters(models.seed_net(GREY)) == expected == 105_634


def test_seed_net_layers_are_the_articles():
    layers = list(models.seed_net(GREY).children())
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 8, (5, 5)), (8, 8, (5, 5))]
    assert [type(m).__name__ for m in layers] == [
        "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]


def test_lenet_parameter_count():
    # conv 1->32 3x3, conv 32->64 3x3, two pools take 28 -> 7: dense 64*7*7 -> 128 -> 10
    expected = (32 * 9 + 32) + (64 * 32 * 9 + 64) + (64 * 7 * 7 * 128 + 128) + (128 * 10 + 10)
    assert models.count_parameters(models.lenet(GREY)) == expected == 421_642


def test_cifar_net_parameter_count():
    # three conv (no bias) + batch norm (weight, bias) stages 3->32->64->128, 32 -> 4 after pools
    convs = 3 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9
    norms = 2 * (32 + 64 + 128)
    dense = 128 * 4 * 4 * 10 + 10
    assert models.count_parameters(models.cifar_net(COLOUR)) == convs + norms + dense == 113_962


def test_batch_norm_variant_adds_a_norm_after_each_convolution():
    for builder in (models.seed_net, models.lenet):
        layers = list(builder(GREY, batch_norm=True).children())
        for index, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2d):
                assert layer.bias is None
                assert isinstance(layers[index + 1], nn.BatchNorm2d)
                assert layers[index + 1].num_features == layer.out_channels


def test_mlp_has_no_convolution():
    model = models.mlp(GREY, hidden=(64, 32))
    assert not any(isinstance(m, nn.Conv2d) for m in model.modules())
    assert models.count_parameters(model) == (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)


def test_build_model_from_config_reproduces_the_architecture():
    config = models.model_config("lenet", COLOUR, 5, batch_norm=True)
    manual_seed(1)
    first = models.build_model(config)
    manual_seed(1)
    second = models.build_model(config)
    assert repr(first) == repr(second)
    state_1, state_2 = first.state_dict(), second.state_dict()
    assert state_1.keys() == state_2.keys()
    assert all(np.array_equal(state_1[key], state_2[key]) for key in state_1)
    assert _output_shape(first, COLOUR) == (2, 5)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*seed"):
        models.model_config("resnet", GREY, 10)


@pytest.mark.parametrize("config, message", [
    ([], "must be a dict"),
    ({"name": "seed", "input_shape": [1, 28, 28]}, "no 'num_classes'"),
    ({"name": "resnet", "input_shape": [1, 28, 28], "num_classes": 10}, "unknown model 'resnet'"),
    ({"name": "seed", "input_shape": [1, 28], "num_classes": 10}, "input_shape"),
    ({"name": "seed", "input_shape": [1, 28, 28.5], "num_classes": 10}, "input_shape"),
    ({"name": "seed", "input_shape": [1, 28, 28], "num_classes": 0}, "num_classes"),
    ({"name": "seed", "input_shape": [1, 28, 28], "num_classes": 10, "batch_norm": "yes"}, "batch_norm"),
    ({"name": "seed", "input_shape": [1, 28, 28], "num_classes": 10, "depth": 50}, "unknown entries 'depth'"),
])
def test_build_model_names_what_is_wrong_with_a_config(config, message):
    with pytest.raises(ValueError, match=message):
        models.build_model(config)
