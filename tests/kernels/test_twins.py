"""Each fast kernel against its plain twin in ``kernels/reference.py``, on drawn shapes and
hyperparameters, with ties, infinities and NaNs among the values.

Bit for bit where both sides do the same arithmetic (masks, relu, pooling, scatter and gather,
elementwise maps); to rounding where the order of a sum differs (the convolutions: BLAS against
``einsum``), with infinities and NaNs in the same places.
"""
import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn.kernels import KERNEL_NAMES, conv_banded, conv_gemm, fast, masks, reductions, reference
from tinygrad_cnn.ops.conv import ConvGeometry
from tinygrad_cnn.testing import strategies as S

SPECIALS = (np.inf, -np.inf, np.nan)
dtypes = st.sampled_from([np.float32, np.float64])


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def values(seed: int, shape, dtype, ties=False, specials=0.0):
    """Normal values (or with ``ties``, values from {0, 1, 2}), a fraction ``specials`` of them
    replaced by inf, -inf or NaN."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=shape) if ties else rng.standard_normal(shape)
    x = x.astype(dtype)
    special = rng.random(shape) < specials
    x[special] = rng.choice(SPECIALS, size=int(special.sum()))
    return x


def assert_same_bits(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours.shape, ours.dtype, theirs.shape, theirs.dtype)
    as_int = f"u{ours.itemsize}"
    np.testing.assert_array_equal(np.ascontiguousarray(ours).view(as_int), np.ascontiguousarray(theirs).view(as_int))


def assert_close(ours, theirs):
    """Equal to rounding, with inf and NaN in the same places."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours.shape, ours.dtype, theirs.shape, theirs.dtype)
    rtol, atol = (1e-5, 1e-5) if ours.dtype == np.float32 else (1e-11, 1e-12)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)  # equal_nan; infs must match exactly


def test_both_sets_define_every_kernel():
    for name in KERNEL_NAMES:
        assert callable(getattr(fast, name)) and callable(getattr(reference, name)), name


# ---- elementwise and masks -------------------------------------------------------------------------


