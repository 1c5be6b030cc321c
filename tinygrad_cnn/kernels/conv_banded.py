"""The convolution of a layer with few channels as a product with a banded matrix: the "banded"
method, beside im2col's GEMMs (``conv_gemm.py``) for stride 1 and one group.

With 8 output channels, im2col's GEMM has 8 rows: BLAS runs it far below its speed, and the
columns are kh * kw copies of the input. Along one output row the convolution is itself a product
with a matrix of few rows and many columns, if the weights are spread out over a *band*:

    out[n, o, y, v] = sum over i, c, u of  x_padded[n, c, y + i*dh, u] * band[i, c, u, o, v]
    band[i, c, v + j*dw, o, v] = w[o, c, i, j], and zero off the band

So with rows (sample, output row), K = (kernel row, input channel, input column) and columns
(output channel, output column) a whole layer is one GEMM of hundreds of rows, K and columns, and
its left operand is one copy of the input per kernel row (``rows``). The price is the band's
zeros: a row of W input columns costs W / kw times the multiply-adds. So each output row is cut
into tiles of ``t`` columns, each reading the ``t + dw * (kw - 1)`` input columns under it
(``tile_width``): fewer zeros, and the tiles become more rows.

The weight gradient is the same product the other way round, ``rows.T @ grad``: the result's band
(the entries at u = v + j*dw) holds each weight's gradient, summed over v. The input gradient needs
nothing of its own: with stride 1 it is a correlation (``conv_gemm.conv2d_input_grad``), which
takes this method where it is the faster.

The band's zeros also meet every input value of the tile: an inf or NaN in the input would reach
outputs whose windows do not hold it (0 * inf = NaN), so the forward is for finite inputs only
(``conv_gemm`` checks). The weight gradient reads the band only, where every product is one the
reference forms too.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import memory
from .copies import copy_rows, even_slices, pad_spatial

# A tile has at least this many outputs (output channels times columns), so that the GEMM has as
# many columns, and is at least twice the kernel's reach wide, so that at most a third of the input
# columns it reads are read again by the next tile. Measured (Intel Xeon, 2 threads, the seed net's
# second layer, 8 -> 8 channels, 5x5, 20 output columns, batch 64): the whole row (t = 20, 393M
# multiply-adds) 1.87 ms at 210 GFLOP/s, t = 10 (229M) 1.19 ms, t = 5 (147M) 0.94 ms at 157 GFLOP/s
# but with 7.4 MB of rows to copy against 5.7 at t = 10.
TILE_OUTPUTS = 64
# The method is offered only where the band's multiply-adds are at most this many times the
# convolution's, (t + reach - 1) / kw: the seed net's layers take 2.8 and 3.2. Wider tiles (a width
# with no divisor near the narrowest tile, a 1-wide kernel) would cost more than any GEMM speed wins
# back, and their band grows with the square of the tile.
MAX_INFLATION = 3.5


def tile_width(out_width: int, out_channels: int, reach: int) -> int:
    """The tile: the narrowest divisor of the output width with at least ``TILE_OUTPUTS`` outputs
    and twice the kernel's ``reach`` (dw * (kw - 1) + 1), else the whole width. A divisor, so that
    no tile reads past the padded input."""
    least = max(-(-TILE_OUTPUTS // out_channels), 2 * reach)
    return next((t for t in range(least, out_width) if out_width % t == 0), out_width)


def applies(x_shape, w_shape, geometry, out_hw) -> bool:
    """Whether the layer's tiles are narrow enough for the band to pay (``MAX_INFLATION``); the
    caller checks stride 1, one group and nonempty shapes."""
    span = layout(x_shape, w_shape, geometry, out_hw)[2]
    return span <= MAX_INFLATION * w_shape[3]


def layout(x_shape, w_shape, geometry, out_hw):
    """(t, tiles, span, K): the tile width, tiles per row, input columns a tile reads, and the
    GEMM's K = kh * C * span."""
    kh, kw = w_shape[2:]
    reach = geometry.dilation[1] * (kw - 1) + 1
    t = tile_width(out_hw[1], w_shape[0], reach)
    span = t + reach - 1
    return t, out_hw[1] // t, span, kh * x_shape[1] * span


