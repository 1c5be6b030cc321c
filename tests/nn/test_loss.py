"""The losses (functions in ``nn.functional`` and the modules of ``nn.loss``) over drawn shapes
and options: class weights, ``ignore_index``, ``label_smoothing``, class-index and probability
targets, extra dimensions (N, C, d1, ...), ``pos_weight``, every reduction. Each against a NumPy
formula written here, with gradients of order 1 and 2 and torch's values and gradients."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import strategies as S

REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}


def log_softmax_reference(a, axis):
    return a - np.logaddexp.reduce(a, axis=axis, keepdims=True)


@st.composite
def classification_problems(draw, probabilities=False):
    """Logits (N, C, d...), integer targets (N, d...) that may hold ignore_index, or probability
    targets of the logits' shape; optional class weights and label smoothing."""
    n, classes = draw(st.integers(1, 3), label="N"), draw(st.integers(1, 4), label="C")
    extra = draw(S.shapes(min_dims=0, max_dims=1, max_side=2), label="extra dims")
    logits = draw(S.tensors((n, classes, *extra)), label="logits")
    ignore_index = draw(st.sampled_from([-100, 0, 1]), label="ignore_index")
    if probabilities:
        p = draw(S.arrays((n, classes, *extra), elements=st.floats(0.01, 1)), label="target")
        target = p / p.sum(axis=1, keepdims=True)
    else:
        target = draw(S.arrays((n, *extra), elements=st.integers(0, classes - 1).map(float))).astype(np.int64)
        if draw(st.booleans(), label="some ignored") and target.size > 1:
            target.reshape(-1)[0] = ignore_index
        if np.all(target == ignore_index):  # keep one element, so the mean is defined (all ignored: NaN, below)
            ignore_index = -100
    weight = draw(st.none() | S.arrays((classes,), elements=st.floats(0.1, 2.0)), label="weight")
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]), label="label_smoothing")
    reduction = draw(st.sampled_from(sorted(REDUCE)), label="reduction")
    return logits, target, dict(weight=weight, ignore_index=ignore_index, label_smoothing=smoothing, reduction=reduction)


def class_index_loss_reference(log_probs, target, weight, ignore_index, label_smoothing, reduction):
    """Element by element: -(1 - s) w[t] logp[t] - s/C sum_c w[c] logp[c]; mean over the weights w[t]."""
    classes = log_probs.shape[1]
    weight = np.ones(classes) if weight is None else weight
    logp = np.moveaxis(log_probs, 1, -1).reshape(-1, classes)
    losses, total = [], 0.0
    for row, t in zip(logp, target.reshape(-1)):
        if t == ignore_index:
            losses.append(0.0)
            continue
        losses.append(-(1 - label_smoothing) * weight[t] * row[t] - label_smoothing / classes * np.sum(weight * row))
        total += weight[t]
    losses = np.array(losses).reshape(target.shape)
    return losses.sum() / total if reduction == "mean" else REDUCE[reduction](losses)


@given(problem=classification_problems())
def test_cross_entropy_with_class_indices(problem, check_op):
    logits, target, kwargs = problem
    expected = class_index_loss_reference(log_softmax_reference(logits.data, 1), target, **kwargs)
    check_op(lambda t: F.cross_entropy(t, target, **kwargs), expected, logits, rtol=1e-10, dtype=kwargs["weight"] is None)


@given(problem=classification_problems())
def test_nll_loss(problem, check_op):
    log_probs, target, kwargs = problem
    del kwargs["label_smoothing"]
    expected = class_index_loss_reference(log_probs.data, target, label_smoothing=0.0, **kwargs)
    check_op(lambda t: F.nll_loss(t, target, **kwargs), expected, log_probs, rtol=1e-10, dtype=kwargs["weight"] is None)