@given(shape=S.shapes(), dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_relu_and_its_mask(shape, dtype, seed):
    # large enough, sometimes, for the fast relu's blocked loop over a row of zeros, and a rest
    shape = shape if seed % 2 else (masks._ZEROS + 1000,)
    x = values(seed, shape, dtype, specials=0.1)
    y = fast.relu(x)
    assert_same_bits(y, reference.relu(x))
    assert_same_bits(fast.relu_mask(y), reference.relu_mask(y))


@given(shapes=S.broadcastable_shapes(2), dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_keep_where_blocks_inf_and_nan_to_zero(shapes, dtype, seed):
    mask_shape, value_shape = shapes.input_shapes[0], shapes.result_shape
    v = values(seed, value_shape, dtype, specials=0.3)
    mask = np.random.default_rng(seed).random(mask_shape) < 0.5
    ours = fast.keep_where(mask, v)
    assert_same_bits(ours, reference.keep_where(mask, v))
    assert not np.isnan(ours[np.broadcast_to(~mask, value_shape)]).any()


@pytest.mark.parametrize("fn", [np.add, np.multiply, np.maximum, np.exp, np.tanh, np.less_equal])
@given(shapes=S.broadcastable_shapes(2), dtype=dtypes, seed=st.integers(0, 2**32 - 1), large=st.booleans())
def test_elementwise(fn, shapes, dtype, seed, large):
    if large:  # past the cache's threshold, so the fast kernel writes into a cached array
        shapes = ((128, 129), (129,))
    else:
        shapes = shapes.input_shapes
    operands = [values(seed + i, s, dtype, specials=0.1) for i, s in enumerate(shapes[: fn.nin])]
    with np.errstate(all="ignore"):
        dtype_hint = bool if fn is np.less_equal else None
        assert_same_bits(fast.elementwise(fn, *operands, dtype=dtype_hint), reference.elementwise(fn, *operands))


@given(dtype=dtypes, seed=st.integers(0, 2**32 - 1), batch=S.shapes(0, 2, max_side=3),
       m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5))
def test_matmul_and_sigmoid(dtype, seed, batch, m, k, n):
    a, b = values(seed, (*batch, m, k), dtype, specials=0.05), values(seed + 1, (k, n), dtype)
    with np.errstate(all="ignore"):
        assert_close(fast.matmul(a, b), reference.matmul(a, b))
        assert_same_bits(fast.sigmoid(a), reference.sigmoid(a))


# ---- convolution -----------------------------------------------------------------------------------


# The fast convolution makes a layer's GEMMs one per chunk of samples, or one per sample when they
# are small (conv_gemm.PER_SAMPLE_MULTIPLY_ADDS, and PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS for the
# weight gradient); a chunk's columns for the forward are a copy per kernel offset, or per kernel row
# whose kernel columns read it from their offset on (SHIFTED_FORWARD_CHANNEL_RATIO). Each test runs every
# way, whatever the drawn size and channels: the per-sample one also with blocks that cut a
# sample's rows into pieces (GEMM_OPERAND_BYTES), the chunked ones also with a sample per chunk
# (COLUMN_CHUNK_BYTES, SHIFTED_CHUNK_BYTES; the drawn batches are small), each chunk's columns in the
# last one's block.
# Layers with stride 1 and one group that take shifted columns may also compute their weight
# gradient over them, and small layers their forward (which one is timed per host,
# conv_gemm.FORCED_METHOD forces it here; for the weight gradient an input with an inf or NaN falls
# back to im2col).
# Small layers with stride 1 and one group may instead take a banded matrix (conv_banded.py; which
# one is timed per host, conv_gemm.FORCED_METHOD forces it here): whole rows as one tile, and
# tiles as narrow as the kernel allows (TILE_OUTPUTS), a sample per chunk.
CHUNKED = {"PER_SAMPLE_MULTIPLY_ADDS": 0, "PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS": 0}
PER_SAMPLE = {"PER_SAMPLE_MULTIPLY_ADDS": 2**62, "PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS": 2**62}
BANDED = {**PER_SAMPLE, "FORCED_METHOD": "banded", "BANDED_MAX_OUT_CHANNELS": 2**62,
          "conv_banded.MAX_INFLATION": np.inf}
CONV_PATHS = {"chunked GEMMs": {**CHUNKED, "SHIFTED_FORWARD_CHANNEL_RATIO": np.inf},
              "chunked GEMMs over shifted columns": {**CHUNKED, "SHIFTED_FORWARD_CHANNEL_RATIO": 0},
              "a sample per chunk, shifted columns": {**CHUNKED, "SHIFTED_FORWARD_CHANNEL_RATIO": 0, "COLUMN_CHUNK_BYTES": 1,
                                                      "SHIFTED_CHUNK_BYTES": 1},
              "shifted columns for the weight gradient too": {**CHUNKED, "SHIFTED_FORWARD_CHANNEL_RATIO": 0,
                                                              "FORCED_METHOD": "shifted"},
              "shifted columns for the weight gradient, a sample per chunk": {
                  **CHUNKED, "SHIFTED_FORWARD_CHANNEL_RATIO": 0, "FORCED_METHOD": "shifted", "COLUMN_CHUNK_BYTES": 1,
                  "SHIFTED_CHUNK_BYTES": 1},
              "GEMMs per sample": {**PER_SAMPLE, "FORCED_METHOD": "im2col"},
              "small layers over shifted columns": {**PER_SAMPLE, "FORCED_METHOD": "shifted"},
              "GEMMs per piece of a sample": {**PER_SAMPLE, "FORCED_METHOD": "im2col", "GEMM_OPERAND_BYTES": 64},
              "banded matrices, whole rows": {**BANDED, "conv_banded.TILE_OUTPUTS": 2**62},
              "banded matrices, narrow tiles, a sample per chunk": {**BANDED, "conv_banded.TILE_OUTPUTS": 1,
                                                                    "COLUMN_CHUNK_BYTES": 1}}


def _module_and_name(setting: str):
    """"conv_banded.NAME" names a setting of conv_banded.py; a bare NAME one of conv_gemm.py."""
    module, _, name = setting.rpartition(".")
    return {"": conv_gemm, "conv_banded": conv_banded}[module], name


@contextlib.contextmanager
def conv_path(name, more=None):
    """The settings of the path ``name``, and ``more`` of them, for the block."""
    settings = [(*_module_and_name(setting), value) for setting, value in {**CONV_PATHS[name], **(more or {})}.items()]
    saved = [(module, setting, getattr(module, setting)) for module, setting, _ in settings]
    for module, setting, value in settings:
        setattr(module, setting, value)
    try:
        yield
    finally:
        for module, setting, value in saved:
            setattr(module, setting, value)


# Half the draws with stride 1, where the wide and shifted columns apply (given enough width).
conv_configs = st.one_of(S.conv2d_configs(), S.conv2d_configs(max_stride=1))


def geometry_of(config) -> ConvGeometry:
    return ConvGeometry(kernel=config.weight_shape[2:], stride=pair(config.stride), padding=pair(config.padding),
                        dilation=pair(config.dilation), groups=config.groups)


@pytest.mark.parametrize("path", CONV_PATHS)
@given(config=conv_configs, dtype=dtypes, seed=st.integers(0, 2**32 - 1), specials=st.sampled_from([0.0, 0.05]))
def test_conv2d_and_its_weight_gradient(path, config, dtype, seed, specials):
    geometry = geometry_of(config)
    x = values(seed, config.input_shape, dtype, specials=specials)
    w = values(seed + 1, config.weight_shape, dtype)
    b = None if config.bias_shape is None else values(seed + 2, config.bias_shape, dtype)
    with np.errstate(all="ignore"), conv_path(path):
        y = fast.conv2d(x, w, geometry, b)
        assert_close(y, reference.conv2d(x, w, geometry, b))
        g = values(seed + 3, y.shape, dtype, specials=specials)
        assert_close(fast.conv2d_weight_grad(x, g, w.shape, geometry), reference.conv2d_weight_grad(x, g, w.shape, geometry))


@pytest.mark.parametrize("path", CONV_PATHS)
def test_conv2d_adds_a_wider_bias_at_its_own_precision(path):
    """A float64 bias on float32 images and weights: -1e8 + (1e8 + 1) is 1, which a bias rounded to
    float32 inside the GEMM would lose (it is 1e8 there)."""
    x, w = np.ones((2, 1, 3, 4), np.float32), np.array([[[[-1e8, 0.0]]]], np.float32)
    b = np.array([1e8 + 1])
    with conv_path(path):
        y = fast.conv2d(x, w, ConvGeometry(kernel=(1, 2)), b)
    np.testing.assert_array_equal(y, np.ones((2, 1, 3, 3)))


@pytest.mark.parametrize("path", CONV_PATHS)
@given(config=conv_configs, dtype=dtypes, seed=st.integers(0, 2**32 - 1), specials=st.sampled_from([0.0, 0.05]))
def test_conv2d_input_gradient(path, config, dtype, seed, specials):
    # Infinities in the output gradient only: the fast kernel may compute the input gradient as a
    # correlation over a zero-padded gradient, where an infinite weight meets the padding's zeros
    # (0 * inf = NaN) in sums that the reference, which only visits real outputs, never forms.
    geometry = geometry_of(config)
    w = values(seed + 1, config.weight_shape, dtype)
    out_hw = geometry.output_size(*config.input_shape[2:])
    g = values(seed, (config.input_shape[0], w.shape[0], *out_hw), dtype, specials=specials)
    with np.errstate(all="ignore"), conv_path(path):
        assert_close(fast.conv2d_input_grad(g, w, config.input_shape, geometry),
                     reference.conv2d_input_grad(g, w, config.input_shape, geometry))


BANDED_CASES = [  # (input shape, weight shape, padding, dilation): tiles of every kind, dilations along each axis
    ((3, 2, 9, 12), (3, 2, 3, 3), (1, 1), (1, 1)),
    ((2, 1, 7, 16), (4, 1, 2, 3), (0, 2), (1, 2)),
    ((2, 3, 11, 10), (2, 3, 3, 2), (2, 0), (2, 1)),
    ((1, 2, 6, 30), (5, 2, 1, 5), (0, 1), (3, 2)),
]


@pytest.mark.parametrize("tile_outputs", [1, 2**62])
@pytest.mark.parametrize("case", BANDED_CASES)
def test_banded_convolution_on_dilated_and_tiled_layers(case, tile_outputs):
    """The banded method on layers the drawn ones reach only now and then: dilations, asymmetric
    padding, one tile per row and several, each sample its own chunk (finite values: with a NaN in
    the output gradient every weight's gradient would be NaN, and any mistake hidden)."""
    x_shape, w_shape, padding, dilation = case
    geometry = ConvGeometry(kernel=w_shape[2:], padding=padding, dilation=dilation)
    x, w, b = values(1, x_shape, np.float64), values(2, w_shape, np.float64), values(3, w_shape[:1], np.float64)
    more = {"conv_banded.TILE_OUTPUTS": tile_outputs, "COLUMN_CHUNK_BYTES": 1}
    with np.errstate(all="ignore"), conv_path("banded matrices, whole rows", more):
        y = fast.conv2d(x, w, geometry, b)
        g = values(4, y.shape, np.float64)
        dw = fast.conv2d_weight_grad(x, g, w_shape, geometry)
        dx = fast.conv2d_input_grad(values(5, y.shape, np.float64), w, x_shape, geometry)
    assert_close(y, reference.conv2d(x, w, geometry, b))
    assert_close(dw, reference.conv2d_weight_grad(x, g, w_shape, geometry))
    assert_close(dx, reference.conv2d_input_grad(values(5, y.shape, np.float64), w, x_shape, geometry))


# ---- pooling ---------------------------------------------------------------------------------------


def pool_geometry(config) -> ConvGeometry:
    kernel = pair(config.kernel_size)
    stride = kernel if config.stride is None else pair(config.stride)
    return ConvGeometry(kernel=kernel, stride=stride, padding=pair(config.padding), dilation=pair(config.dilation or 1))


@st.composite
def pool_cases(draw):
    """Drawn pooling hyperparameters, and sometimes the 2x2 stride-2 case the fast kernel has a
    tournament for (on an empty batch too)."""
    if draw(st.booleans()):
        shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(2, 7)), draw(st.integers(2, 7)))
        return shape, ConvGeometry(kernel=(2, 2), stride=(2, 2))
    config = draw(S.pool2d_configs(dilation=True))
    return config.input_shape, pool_geometry(config)


