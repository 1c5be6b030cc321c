"""Optimizers, schedulers and gradient clipping.

Each update rule is checked over several steps against the formula written out here in NumPy,
and against torch.optim (same initial values, same gradients) when torch is installed. The
gradients are set by hand, so the tests isolate the update from the rest of the library.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.optim import lr_scheduler

STEPS = 6


# Values are drawn in float32 and then cast, so every dtype starts from exactly the same numbers.
def initial_values(dtype=np.float32):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32).astype(dtype) for shape in [(3, 4), (4,)]]


def gradient_sequence(dtype=np.float32):
    rng = np.random.default_rng(1)
    return [[rng.standard_normal(shape).astype(np.float32).astype(dtype) for shape in [(3, 4), (4,)]] for _ in range(STEPS)]


def run_ours(make_optimizer, dtype=np.float32):
    params = [nn.Parameter(v.copy()) for v in initial_values(dtype)]
    optimizer = make_optimizer(params)
    for grads in gradient_sequence(dtype):
        for p, g in zip(params, grads):
            p.grad = Tensor(g)
        optimizer.step()
    return [p.data for p in params], optimizer


def run_reference(update):
    """``update(p, g, state, t)`` written in NumPy float64, applied to every parameter."""
    params = [v.astype(np.float64) for v in initial_values()]
    states = [{} for _ in params]
    for t, grads in enumerate(gradient_sequence(), start=1):
        params = [update(p, g.astype(np.float64), state, t) for p, g, state in zip(params, grads, states)]
    return params


def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    def update(p, g, state, t):
        g = g + weight_decay * p
        if momentum:
            state["b"] = g if t == 1 else momentum * state["b"] + (1 - dampening) * g
            g = g + momentum * state["b"] if nesterov else state["b"]
        return p - lr * g
    return update


def adam_reference(lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False, amsgrad=False):
    def update(p, g, state, t):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        state["m"] = beta1 * state.get("m", 0) + (1 - beta1) * g
        state["v"] = beta2 * state.get("v", 0) + (1 - beta2) * g * g
        if amsgrad:
            state["v_max"] = np.maximum(state.get("v_max", 0), state["v"])
        m_hat = state["m"] / (1 - beta1**t)
        v_hat = state["v_max" if amsgrad else "v"] / (1 - beta2**t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return update


def adagrad_reference(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    def update(p, g, state, t):
        g = g + weight_decay * p
        state["sum"] = state.get("sum", initial_accumulator_value) + g * g
        return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(state["sum"]) + eps)
    return update


def rmsprop_reference(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    def update(p, g, state, t):
        g = g + weight_decay * p
        state["v"] = alpha * state.get("v", 0) + (1 - alpha) * g * g
        if centered:
            state["m"] = alpha * state.get("m", 0) + (1 - alpha) * g
            scale = np.sqrt(state["v"] - state["m"] ** 2) + eps
        else:
            scale = np.sqrt(state["v"]) + eps
        if momentum:
            state["b"] = momentum * state.get("b", 0) + g / scale
            return p - lr * state["b"]
        return p - lr * g / scale
    return update


def adadelta_reference(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    def update(p, g, state, t):
        g = g + weight_decay * p
        state["v"] = rho * state.get("v", 0) + (1 - rho) * g * g
        step = np.sqrt(state.get("u", 0) + eps) / np.sqrt(state["v"] + eps) * g
        state["u"] = rho * state.get("u", 0) + (1 - rho) * step * step
        return p - lr * step
    return update


CASES = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.1), sgd_reference(0.1), "SGD", dict(lr=0.1)),
    "sgd momentum": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), sgd_reference(0.05, 0.9), "SGD",
                     dict(lr=0.05, momentum=0.9)),
    "sgd dampening weight decay": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
                                   sgd_reference(0.05, 0.8, 0.3, 0.01), "SGD",
                                   dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd nesterov": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
                     sgd_reference(0.05, 0.9, weight_decay=0.1, nesterov=True), "SGD",
                     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    "adam": (lambda ps: optim.Adam(ps, lr=0.01), adam_reference(0.01, 0.9, 0.999, 1e-8), "Adam", dict(lr=0.01)),
    "adam weight decay": (lambda ps: optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                          adam_reference(0.02, 0.8, 0.99, 1e-6, 0.1), "Adam",
                          dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.01), adam_reference(0.01, 0.9, 0.999, 1e-8, 1e-2, decoupled=True),
              "AdamW", dict(lr=0.01)),
    "adamw weight decay": (lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.5),
                           adam_reference(0.05, 0.9, 0.999, 1e-8, 0.5, decoupled=True), "AdamW",
                           dict(lr=0.05, weight_decay=0.5)),
    "adam amsgrad": (lambda ps: optim.Adam(ps, lr=0.02, betas=(0.5, 0.9), amsgrad=True),
                     adam_reference(0.02, 0.5, 0.9, 1e-8, amsgrad=True), "Adam",
                     dict(lr=0.02, betas=(0.5, 0.9), amsgrad=True)),
    "adamw amsgrad": (lambda ps: optim.AdamW(ps, lr=0.02, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True),
                      adam_reference(0.02, 0.5, 0.9, 1e-8, 0.1, decoupled=True, amsgrad=True), "AdamW",
                      dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True)),
    "adagrad": (lambda ps: optim.Adagrad(ps, lr=0.1), adagrad_reference(0.1), "Adagrad", dict(lr=0.1)),
    "adagrad all options": (lambda ps: optim.Adagrad(ps, lr=0.2, lr_decay=0.1, weight_decay=0.05,
                                                     initial_accumulator_value=0.5, eps=1e-6),
                            adagrad_reference(0.2, 0.1, 0.05, 0.5, 1e-6), "Adagrad",
                            dict(lr=0.2, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.5, eps=1e-6)),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.01), rmsprop_reference(0.01), "RMSprop", dict(lr=0.01)),
    "rmsprop momentum centered": (lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.8,
                                                           centered=True),
                                  rmsprop_reference(0.01, 0.9, 1e-8, 0.1, 0.8, centered=True), "RMSprop",
                                  dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.8, centered=True)),
    "adadelta": (lambda ps: optim.Adadelta(ps), adadelta_reference(), "Adadelta", dict()),
    "adadelta weight decay": (lambda ps: optim.Adadelta(ps, lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1),
                              adadelta_reference(0.5, 0.8, 1e-4, 0.1), "Adadelta",
                              dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", CASES)
def test_updates_match_the_formulas(case):
    make, reference, _, _ = CASES[case]
    expected = run_reference(reference)
    # in float64 the implementation must agree with the formula to rounding
    ours64, _ = run_ours(make, np.float64)
    for ours, exp in zip(ours64, expected):
        np.testing.assert_allclose(ours, exp, rtol=1e-12, atol=1e-12)
    # in float32 the parameters and every piece of state stay float32
    ours32, optimizer = run_ours(make, np.float32)
    for ours, exp in zip(ours32, expected):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, exp, rtol=1e-5, atol=1e-6)
    for state in optimizer.state.values():
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("case", CASES)
def test_updates_match_torch(case):
    torch = pytest.importorskip("torch")
    make, _, torch_name, kwargs = CASES[case]
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in initial_values()]
    optimizer = getattr(torch.optim, torch_name)(params, **kwargs)
    for grads in gradient_sequence():
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        optimizer.step()
    ours, _ = run_ours(make)
    for mine, theirs in zip(ours, params):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", [name for name in CASES if name.startswith("adam")])
def test_adam_in_pieces_is_adam_whole(case, monkeypatch):
    """Adam runs its update over pieces of ``UPDATE_CHUNK_ELEMENTS`` numbers (``in_chunks``): with
    pieces of 5 numbers, the 12-number parameter goes as 5 + 5 + 2, and every number must come out
    exactly as in one piece, and as the formula says."""
    make, reference, _, _ = CASES[case]
    whole, _ = run_ours(make, np.float64)
    monkeypatch.setattr(optim.optimizer, "UPDATE_CHUNK_ELEMENTS", 5)
    pieces, _ = run_ours(make, np.float64)
    for mine, theirs, exp in zip(pieces, whole, run_reference(reference)):
        np.testing.assert_array_equal(mine, theirs)
        np.testing.assert_allclose(mine, exp, rtol=1e-12, atol=1e-12)


def test_in_chunks_pieces_and_whole(monkeypatch):
    monkeypatch.setattr(optim.optimizer, "UPDATE_CHUNK_ELEMENTS", 4)
    a, b = np.arange(10.0).reshape(2, 5), np.zeros((2, 5))
    pieces = list(optim.optimizer.in_chunks(a, b))
    assert [p[0].tolist() for p in pieces] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    for _, piece in pieces:
        piece += 1  # the pieces are views: writes reach the array
    assert (b == 1).all()
    # no flat view without a copy (a transposed array), or shapes that differ: the arrays, once, whole
    for others in [(a, np.zeros((5, 2)).T), (a, np.zeros((10,)))]:
        (only,) = list(optim.optimizer.in_chunks(*others))
        assert all(x is y for x, y in zip(only, others))


# Hyperparameters drawn for the step-by-step comparison with torch. Rates and decays stay away from
# values so small or so close to 1 that the running averages cancel to rounding noise (centered
# RMSprop takes the root of v - m*m, which is ill-conditioned when alpha is nearly 0 or 1).
def _rate(low=1e-3, high=1.0):
    return st.floats(low, high)


def _sgd_options():
    plain = st.fixed_dictionaries(dict(lr=_rate(), momentum=st.sampled_from([0.0, 0.5, 0.9]),
                                       dampening=st.floats(0, 0.9), weight_decay=st.floats(0, 0.5)))
    nesterov = st.fixed_dictionaries(dict(lr=_rate(), momentum=st.floats(0.1, 0.99), weight_decay=st.floats(0, 0.5),
                                          nesterov=st.just(True)))
    return plain | nesterov


def _adam_options():
    return st.fixed_dictionaries(dict(lr=_rate(), betas=st.tuples(st.floats(0, 0.99), st.floats(0.5, 0.999)),
                                      eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.floats(0, 0.5),
                                      amsgrad=st.booleans()))


TORCH_OPTIONS = {
    "SGD": _sgd_options(),
    "Adam": _adam_options(),
    "AdamW": _adam_options(),
    "Adagrad": st.fixed_dictionaries(dict(lr=_rate(), lr_decay=st.floats(0, 1), weight_decay=st.floats(0, 0.5),
                                          initial_accumulator_value=st.floats(0, 1), eps=st.sampled_from([1e-10, 1e-3]))),
    "RMSprop": st.fixed_dictionaries(dict(lr=_rate(), alpha=st.floats(0.1, 0.99), eps=st.sampled_from([1e-8, 1e-3]),
                                          weight_decay=st.floats(0, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]),
                                          centered=st.booleans())),
    "Adadelta": st.fixed_dictionaries(dict(lr=_rate(high=2.0), rho=st.floats(0, 0.99), eps=st.sampled_from([1e-6, 1e-3]),
                                           weight_decay=st.floats(0, 0.5))),
    "Adamax": st.fixed_dictionaries(dict(lr=_rate(), betas=st.tuples(st.floats(0, 0.99), st.floats(0.5, 0.999)),
                                         eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.floats(0, 0.5))),
    # RAdam steps without dividing by sqrt(v) while rho_t <= 5: within these 6 steps it reaches its
    # rectified phase only for beta2 above about 0.85 (both phases are drawn; the next test runs longer)
    "RAdam": st.fixed_dictionaries(dict(lr=_rate(), betas=st.tuples(st.floats(0, 0.99), st.floats(0.5, 0.999)),
                                        eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.floats(0, 0.5),
                                        decoupled_weight_decay=st.booleans())),
    "NAdam": st.fixed_dictionaries(dict(lr=_rate(), betas=st.tuples(st.floats(0, 0.99), st.floats(0.5, 0.999)),
                                        eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.floats(0, 0.5),
                                        momentum_decay=st.sampled_from([4e-3, 0.1, 0.0]),
                                        decoupled_weight_decay=st.booleans())),
}


@pytest.mark.parametrize("name", TORCH_OPTIONS)
@given(data=st.data())
def test_step_by_step_as_torch_in_float64_through_a_state_dict(name, data):
    """Same start, same gradients: after every step the parameters equal torch's. Half way, the
    optimizer is rebuilt from its state_dict (with wrong hyperparameters, which the state_dict
    overrides), and the run must go on as if uninterrupted."""
    torch = pytest.importorskip("torch")
    options = {**data.draw(TORCH_OPTIONS[name], label="options"), "maximize": data.draw(st.booleans(), label="maximize")}
    ours = [nn.Parameter(v) for v in initial_values(np.float64)]
    theirs = [torch.nn.Parameter(torch.from_numpy(v)) for v in initial_values(np.float64)]
    our_optimizer = getattr(optim, name)(ours, **options)
    # torch keeps NAdam's running product of the momentum coefficients in its default dtype
    # (float32) whatever the parameters' dtype; stepped under float64 it keeps it in float64, as ours
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        their_optimizer = getattr(torch.optim, name)(theirs, **options)
        for step, grads in enumerate(gradient_sequence(np.float64)):
            if step == STEPS // 2:
                saved = our_optimizer.state_dict()
                our_optimizer = getattr(optim, name)(ours, lr=123.0)
                our_optimizer.load_state_dict(saved)
            for mine, their, g in zip(ours, theirs, grads):
                mine.grad, their.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
            our_optimizer.step()
            their_optimizer.step()
            for mine, their in zip(ours, theirs):
                np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-10, atol=1e-12,
                                           err_msg=f"{name} step {step + 1}")
    finally:
        torch.set_default_dtype(default_dtype)
    assert our_optimizer.param_groups[0]["lr"] == their_optimizer.param_groups[0]["lr"]


def test_first_adam_step_moves_each_coordinate_by_lr():
    # with bias correction, step 1 is lr * g / (|g| + eps'): the sign of g times lr
    p = nn.Parameter(np.array([1.0, -2.0, 3.0], dtype=np.float32))
    p.grad = Tensor(np.array([0.5, -40.0, 1e-3], dtype=np.float32))
    optim.Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.9, -1.9, 2.9], rtol=1e-5)


def test_step_is_in_place_skips_params_without_grad_and_trains():
    tg.manual_seed(0)
    model = nn.Linear(3, 1)
    unused = nn.Parameter(np.ones(2, dtype=np.float32))
    optimizer = optim.SGD([*model.parameters(), unused], lr=0.1, momentum=0.9)
    weight, version = model.weight.data, model.weight._version
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], dtype=np.float32) + 0.3
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = tg.nn.functional.mse_loss(model(Tensor(x)).reshape(-1), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model.weight.data is weight and model.weight._version == version + 60
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(model.weight.data[0], [1.0, -2.0, 0.5], atol=0.02)
    assert unused not in optimizer.state and (unused.data == 1).all()


def test_step_between_forward_and_backward_is_detected():
    conv = nn.Conv2d(1, 2, 3)
    optimizer = optim.SGD(conv.parameters(), lr=0.1)
    loss = conv(Tensor(np.ones((1, 1, 4, 4), dtype=np.float32))).sum()
    for p in conv.parameters():
        p.grad = Tensor(np.ones_like(p.data))
    optimizer.step()  # changes the weight that Conv2d saved for its input gradient
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_step_between_forward_and_backward_is_detected_through_a_view():
    # Linear saves weight.T, a view: views share their base's version counter, as in torch
    layer = nn.Linear(3, 2)
    x = Tensor(np.ones((1, 3), dtype=np.float32), requires_grad=True)
    loss = layer(x).sum()
    with tg.no_grad():
        layer.weight.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_zero_grad():
    params = [nn.Parameter(np.ones(2, dtype=np.float32)) for _ in range(2)]
    optimizer = optim.Adam(params)
    for p in params:
        p.grad = Tensor(np.ones(2, dtype=np.float32))
    optimizer.zero_grad(set_to_none=False)
    assert all((p.grad.data == 0).all() for p in params)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_param_groups_have_their_own_hyperparameters():
    a, b = nn.Parameter(np.zeros(2, dtype=np.float32)), nn.Parameter(np.zeros(2, dtype=np.float32))
    optimizer = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.0)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    assert optimizer.param_groups[1]["momentum"] == 0.0  # defaults fill in what a group does not set
    a.grad = b.grad = Tensor(np.ones(2, dtype=np.float32))
    optimizer.step()
    np.testing.assert_allclose(a.data, -0.1, rtol=1e-6)
    np.testing.assert_allclose(b.data, -0.5, rtol=1e-6)


def test_invalid_arguments():
    p = nn.Parameter(np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.AdamW([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(p, lr=0.1)


def test_optimizer_state_dict_resumes_exactly():
    full, _ = run_ours(lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1))
    params = [nn.Parameter(v.copy()) for v in initial_values()]
    first = optim.Adam(params, lr=0.01, weight_decay=0.1)
    grads = gradient_sequence()
    for step_grads in grads[:3]:
        for p, g in zip(params, step_grads):
            p.grad = Tensor(g)
        first.step()
    saved = first.state_dict()
    assert saved["param_groups"][0]["params"] == [0, 1] and saved["state"][0]["step"] == 3
    second = optim.Adam(params, lr=0.5)  # wrong lr, no state: both come from the state_dict
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == 0.01
    for step_grads in grads[3:]:
        for p, g in zip(params, step_grads):
            p.grad = Tensor(g)
        second.step()
    for resumed, uninterrupted in zip(params, full):
        np.testing.assert_array_equal(resumed.data, uninterrupted)


# ---- schedulers --------------------------------------------------------------------------------------


def _optimizer(lrs=(0.1,)):
    return optim.SGD([{"params": [nn.Parameter(np.zeros(1, dtype=np.float32))], "lr": lr} for lr in lrs], lr=lrs[0])


def test_step_lr_closed_form():
    optimizer = _optimizer((0.1, 1.0))
    scheduler = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    seen = []
    for _ in range(10):
        seen.append(scheduler.get_last_lr())
        optimizer.step()
        scheduler.step()
    expected = [[base * 0.5 ** (epoch // 3) for base in (0.1, 1.0)] for epoch in range(10)]
    np.testing.assert_allclose(seen, expected, rtol=1e-15)
    assert [g["lr"] for g in optimizer.param_groups] == scheduler.get_last_lr()


def test_cosine_annealing_closed_form():
    optimizer = _optimizer((0.1,))
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=8, eta_min=0.01)
    seen = [scheduler.get_last_lr()[0]]
    for _ in range(8):
        scheduler.step()
        seen.append(scheduler.get_last_lr()[0])
    expected = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(9)]
    np.testing.assert_allclose(seen, expected, rtol=1e-14)
    assert seen[0] == pytest.approx(0.1) and seen[-1] == pytest.approx(0.01) and seen[4] == pytest.approx(0.055)


@pytest.mark.parametrize("make", [
    lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.3),
    lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.001),
    lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
])
def test_schedulers_match_torch(make):
    torch = pytest.importorskip("torch")
    theirs_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    ours_opt = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.2)
    theirs, ours = make(torch, theirs_opt), make(tg, ours_opt)
    for _ in range(12):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-9, abs=1e-15)
        theirs_opt.step(), ours_opt.step()
        theirs.step(), ours.step()


SCHEDULES = {
    "multistep": lambda lib, opt: lib.optim.lr_scheduler.MultiStepLR(opt, milestones=[5, 2, 5, 9], gamma=0.5),
    "exponential": lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8),
    "lambda": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (1 + epoch) ** 0.5),
    "lambda per group": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(
        opt, [lambda epoch: 0.9**epoch, lambda epoch: 1 + epoch % 3]),
    "onecycle cos": lambda lib, opt: lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.5, 1.0], total_steps=12),
    "onecycle linear three phase": lambda lib, opt: lib.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.4, epochs=3, steps_per_epoch=4, pct_start=0.25, anneal_strategy="linear", three_phase=True,
        div_factor=10.0, final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9),
    "onecycle no momentum": lambda lib, opt: lib.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.3, total_steps=12, pct_start=0.5, cycle_momentum=False),
}


def _two_group_optimizer(lib, kind):
    """An SGD (momentum) or Adam (betas) optimizer of ``lib`` with two parameter groups."""
    def parameter():
        return lib.nn.Parameter(lib.zeros(2) if lib is not tg else np.zeros(2))
    groups = [{"params": [parameter()]}, {"params": [parameter()], "lr": 0.05}]
    return lib.optim.SGD(groups, lr=0.2, momentum=0.9) if kind == "SGD" else lib.optim.Adam(groups, lr=0.2)


def _momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_new_schedules_match_torch_through_a_state_dict(schedule, kind):
    """Learning rates and (for OneCycleLR) momenta equal torch's at every step; half way, the
    optimizer and schedule are rebuilt and loaded from their state_dicts, as when resuming."""
    _compare_with_torch_through_a_state_dict(SCHEDULES[schedule], kind, steps=12)


def _compare_with_torch_through_a_state_dict(make, kind, steps):
    torch = pytest.importorskip("torch")
    their_optimizer, our_optimizer = _two_group_optimizer(torch, kind), _two_group_optimizer(tg, kind)
    theirs, ours = make(torch, their_optimizer), make(tg, our_optimizer)
    for step in range(steps):
        if step == steps // 2:
            saved_optimizer, saved_schedule = our_optimizer.state_dict(), ours.state_dict()
            our_optimizer = _two_group_optimizer(tg, kind)
            ours = make(tg, our_optimizer)
            our_optimizer.load_state_dict(saved_optimizer)
            ours.load_state_dict(saved_schedule)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15), f"step {step}"
        assert [g["lr"] for g in our_optimizer.param_groups] == ours.get_last_lr()
        assert _momenta(our_optimizer) == pytest.approx(_momenta(their_optimizer), rel=1e-12)
        their_optimizer.step(), our_optimizer.step()
        theirs.step(), ours.step()


@given(total_steps=st.integers(4, 30), pct_start=st.floats(0.05, 0.95), anneal=st.sampled_from(["cos", "linear"]),
       three_phase=st.booleans(), div_factor=st.floats(1.0, 100.0), final_div_factor=st.floats(1.0, 1e4))
def test_onecycle_matches_torch_over_the_whole_cycle(total_steps, pct_start, anneal, three_phase, div_factor,
                                                     final_div_factor):
    torch = pytest.importorskip("torch")
    rise = pct_start * total_steps
    # Each phase must span at least one step; otherwise both libraries divide 0 by 0 (torch raises
    # ZeroDivisionError too). Three phases need the first two to end before the last step.
    if rise < 2 or (three_phase and 2 * rise - 2 >= total_steps - 1) or (not three_phase and rise - 1 >= total_steps - 1):
        return
    options = dict(max_lr=0.7, total_steps=total_steps, pct_start=pct_start, anneal_strategy=anneal,
                   three_phase=three_phase, div_factor=div_factor, final_div_factor=final_div_factor)
    their_optimizer, our_optimizer = _two_group_optimizer(torch, "SGD"), _two_group_optimizer(tg, "SGD")
    theirs = torch.optim.lr_scheduler.OneCycleLR(their_optimizer, **options)
    ours = lr_scheduler.OneCycleLR(our_optimizer, **options)
    for _ in range(total_steps):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)
        assert _momenta(our_optimizer) == pytest.approx(_momenta(their_optimizer), rel=1e-12)
        their_optimizer.step(), our_optimizer.step()
        theirs.step(), ours.step()
    with pytest.raises(ValueError, match="total_steps"):
        ours.step()  # one past the end: step total_steps + 1


def test_onecycle_refuses_what_torch_refuses():
    optimizer = _optimizer()
    with pytest.raises(ValueError, match="total_steps or both epochs"):
        lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, epochs=2)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=10, anneal_strategy="cosine")
    with pytest.raises(ValueError, match="no momentum"):
        lr_scheduler.OneCycleLR(optim.Adagrad([nn.Parameter(np.zeros(1))]), max_lr=1.0, total_steps=10)


class Halving:
    """A callable object: LambdaLR saves its attributes (a plain function cannot be saved)."""
    def __init__(self):
        self.factor = 0.5

    def __call__(self, epoch):
        return self.factor**epoch


def test_lambda_lr_state_dict_keeps_callable_objects_attributes():
    schedule = lr_scheduler.LambdaLR(_optimizer((0.1, 0.2)), [Halving(), lambda epoch: 1.0])
    schedule.lr_lambdas[0].factor = 0.25
    saved = schedule.state_dict()
    assert saved["lr_lambdas"] == [{"factor": 0.25}, None]
    fresh = lr_scheduler.LambdaLR(_optimizer((0.1, 0.2)), [Halving(), lambda epoch: 1.0])
    fresh.load_state_dict(saved)
    assert fresh.lr_lambdas[0].factor == 0.25 and callable(fresh.lr_lambdas[1])


PLATEAU_OPTIONS = st.fixed_dictionaries(dict(
    mode=st.sampled_from(["min", "max"]), factor=st.sampled_from([0.1, 0.5, 0.9]), patience=st.integers(0, 3),
    threshold=st.sampled_from([0.0, 1e-4, 0.1, 1.0]), threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 2), min_lr=st.sampled_from([0.0, 0.01, [0.02, 0.001]]), eps=st.sampled_from([1e-8, 0.01])))


@given(options=PLATEAU_OPTIONS, metrics=st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=25))
def test_reduce_lr_on_plateau_matches_torch(options, metrics):
    # Small integers: plateaus, ties with the best value and near-threshold changes come up often.
    torch = pytest.importorskip("torch")
    their_optimizer, our_optimizer = _two_group_optimizer(torch, "SGD"), _two_group_optimizer(tg, "SGD")
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(their_optimizer, **options)
    ours = lr_scheduler.ReduceLROnPlateau(our_optimizer, **options)
    for step, metric in enumerate(metrics):
        if step == len(metrics) // 2:
            saved = ours.state_dict()
            ours = lr_scheduler.ReduceLROnPlateau(our_optimizer, factor=0.5)
            ours.load_state_dict(saved)
        theirs.step(metric)
        ours.step(tg.Tensor(np.array(metric)) if step % 2 else metric)   # a scalar Tensor or a float
        assert ours.get_last_lr() == theirs.get_last_lr() == [g["lr"] for g in our_optimizer.param_groups]
        assert (ours.num_bad_epochs, ours.cooldown_counter, ours.best) == (
            theirs.num_bad_epochs, theirs.cooldown_counter, theirs.best)


def test_reduce_lr_on_plateau_reduces_after_patience_then_cools_down():
    optimizer = _optimizer((1.0,))
    schedule = lr_scheduler.ReduceLROnPlateau(optimizer, patience=2, factor=0.5, cooldown=1, min_lr=0.2)
    lrs = []
    for loss in [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]:
        schedule.step(loss)
        lrs.append(schedule.get_last_lr()[0])
    # bad epochs 1, 2, 3 > patience: halve; one cooldown epoch; 3 more bad epochs: halve; ... floor 0.2
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(optimizer, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.ReduceLROnPlateau(optimizer, mode="lowest")


# ---- clip_grad_norm_ --------------------------------------------------------------------------------------


def _params_with_grads(*grads):
    params = []
    for g in grads:
        p = nn.Parameter(np.zeros_like(g))
        p.grad = Tensor(g.copy())
        params.append(p)
    return params


def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before():
    g1, g2 = np.array([3.0, 0.0], dtype=np.float32), np.array([[0.0, 4.0], [0.0, 12.0]], dtype=np.float32)
    params = _params_with_grads(g1, g2)
    total = nn.utils.clip_grad_norm_(params, max_norm=6.5)
    assert isinstance(total, Tensor) and total.item() == pytest.approx(13.0)  # sqrt(9 + 16 + 144)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad.data, g1 * scale, rtol=1e-6)
    np.testing.assert_allclose(params[1].grad.data, g2 * scale, rtol=1e-6)
    assert params[0].grad.dtype == np.float32
    unchanged = _params_with_grads(g1, g2)
    assert nn.utils.clip_grad_norm_(unchanged, max_norm=100).item() == pytest.approx(13.0)
    np.testing.assert_array_equal(unchanged[1].grad.data, g2)


def test_clip_grad_norm_other_norms_and_params_without_grad():
    g1, g2 = np.array([3.0, -7.0], dtype=np.float32), np.array([1.0, 2.0], dtype=np.float32)
    params = _params_with_grads(g1, g2) + [nn.Parameter(np.zeros(3, dtype=np.float32))]
    assert nn.utils.clip_grad_norm_(params, 100, norm_type=float("inf")).item() == pytest.approx(7.0)
    assert nn.utils.clip_grad_norm_(params, 100, norm_type=1).item() == pytest.approx(13.0)
    assert nn.utils.clip_grad_norm_(params[0], 1.0, norm_type="inf").item() == pytest.approx(7.0)  # one tensor
    np.testing.assert_allclose(np.abs(params[0].grad.data).max(), 1.0, rtol=1e-5)
    assert nn.utils.clip_grad_norm_([params[2]], 1.0).item() == 0.0
    params[1].grad.data[0] = np.nan
    with pytest.raises(RuntimeError, match="nan"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    grads = [np.random.default_rng(i).standard_normal(s).astype(np.float32) for i, s in enumerate([(5, 3), (3,), (2, 2, 2)])]
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        ours = _params_with_grads(*grads)
        theirs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
        for p, g in zip(theirs, grads):
            p.grad = torch.from_numpy(g.copy())
        total_ours = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
        total_theirs = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
        assert total_ours.item() == pytest.approx(total_theirs.item(), rel=1e-6)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-6, atol=1e-7)


# ---- clip_grad_value_, parameters_to_vector, vector_to_parameters -------------------------------------


def test_clip_grad_value_clamps_each_coordinate_as_torch():
    grads = [np.array([[-3.0, 0.2], [0.7, 5.0]]), np.array([-0.1, -0.9, 2.0])]
    params = _params_with_grads(*grads) + [nn.Parameter(np.zeros(2))]   # the last one has no gradient
    version = params[0].grad._version
    assert nn.utils.clip_grad_value_(params, 0.5) is None
    np.testing.assert_array_equal(params[0].grad.data, [[-0.5, 0.2], [0.5, 0.5]])
    np.testing.assert_array_equal(params[1].grad.data, [-0.1, -0.5, 0.5])
    assert params[0].grad._version == version + 1 and params[2].grad is None
    torch = pytest.importorskip("torch")
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, g in zip(theirs, grads):
        p.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for ours, their in zip(params, theirs):
        np.testing.assert_array_equal(ours.grad.data, their.grad.numpy())


def test_parameters_to_vector_and_back():
    a, b = nn.Parameter(np.arange(6.0).reshape(2, 3)), nn.Parameter(np.array([10.0, 11.0]))
    vector = nn.utils.parameters_to_vector([a, b])
    np.testing.assert_array_equal(vector.data, [0, 1, 2, 3, 4, 5, 10, 11])
    (vector * Tensor(np.arange(8.0))).sum().backward()   # part of the graph, as in torch
    np.testing.assert_array_equal(a.grad.data, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(b.grad.data, [6.0, 7.0])
    new = Tensor(np.arange(8.0) * -1)
    nn.utils.vector_to_parameters(new, [a, b])
    np.testing.assert_array_equal(a.data, -np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(b.data, [-6.0, -7.0])
    with pytest.raises(TypeError, match="Tensor"):
        nn.utils.vector_to_parameters(np.zeros(8), [a, b])
    with pytest.raises(ValueError, match="8 values"):
        nn.utils.vector_to_parameters(Tensor(np.zeros(7)), [a, b])
    torch = pytest.importorskip("torch")
    theirs = [torch.nn.Parameter(torch.from_numpy(a.data.copy())), torch.nn.Parameter(torch.from_numpy(b.data.copy()))]
    np.testing.assert_array_equal(torch.nn.utils.parameters_to_vector(theirs).detach().numpy(),
                                  nn.utils.parameters_to_vector([a, b]).data)


def _sequence(lib, opt):
    schedules = lib.optim.lr_scheduler
    return schedules.SequentialLR(opt, [schedules.LinearLR(opt, start_factor=0.1, total_iters=5),
                                        schedules.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)], milestones=[5])


def _sequence_of_three(lib, opt):
    schedules = lib.optim.lr_scheduler
    return schedules.SequentialLR(opt, [schedules.ConstantLR(opt, factor=0.1, total_iters=3),
                                        schedules.ExponentialLR(opt, gamma=0.9),
                                        schedules.StepLR(opt, step_size=2, gamma=0.5)], milestones=[4, 9])


MORE_SCHEDULES = {
    "linear warm-up": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(opt),
    "linear decay": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.2,
                                                                      total_iters=8),
    "constant": lambda lib, opt: lib.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=4),
    "polynomial": lambda lib, opt: lib.optim.lr_scheduler.PolynomialLR(opt, total_iters=12, power=2.0),
    "polynomial linear": lambda lib, opt: lib.optim.lr_scheduler.PolynomialLR(opt),
    "warm restarts": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4),
    "warm restarts growing": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=3, T_mult=2, eta_min=0.01),
    "sequential": _sequence,
    "sequential of three": _sequence_of_three,
}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # torch's, about its own order
@pytest.mark.filterwarnings("ignore:The epoch parameter in `scheduler.step\\(\\)`")  # torch's SequentialLR calls step(0)
@pytest.mark.parametrize("schedule", MORE_SCHEDULES)
def test_more_schedules_match_torch_over_20_steps_through_a_state_dict(schedule):
    """get_last_lr() equals torch's at each of 20 steps; half way, rebuilt and loaded from state_dicts."""
    _compare_with_torch_through_a_state_dict(MORE_SCHEDULES[schedule], "SGD", steps=20)