@given(problem=classification_problems(probabilities=True))
def test_cross_entropy_with_probabilities(problem, check_op):
    logits, target, kwargs = problem
    classes, s = logits.shape[1], kwargs["label_smoothing"]
    weight = np.ones(classes) if kwargs["weight"] is None else kwargs["weight"]
    smoothed = target * (1 - s) + s / classes
    per_element = -(log_softmax_reference(logits.data, 1) * smoothed * weight.reshape(1, -1, *(1,) * (logits.ndim - 2))).sum(axis=1)
    expected = REDUCE[kwargs["reduction"]](per_element)
    del kwargs["ignore_index"]
    # the probabilities as a Tensor that requires grad: torch differentiates the target too
    target = Tensor(target, requires_grad=True)
    check_op(lambda t, p: F.cross_entropy(t, p, **kwargs), expected, logits, target, rtol=1e-10, dtype=False)


@pytest.mark.parametrize("probabilities", [False, True])
@given(data=st.data())
def test_cross_entropy_and_nll_loss_match_torch(probabilities, data, assert_matches_torch):
    import torch

    logits, target, kwargs = data.draw(classification_problems(probabilities), label="problem")
    theirs = dict(kwargs, weight=None if kwargs["weight"] is None else torch.from_numpy(kwargs["weight"]))
    if probabilities:
        del kwargs["ignore_index"], theirs["ignore_index"]
    assert_matches_torch(lambda t: F.cross_entropy(t, target, **kwargs),
                  lambda t: torch.nn.functional.cross_entropy(t, torch.from_numpy(target), **theirs), logits)
    if not probabilities:
        del kwargs["label_smoothing"], theirs["label_smoothing"]
        assert_matches_torch(lambda t: F.nll_loss(t, target, **kwargs),
                      lambda t: torch.nn.functional.nll_loss(t, torch.from_numpy(target), **theirs), logits)


def test_every_target_ignored_gives_nan_as_torch():
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([-100, -100])).item())


# ---- regression and binary losses ----------------------------------------------------------------------


@st.composite
def pairs(draw, low=-3.0, high=3.0, target_low=-3.0, target_high=3.0, apart=False):
    shape = draw(S.shapes(min_dims=1), label="shape")
    x = draw(S.tensors(shape, elements=st.floats(low, high)), label="input")
    target = draw(S.arrays(shape, elements=st.floats(target_low, target_high)), label="target")
    if apart:  # |x - t| has a kink where they meet: keep them at least 0.1 apart
        target = np.where(np.abs(x.data - target) < 0.1, np.where(x.data > 0.5, x.data - 0.3, x.data + 0.3), target)
    return x, target, draw(st.sampled_from(sorted(REDUCE)), label="reduction")


@given(problem=pairs(apart=True))
def test_l1_loss(problem, check_op):
    x, target, reduction = problem
    check_op(lambda t: F.l1_loss(t, target, reduction), REDUCE[reduction](np.abs(x.data - target)), x)


@given(problem=pairs(low=0.05, high=0.95, target_low=0, target_high=1), weighted=st.booleans())
def test_binary_cross_entropy(problem, weighted, check_op):
    x, target, reduction = problem
    weight = np.linspace(0.5, 1.5, x.shape[-1]) if weighted else None
    per_element = -(target * np.log(x.data) + (1 - target) * np.log(1 - x.data)) * (1 if weight is None else weight)
    check_op(lambda t: F.binary_cross_entropy(t, target, weight, reduction), REDUCE[reduction](per_element), x,
             rtol=1e-10)


@given(problem=pairs(target_low=0, target_high=1), weighted=st.booleans(), positive=st.booleans())
def test_binary_cross_entropy_with_logits(problem, weighted, positive, check_op):
    x, target, reduction = problem
    weight = np.linspace(0.5, 1.5, x.shape[-1]) if weighted else None
    pos_weight = np.linspace(2.0, 0.5, x.shape[-1]) if positive else None
    p = 1 / (1 + np.exp(-x.data))
    per_element = -((1 if pos_weight is None else pos_weight) * target * np.log(p) + (1 - target) * np.log(1 - p))
    expected = REDUCE[reduction](per_element * (1 if weight is None else weight))
    check_op(lambda t: F.binary_cross_entropy_with_logits(t, target, weight, reduction, pos_weight), expected, x,
             rtol=1e-10)


def test_binary_cross_entropy_with_logits_is_finite_for_logits_of_magnitude_1e3():
    x = Tensor(np.array([-1e3, 1e3, 0.0]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.data, [1e3, 1e3, np.log(2)], rtol=1e-12)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [-1.0, 1.0, -0.5], rtol=1e-12)