def rows(x: np.ndarray, geometry, kernel_height: int, out_hw, t: int, span: int) -> np.ndarray:
    """A read-only view (N, OH, tiles, kh, C, span) of the padded ``x``: for each sample, output row
    and tile, the input columns under the tile on the row each kernel row reads."""
    padded = pad_spatial(x, geometry.padding)
    sn, sc, s_row, s_col = padded.strides
    n, c = padded.shape[:2]
    return as_strided(padded, shape=(n, out_hw[0], out_hw[1] // t, kernel_height, c, span),
                      strides=(sn, s_row, t * s_col, geometry.dilation[0] * s_row, sc, s_col), writeable=False)


def _diagonals(band: np.ndarray, j: int, dw: int) -> np.ndarray:
    """The entries (i, c, v + j*dw, o, v) of ``band`` (kh, C, span, O, t) as a view (kh, C, O, t)."""
    s = band.strides
    return as_strided(band[:, :, j * dw :], shape=(*band.shape[:2], *band.shape[3:]),
                      strides=(s[0], s[1], s[3], s[2] + s[4]))


def band(w: np.ndarray, t: int, span: int, dw: int, dtype, bias=None) -> np.ndarray:
    """The weights (O, C, kh, kw) spread over the band: (kh * C * span, O * t), and with ``bias``
    one more row holding it (for a last column of ones in the rows)."""
    o, c, kh, kw = w.shape
    k = kh * c * span
    out = memory.zeros((k + (bias is not None), o * t), dtype)
    taps = out[:k].reshape(kh, c, span, o, t)
    for j in range(kw):
        _diagonals(taps, j, dw)[...] = w[:, :, :, j].transpose(2, 1, 0)[..., None]
    if bias is not None:
        out[k].reshape(o, t)[...] = bias[:, None]
    return out


def _scratch(rows: int, widths, dtype, chunk_bytes: int) -> list:
    """Matrices of ``rows`` rows and each of ``widths`` columns, C-contiguous, in one scratch block
    (the one im2col's columns take: ``chunk_bytes`` at least), so that a chunk's temporaries add
    nothing to a training step's peak memory beyond it."""
    block = memory.scratch((rows * sum(widths),), dtype, reserve=chunk_bytes)
    bounds = np.cumsum([0, *(rows * width for width in widths)])
    return [block[a:b].reshape(rows, width) for a, b, width in zip(bounds[:-1], bounds[1:], widths)]


def conv2d(x: np.ndarray, w: np.ndarray, geometry, bias, fold_bias: bool, chunk_bytes: int) -> np.ndarray:
    """(N, C, H, W) correlated with (O, C, kh, kw), stride 1, one group, plus ``bias`` -> (N, O, OH, OW),
    for finite ``x``; a chunk of samples' rows takes at most about ``chunk_bytes``. With ``fold_bias``
    the bias rides in the GEMM (a last column of ones), else it is added afterwards: the caller
    decides, by ``conv_gemm``'s rule for its own GEMMs."""
    n, o = x.shape[0], w.shape[0]
    out_hw = geometry.output_size(*x.shape[2:])
    dtype = np.result_type(x, w)
    t, tiles, span, k = layout(x.shape, w.shape, geometry, out_hw)
    ones = bias is not None and fold_bias
    weights = band(w, t, span, geometry.dilation[1], dtype, bias if ones else None)
    windows = rows(x, geometry, w.shape[2], out_hw, t, span)
    out = memory.empty((n, o, *out_hw), dtype)
    rows_per_sample = out_hw[0] * tiles
    for chunk in even_slices(n, chunk_bytes // (rows_per_sample * (k + ones + o * t) * np.dtype(dtype).itemsize)):
        m = chunk.stop - chunk.start
        left, result = _scratch(m * rows_per_sample, (k + ones, o * t), dtype, chunk_bytes)
        if ones:
            left[:, k] = 1
        copy_rows(left.reshape(m, out_hw[0], tiles, k + ones)[..., :k].reshape(windows[chunk].shape), windows[chunk])
        np.matmul(left, weights, out=result)  # (m * OH * tiles, O * t)
        copy_rows(out[chunk].reshape(m, o, out_hw[0], tiles, t),
                  result.reshape(m, out_hw[0], tiles, o, t).transpose(0, 3, 1, 2, 4))
        del left, result  # before the next chunk's are made
    if bias is not None and not ones:
        out += bias.reshape(o, 1, 1)
    return out


def conv2d_weight_grad(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry, chunk_bytes: int) -> np.ndarray:
    """dL/dw for stride 1 and one group: ``rows.T @ grad`` summed over the chunks, then each
    weight's entries of the band summed."""
    n, o, kh, kw = x.shape[0], *w_shape[:1], *w_shape[2:]
    out_hw = grad_out.shape[2:]
    dtype = np.result_type(x, grad_out)
    t, tiles, span, k = layout(x.shape, w_shape, geometry, out_hw)
    windows = rows(x, geometry, kh, out_hw, t, span)
    total = np.zeros((k, o * t), dtype)
    rows_per_sample = out_hw[0] * tiles
    for chunk in even_slices(n, chunk_bytes // (rows_per_sample * (k + o * t) * np.dtype(dtype).itemsize)):
        m = chunk.stop - chunk.start
        left, grads = _scratch(m * rows_per_sample, (k, o * t), dtype, chunk_bytes)
        copy_rows(left.reshape(windows[chunk].shape), windows[chunk])
        copy_rows(grads.reshape(m, out_hw[0], tiles, o, t),
                  grad_out[chunk].reshape(m, o, out_hw[0], tiles, t).transpose(0, 2, 3, 1, 4))
        total += memory.matmul(left.T, grads)
        del left, grads
    taps = total.reshape(kh, x.shape[1], span, o, t)
    dw = np.empty(w_shape, dtype)
    for j in range(kw):
        dw[:, :, :, j] = _diagonals(taps, j, geometry.dilation[1]).sum(axis=-1).transpose(2, 1, 0)
    return dw
