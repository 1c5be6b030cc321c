"""Bad input gets a clear error: the exception type, and a message that names the op and the
offending shapes or values, instead of a NumPy traceback or a silently wrong result. (The errors of
one op, such as a shape mismatch in a binary op, matmul, conv2d or pooling, are tested next to that
op, in tests/ops/.)

Also the version counter: a tensor saved for backward and modified in place afterwards makes
backward refuse instead of returning a wrong gradient (as PyTorch does).
"""

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.autograd import GraphFreedError


def param(*shape, value=1.0):
    return Tensor(np.full(shape, value, dtype=np.float32), requires_grad=True)


def const(*shape, value=1.0):
    return Tensor(np.full(shape, value, dtype=np.float32))


# ---- in place, indexing and axes ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "op, other, pattern",
    [
        (lambda t, v: t.add_(v), np.ones(4), r"^add_: cannot write a value of shape \(4,\) into a tensor of shape \(2, 3\)"),
        (lambda t, v: t.mul_(v), np.ones((5, 2, 3)), r"^mul_: cannot write a value of shape \(5, 2, 3\)"),
        (lambda t, v: t.copy_(v), np.ones(4), r"^copy_: cannot write a value of shape \(4,\)"),
    ],
)
def test_inplace_shape_mismatch(op, other, pattern):
    t = const(2, 3)
    with pytest.raises(ValueError, match=pattern):
        op(t, other)
    assert t._version == 0, "a refused in-place op must not count as a modification"
    np.testing.assert_array_equal(t.data, 1.0)


def test_setitem_shape_mismatch():
    t = const(2, 3)
    with pytest.raises(ValueError, match=r"^__setitem__: a value of shape \(5,\) cannot be assigned to the \(3,\) "
                                         r"elements selected from a tensor of shape \(2, 3\)"):
        t[0] = np.ones(5)
    assert t._version == 0
    t[0] = np.zeros(3)  # a value that fits, or broadcasts, is written
    t[1] = 2.0
    np.testing.assert_array_equal(t.data, [[0, 0, 0], [2, 2, 2]])


AXIS_CALLS = {
    "sum": lambda t, a: t.sum(axis=a),
    "max": lambda t, a: t.max(axis=a),
    "min": lambda t, a: t.min(axis=a),
    "amax": lambda t, a: t.amax(dim=a),
    "amin": lambda t, a: t.amin(dim=a),
    "mean": lambda t, a: t.mean(axis=a),
    "var": lambda t, a: t.var(axis=a),
    "argmax": lambda t, a: t.argmax(axis=a),
    "argmin": lambda t, a: t.argmin(axis=a),
    "transpose": lambda t, a: t.transpose(0, a),
    "flatten": lambda t, a: t.flatten(0, a),
    "squeeze": lambda t, a: t.squeeze(a),
    "softmax": lambda t, a: F.softmax(t, axis=a),
    "log_softmax": lambda t, a: F.log_softmax(t, axis=a),
    "cat": lambda t, a: tg.cat([t, t], dim=a),
}


@pytest.mark.parametrize("name", sorted(AXIS_CALLS))
@pytest.mark.parametrize("axis", [2, -3, 7])
def test_axis_out_of_range_is_refused_not_wrapped(name, axis):
    # axis % ndim would quietly turn axis 2 of a 2-D tensor into axis 0
    with pytest.raises(tg.tensor_class.AxisError, match=rf"^{name}: axis {axis} is out of range for 2 dimensions \(valid: -2 to 1\)"):
        AXIS_CALLS[name](const(2, 3), axis)


def test_axis_errors_of_the_ops_that_add_or_reorder_axes():
    t = const(2, 3)
    with pytest.raises(tg.tensor_class.AxisError, match=r"^unsqueeze: axis 3 is out of range for 3 dimensions"):
        t.unsqueeze(3)
    with pytest.raises(tg.tensor_class.AxisError, match=r"^stack: axis -4 is out of range for 3 dimensions"):
        tg.stack([t, t], axis=-4)
    with pytest.raises(ValueError, match=r"^permute: \(0, 3\) is not a permutation of the 2 axes"):
        t.permute(0, 3)
    with pytest.raises(ValueError, match=r"^sum: axis \(1, -1\) names an axis twice"):
        t.sum(axis=(1, -1))
    with pytest.raises(tg.tensor_class.AxisError, match=r"^sum: axis 0 is out of range: a 0-d tensor has no axes"):
        Tensor(np.float32(1.0)).sum(axis=0)
    assert t.unsqueeze(-3).shape == (1, 2, 3) and tg.stack([t, t], axis=-1).shape == (2, 3, 2)


