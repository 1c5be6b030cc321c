"""The containers of ``nn.layers`` that hold modules: ModuleList and ModuleDict (names and
state_dict keys as torch's, loading torch's weights, gradients through looped modules, indexing,
slicing, edits that renumber, order, refusals, repr). Sequential: tests/nn/test_layers.py."""
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn


def _blocks_model(lib):
    """The same model built from ``lib``, which is either our ``nn`` or ``torch.nn``: a ModuleList
    that forward loops over, a ModuleDict of heads and a ModuleList holding a layer with buffers."""

    class Blocks(lib.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.Linear(2, 3)
            self.blocks = lib.ModuleList([lib.Linear(3, 4), lib.ReLU(), lib.Linear(4, 3)])
            self.heads = lib.ModuleDict({"cls": lib.Linear(3, 2), "reg": lib.Sequential(lib.Tanh(), lib.Linear(3, 1))})
            self.norms = lib.ModuleList([lib.BatchNorm1d(3)])

        def forward(self, x):
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            x = self.norms[0](x)
            return self.heads["cls"](x), self.heads["reg"](x)

    return Blocks()


BLOCKS_PARAMETERS = [
    ("stem.weight", (3, 2)), ("stem.bias", (3,)), ("blocks.0.weight", (4, 3)), ("blocks.0.bias", (4,)),
    ("blocks.2.weight", (3, 4)), ("blocks.2.bias", (3,)), ("heads.cls.weight", (2, 3)), ("heads.cls.bias", (2,)),
    ("heads.reg.1.weight", (1, 3)), ("heads.reg.1.bias", (1,)), ("norms.0.weight", (3,)), ("norms.0.bias", (3,)),
]


def _names_and_shapes(module):
    return [(name, tuple(param.shape)) for name, param in module.named_parameters()]


def test_container_parameters_are_named_by_position_and_key():
    model = _blocks_model(nn)
    assert _names_and_shapes(model) == BLOCKS_PARAMETERS
    assert [name for name, _ in model.named_children()] == ["stem", "blocks", "heads", "norms"]
    assert list(model.state_dict())[-5:] == [
        "norms.0.weight", "norms.0.bias", "norms.0.running_mean", "norms.0.running_var", "norms.0.num_batches_tracked",
    ]


def test_container_names_and_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _blocks_model(nn), _blocks_model(torch.nn)
    assert _names_and_shapes(ours) == _names_and_shapes(theirs)
    assert [name for name, _ in ours.named_modules()] == [name for name, _ in theirs.named_modules()]
    assert [name for name, _ in ours.named_buffers()] == [name for name, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_container_state_dict_round_trip_and_loading_torch_weights():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    tg.manual_seed(1)
    source = _blocks_model(nn)
    source(Tensor(x))  # train-mode forward: moves the BatchNorm statistics held in the ModuleList
    tg.manual_seed(2)
    target = _blocks_model(nn)
    source.eval(), target.eval()
    assert not np.allclose(source(Tensor(x))[0].data, target(Tensor(x))[0].data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for ours, expected in zip(target(Tensor(x)), source(Tensor(x))):
        np.testing.assert_array_equal(ours.data, expected.data)

    theirs = _blocks_model(torch.nn)
    theirs(torch.from_numpy(x))
    theirs.eval()
    target.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x))
    for ours, reference in zip(target(Tensor(x)), expected):
        np.testing.assert_allclose(ours.data, reference.numpy(), rtol=1e-5, atol=1e-6)


def test_gradients_reach_the_parameters_of_a_looped_module_list():
    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    model = Chain()
    model.load_state_dict({"layers.0.weight": np.array([[2.0]]), "layers.1.weight": np.array([[3.0]])})
    model(Tensor(np.array([[1.0], [2.0]], dtype=np.float32))).sum().backward()
    # out = w1 * w0 * x, so d/dw0 = w1 * sum(x) = 9 and d/dw1 = w0 * sum(x) = 6
    np.testing.assert_allclose(model.layers[0].weight.grad.data, [[9.0]])
    np.testing.assert_allclose(model.layers[1].weight.grad.data, [[6.0]])


def test_container_gradients_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((6, 2)).astype(np.float32)
    # eval mode: in train mode BatchNorm cancels blocks.2.bias, whose gradient is then only rounding noise
    ours, theirs = _blocks_model(nn).eval(), _blocks_model(torch.nn).eval()
    ours.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    cls, reg = ours(Tensor(x))
    (cls.sum() + reg.sum()).backward()
    cls, reg = theirs(torch.from_numpy(x))
    (cls.sum() + reg.sum()).backward()
    theirs_grads = {name: param.grad.numpy() for name, param in theirs.named_parameters()}
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad.data, theirs_grads[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_module_list_indexing_and_slicing():
    layers = [nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3)]
    modules = nn.ModuleList(layers)
    assert len(modules) == 3 and list(modules) == layers
    assert modules[0] is layers[0] and modules[-1] is layers[2] and modules[-3] is layers[0]
    for bad in (3, -4):
        with pytest.raises(IndexError, match=f"index {bad} is out of range for a ModuleList of 3 modules"):
            modules[bad]
    tail = modules[1:]
    assert isinstance(tail, nn.ModuleList) and list(tail) == layers[1:]
    assert [name for name, _ in tail.named_parameters()] == ["1.weight", "1.bias"]  # renumbered, as torch
    assert list(modules[::-1]) == layers[::-1]
    replacement = nn.Linear(2, 5)
    modules[-1] = replacement
    assert modules[2] is replacement and [name for name, _ in modules.named_children()] == ["0", "1", "2"]
    assert len(nn.ModuleList()) == 0 and list(nn.ModuleList()) == []


def _grown_and_cut(lib):
    """A ModuleList through append, extend, insert, += and del, with ``lib`` ours or torch.nn."""
    modules = lib.ModuleList([lib.Linear(1, 2), lib.Linear(2, 3)])
    modules.append(lib.Linear(3, 4))
    modules.extend([lib.Linear(4, 5), lib.ReLU()])
    modules.insert(1, lib.Linear(9, 9))
    modules += [lib.Linear(5, 6)]
    # [L(1,2), L(9,9), L(2,3), L(3,4), L(4,5), ReLU, L(5,6)]
    del modules[2]
    del modules[-2]
    return modules


def test_module_list_edits_renumber():
    modules = _grown_and_cut(nn)
    assert [(name, shape) for name, shape in _names_and_shapes(modules) if name.endswith("weight")] == [
        ("0.weight", (2, 1)), ("1.weight", (9, 9)), ("2.weight", (4, 3)), ("3.weight", (5, 4)), ("4.weight", (6, 5)),
    ]
    del modules[1:3]
    modules.insert(-1, nn.Tanh())  # before the last one, as list.insert
    modules.insert(100, nn.Sigmoid())  # past the end: appended, as list.insert
    assert [type(m).__name__ for m in modules] == ["Linear", "Linear", "Tanh", "Linear", "Sigmoid"]
    assert [name for name, _ in modules.named_children()] == ["0", "1", "2", "3", "4"]
    assert [name for name, _ in modules.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias",
    ]


def test_module_list_edits_give_torch_names():
    torch = pytest.importorskip("torch")

    def edited(lib):
        modules = _grown_and_cut(lib)
        modules[0] = lib.Linear(7, 7)
        modules.insert(0, lib.Tanh())
        del modules[1:3]
        modules.insert(2, lib.Linear(8, 8))
        return modules

    ours, theirs = edited(nn), edited(torch.nn)
    assert _names_and_shapes(ours) == _names_and_shapes(theirs)
    assert [name for name, _ in ours.named_children()] == [name for name, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_module_dict_operations_keep_insertion_order():
    relu, tanh, linear = nn.ReLU(), nn.Tanh(), nn.Linear(2, 2)
    heads = nn.ModuleDict({"b": relu, "a": tanh})
    assert list(heads) == ["b", "a"] and len(heads) == 2 and "a" in heads and "c" not in heads
    heads["c"] = linear
    assert list(heads.keys()) == ["b", "a", "c"] and list(heads.values()) == [relu, tanh, linear]
    assert list(heads.items()) == [("b", relu), ("a", tanh), ("c", linear)]
    assert heads["c"] is linear and [name for name, _ in heads.named_parameters()] == ["c.weight", "c.bias"]
    sigmoid = nn.Sigmoid()
    heads["b"] = sigmoid  # replacing keeps the position, as in a dict
    assert list(heads) == ["b", "a", "c"] and heads["b"] is sigmoid
    del heads["a"]
    assert list(heads) == ["b", "c"]
    with pytest.raises(KeyError):
        heads["a"]
    heads.update([("d", nn.ReLU()), ("b", relu)])
    heads.update(nn.ModuleDict({"e": nn.Tanh()}))
    assert list(heads) == ["b", "c", "d", "e"] and heads["b"] is relu
    assert heads.pop("c") is linear and list(heads) == ["b", "d", "e"]
    assert list(heads.state_dict()) == []
    heads.clear()
    assert len(heads) == 0 and list(heads.named_children()) == []


def test_module_dict_order_and_names_match_torch():
    torch = pytest.importorskip("torch")

    def edited(lib):
        heads = lib.ModuleDict({"b": lib.Linear(1, 2), "a": lib.Linear(2, 3)})
        heads["c"] = lib.Linear(3, 4)
        heads["b"] = lib.Linear(5, 5)
        heads.update({"d": lib.Linear(4, 1), "a": lib.Linear(6, 6)})
        heads.pop("c")
        del heads["d"]
        heads.update([("e", lib.ModuleList([lib.Linear(1, 1)]))])
        return heads

    ours, theirs = edited(nn), edited(torch.nn)
    assert list(ours) == list(theirs) == ["b", "a", "e"]
    assert _names_and_shapes(ours) == _names_and_shapes(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_containers_refuse_what_is_not_a_module():
    with pytest.raises(TypeError, match=r"^ModuleList: expected a Module, got int"):
        nn.ModuleList([nn.ReLU(), 3])
    modules = nn.ModuleList([nn.ReLU()])
    for edit in (lambda: modules.append("relu"), lambda: modules.insert(0, None),
                 lambda: modules.__setitem__(0, np.zeros(2)), lambda: modules.extend([nn.Tanh(), 1.0])):
        with pytest.raises(TypeError, match=r"^ModuleList: expected a Module, got "):
            edit()
    with pytest.raises(TypeError, match=r"^ModuleList: expected an iterable of Modules, got int"):
        modules.extend(5)
    assert len(modules) == 1  # the failed extend added nothing, not even its valid first item

    with pytest.raises(TypeError, match=r"^ModuleDict: expected a Module, got int"):
        nn.ModuleDict({"a": 3})
    heads = nn.ModuleDict()
    with pytest.raises(TypeError, match=r"^ModuleDict: keys must be strings, got int"):
        heads[1] = nn.ReLU()
    for key in ("a.b", "", "keys", "training"):  # dotted names would be ambiguous; the others are attributes
        with pytest.raises(KeyError, match="ModuleDict"):
            heads[key] = nn.ReLU()
    assert len(heads) == 0


def test_containers_have_no_forward():
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        nn.ModuleList([nn.ReLU()])(Tensor(np.ones(2, dtype=np.float32)))
    with pytest.raises(NotImplementedError, match="ModuleDict has no forward"):
        nn.ModuleDict({"act": nn.ReLU()})(Tensor(np.ones(2, dtype=np.float32)))


def test_container_repr_like_torch():
    modules = nn.ModuleList([nn.Linear(2, 3), nn.Linear(2, 3), nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Tanh())])
    assert repr(modules) == (
        "ModuleList(\n"
        "  (0-2): 3 x Linear(in_features=2, out_features=3, bias=True)\n"
        "  (3): ReLU()\n"
        "  (4): Sequential(\n"
        "    (0): Tanh()\n"
        "  )\n"
        ")"
    )
    assert repr(nn.ModuleList()) == "ModuleList()" and repr(nn.ModuleDict()) == "ModuleDict()"
    assert repr(nn.ModuleDict({"act": nn.ReLU(), "out": nn.Linear(1, 1)})) == (
        "ModuleDict(\n  (act): ReLU()\n  (out): Linear(in_features=1, out_features=1, bias=True)\n)"
    )


def test_container_repr_assert_matches_torch():
    torch = pytest.importorskip("torch")
    assert repr(_blocks_model(nn)) == repr(_blocks_model(torch.nn))

    def runs(lib):  # runs of equal multi-line modules are compressed too
        return lib.ModuleList([lib.Sequential(lib.ReLU(), lib.Tanh()), lib.Sequential(lib.ReLU(), lib.Tanh()),
                               lib.Tanh(), lib.Tanh(), lib.ReLU()])

    assert repr(runs(nn)) == repr(runs(torch.nn))


def test_replacing_a_submodule_or_parameter_keeps_its_place():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(2, 2)
            self.second = nn.Linear(2, 2)
            self.scale = nn.Parameter(np.ones(1, np.float32))
            self.shift = nn.Parameter(np.zeros(1, np.float32))

    net = Net()
    net.first = nn.Linear(2, 3)  # as in torch: same name, same position
    net.scale = nn.Parameter(np.full(1, 2.0, np.float32))
    assert [name for name, _ in net.named_children()] == ["first", "second"]
    assert list(net.state_dict()) == ["scale", "shift", "first.weight", "first.bias", "second.weight", "second.bias"]
    assert net.first.weight.shape == (3, 2) and net.scale.data[0] == 2.0
