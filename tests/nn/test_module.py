"""Module and Parameter: registration, the tree walks (names and order as torch), train/eval,
zero_grad, repr, state_dict / load_state_dict, forward hooks."""
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn


class Net(nn.Module):
    """A small network with every kind of member: parameters (in submodules and its own), a
    buffer, a nested Sequential, and an attribute that is not registered."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 2 * 2, 3), nn.ReLU(), nn.Linear(3, 2))
        self.scale = nn.Parameter(np.array([2.0], dtype=np.float32))
        self.register_buffer("calls", Tensor(np.zeros((), dtype=np.int64)))
        self.not_registered = Tensor(np.ones(3, dtype=np.float32))

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu()) * self.scale


PARAMETER_NAMES = [
    "scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
    "head.1.weight", "head.1.bias", "head.3.weight", "head.3.bias",
]  # torch lists a module's own parameters first, then its children's, depth first


def test_named_parameters_have_torch_names_in_torch_order():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == PARAMETER_NAMES
    assert [p.shape for p in net.parameters()] == [
        (1,), (2, 1, 3, 3), (2,), (2,), (2,), (3, 8), (3,), (2, 3), (2,),
    ]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [name for name, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [name for name, _ in net.named_parameters(prefix="model")] == [f"model.{n}" for n in PARAMETER_NAMES]


def test_named_parameters_match_torch_for_the_same_architecture():
    torch = pytest.importorskip("torch")

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.bn = torch.nn.BatchNorm2d(2)
            self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
            self.scale = torch.nn.Parameter(torch.tensor([2.0]))
            self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    theirs = TorchNet()
    assert [n for n, _ in Net().named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in Net().named_modules()] == [n for n, _ in theirs.named_modules()]
    assert list(Net().state_dict()) == list(theirs.state_dict())


def test_children_modules_and_buffers():
    net = Net()
    assert [name for name, _ in net.named_children()] == ["conv", "bn", "head"]
    assert list(net.children()) == [net.conv, net.bn, net.head]
    assert [name for name, _ in net.named_modules()] == [
        "", "conv", "bn", "head", "head.0", "head.1", "head.2", "head.3",
    ]
    assert next(net.modules()) is net
    assert [name for name, _ in net.named_buffers()] == [
        "calls", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
    ]
    # a plain Tensor attribute is just an attribute
    assert all(b is not net.not_registered for b in net.buffers())
    assert all(p is not net.not_registered for p in net.parameters())


def test_shared_parameters_and_modules_are_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as torch: every path


def test_train_and_eval_propagate_to_every_module():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert [m.training for m in net.modules()] == [True, True, True, False, False, False, False, False]
    with pytest.raises(ValueError, match="bool"):
        net.train("no")


def test_zero_grad_sets_none_or_zeros():
    net = Net()
    out = net(Tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_attribute_registration():
    net = Net()
    net.extra = nn.Parameter(np.zeros(2, dtype=np.float32))
    assert "extra" in dict(net.named_parameters())
    net.conv.bias = None  # a parameter may be removed by assigning None, as in torch
    assert "conv.bias" not in dict(net.named_parameters())
    with pytest.raises(TypeError, match="parameter"):
        net.conv.weight = Tensor(np.zeros((2, 1, 3, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="buffer"):
        net.calls = np.zeros(())
    net.calls = Tensor(np.ones((), dtype=np.int64))  # a buffer can be replaced by a Tensor
    assert net.state_dict()["calls"] == 1
    del net.extra
    assert "extra" not in dict(net.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'extra'"):
        net.extra
    # re-registering a name as another kind moves it
    net.head = nn.Parameter(np.zeros(1, dtype=np.float32))
    assert "head" in dict(net.named_parameters()) and "head" not in dict(net.named_children())


def test_assigning_before_init_is_a_clear_error():
    class Forgot(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Forgot()


def test_register_buffer_persistence_and_errors():
    module = nn.Module()
    module.register_buffer("kept", Tensor(np.arange(3.0, dtype=np.float32)))
    module.register_buffer("scratch", Tensor(np.zeros(2, dtype=np.float32)), persistent=False)
    assert list(module.state_dict()) == ["kept"]
    assert [name for name, _ in module.named_buffers()] == ["kept", "scratch"]
    with pytest.raises(TypeError):
        module.register_buffer("bad", np.zeros(2))
    with pytest.raises(KeyError):
        module.register_buffer("a.b", Tensor(np.zeros(2)))
    module.plain = 3
    with pytest.raises(KeyError, match="already exists"):
        module.register_buffer("plain", Tensor(np.zeros(2)))


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.ones((2, 2), dtype=np.float32))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    assert not nn.Parameter(np.ones(2, dtype=np.float32), requires_grad=False).requires_grad
    out = p * 2
    assert type(out) is Tensor  # results of ops are plain tensors, not parameters
    assert repr(p).startswith("Parameter containing:\nTensor(")
    with pytest.raises(AttributeError):
        p.anything = 1  # __slots__: a Parameter is as light as a Tensor


def test_repr_is_nested_and_indented_like_torch():
    assert repr(Net()) == (
        "Net(\n"
        "  (conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (bn): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
        "  (head): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=8, out_features=3, bias=True)\n"
        "    (2): ReLU()\n"
        "    (3): Linear(in_features=3, out_features=2, bias=True)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Conv2d(3, 8, 5, stride=2, padding=1, dilation=2, groups=1, bias=False)) == (
        "Conv2d(3, 8, kernel_size=(5, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), bias=False)"
    )


def test_repr_assert_matches_torch_for_layers_with_the_same_printout():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.Conv2d(3, 8, 5, stride=2, padding=1, groups=1, bias=False), torch.nn.Conv2d(3, 8, 5, stride=2, padding=1, bias=False)),
        (nn.Linear(4, 2), torch.nn.Linear(4, 2)),
        (nn.BatchNorm1d(6), torch.nn.BatchNorm1d(6)),
        (nn.BatchNorm2d(3, affine=False), torch.nn.BatchNorm2d(3, affine=False)),
        (nn.BatchNorm2d(3, momentum=None, bias=False), torch.nn.BatchNorm2d(3, momentum=None, bias=False)),
        (nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh(), nn.Sigmoid())),
         torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Sigmoid()))),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Flatten(), torch.nn.Flatten()),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


# ---- state_dict -------------------------------------------------------------------------------------


def _input(seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal((2, 1, 4, 4)).astype(np.float32))


def test_state_dict_holds_numpy_copies_of_parameters_and_buffers():
    net = Net()
    state = net.state_dict()
    assert list(state) == [
        "scale", "calls", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
        "bn.num_batches_tracked", "head.1.weight", "head.1.bias", "head.3.weight", "head.3.bias",
    ]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["conv.weight"].dtype == np.float32 and state["bn.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(state["conv.weight"], net.conv.weight.data)
    net(_input())  # train-mode forward: moves the running statistics
    with tg.no_grad():
        net.conv.weight.add_(1.0)
    assert state["bn.num_batches_tracked"] == 0  # the snapshot did not move
    np.testing.assert_array_equal(state["bn.running_mean"], np.zeros(2, dtype=np.float32))
    np.testing.assert_array_equal(state["conv.weight"] + 1, net.conv.weight.data)


def test_state_dict_round_trip_reproduces_outputs():
    tg.manual_seed(1)
    source = Net()
    for seed in range(3):
        source(_input(seed))  # move the running statistics
    source.eval()
    tg.manual_seed(2)
    target = Net().eval()
    x = _input(5)
    assert not np.allclose(source(x).data, target(x).data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(source(x).data, target(x).data)
    assert int(target.bn.num_batches_tracked.item()) == 3


def test_load_state_dict_copies_in_place_and_keeps_dtypes():
    net = Net()
    weight = net.conv.weight
    version = weight._version
    state = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in Net().state_dict().items()}
    net.load_state_dict(state)
    assert net.conv.weight is weight and weight.dtype == np.float32 and weight._version > version
    np.testing.assert_array_equal(weight.data, state["conv.weight"].astype(np.float32))
    net.load_state_dict({k: Tensor(v) for k, v in state.items()})  # Tensors are accepted too


def test_load_state_dict_reports_every_problem_in_one_error_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    state = dict(Net().state_dict())
    del state["conv.bias"], state["bn.running_var"]
    state["conv.kernel"] = np.zeros(3, dtype=np.float32)
    state["head.1.weight"] = np.zeros((8, 3), dtype=np.float32)
    state["scale"] = np.zeros((1, 1), dtype=np.float32)
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    message = str(error.value)
    for expected in ("missing keys: conv.bias, bn.running_var", "unexpected keys: conv.kernel",
                     "head.1.weight: checkpoint has shape (8, 3), the model has (3, 8)",
                     "scale: checkpoint has shape (1, 1), the model has (1,)"):
        assert expected in message
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])  # nothing was loaded


def test_load_state_dict_non_strict_returns_the_keys_but_still_refuses_wrong_shapes():
    net = Net()
    state = Net().state_dict()
    del state["conv.bias"]
    state["extra"] = np.zeros(1)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(net.conv.weight.data, state["conv.weight"])
    state["conv.weight"] = np.zeros((1,))
    with pytest.raises(RuntimeError, match="shape mismatches: conv.weight"):
        net.load_state_dict(state, strict=False)


# ---- hooks ---------------------------------------------------------------------------------------------


def test_forward_hook_sees_inputs_and_output_and_can_replace_it():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    seen = []
    handle = model[1].register_forward_hook(lambda module, inputs, output: seen.append((module, inputs, output)))
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    out = model(x)
    (module, inputs, output), = seen
    assert module is model[1] and isinstance(inputs, tuple) and len(inputs) == 1
    np.testing.assert_array_equal(output.data, np.maximum(inputs[0].data, 0))
    handle.remove()
    model(x)
    assert len(seen) == 1  # removed: not called again

    with model[1].register_forward_hook(lambda module, inputs, output: output * 0):
        zeroed = model(x)
    np.testing.assert_allclose(zeroed.data, np.broadcast_to(model[2].bias.data, (5, 2)))
    np.testing.assert_array_equal(model(x).data, out.data)  # the context manager removed it


def test_forward_pre_hook_can_replace_the_inputs_and_hooks_run_in_order():
    layer = nn.Linear(2, 2)
    calls = []
    layer.register_forward_pre_hook(lambda module, inputs: calls.append("pre") or inputs[0] * 0)
    layer.register_forward_hook(lambda module, inputs, output: calls.append("post 1"))
    layer.register_forward_hook(lambda module, inputs, output: calls.append("post 2"))
    out = layer(Tensor(np.ones((1, 2), dtype=np.float32)))
    assert calls == ["pre", "post 1", "post 2"]
    np.testing.assert_array_equal(out.data, layer.bias.data[None])


def test_hook_output_stays_in_the_graph():
    layer = nn.Linear(2, 1)
    layer.register_forward_hook(lambda module, inputs, output: output * 3)
    layer(Tensor(np.ones((1, 2), dtype=np.float32))).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.data, np.full((1, 2), 3, dtype=np.float32))


def test_apply_visits_every_module():
    net = Net()
    visited = []
    assert net.apply(visited.append) is net
    assert visited[-1] is net and len(visited) == len(list(net.modules()))


def test_deepcopy_gives_an_independent_module():
    import copy

    net = Net().eval()
    clone = copy.deepcopy(net)
    x = _input()
    np.testing.assert_array_equal(clone(x).data, net(x).data)
    with tg.no_grad():
        clone.conv.weight.add_(1.0)
    assert not np.allclose(clone(x).data, net(x).data)
    assert [n for n, _ in clone.named_parameters()] == PARAMETER_NAMES