def test_concatenate_shape_mismatch():
    with pytest.raises(ValueError, match=r"^cat: shapes must match except along dimension 0, got \[\(2, 3\), \(2, 4\)\]"):
        tg.concatenate([const(2, 3), const(2, 4)], axis=0)
    with pytest.raises(ValueError, match=r"^cat: tensors need the same number of dimensions"):
        tg.concatenate([const(2, 3), const(3)])
    assert tg.concatenate([const(2, 3), const(2, 4)], axis=-1).shape == (2, 7)


def test_inplace_dtype_mismatch():
    t = Tensor(np.arange(3))
    with pytest.raises(TypeError, match=r"^mul_: .*dtype int64"):
        t.mul_(1.5)


# ---- backward -------------------------------------------------------------------------------------


def test_backward_on_non_scalar_without_gradient():
    y = param(2, 3) * 2
    with pytest.raises(RuntimeError, match=r"^grad can be implicitly created only for scalar outputs.*shape \(2, 3\)"):
        y.backward()


def test_backward_with_gradient_of_wrong_shape():
    y = param(3) * 2
    with pytest.raises(RuntimeError, match=r"gradient has shape \(4,\), but the output has shape \(3,\)"):
        y.backward(np.ones(4, np.float32))


def test_second_backward_through_freed_graph_names_retain_graph():
    a = param(2)
    y = (a * a).sum()
    y.backward()
    with pytest.raises(GraphFreedError, match=r"retain_graph=True"):
        y.backward()
    assert issubclass(GraphFreedError, RuntimeError)


def test_graph_freed_through_a_shared_intermediate():
    a = param(2)
    h = a * a
    h.sum().backward()
    with pytest.raises(GraphFreedError, match=r"retain_graph=True"):
        (h * 2).sum().backward()


def test_retain_graph_allows_a_second_backward():
    a = param(2, value=3.0)
    y = (a * a).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(a.grad.data, [12.0, 12.0])  # 2 * (2 * 3), accumulated


def test_backward_of_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match=r"does not require grad"):
        const(2).sum().backward()


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_requires_grad_on_integer_tensor(dtype):
    with pytest.raises(TypeError, match=rf"^only floating-point tensors can require gradients.*dtype {np.dtype(dtype)}"):
        Tensor(np.ones(3, dtype), requires_grad=True)
    t = Tensor(np.ones(3, dtype))
    with pytest.raises(TypeError, match=r"^only floating-point tensors can require gradients"):
        t.requires_grad_()
    assert not t.requires_grad


# ---- cross-entropy targets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, error, pattern",
    [
        (np.array([0, 3]), ValueError, r"^cross_entropy: target 3 is out of range for 3 classes \(valid: 0..2\)"),
        (np.array([-1, 0]), ValueError, r"^cross_entropy: target -1 is out of range for 3 classes"),
        (np.array([0.0, 1.0]), TypeError, r"^cross_entropy: targets must be integer class indices, got dtype float64"),
        (Tensor([0, 1]), TypeError, r"^cross_entropy: targets must be integer class indices, got dtype float32"),
        (np.array([True, False]), TypeError, r"^cross_entropy: targets must be integer class indices, got dtype bool"),
        (np.array([0, 1, 1]), ValueError, r"^cross_entropy: 2 rows of input but 3 targets"),
        (np.array([[0], [1]]), ValueError, r"^cross_entropy: targets must be 1-D \(N,\), got shape \(2, 1\)"),
    ],
)
def test_cross_entropy_bad_targets(target, error, pattern):
    with pytest.raises(error, match=pattern):
        F.cross_entropy(param(2, 3), target)


def test_nll_loss_names_itself():
    with pytest.raises(ValueError, match=r"^nll_loss: target 5 is out of range"):
        F.nll_loss(param(2, 3), np.array([0, 5]))


def test_cross_entropy_integer_targets_as_list_work():
    loss = F.cross_entropy(param(2, 3), [0, 2])
    np.testing.assert_allclose(loss.item(), np.log(3.0), rtol=1e-6)


# ---- non-numeric data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, error, pattern",
    [
        ("abc", TypeError, r"^Tensor data must be a number, a \(nested\) list of numbers or a NumPy array, not str"),
        (None, TypeError, r"not NoneType"),
        ({"a": 1}, TypeError, r"not dict"),
        ({1, 2}, TypeError, r"not set"),
        (b"ab", TypeError, r"not bytes"),
        (np.array([object()]), TypeError, r"^Tensor data must be numeric, got an array of dtype object"),
        (np.array([1, None]), TypeError, r"^Tensor data must be numeric, got an array of dtype object"),
        (np.array(["a", "b"]), TypeError, r"^Tensor data must be numeric, got an array of dtype <U1"),
        ([1.0, None], TypeError, r"^Tensor data must contain only real numbers, found NoneType"),
        ([[1.0, 2.0], [None, 3.0]], TypeError, r"found NoneType"),
        (["a", "b"], TypeError, r"^Tensor data must contain only real numbers, found str 'a'"),
        ([1.0, {"x": 1}], TypeError, r"found dict"),
        (1 + 2j, TypeError, r"found complex"),
        ([[1.0, 2.0], [3.0]], ValueError, r"^Tensor data must be a rectangular \(nested\) list of numbers"),
    ],
)
def test_non_numeric_data(data, error, pattern):
    with pytest.raises(error, match=pattern):
        Tensor(data)