@given(case=pool_cases(), dtype=dtypes, seed=st.integers(0, 2**32 - 1), specials=st.sampled_from([0.0, 0.1]))
def test_max_pool2d_on_ties_infinities_and_nan(case, dtype, seed, specials):
    shape, geometry = case
    x = values(seed, shape, dtype, ties=True, specials=specials)
    best, argmax = fast.max_pool2d(x, geometry)
    reference_best, reference_argmax = reference.max_pool2d(x, geometry)
    assert_same_bits(best, reference_best)
    np.testing.assert_array_equal(argmax, reference_argmax)


@given(case=pool_cases(), dtype=dtypes, seed=st.integers(0, 2**32 - 1), specials=st.sampled_from([0.0, 0.1]))
def test_window_scatter_and_gather(case, dtype, seed, specials):
    shape, geometry = case
    out_hw = geometry.output_size(*shape[2:])
    rng = np.random.default_rng(seed)
    argmax = rng.integers(0, geometry.kernel[0] * geometry.kernel[1], size=(*shape[:2], *out_hw))
    argmax = argmax.astype(np.min_scalar_type(geometry.kernel[0] * geometry.kernel[1] - 1))
    g = values(seed + 1, argmax.shape, dtype, specials=specials)
    assert_same_bits(fast.window_scatter(g, argmax, shape, geometry), reference.window_scatter(g, argmax, shape, geometry))
    x = values(seed + 2, shape, dtype, specials=specials)
    assert_same_bits(fast.window_gather(x, argmax, geometry), reference.window_gather(x, argmax, geometry))