def test_more_schedules_refuse_what_torch_refuses_in_one_line():
    optimizer = _optimizer()
    with pytest.raises(ValueError, match="^LinearLR: start_factor must be greater than 0 and at most 1, got 0"):
        lr_scheduler.LinearLR(optimizer, start_factor=0)
    with pytest.raises(ValueError, match="^ConstantLR: factor must be between 0 and 1, got 2"):
        lr_scheduler.ConstantLR(optimizer, factor=2)
    with pytest.raises(ValueError, match="^CosineAnnealingWarmRestarts: T_0 must be a positive int, got 0"):
        lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=0)
    with pytest.raises(ValueError, match="^SequentialLR: give one milestone fewer than schedulers"):
        lr_scheduler.SequentialLR(optimizer, [lr_scheduler.ConstantLR(optimizer)], milestones=[3])
    with pytest.raises(ValueError, match="^SequentialLR: every scheduler must belong to the optimizer"):
        lr_scheduler.SequentialLR(_optimizer(), [lr_scheduler.ConstantLR(optimizer)], milestones=[])


def test_radam_nadam_adamax_over_10_steps_as_torch_through_both_radam_phases():
    """RAdam is plain momentum SGD while rho_t <= 5 (here the first 5 steps), rectified Adam after."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for name, options in [("RAdam", dict(lr=0.1, betas=(0.9, 0.99))), ("NAdam", dict(lr=0.1, momentum_decay=0.2)),
                          ("Adamax", dict(lr=0.1, weight_decay=0.1))]:
        start = rng.standard_normal(5)
        ours, theirs = nn.Parameter(start.copy()), torch.nn.Parameter(torch.tensor(start))
        our_optimizer, their_optimizer = getattr(optim, name)([ours], **options), getattr(torch.optim, name)([theirs], **options)
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)  # torch's NAdam keeps a product in the default dtype (test above)
        try:
            for step in range(10):
                g = rng.standard_normal(5)
                ours.grad, theirs.grad = Tensor(g.copy()), torch.tensor(g)
                our_optimizer.step(), their_optimizer.step()
                np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                                           err_msg=f"{name} step {step + 1}")
        finally:
            torch.set_default_dtype(default_dtype)


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam"])
def test_new_optimizers_keep_float32_and_refuse_bad_hyperparameters(name):
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    optimizer = getattr(optim, name)([p], lr=0.1)
    for _ in range(7):
        p.grad = Tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32))
        optimizer.step()
    assert p.dtype == np.float32 and all(v.dtype == np.float32 for v in optimizer.state[p].values()
                                         if isinstance(v, np.ndarray))
    with pytest.raises(ValueError, match=f"^{name}: invalid lr -1"):
        getattr(optim, name)([p], lr=-1)
    with pytest.raises(ValueError, match=rf"^{name}: betas must be in \[0, 1\)"):
        getattr(optim, name)([p], betas=(0.9, 1.0))