def test_numeric_data_of_every_kind_is_accepted():
    assert Tensor([[1, 2], [3, 4]]).dtype == np.float32
    assert Tensor([float("nan"), 1.0]).shape == (2,)  # a NaN the user wrote is data, not an error
    assert Tensor(np.array([True, False])).dtype == np.bool_
    assert Tensor([np.float64(1.0), 2]).shape == (2,)
    assert Tensor([Tensor(1.0), Tensor(2.0)]).tolist() == [1.0, 2.0]
    assert Tensor(np.ones((2, 2), np.int64)).dtype == np.int64


# ---- saved tensors modified in place -----------------------------------------------------------------

MODIFICATIONS = {
    "add_": lambda t: t.add_(1.0),
    "mul_": lambda t: t.mul_(2.0),
    "setitem": lambda t: t.__setitem__(0, 5.0),
    "copy_": lambda t: t.copy_(np.zeros(t.shape, np.float32)),
}
MODIFIED_MESSAGE = r"saved an input of shape .* modified by an in-place operation"


def _mul_graph():
    a, b = param(2, 3, value=2.0), param(2, 3, value=3.0)
    return (a * b).sum(), a, "Mul"


def _matmul_graph():
    a, b = param(2, 3, value=2.0), param(3, 4, value=3.0)
    return (a @ b).sum(), b, "MatMul"


def _conv_graph():
    x, w = param(1, 2, 5, 5), param(3, 2, 3, 3)
    return F.conv2d(x, w).sum(), w, "Conv2d"


def _conv_constant_input_graph():
    x, w = const(1, 2, 5, 5), param(3, 2, 3, 3)
    return F.conv2d(x, w).sum(), x, "Conv2d"


GRAPHS = {"Mul": _mul_graph, "MatMul": _matmul_graph, "Conv2d": _conv_graph, "Conv2d-constant-input": _conv_constant_input_graph}


@pytest.mark.parametrize("modification", sorted(MODIFICATIONS))
@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_saved_input_modified_in_place_makes_backward_refuse(graph, modification):
    loss, saved, op_name = GRAPHS[graph]()
    with tg.no_grad():
        MODIFICATIONS[modification](saved)
    with pytest.raises(RuntimeError, match=rf"^{op_name} {MODIFIED_MESSAGE}"):
        loss.backward()


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_recomputing_after_the_modification_works(graph):
    loss, saved, _ = GRAPHS[graph]()
    with tg.no_grad():
        saved.mul_(2.0)
    loss, saved, _ = GRAPHS[graph]()
    loss.backward()  # a fresh graph records the new version


def test_op_that_does_not_save_the_modified_tensor_still_works():
    """Add's gradient does not depend on its inputs' values, so torch allows this and so do we."""
    a, b = param(2, 3, value=2.0), param(2, 3, value=3.0)
    loss = (a + b).sum()
    with tg.no_grad():
        a.mul_(10.0)
    loss.backward()
    np.testing.assert_array_equal(a.grad.data, 1.0)
    np.testing.assert_array_equal(b.grad.data, 1.0)


def test_modifying_one_input_of_mul_is_detected_whichever_needs_grad():
    a = param(2, value=2.0)
    c = const(2, value=3.0)  # a constant, but Mul saved it to compute a's gradient
    loss = (a * c).sum()
    c.add_(1.0)
    with pytest.raises(RuntimeError, match=rf"^Mul {MODIFIED_MESSAGE}"):
        loss.backward()


def test_saved_output_modified_in_place():
    a = param(3)
    e = a.exp()
    loss = e.sum()
    with tg.no_grad():
        e.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"^Exp saved its output for backward, and it has been modified"):
        loss.backward()


def test_saved_output_unmodified_gives_the_right_gradient():
    a = param(3, value=0.5)
    a.exp().sum().backward()
    np.testing.assert_allclose(a.grad.data, np.exp(0.5), rtol=1e-6)