@pytest.mark.parametrize("geometry", [
    ConvGeometry(kernel=(2, 2), stride=(2, 2)),  # the fast kernel's tournament
    ConvGeometry(kernel=(2, 2), stride=(1, 1)),  # its loop over kernel offsets
])
def test_max_pool2d_points_a_window_of_several_nans_at_the_last(geometry):
    # Drawn values rarely put two NaNs in one window; here the first windows hold three (torch's
    # rule: the argmax of a window with NaNs is its last NaN, where np.argmax would say the first)
    x = np.array([[[[np.nan, np.nan, 1.0, 2.0], [0.0, np.nan, np.nan, 3.0]]]])
    for kernels in (fast, reference):
        best, argmax = kernels.max_pool2d(x, geometry)
        expected = [[[[3, 2]]]] if geometry.stride == (2, 2) else [[[[3, 3, 2]]]]
        np.testing.assert_array_equal(argmax, expected, err_msg=kernels.__name__)
        assert np.isnan(best).all()


# ---- sums --------------------------------------------------------------------------------------------


@st.composite
def sums(draw):
    """A shape and the axes to sum over: any subset (None for all), negative ones among them,
    often a leading and a trailing run (the layouts the fast kernel takes over from ``np.sum``)."""
    shape = draw(S.shapes(0, 4, max_side=5))
    chosen = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    if draw(st.booleans()) and shape:  # a leading run and a trailing one, as a bias gradient's
        lead, trail = sorted(draw(st.lists(st.integers(0, len(shape)), min_size=2, max_size=2)))
        chosen = [i < lead or i >= trail for i in range(len(shape))]
    axes = tuple(i - len(shape) if draw(st.booleans()) else i for i, c in enumerate(chosen) if c)
    return shape, draw(st.sampled_from([axes, None])) if len(axes) == len(shape) else axes