@given(data=st.data())
def test_regression_and_binary_losses_match_torch(data, assert_matches_torch):
    import torch

    tf = torch.nn.functional
    x, target, reduction = data.draw(pairs(low=0.05, high=0.95, target_low=0, target_high=1, apart=True))
    weight = np.linspace(0.5, 1.5, x.shape[-1])
    t = torch.from_numpy(target)
    for ours, theirs in [
        (lambda a: F.mse_loss(a, target, reduction), lambda a: tf.mse_loss(a, t, reduction=reduction)),
        (lambda a: F.l1_loss(a, target, reduction), lambda a: tf.l1_loss(a, t, reduction=reduction)),
        (lambda a: F.binary_cross_entropy(a, target, weight, reduction),
         lambda a: tf.binary_cross_entropy(a, t, torch.from_numpy(weight), reduction=reduction)),
        (lambda a: F.binary_cross_entropy_with_logits(a, target, weight, reduction, weight[::-1].copy()),
         lambda a: tf.binary_cross_entropy_with_logits(a, t, torch.from_numpy(weight), reduction=reduction,
                                                       pos_weight=torch.from_numpy(weight[::-1].copy()))),
    ]:
        assert_matches_torch(ours, theirs, x)


def test_binary_cross_entropy_clamps_the_log_at_minus_100_and_checks_its_input():
    loss = F.binary_cross_entropy(Tensor(np.array([0.0, 1.0])), np.array([1.0, 0.0]), reduction="none")
    np.testing.assert_array_equal(loss.data, [100.0, 100.0])
    with pytest.raises(ValueError, match=r"^binary_cross_entropy: input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(Tensor(np.array([1.5])), np.array([1.0]))
    with pytest.raises(ValueError, match=r"^l1_loss: input shape \(2,\) and target shape \(3,\) differ"):
        F.l1_loss(Tensor(np.zeros(2)), np.zeros(3))


# ---- the modules ---------------------------------------------------------------------------------------------


def test_loss_modules_hold_their_options_and_weights_as_buffers_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((4, 3, 2)), np.array([[0, 2], [1, 1], [2, -100], [0, 1]])
    probabilities, binary = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3))
    weight = np.array([0.5, 1.0, 2.0])
    cases = [
        ("CrossEntropyLoss", dict(weight=weight, label_smoothing=0.2), logits, labels),
        ("CrossEntropyLoss", dict(ignore_index=1, reduction="sum"), logits, np.maximum(labels, 0)),
        ("NLLLoss", dict(weight=weight, reduction="none"), logits, labels),
        ("MSELoss", dict(), probabilities, binary),
        ("L1Loss", dict(reduction="sum"), probabilities, binary),
        ("BCELoss", dict(weight=weight), probabilities, binary),
        ("BCEWithLogitsLoss", dict(pos_weight=weight), logits[:, :, 0], binary),
    ]
    for name, kwargs, x, target in cases:
        ours = getattr(nn, name)(**kwargs)
        theirs = getattr(torch.nn, name)(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                            for k, v in kwargs.items()})
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict()), name
        expected = theirs(torch.from_numpy(x), torch.from_numpy(target)).numpy()
        np.testing.assert_allclose(ours(Tensor(x), target).data, expected, rtol=1e-12, err_msg=name)
    with pytest.raises(ValueError, match=r"^MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="average")


def test_one_hot():
    labels = np.array([[0, 2], [1, 0]])
    out = F.one_hot(Tensor(labels))
    assert out.shape == (2, 2, 3) and out.dtype == np.int64
    np.testing.assert_array_equal(out.data, np.eye(3, dtype=np.int64)[labels])
    assert F.one_hot(np.array([1]), num_classes=4).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(ValueError, match=r"^one_hot: label 4 is out of range for num_classes=3"):
        F.one_hot(np.array([4]), 3)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(out.data, torch.nn.functional.one_hot(torch.from_numpy(labels)).numpy())


@pytest.mark.parametrize("reduction", sorted(REDUCE))
def test_losses_of_one_unbatched_sample_as_torch(reduction, assert_matches_torch):
    import torch

    logits = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    probabilities = np.array([0.2, 0.3, 0.5])
    tf = torch.nn.functional
    for target, theirs_target in ((np.array(2), torch.tensor(2)), (probabilities, torch.from_numpy(probabilities))):
        assert_matches_torch(lambda t: F.cross_entropy(t, target, reduction=reduction, label_smoothing=0.1),
                      lambda t: tf.cross_entropy(t, theirs_target, reduction=reduction, label_smoothing=0.1), logits)
    assert_matches_torch(lambda t: F.nll_loss(t, np.array(1), reduction=reduction),
                  lambda t: tf.nll_loss(t, torch.tensor(1), reduction=reduction), logits)


# ---- more losses: smooth L1, Huber, KL divergence, margin ranking, triplet margin -----------------------------


@pytest.mark.parametrize("name", ["smooth_l1_loss", "huber_loss"])
@given(data=st.data())
def test_smooth_l1_and_huber_loss(name, data, check_op, assert_matches_torch):
    width = data.draw(st.sampled_from([0.5, 1.0, 2.0]), label="beta or delta")
    reduction = data.draw(st.sampled_from(sorted(REDUCE)), label="reduction")
    target = data.draw(S.arrays(S.shapes(min_dims=1)), label="target")
    # the second derivative jumps where |input - target| = beta (delta): differences kept away from there
    d = data.draw(S.away_from_kinks(target.shape, kinks=(-width, width)), label="input - target").data
    x = Tensor(target + d, requires_grad=True)
    d = x.data - target
    quadratic = np.abs(d) < width
    if name == "smooth_l1_loss":
        expected = np.where(quadratic, 0.5 * d * d / width, np.abs(d) - 0.5 * width)
    else:
        expected = np.where(quadratic, 0.5 * d * d, width * (np.abs(d) - 0.5 * width))
    op = lambda t: getattr(F, name)(t, target, reduction, width)  # noqa: E731
    check_op(op, REDUCE[reduction](expected), x)
    torch = pytest.importorskip("torch")
    keyword = "beta" if name == "smooth_l1_loss" else "delta"
    assert_matches_torch(op, lambda t: getattr(torch.nn.functional, name)(t, torch.tensor(target), reduction=reduction,
                                                                          **{keyword: width}), x)
    module = nn.SmoothL1Loss(reduction=reduction, beta=width) if keyword == "beta" else nn.HuberLoss(reduction, width)
    np.testing.assert_allclose(module(x, target).data, op(x).data, rtol=0)


def test_smooth_l1_loss_with_beta_0_is_the_l1_loss_and_bad_widths_are_one_line():
    x, t = Tensor([0.5, -2.0]), np.array([0.0, 0.0], dtype=np.float32)
    assert F.smooth_l1_loss(x, t, beta=0.0).item() == F.l1_loss(x, t).item()
    with pytest.raises(ValueError, match="^smooth_l1_loss: beta must be non-negative, got -1"):
        F.smooth_l1_loss(x, t, beta=-1)
    with pytest.raises(ValueError, match="^HuberLoss: delta must be positive, got 0"):
        nn.HuberLoss(delta=0)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")  # torch's, about its own default
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@given(data=st.data())
def test_kl_div(reduction, data, check_op, assert_matches_torch):
    shape = data.draw(S.shapes(min_dims=2, max_dims=2), label="shape")
    log_probs = data.draw(S.tensors(shape), label="input")
    log_target = data.draw(st.booleans(), label="log_target")
    target = data.draw(S.tensors(shape, elements=st.floats(-3, 1)), label="target")
    if not log_target:  # probabilities, some exactly 0 (a term that counts as 0, as torch)
        zeros = data.draw(S.arrays(shape, elements=st.booleans(), dtype=bool), label="zeros")
        target = Tensor(np.where(zeros, 0.0, np.exp(target.data)), requires_grad=False)
        pointwise = np.where(target.data > 0, target.data * (np.log(np.where(zeros, 1, target.data)) - log_probs.data), 0)
    else:
        pointwise = np.exp(target.data) * (target.data - log_probs.data)
    expected = pointwise.sum() / shape[0] if reduction == "batchmean" else REDUCE[reduction](pointwise)
    op = lambda x, t: F.kl_div(x, t, reduction, log_target)  # noqa: E731
    check_op(op, expected, log_probs, target)
    assert_matches_torch(op, lambda x, t: __import__("torch").nn.functional.kl_div(x, t, reduction=reduction,
                                                                                   log_target=log_target),
                         log_probs, target)
    np.testing.assert_allclose(nn.KLDivLoss(reduction=reduction, log_target=log_target)(log_probs, target).data,
                               op(log_probs, target).data, rtol=0)


@given(data=st.data())
def test_margin_ranking_loss(data, check_op, assert_matches_torch):
    n = data.draw(st.integers(1, 4), label="n")
    x1, x2 = data.draw(S.tensors((n,))), data.draw(S.tensors((n,)))
    y = data.draw(S.arrays((n,), elements=st.sampled_from([-1.0, 1.0])), label="target")
    margin = data.draw(st.sampled_from([0.0, 0.5]), label="margin")
    reduction = data.draw(st.sampled_from(sorted(REDUCE)), label="reduction")
    hinge = -y * (x1.data - x2.data) + margin
    if np.any(np.abs(hinge) < 0.05):  # the hinge's kink at 0
        x1 = Tensor(x1.data + np.where(np.abs(hinge) < 0.05, 0.2 * -y, 0.0), requires_grad=True)
        hinge = -y * (x1.data - x2.data) + margin
    target = Tensor(y)  # an input too, so the float32 check casts it with the others
    op = lambda a, b, t: F.margin_ranking_loss(a, b, t, margin, reduction)  # noqa: E731
    check_op(op, REDUCE[reduction](np.maximum(hinge, 0)), x1, x2, target)
    torch = pytest.importorskip("torch")
    assert_matches_torch(op, lambda a, b, t: torch.nn.functional.margin_ranking_loss(a, b, t, margin, reduction=reduction),
                         x1, x2, target)
    np.testing.assert_allclose(nn.MarginRankingLoss(margin, reduction=reduction)(x1, x2, target).data,
                               op(x1, x2, target).data, rtol=0)


@pytest.mark.parametrize("swap", [False, True])
@given(data=st.data())
def test_triplet_margin_loss(swap, data, check_op, assert_matches_torch):
    shape = data.draw(st.sampled_from([(3,), (2, 3), (3, 2)]), label="shape")
    # distinct values far apart: no distance near 0 (the norm's kink), no tie between the distances
    anchor, positive, negative = data.draw(S.distinct_values(shape, shape, shape, spacing=0.5), label="triplet")
    p = data.draw(st.sampled_from([1.0, 2.0]), label="p")
    reduction = data.draw(st.sampled_from(sorted(REDUCE)), label="reduction")

    def distance(a, b):
        return (np.abs(a - b + 1e-6) ** p).sum(-1) ** (1 / p)

    to_negative = distance(anchor.data, negative.data)
    if swap:  # the smaller of two distances: not differentiable where they tie
        assume(np.all(np.abs(to_negative - distance(positive.data, negative.data)) > 0.05))
        to_negative = np.minimum(to_negative, distance(positive.data, negative.data))
    hinge = distance(anchor.data, positive.data) - to_negative + 1.0
    assume(np.all(np.abs(hinge) > 0.05))  # the hinge's kink at 0
    op = lambda a, b, c: F.triplet_margin_loss(a, b, c, p=p, swap=swap, reduction=reduction)  # noqa: E731
    check_op(op, REDUCE[reduction](np.maximum(hinge, 0)), anchor, positive, negative)
    torch = pytest.importorskip("torch")
    assert_matches_torch(op, lambda a, b, c: torch.nn.functional.triplet_margin_loss(a, b, c, p=p, swap=swap,
                                                                                     reduction=reduction),
                         anchor, positive, negative)
    np.testing.assert_allclose(nn.TripletMarginLoss(p=p, swap=swap, reduction=reduction)(anchor, positive, negative).data,
                               op(anchor, positive, negative).data, rtol=0)