def test_inplace_on_a_graph_tensor_in_grad_mode_is_refused():
    a = param(3)
    with pytest.raises(RuntimeError, match=r"^add_: in-place operation on a leaf tensor that requires grad"):
        a.add_(1.0)
    e = a.exp()
    with pytest.raises(RuntimeError, match=r"^mul_: in-place operation on a tensor that is part of the graph"):
        e.mul_(2.0)


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam"])
def test_optimizer_step_between_forward_and_backward_is_detected(optimizer_name):
    optim = pytest.importorskip("tinygrad_cnn.optim")
    w = param(3, 2, value=0.5)
    x = const(4, 3)
    loss = (x @ w).sum()
    loss.backward(retain_graph=True)
    optimizer = getattr(optim, optimizer_name)([w], lr=0.1)
    optimizer.step()
    with pytest.raises(RuntimeError, match=rf"^MatMul {MODIFIED_MESSAGE}"):
        loss.backward()


def test_optimizer_step_on_a_conv_layer_before_backward_is_detected():
    nn, optim = pytest.importorskip("tinygrad_cnn.nn"), pytest.importorskip("tinygrad_cnn.optim")
    tg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32))
    first = F.cross_entropy(model(x), [0, 1])
    first.backward()
    second = F.cross_entropy(model(x), [1, 0])  # built with the current weights ...
    optimizer.step()  # ... which then change: second's saved weights are stale
    with pytest.raises(RuntimeError, match=rf"^(Conv2d|MatMul) {MODIFIED_MESSAGE}"):
        second.backward()
    optimizer.zero_grad()
    F.cross_entropy(model(x), [1, 0]).backward()  # recomputing the forward pass is the fix


# ---- checkpoints (nn.Module.load_state_dict and serialization) ---------------------------------------


def _small_model():
    nn = pytest.importorskip("tinygrad_cnn.nn")
    tg.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))


def _assert_state_equal(model, state):
    now = model.state_dict()
    assert list(now) == list(state)
    for name in state:
        np.testing.assert_array_equal(now[name], state[name])


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    model = _small_model()
    before = model.state_dict()
    bad = {name: value + 1 for name, value in before.items()}
    del bad["0.bias"]
    bad["extra.weight"] = np.ones(2, np.float32)
    bad["2.weight"] = np.ones((3, 3), np.float32)
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(bad)
    message = str(error.value)
    assert message.startswith("error(s) in loading state_dict for Sequential")
    assert "missing keys: 0.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "2.weight: checkpoint has shape (3, 3), the model has (1, 2)" in message
    _assert_state_equal(model, before)  # 0.weight was loadable, but nothing is copied when anything is wrong


def test_load_state_dict_non_strict_still_refuses_wrong_shapes():
    model = _small_model()
    partial = {"0.weight": np.zeros((2, 3), np.float32), "unused": np.zeros(1)}
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["0.bias", "2.weight", "2.bias"] and result.unexpected_keys == ["unused"]
    np.testing.assert_array_equal(model.state_dict()["0.weight"], 0.0)
    with pytest.raises(RuntimeError, match=r"0.bias: checkpoint has shape \(5,\), the model has \(2,\)"):
        model.load_state_dict({"0.bias": np.zeros(5)}, strict=False)


@pytest.mark.parametrize("value", [np.array(["a", "b"]), np.array([None, None])], ids=["str", "object"])
def test_load_state_dict_refuses_non_numeric_values(value):
    model = _small_model()
    before = model.state_dict()
    state = dict(before, **{"2.bias": np.zeros(1, np.float32)})
    state["0.bias"] = value
    with pytest.raises(RuntimeError, match=r"non-numeric values: 0.bias"):
        model.load_state_dict(state)
    _assert_state_equal(model, before)  # in particular None did not become NaN


def test_checkpoint_round_trip_and_pickle_refused(tmp_path):
    serialization = pytest.importorskip("tinygrad_cnn.serialization")
    model = _small_model()
    serialization.save(model.state_dict(), tmp_path / "model.npz")
    other = _small_model()
    other.load_state_dict(serialization.load(tmp_path / "model.npz"))
    _assert_state_equal(other, model.state_dict())

    np.savez(tmp_path / "pickled.npz", a=np.array([{"x": 1}], dtype=object))  # np.savez pickles objects
    with pytest.raises(serialization.CheckpointError, match=r"contains pickled objects, which are refused"):
        serialization.load(tmp_path / "pickled.npz")
    import pickle

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model.state_dict()))
    with pytest.raises(serialization.CheckpointError, match=r"contains pickled objects"):
        serialization.load(tmp_path / "model.pkl")
    with pytest.raises(serialization.CheckpointError, match=r"Python objects \(dtype=object\).*pickle"):
        serialization.save({"a": np.array([None])}, tmp_path / "objects.npz")
    assert not (tmp_path / "objects.npz").exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    serialization = pytest.importorskip("tinygrad_cnn.serialization")
    path = tmp_path / "model.npz"
    serialization.save({"w": np.ones((50, 50))}, path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(serialization.CheckpointError, match=r"is damaged or truncated"):
            serialization.load(path)