def every_size():
    """The fast sum_axes on arrays of any size (it leaves small ones to np.sum)."""
    return mock.patch.object(reductions, "SMALLEST", 0)


@given(case=sums(), dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_sum_axes_exact_where_every_sum_is(case, dtype, seed):
    # small integers: every partial sum is exact whatever the order, so the bits must agree
    shape, axes = case
    x = values(seed, shape, dtype, ties=True)
    with every_size():
        assert_same_bits(fast.sum_axes(x, axes), reference.sum_axes(x, axes))


@given(case=sums(), dtype=dtypes, seed=st.integers(0, 2**32 - 1), specials=st.sampled_from([0.0, 0.1]))
def test_sum_axes_to_rounding_with_infinities_and_nan(case, dtype, seed, specials):
    # summed in any order, n terms lie within (n - 1) * eps / 2 * sum |x| of the exact sum: the two
    # sides within (n - 1) * eps * sum |x| of each other
    shape, axes = case
    x = values(seed, shape, dtype, specials=specials)
    with every_size(), np.errstate(invalid="ignore"):  # inf + -inf, on both sides
        ours, theirs = fast.sum_axes(x, axes), reference.sum_axes(x, axes)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite], theirs[~finite])
    terms = x.size // max(1, theirs.size)
    bound = max(terms - 1, 0) * np.finfo(dtype).eps * np.sum(np.abs(np.where(np.isfinite(x), x, 0)), axis=axes, keepdims=True)
    assert np.all(np.abs(ours[finite] - theirs[finite]) <= bound[finite])


def test_sum_axes_on_a_bias_gradient_and_long_runs():
    x = values(0, (64, 32, 28, 28), np.float32)  # LeNet's first bias gradient
    assert_close(fast.sum_axes(x, (0, 2, 3)), reference.sum_axes(x, (0, 2, 3)))
    long = values(1, (2, reductions.LONGEST_RUN + 1), np.float32)  # np.sum's pairwise sum, bit for bit
    assert_same_bits(fast.sum_axes(long, 1), reference.sum_axes(long, 1))
    assert fast.sum_axes(x, ()) is not x and not np.shares_memory(fast.sum_axes(x, ()), x)


@pytest.mark.parametrize("axis", [np.int64(1), (0, -1), (3, 2), (np.int32(-2),)])
def test_sum_axes_takes_the_axes_np_sum_takes(axis):
    x = values(0, (6, 5, 4, 3), np.float64)
    with every_size():
        assert_close(fast.sum_axes(x, axis), reference.sum_axes(x, axis))


@pytest.mark.parametrize("axis", [4, -5, (0, 0), (1, -3), 1.0, (0, "a"), [0, 1]])
def test_sum_axes_refuses_the_axes_np_sum_refuses(axis):
    x = values(0, (6, 5, 4, 3), np.float64)
    with pytest.raises(Exception) as theirs:
        reference.sum_axes(x, axis)
    with every_size(), pytest.raises(type(theirs.value)):
        fast.sum_axes(x, axis)
