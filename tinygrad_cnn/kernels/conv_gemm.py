"""Fast convolution kernels: im2col and matrix products (GEMMs). They speed up the reference
kernels ``conv2d``, ``conv2d_input_grad`` and ``conv2d_weight_grad`` of ``reference.py`` (an
``einsum`` over window views, and a loop over kernel offsets), with the same results up to the
rounding of a different summation order; ``tests/kernels/test_twins.py`` checks that.

All three are matrix products (GEMMs) around im2col, a few samples at a time. For a chunk of m
samples the windows of the padded input are copied into *columns*: a matrix with one row per
(input channel, kernel row, kernel column) and one column per (sample, output position). Then

* the convolution is ``weights (O, C*kh*kw) @ columns``: one GEMM for the whole chunk, whose result
  (O, m, positions) is copied into the NCHW output; the bias is one more column of the weights,
  against a last row of ones under the columns (one group and a bias of the GEMM's dtype or
  narrower, ``_folds_bias``; otherwise it is added afterwards);
* the weight gradient is ``grad (O, m*positions) @ columns.T``, summed over the chunks, or its
  transpose ``columns @ grad.T`` when K = C*kh*kw exceeds O (BLAS prefers the larger as rows);
* the input gradient with stride 1 is itself a correlation: of the output gradient, padded, with
  the kernel flipped and its input and output channels swapped, computed as above. With a larger
  stride, or more than twice as many output as input channels, it is ``weights.T @ grad``:
  columns again, each added back onto the input position it would have been copied from
  (col2im), in a Python loop over the kh * kw kernel offsets only.

One GEMM per chunk rather than one per sample matters for large layers: BLAS runs far below its
peak on the matrices of a single small image. Chunks keep the columns (up to kh * kw copies of the
input) small enough to stay in the CPU cache and out of the peak memory of a training step. Small
layers (``PER_SAMPLE_MULTIPLY_ADDS``: the seed net's, LeNet's first) are the other way round: their
GEMMs have few rows (8 output channels), read each column only a few times, and run at the speed
the columns come from the cache; so they make one GEMM per sample, with the columns kept per sample in
blocks (``Columns.each_block``) and each operand stored as BLAS reads it fastest
(``conv2d_per_sample``, ``conv2d_weight_grad_per_sample``). With groups, each group is its own
GEMM. Output positions are the window corners; with stride 1 they are taken along whole rows of
the padded input instead (``Columns.wide``), which makes every copy a plain memory copy, at the
price of a few positions per row that are computed and dropped. Along whole rows, kernel column j
sees what column 0 sees moved on by j * dilation positions, so the columns need one copy of the
input per kernel row only (``Columns.shifted_columns``): one GEMM multiplies it by every kernel
column's weights, stacked as rows, and kernel column j's results, read from the (j * dilation)-th
position on, are added up. A chunked forward along whole rows takes
them where the input has at least half as many channels as the output (``SHIFTED_FORWARD_CHANNEL_RATIO``),
and so does the input gradient computed as a correlation.

Every choice of layout is a fixed rule on the layer's shape, so a layer is computed the same way on
every run; ``plan`` describes the choices for a layer and ``python -m tinygrad_cnn.kernels`` prints
them for the built-in nets. Some choices are not rules: a small layer may be computed by banded
matrices (``conv_banded.py``) or over shifted columns instead, and a layer's weight gradient over
shifted columns (``conv2d_weight_grad_shifted``) where its forward could take them, each where that
was the fastest when timed on this host (``tuning.py``; see ``_methods_offered``), and then on
every later run there too.
"""
import functools
import math
from dataclasses import replace

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import conv_banded, memory, tuning
from .copies import copy_rows, crop_spatial, even_slices, pad_spatial


# Bytes of im2col columns per chunk of samples: enough for BLAS to run near full speed on one GEMM
# per chunk, few enough to stay in the L2/L3 cache and out of the peak memory of a training step.
# Measured on 2 cores (seed net / LeNet steps at batch 64): 2 MB is 6% / 1% slower than 3-4 MB,
# 1 MB 37% / 7% slower; the seed step's peak memory was 8.6 MB at 2 MB, 10.6 at 3 and 11.4 at 4.
COLUMN_CHUNK_BYTES = 3 << 20
# A large layer (too large for one GEMM per sample) over shifted columns takes chunks of at least
# ``SHIFTED_CHUNK_SAMPLES`` samples, up to ``SHIFTED_CHUNK_BYTES``: its one GEMM per chunk, of kw
# times the output channels as rows, runs faster over more columns. Measured on an Intel Xeon host
# (2 threads, min of 15 calls, two alternations), 64 -> 64 on 32 x 32 at batch 32, a sample per
# chunk at 3 MB -> three at 6 MB: forward 19.1-19.5 -> 15.2-15.5 ms, input gradient 19.1-19.3 ->
# 15.7-15.8, weight gradient 19.5-19.6 -> 18.8-18.9 (columns copied per kernel offset gained nothing
# at 6 MB: 22.0-22.9 against 21.9-22.4 ms forward). LeNet's second layer, 11 samples a chunk at 3
# MB, gained 4-9% a kernel at 6 MB but 1% of its training step, for 4 MB more at its peak (27.9 ->
# 32.2 MB), and the seed net's second layer on 56 x 56 images 8 MB (14.6 -> 23.1): so only chunks
# of fewer samples grow.
SHIFTED_CHUNK_SAMPLES = 3
SHIFTED_CHUNK_BYTES = 6 << 20


class Columns:
    """How the windows of an (N, C, H, W) input become GEMM columns, a chunk of samples at a time,
    and how GEMM results of shape (groups, O/groups, m * positions) map to and from (m, O, OH, OW)
    images.

    A sample's positions are its ``out_hw[0]`` output rows of ``row`` positions each. In general
    ``row`` is the output width and a window row is a short strided slice of the input. With stride
    1 and ``wide`` rows, ``row`` is the padded input's width Wp instead: kernel offset (i, j) then
    sees one contiguous run of the padded input starting at i*dh*Wp + j*dw, so im2col is a plain
    memory copy. The price is Wp - OW extra positions per row, which straddle the image edge:
    their results are dropped (``to_image``), and for the weight gradient their gradients are zero
    (``from_image``), and so are their columns if the input holds an inf or NaN (0 * inf = NaN).
    col2im uses window corners only.
    """

    def __init__(self, x_shape, geometry, out_hw, out_channels: int, dtype, wide_rows: bool, shifted=False,
                 large=False):
        n, c, h, w = x_shape
        (ph, pw), (kh, kw) = geometry.padding, geometry.kernel
        self.geometry, self.out_hw = geometry, tuple(out_hw)
        self.padded_hw = (h + 2 * ph, w + 2 * pw)
        self.wide = wide_rows and _whole_rows_fit(w, geometry, out_hw)
        self.row = self.padded_hw[1] if self.wide else out_hw[1]
        self.positions = out_hw[0] * self.row
        # the run each kernel offset sees along a sample's wide rows: it ends at the last real position
        self.run = (out_hw[0] - 1) * self.row + out_hw[1] if self.wide else None
        self.shifted = shifted and self.wide
        # a chunk's GEMM holds its columns and, on the other side, a row per output channel (shifted:
        # kh rather than kh * kw copies of the input, and a result per kernel column)
        rows = c * kh + out_channels * kw if self.shifted else c * kh * kw + out_channels
        per_sample = rows * self.positions * np.dtype(dtype).itemsize
        # the bytes of a chunk, and the least its scratch block holds, so that the chunks of every
        # layer with the same budget take blocks of one size, which the next kernel's chunks reuse;
        # ``large`` (a layer too large for one GEMM per sample) over shifted columns: room for a few
        # samples (``SHIFTED_CHUNK_SAMPLES``, up to ``SHIFTED_CHUNK_BYTES``)
        self.chunk_bytes = COLUMN_CHUNK_BYTES
        if large and self.shifted:
            self.chunk_bytes = min(SHIFTED_CHUNK_BYTES, max(COLUMN_CHUNK_BYTES, SHIFTED_CHUNK_SAMPLES * per_sample))
        self.chunks = sample_chunks(n, per_sample, self.chunk_bytes)
        # a block of samples' rows for the small layers' kernels (``each_block``)
        self.blocks = _blocks(n, out_hw[0], c * kh * kw * self.row * np.dtype(dtype).itemsize,
                              (c * kh * kw + out_channels) * self.row * np.dtype(dtype).itemsize)

    def windows(self, x: np.ndarray) -> np.ndarray:
        """A read-only view of every window of the padded ``x``: (N, C, kh, kw, run) for wide rows,
        else (N, C, kh, kw, OH, OW)."""
        padded = pad_spatial(x, self.geometry.padding)
        (kh, kw), (dh, dw), (sth, stw) = self.geometry.kernel, self.geometry.dilation, self.geometry.stride
        if self.wide:
            padded = np.ascontiguousarray(padded)
            sn, sc, s_row, s_col = padded.strides
            shape, strides = (self.run,), (s_col,)
        else:
            sn, sc, s_row, s_col = padded.strides
            shape, strides = self.out_hw, (s_row * sth, s_col * stw)
        return as_strided(padded, shape=(padded.shape[0], padded.shape[1], kh, kw, *shape),
                          strides=(sn, sc, s_row * dh, s_col * dw, *strides), writeable=False)

    def columns(self, windows: np.ndarray, chunk: slice, zero_extra=False, ones=False) -> np.ndarray:
        """(groups, C/groups * kh * kw, m * positions) for the m samples in ``chunk`` (one copy);
        ``zero_extra``: zeros at the extra positions of wide rows instead of the values there;
        ``ones`` (one group only): a last row of ones under them, for the bias (``_with_bias``)."""
        windows = windows[chunk]
        m, c, kh, kw = windows.shape[:4]
        k = c * kh * kw
        # scratch, of the chunk size whatever the layer: every layer's columns share one block
        columns = memory.scratch((k + ones, m * self.positions), windows.dtype, reserve=COLUMN_CHUNK_BYTES)
        if ones:
            columns[k] = 1
        as_image = columns[:k].reshape(c, kh, kw, m, *((self.positions,) if self.wide else self.out_hw))
        if self.wide:
            # past the last real position of each sample the run would leave the padded input:
            # those few positions (dropped, or multiplied by a zero gradient) are zeroed instead
            as_image[..., self.run :] = 0
            as_image = as_image[..., : self.run]
        copy_rows(as_image, windows.transpose(1, 2, 3, 0, *range(4, windows.ndim)))
        if self.wide and zero_extra:
            columns[:k].reshape(c, kh, kw, m, self.out_hw[0], self.row)[..., self.out_hw[1] :] = 0
        groups = self.geometry.groups
        return columns.reshape(groups, (k + ones) // groups, m * self.positions)

    def row_windows(self, x: np.ndarray) -> np.ndarray:
        """For ``shifted`` columns: a read-only view (N, C, kh, positions) of the padded ``x``, for
        each kernel row i the sample's output rows as whole padded rows (what kernel column 0 sees,
        run on to the end of the last row)."""
        padded = np.ascontiguousarray(pad_spatial(x, self.geometry.padding))
        sn, sc, s_row, s_col = padded.strides
        kh, dh = self.geometry.kernel[0], self.geometry.dilation[0]
        return as_strided(padded, shape=(*padded.shape[:2], kh, self.positions),
                          strides=(sn, sc, s_row * dh, s_col), writeable=False)

    def shifted_columns(self, row_windows: np.ndarray, chunk: slice, dtype, ones=False, more_rows=0) -> tuple:
        """The columns for the m samples in ``chunk`` from one copy of the input per kernel row, as
        (groups, C/groups * kh, m * positions + tail) of ``dtype``; m * positions; and a matrix of
        ``more_rows`` rows as long, for the GEMM's result or other operand, in the same scratch
        block (a chunk's temporaries take one block, as ``COLUMN_CHUNK_BYTES`` counts them). Along
        whole padded rows, kernel column j sees what column 0 sees moved on by j * dw positions, so
        its columns are these, read from the (j * dw)-th on (the tail is the (kw - 1) * dw positions
        the last kernel column reads past the chunk, zeros). Unlike ``columns``, the extra positions
        hold other positions' values (the next row's, the next sample's), which cannot be zeroed:
        they suit results whose extra positions are dropped. ``ones`` (one group only): a last row
        of ones, as in ``columns``. Views of a scratch block (the columns read-only), valid until
        the next chunk's."""
        windows = row_windows[chunk]
        m, c, kh = windows.shape[:3]
        kw, dw, groups = self.geometry.kernel[1], self.geometry.dilation[1], self.geometry.groups
        length, tail = m * self.positions, dw * (kw - 1)
        rows = c * kh + ones
        block = memory.scratch(((rows + more_rows) * (length + tail),), dtype, reserve=self.chunk_bytes)
        copies = block[: rows * (length + tail)].reshape(rows, length + tail)
        copies[: c * kh, length:] = 0
        if ones:
            copies[c * kh] = 1
        copy_rows(copies[: c * kh, :length].reshape(c, kh, m, self.positions), windows.transpose(1, 2, 0, 3))
        copies.flags.writeable = False
        more = block[rows * (length + tail) :].reshape(more_rows, length + tail)
        return copies.reshape(groups, rows // groups, length + tail), length, more

    def each_block(self, windows: np.ndarray, zero_extra=False, ones=False):
        """For each of ``blocks``, (samples, rows, columns): the columns of the output rows ``rows``
        of the m samples ``samples``, (m, groups, C/groups * kh * kw, height * row), kept per sample;
        ``zero_extra`` and ``ones`` as in ``columns``. Every block's columns are copied into one
        buffer, in turn."""
        if not self.blocks:  # no samples
            return
        c, kh, kw = windows.shape[1:4]
        k = c * kh * kw
        (first_samples, first_rows), groups = self.blocks[0], self.geometry.groups
        largest = (first_samples.stop - first_samples.start) * (k + ones) * (first_rows.stop - first_rows.start) * self.row
        buffer = memory.scratch((largest,), windows.dtype, reserve=COLUMN_CHUNK_BYTES)
        zeroed = None
        for samples, rows in self.blocks:
            m, height = samples.stop - samples.start, rows.stop - rows.start
            block = buffer[: m * (k + ones) * height * self.row].reshape(m, k + ones, height * self.row)
            if ones:
                block[:, k] = 1
            columns = block[:, :k].reshape(m, c, kh, kw, height * self.row)
            if self.wide:
                start, length = rows.start * self.row, (height - 1) * self.row + self.out_hw[1]
                if zeroed != (m, height):  # the last row's extra positions, past the run (see ``columns``)
                    columns[..., length:] = 0
                    zeroed = (m, height)
                copy_rows(columns[..., :length], windows[samples, ..., start : start + length])
                if zero_extra:
                    columns.reshape(m, c, kh, kw, height, self.row)[..., self.out_hw[1] :] = 0
            else:
                copy_rows(columns.reshape(m, c, kh, kw, height, self.row), windows[samples, ..., rows, :])
            yield samples, rows, block.reshape(m, groups, (k + ones) // groups, height * self.row)

    def block_rows(self, y: np.ndarray, samples: slice, rows: slice, positions_first: bool) -> np.ndarray:
        """The rows ``rows`` of the samples ``samples`` of ``y`` (N, O, OH, OW), positions laid out
        as ``each_block`` lays them out (zero at the extra ones): (m, groups, O/groups, height * row),
        or with ``positions_first`` (m, groups, height * row, O/groups), stored so (a copy)."""
        y = y[samples, :, rows]
        m, o, height = y.shape[:3]
        groups = self.geometry.groups
        if positions_first:
            laid_out = memory.empty((m, height, self.row, o), y.dtype)
            if self.row != self.out_hw[1]:
                laid_out[:, :, self.out_hw[1] :] = 0
            np.copyto(laid_out[:, :, : self.out_hw[1]], y.transpose(0, 2, 3, 1))
            return laid_out.reshape(m, height * self.row, groups, o // groups).transpose(0, 2, 1, 3)
        if self.row != self.out_hw[1] or not y.flags.c_contiguous:
            laid_out = memory.empty((m, o, height, self.row), y.dtype)
            laid_out[..., self.out_hw[1] :] = 0
            copy_rows(laid_out[..., : self.out_hw[1]], y)
            y = laid_out
        return y.reshape(m, groups, o // groups, height * self.row)

    def to_image(self, result: np.ndarray, out: np.ndarray, bias=None) -> None:
        """Write a GEMM result (groups, O/groups, m * positions) into ``out`` (m, O, OH, OW), plus
        ``bias`` (O,) when given: a copy that drops the extra positions and reorders the axes
        (``copy_rows``: faster than adding the bias on the way), then the bias added in place."""
        m, o = out.shape[:2]
        copy_rows(out, result.reshape(o, m, self.out_hw[0], self.row)[..., : self.out_hw[1]].transpose(1, 0, 2, 3))
        if bias is not None:
            out += bias.reshape(o, 1, 1)

    def from_image(self, y: np.ndarray) -> np.ndarray:
        """(m, O, OH, OW) -> (groups, O/groups, m * positions), zero at the extra positions."""
        m, o = y.shape[:2]
        rows = memory.empty((o, m, self.out_hw[0], self.row), y.dtype)
        if self.row != self.out_hw[1]:
            rows[..., self.out_hw[1] :] = 0
        copy_rows(rows[..., : self.out_hw[1]], y.transpose(1, 0, 2, 3))
        return rows.reshape(self.geometry.groups, o // self.geometry.groups, m * self.positions)

    def shifted_grads(self, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """For the weight gradient over shifted columns (one group): (m, O, OH, OW) -> ``out`` (kw *
        O, m * positions + tail), kw copies of ``from_image``'s layout, copy j moved on by j * dw
        positions and zero before and after: its row (j, o) meets the shifted columns where kernel
        column j's columns meet the gradient."""
        m, o = y.shape[:2]
        kw, dw = self.geometry.kernel[1], self.geometry.dilation[1]
        length, tail = m * self.positions, dw * (kw - 1)
        grads = out.reshape(kw, o, length + tail)
        first = grads[0, :, :length].reshape(o, m, self.out_hw[0], self.row)
        if self.row != self.out_hw[1]:
            first[..., self.out_hw[1] :] = 0
        copy_rows(first[..., : self.out_hw[1]], y.transpose(1, 0, 2, 3))
        grads[0, :, length:] = 0
        for j in range(1, kw):
            grads[j, :, : j * dw] = 0
            grads[j, :, j * dw : j * dw + length] = grads[0, :, :length]
            grads[j, :, j * dw + length :] = 0
        return out

    def add_to_image(self, columns: np.ndarray, padded: np.ndarray) -> None:
        """col2im: add each entry of ``columns`` (groups, C/groups * kh * kw, m * positions), laid
        out as ``columns`` returns them, onto the position of ``padded`` (m, C, Hp, Wp) it would be
        copied from. Window corners only (``wide`` is False)."""
        m, c = padded.shape[:2]
        windows = columns.reshape(c, -1, m, *self.out_hw).transpose(2, 0, 1, 3, 4)
        for k, rows, cols in self.geometry.offset_slices(self.out_hw):
            padded[:, :, rows, cols] += windows[:, :, k]


def _whole_rows_fit(width: int, geometry, out_hw) -> bool:
    """Whether positions may run along whole padded rows (``Columns.wide``) for an input ``width``
    wide: stride 1, and a padded row at most twice an output row, so that the positions computed
    and dropped stay fewer than the real ones."""
    return geometry.stride == (1, 1) and width + 2 * geometry.padding[1] <= 2 * out_hw[1]


def sample_chunks(n: int, bytes_per_sample: int, chunk_bytes: int) -> list:
    """Slices of the batch axis, each with at most as many samples as fit in ``chunk_bytes``, their
    sizes differing by one sample at most, larger first: no small last chunk (a slow GEMM), and the
    first chunk's buffer serves the others."""
    return even_slices(n, chunk_bytes // max(1, bytes_per_sample))


def _blocks(n: int, out_rows: int, column_bytes_per_row: int, bytes_per_row: int) -> list:
    """(samples, rows) pairs of slices covering n samples of ``out_rows`` output rows each: each
    sample's rows cut into pieces whose columns (``column_bytes_per_row`` per row) stay within
    ``GEMM_OPERAND_BYTES``, the samples into chunks of ``COLUMN_CHUNK_BYTES`` (``bytes_per_row``
    per row of a sample: columns and results)."""
    pieces = even_slices(out_rows, GEMM_OPERAND_BYTES // max(1, column_bytes_per_row))
    height = pieces[0].stop - pieces[0].start if pieces else 0
    return [(samples, rows) for samples in even_slices(n, COLUMN_CHUNK_BYTES // max(1, height * bytes_per_row))
            for rows in pieces]


def _per_sample(w_shape, out_hw, groups: int, most=None) -> bool:
    """Whether ``conv2d`` makes one GEMM per sample: a sample's GEMM has at most ``most``
    multiply-adds (``PER_SAMPLE_MULTIPLY_ADDS``; ``conv2d_weight_grad`` asks with
    ``PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS``)."""
    most = PER_SAMPLE_MULTIPLY_ADDS if most is None else most
    return math.prod(w_shape) * out_hw[0] * out_hw[1] // groups <= most


def _weight_grad_transposed(w_shape, groups: int) -> bool:
    """Whether the weight gradient's GEMM makes (K, O/G) rather than (O/G, K): the larger as rows."""
    return math.prod(w_shape[1:]) > w_shape[0] // groups


def _shifted_forward(w_shape, groups: int) -> bool:
    """Whether the forward takes shifted columns (``Columns.shifted_columns``) where it takes whole
    rows: with enough input channels per output channel that the copies they spare outweigh adding
    up a result per kernel column."""
    return w_shape[1] >= SHIFTED_FORWARD_CHANNEL_RATIO * (w_shape[0] // groups)


def _input_grad_by_correlation(w_shape, x_shape, geometry) -> bool:
    """Whether the input gradient is a correlation of the output gradient (see conv2d_input_grad)."""
    return geometry.stride == (1, 1) and w_shape[0] <= 2 * x_shape[1]


def plan(x_shape, w_shape, geometry) -> dict:
    """How the fast kernels compute the convolution of an input of ``x_shape`` with weights of
    ``w_shape``: the GEMM layout chosen for each of its three kernels, by the rules above (fixed
    rules, the same on every run), and for a small layer whether banded matrices are its other
    method and which of the two this host chose (``tuning``; read from the choices file, nothing
    timed here). ``python -m tinygrad_cnn.kernels`` prints it for the layers of the built-in nets."""
    n, g, o = x_shape[0], geometry.groups, w_shape[0]
    out_hw = geometry.output_size(*x_shape[2:])
    k = math.prod(w_shape[1:])
    rows, cols = ("K", "O/G") if _weight_grad_transposed(w_shape, g) else ("O/G", "K")
    if _per_sample(w_shape, out_hw, g, PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS):
        weight_grad = f"({rows} x positions) @ (positions x {cols}) per sample, summed, K = {k}, O/G = {o // g}"
    else:
        weight_grad = f"({rows} x m*positions) @ (m*positions x {cols}) per chunk, K = {k}, O/G = {o // g}"
    if _input_grad_by_correlation(w_shape, x_shape, geometry):
        (crop_h, crop_w), transposed = _as_correlation(geometry)
        cropped = (n, o, out_hw[0] - 2 * crop_h, out_hw[1] - 2 * crop_w)
        flipped = (x_shape[1], o // g, *w_shape[2:])
        inner = _forward_plan(cropped, flipped, transposed) + _tuned_plan("conv2d", cropped, flipped, flipped, transposed)
        input_grad = "a correlation with the flipped kernel: " + inner
    else:
        input_grad = "weights.T @ grad per chunk, then col2im"
    grad_shape = (n, o, *out_hw)
    return {"forward": _forward_plan(x_shape, w_shape, geometry) + _tuned_plan("conv2d", x_shape, w_shape, w_shape, geometry),
            "weight gradient": weight_grad + _tuned_plan("conv2d_weight_grad", x_shape, grad_shape, w_shape, geometry),
            "input gradient": input_grad}


def _forward_plan(x_shape, w_shape, geometry) -> str:
    g, o, k = geometry.groups, w_shape[0], math.prod(w_shape[1:])
    out_hw = geometry.output_size(*x_shape[2:])
    if _per_sample(w_shape, out_hw, g):
        layout = Columns(x_shape, geometry, out_hw, o, np.float32, _wide_rows(w_shape, g))
        samples, rows = layout.blocks[0]
        pieces = "" if rows.stop == out_hw[0] else f", {rows.stop} of its {out_hw[0]} rows at a time"
        return (f"one GEMM per sample ({o // g} x {k} @ {k} x {rows.stop * layout.row}{pieces}), in blocks of "
                f"{samples.stop} samples' {'whole padded rows' if layout.wide else 'window corners'}, into NCHW")
    layout = Columns(x_shape, geometry, out_hw, o, np.float32, _wide_rows(w_shape, g), _shifted_forward(w_shape, g),
                     large=True)
    if layout.shifted:
        return (f"one GEMM per chunk with the kernel columns' weights stacked ({len(layout.chunks)} chunks of <= "
                f"{layout.chunks[0].stop} samples, shifted columns: a copy per kernel row), the kernel columns' "
                f"results added up, reordered into NCHW")
    return (f"one GEMM per chunk ({len(layout.chunks)} chunks of <= {layout.chunks[0].stop} samples, "
            f"{'whole padded rows' if layout.wide else 'window corners'}), reordered into NCHW")


def _wide_rows(w_shape, groups: int) -> bool:
    """Whole-row columns pay when the columns (C/G * kh * kw rows) outweigh the output rows."""
    return w_shape[1] * w_shape[2] * w_shape[3] > w_shape[0] // groups


# A sample's GEMM of at most this many multiply-adds is made one sample at a time (see
# conv2d_per_sample and conv2d_weight_grad_per_sample). Measured on 2 cores (AMD EPYC, OpenBLAS SkylakeX kernels), whole convolutions
# at batch 64, chunked -> per sample, one thread / two: the seed net's input gradient (a correlation,
# 0.92M multiply-adds per sample) 4.35 -> 3.28 / 4.66 -> 3.24 ms, its second layer (0.64M)
# 2.70 -> 2.53 / 2.55 -> 2.53 ms, but LeNet's second layer (3.6M) 7.9 -> 7.4 / 5.0 -> 5.8 ms: with
# two threads BLAS splits a large product per sample and pays a hand-off each time.
PER_SAMPLE_MULTIPLY_ADDS = 1 << 20
# The most bytes of columns one sample's GEMM in those layers takes (``conv2d_per_sample``): past
# them OpenBLAS's float32 GEMM slows down. Measured (one thread, AMD EPYC, SkylakeX kernels) with 8
# rows and K = 200: (8 x K) @ (K x P) ran at 90-103 GFLOP/s for K * P * 4 bytes up to 480 KB, at
# 54-58 from 512 KB.
GEMM_OPERAND_BYTES = 448 << 10
# The weight gradient pays per sample up to larger layers, as its chunked GEMM reads the gradient
# transposed: LeNet's second layer (3.6M multiply-adds a sample) took 12.5-13.0 ms per sample
# against 15.3-16.7 chunked (two threads, seven alternations; its forward and input gradient were
# slower per sample).
PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS = 1 << 22


# The forward (and the input gradient, a correlation) takes shifted columns (``Columns.shifted_columns``,
# a copy of the input per kernel row rather than per kernel offset, then a result per kernel column
# to add up) when the input has at least this many times as many channels as the output, per group.
# Measured, copies per kernel offset -> shifted (AMD EPYC, 2 threads, 3x3 kernels, batch 64 of
# 14 x 14 unless said; medians of 25-30 calls, alternating, two or three processes): 64 -> 32
# channels 6.8 -> 5.6 and 8.0 -> 6.5 ms, 64 -> 64 9.6 -> 8.9 and 10.2 -> 9.6, 64 -> 64 on 32 x 32 at
# batch 32 21.6 -> 20.7 and 23.8 -> 21.9 (even in a later check); with fewer input than output
# channels the two were even within their spread (32 -> 64 5.4 -> 5.5 and 5.3 -> 5.1, 16 -> 64
# 3.6 -> 3.4). In a process where everything ran at about twice its usual time (the state
# benchmarks/run.py's hand-off probe looks for), 64 -> 32 took 17.7 -> 10.2 ms: a third of the bytes
# written for BLAS to read. So the rule takes them down to half as many input as output channels,
# where the sums cost no more than the copies they spare (medians of eight alternations, three
# processes: 32 -> 64 4.91 -> 4.77, 5.87 -> 5.81 and 5.81 -> 5.59 ms; 32 -> 64 on 28 x 28 17.0 ->
# 17.0, 20.9 -> 20.7, 20.2 -> 20.7; 64 -> 128 on 16 x 16 at batch 32 10.2 -> 10.3, 11.5 -> 11.4,
# 9.5 -> 9.5) and the state above costs them less (32 -> 64 10.6 -> 9.0 and 10.8 -> 9.6; inside
# LeNet's training step, both forwards, medians of 100 steps: 13.2 -> 11.2 and 12.2 -> 10.2 there,
# 7.1 -> 7.1 and 6.9 -> 7.1 in the usual state). With a quarter (16 -> 64) they lost: 2.9 -> 3.1,
# 3.5 -> 4.0, 3.1 -> 3.4; 32 -> 128 8.3 -> 8.8, 9.8 -> 10.5, 8.7 -> 9.3. The weight gradient does
# not take them by this rule: its extra positions must meet zeros where the input holds an inf
# (0 * inf = NaN), and a version with a GEMM per kernel column that fell back to ``columns`` then
# ran the 64 -> 64 convolution's forward and backward 3% slower (1.012-1.071, eleven rounds of
# benchmarks/compare.py, AMD EPYC) and LeNet's second layer's 6.5-8.1 ms against 5.6-6.4 with its
# GEMM per sample (min of 100 training steps). With one GEMM per chunk it may, where timed faster
# (below).
SHIFTED_FORWARD_CHANNEL_RATIO = 0.5


# Where the fixed rules above are not the whole story, other methods compete with them, timed on
# the host once per shape and kept (``tuning.choose``), since which is faster depends on the host
# more than on the shape (``_methods_offered``):
#
# * banded matrices (``conv_banded.py``), forward and weight gradient (and so the input gradient, a
#   correlation), for a small layer (one ``_per_sample`` takes) with stride 1, one group and at most
#   ``BANDED_MAX_OUT_CHANNELS`` output channels. Measured on an Intel Xeon host (2 threads, batch 64,
#   min of 30 calls), im2col -> banded: the seed net's second layer's forward 2.98 -> 2.16 ms,
#   weight gradient 3.02 -> 2.76, input gradient 4.88 -> 3.57; its first layer's input gradient 1.35
#   -> 0.90; but LeNet's first (1 -> 32 channels, 3x3) 0.66 -> 1.82 forward: with 32 channels the
#   GEMMs of im2col are fine.
# * shifted columns, chunked (``conv2d_chunked``, ``conv2d_weight_grad_shifted``), for a small
#   layer's forward and any layer's weight gradient, where a large layer's forward takes them by
#   ``SHIFTED_FORWARD_CHANNEL_RATIO`` (stride 1, whole rows) and there is one group; the weight
#   gradient for finite inputs only. Measured on the Intel Xeon host (2 threads, min of 11-21 calls,
#   alternating), the rule's method -> shifted: the seed net's second layer's forward (banded) 1.93
#   -> 1.48 ms, its input gradient (banded) 3.12 -> 2.24, but its weight gradient (banded) 2.00 ->
#   2.47; the 64 -> 64 convolution's weight gradient on 32 x 32 at batch 32 22.7-24.2 -> 20.8-21.2,
#   LeNet's second layer's 5.4-5.6 -> 5.1-5.4.
BANDED_MAX_OUT_CHANNELS = 16
# "im2col", "banded" or "shifted" forces that method wherever it is offered (the tests use it);
# None: the timed choice.
FORCED_METHOD = None


def _banded_applies(x_shape, w_shape, geometry, out_hw) -> bool:
    return (geometry.stride == (1, 1) and geometry.groups == 1 and w_shape[0] <= BANDED_MAX_OUT_CHANNELS
            and _per_sample(w_shape, out_hw, 1) and min(x_shape[0], w_shape[0], w_shape[1], *out_hw) > 0
            and conv_banded.applies(x_shape, w_shape, geometry, out_hw))


@functools.lru_cache(maxsize=1024)
def _question(kernel: str, x_shape, x_dtype, other_shape, other_dtype, geometry) -> str:
    """What ``tuning.choose`` is asked, and what the choices file keeps the answer under."""
    operand = "weights" if kernel == "conv2d" else "output gradient"
    return f"{kernel}: input {tuple(x_shape)} {np.dtype(x_dtype)}, {operand} {tuple(other_shape)} {np.dtype(other_dtype)}, {geometry}"


def _shifted_applies(x_shape, w_shape, geometry, out_hw) -> bool:
    """Whether shifted columns may compute the layer beside its rule's method (a small layer's
    forward, and any layer's weight gradient): one group, enough input channels, and whole rows (as
    ``Columns`` takes them)."""
    return (geometry.groups == 1 and min(x_shape[0], *w_shape, *out_hw) > 0 and _wide_rows(w_shape, 1)
            and _shifted_forward(w_shape, 1) and _whole_rows_fit(x_shape[3], geometry, out_hw))


def _methods_offered(kernel: str, x_shape, w_shape, geometry, out_hw) -> list:
    """The methods that compete for ``kernel`` ("conv2d" or "conv2d_weight_grad") on this layer,
    im2col (by the fixed rules) first: banded matrices for a small layer with few output channels,
    shifted columns for a small layer and for any layer's weight gradient, where they apply."""
    offered = ["im2col"]
    if _banded_applies(x_shape, w_shape, geometry, out_hw):
        offered.append("banded")
    if (kernel == "conv2d_weight_grad" or _per_sample(w_shape, out_hw, geometry.groups)) \
            and _shifted_applies(x_shape, w_shape, geometry, out_hw):
        offered.append("shifted")
    return offered


def _method(kernel: str, x, other, w_shape, geometry, out_hw, methods, needs_finite: str) -> str:
    """Which of ``methods`` ({name: a call computing ``kernel`` that way}, for timing) computes
    ``kernel`` on ``x`` and ``other`` (the weights or the output gradient): im2col where it is the
    only one offered; else the one forced (``FORCED_METHOD``) or timed the faster on this host
    (``tuning.choose``), unless that is ``needs_finite`` and ``x`` holds an inf or NaN."""
    offered = _methods_offered(kernel, x.shape, w_shape, geometry, out_hw)
    if len(offered) == 1:
        return "im2col"
    method = FORCED_METHOD
    if method is None:
        question = _question(kernel, x.shape, x.dtype, other.shape, other.dtype, geometry)
        method = tuning.choose(question, {name: methods[name] for name in offered}, fixed="im2col")
    if method not in offered or (method == needs_finite and not np.isfinite(x).all()):
        return "im2col"
    return method


_ALTERNATIVES = {"banded": "banded matrices (K = {k}, {columns} columns, {tiles} tile(s) a row)",
                 "shifted": "shifted columns (a GEMM per chunk, {stacked} stacked {kw} times{finite})"}


def _tuned_plan(kernel: str, x_shape, other_shape, w_shape, geometry) -> str:
    """For ``plan``: where other methods compete with im2col for ``kernel``, a clause naming them and
    which one this host chose for float32 operands (read from the choices file, nothing timed); else ""."""
    out_hw = geometry.output_size(*x_shape[2:])
    offered = _methods_offered(kernel, x_shape, w_shape, geometry, out_hw)
    if len(offered) == 1:
        return ""
    details = {"kw": w_shape[3], "stacked": "the gradient" if kernel == "conv2d_weight_grad" else "the weights",
               "finite": ", for finite inputs" if kernel == "conv2d_weight_grad" else ""}
    if "banded" in offered:
        t, tiles, _, k = conv_banded.layout(x_shape, w_shape, geometry, out_hw)
        details.update(k=k, columns=w_shape[0] * t, tiles=tiles)
    how = "; or " + ", or ".join(_ALTERNATIVES[name].format(**details) for name in offered[1:]) + ", the faster on this host: "
    if tuning.mode() == "fixed":
        return how + f"not timed ({tuning.MODE_VARIABLE}=fixed), im2col"
    kept = tuning.choices().get(_question(kernel, x_shape, np.float32, other_shape, np.float32, geometry))
    if kept is None or set(kept["ms"]) != set(offered):
        return how + "timed at the layer's first use"
    times = ", ".join(f"{name} {'failed' if ms is None else f'{ms} ms'}" for name, ms in sorted(kept["ms"].items()))
    return how + f"{kept['method']} ({times})"


def conv2d(x: np.ndarray, w: np.ndarray, geometry, bias=None) -> np.ndarray:
    """(N, C, H, W) correlated with (O, C/G, kh, kw), plus ``bias`` (O,) if given -> (N, O, OH, OW)."""
    g, out_hw = geometry.groups, geometry.output_size(*x.shape[2:])
    ones = _folds_bias(bias, g, np.result_type(x, w))
    if _per_sample(w.shape, out_hw, g):
        im2col = lambda: conv2d_per_sample(x, w, geometry, bias)  # noqa: E731
    else:
        im2col = lambda: conv2d_chunked(x, w, geometry, bias, _shifted_forward(w.shape, g))  # noqa: E731
    methods = {"im2col": im2col,
               "banded": lambda: conv_banded.conv2d(x, w, geometry, bias, ones, COLUMN_CHUNK_BYTES),
               "shifted": lambda: conv2d_chunked(x, w, geometry, bias, shifted=True)}
    return methods[_method("conv2d", x, w, w.shape, geometry, out_hw, methods, needs_finite="banded")]()


def conv2d_chunked(x: np.ndarray, w: np.ndarray, geometry, bias, shifted: bool) -> np.ndarray:
    """``conv2d`` by one GEMM per chunk of samples, over shifted columns where ``shifted`` and they
    apply (stride 1, whole rows), else over a copy per kernel offset."""
    n, o, g = x.shape[0], w.shape[0], geometry.groups
    out_hw = geometry.output_size(*x.shape[2:])
    dtype = np.result_type(x, w)
    layout = Columns(x.shape, geometry, out_hw, o, dtype, _wide_rows(w.shape, g), shifted,
                     large=not _per_sample(w.shape, out_hw, g))
    out = memory.empty((n, o, *out_hw), dtype)
    ones = _folds_bias(bias, g, dtype)
    if layout.shifted:
        # one GEMM with every kernel column's weights stacked as rows, (G, kw * O/G, C/G * kh) @ the
        # columns; kernel column j's block of results, read from the (j * dw)-th position on, is
        # added onto column 0's. One GEMM of kw times the rows runs faster than kw GEMMs (64 -> 64 on
        # 32 x 32, Intel Xeon: 11.0-11.4 against 12.5-12.8 ms of GEMM a forward)
        kw, dw, og = w.shape[3], geometry.dilation[1], o // g
        per_column = _with_bias(w.reshape(g, og, -1, kw).transpose(3, 0, 1, 2), bias if ones else None, dtype)
        weights = np.ascontiguousarray(per_column.transpose(1, 0, 2, 3)).reshape(g, kw * og, -1)
        windows = layout.row_windows(x)
        for chunk in layout.chunks:
            columns, length, results = layout.shifted_columns(windows, chunk, dtype, ones, more_rows=kw * o)
            results = np.matmul(weights, columns, out=results.reshape(g, kw * og, -1))
            result = results[:, :og, :length]
            for j in range(1, kw):
                result += results[:, j * og : (j + 1) * og, j * dw : j * dw + length]
            layout.to_image(result, out[chunk], None if ones else bias)
            del columns, results, result  # before the next chunk's are made
        return out
    windows = layout.windows(x)
    weights = _with_bias(w.reshape(g, o // g, -1), bias if ones else None, dtype)
    for chunk in layout.chunks:
        layout.to_image(memory.matmul(weights, layout.columns(windows, chunk, ones=ones)), out[chunk],
                        None if ones else bias)
    return out


def conv2d_per_sample(x: np.ndarray, w: np.ndarray, geometry, bias=None) -> np.ndarray:
    """``conv2d`` for a small layer, in blocks of samples whose columns fit in a core's L2 cache.

    With few output channels a GEMM reads each column only a few times, so where the columns
    come from decides its speed: from the L2 cache, a GEMM of 8 rows (8 x 200 @ 200 x 480, the
    seed net's second layer) ran at 90-100 GFLOP/s on one thread; streamed from a 3 MB chunk, the
    same products ran at 24. So each block's columns (``Columns.blocks``) are copied and multiplied
    straight away, along whole padded rows where the stride is 1 (every copy a plain memory copy),
    and its results, (m, O, rows, row), are copied into the NCHW output, dropping the extra
    positions; the bias comes out of the GEMM where ``_folds_bias`` says so, else it is added there.
    Larger layers keep one GEMM per chunk (see ``PER_SAMPLE_MULTIPLY_ADDS``)."""
    n, o, g = x.shape[0], w.shape[0], geometry.groups
    out_hw = geometry.output_size(*x.shape[2:])
    dtype = np.result_type(x, w)
    layout = Columns(x.shape, geometry, out_hw, o, dtype, _wide_rows(w.shape, g))
    windows = layout.windows(x)
    ones = _folds_bias(bias, g, dtype)
    weights = _with_bias(w.reshape(g, o // g, -1), bias if ones else None, dtype)
    out = memory.empty((n, o, *out_hw), dtype)
    for samples, rows, columns in layout.each_block(windows, ones=ones):
        image = out[samples, :, rows]
        if layout.row == out_hw[1] and rows.stop - rows.start == out_hw[0]:  # the results are NCHW already
            np.matmul(weights, columns, out=image.reshape(len(image), g, o // g, -1))
        else:
            copy_rows(image, memory.matmul(weights, columns).reshape(*image.shape[:3], layout.row)[..., : out_hw[1]])
        if bias is not None and not ones:
            image += bias.reshape(o, 1, 1)
    return out


def _folds_bias(bias, groups: int, dtype) -> bool:
    """Whether the forward adds ``bias`` inside its GEMM: the columns get a last row of ones and the
    weights the bias as a last column (``_with_bias``), so that no pass over the output adds it
    afterwards. One group only (a row of ones per group is not worth its code), and a bias that the
    GEMM's ``dtype`` holds exactly (a float64 bias on float32 images is added afterwards, at its own
    precision, as before). Measured (AMD EPYC, 2 threads, batch 64): the pass cost LeNet's first
    layer 1.12 against 0.61 ms without a bias, its second 4.83 against 4.52, the seed net's first
    0.67 against 0.56 (min of 40 calls); inside
    LeNet's training step, added against folded, alternating every five steps in one process (100
    steps each, min and first quartile), the first layer took 1.35 / 1.61 -> 1.12 / 1.30 ms, the
    second 4.80 / 5.38 -> 4.63 / 5.27; the seed net's first 0.56 / 0.67 -> 0.52 / 0.63."""
    return bias is not None and groups == 1 and np.can_cast(bias.dtype, dtype, casting="safe")


def _with_bias(weights: np.ndarray, bias, dtype) -> np.ndarray:
    """``weights`` (..., O, K) as ``dtype``, C-contiguous; with ``bias`` (O,): (..., O, K + 1), the
    bias the last column of the first of the leading entries and zero in the others (GEMMs over
    the same columns whose results are summed add it once)."""
    if bias is None:
        return np.ascontiguousarray(weights, dtype=dtype)
    out = np.zeros((*weights.shape[:-1], weights.shape[-1] + 1), dtype)
    out[..., :-1] = weights
    out.reshape(-1, *out.shape[-2:])[0, :, -1] = bias
    return out


def conv2d_weight_grad(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry) -> np.ndarray:
    """dL/dw = sum over samples and positions of grad_out times the input's columns."""
    out_hw = grad_out.shape[2:]
    methods = {"im2col": lambda: _weight_grad_im2col(x, grad_out, w_shape, geometry),
               "banded": lambda: conv_banded.conv2d_weight_grad(x, grad_out, w_shape, geometry, COLUMN_CHUNK_BYTES),
               "shifted": lambda: conv2d_weight_grad_shifted(x, grad_out, w_shape, geometry)}
    return methods[_method("conv2d_weight_grad", x, grad_out, w_shape, geometry, out_hw, methods, needs_finite="shifted")]()


def _weight_grad_im2col(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry) -> np.ndarray:
    """``conv2d_weight_grad`` over im2col's columns: one GEMM per sample for a small layer, else one
    per chunk."""
    g, out_hw = geometry.groups, grad_out.shape[2:]
    if _per_sample(w_shape, out_hw, g, PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS):
        return conv2d_weight_grad_per_sample(x, grad_out, w_shape, geometry)
    dtype = np.result_type(x, grad_out)
    layout = Columns(x.shape, geometry, grad_out.shape[2:], w_shape[0], dtype, _wide_rows(w_shape, g))
    windows = layout.windows(x)
    o_per_group, k = w_shape[0] // g, math.prod(w_shape[1:])
    # The GEMM multiplies along the m * positions axis, which both operands store contiguously.
    # BLAS runs it best with the larger of O/G and K as the result's rows: with 8 output
    # channels, (K, m*P) @ (m*P, 8) took 0.20 ms where (8, m*P) @ (m*P, K) took 0.37 (seed net's
    # second layer, one thread; 0.27 against 0.46 ms for its first, 0.38 against 0.49 for
    # LeNet's second, and 0.45 against 0.36 for LeNet's first, with K = 9 < O = 32; on two
    # threads 0.13 against 0.27, 0.28 against 0.59, 0.21 against 0.25, and 0.37 against 0.33).
    transposed = _weight_grad_transposed(w_shape, g)
    total = np.zeros((g, k, o_per_group) if transposed else (g, o_per_group, k), dtype=dtype)
    # the extra positions of wide rows meet a zero gradient; zero their columns too only when the
    # input holds an inf or NaN, which would make 0 * inf = NaN (zeroing costs a strided pass)
    zero_extra = layout.wide and not np.isfinite(x).all()
    for chunk in layout.chunks:
        columns = layout.columns(windows, chunk, zero_extra)
        rows = layout.from_image(grad_out[chunk])
        if transposed:
            total += memory.matmul(columns, rows.swapaxes(-1, -2))
        else:
            total += memory.matmul(rows, columns.swapaxes(-1, -2))
        del columns, rows  # before the next chunk's are made
    return (total.swapaxes(-1, -2) if transposed else total).reshape(w_shape)


def conv2d_weight_grad_per_sample(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry) -> np.ndarray:
    """``conv2d_weight_grad`` for a small layer, in the blocks of ``conv2d_per_sample``: one GEMM
    per sample, summed. Where K = C/G * kh * kw exceeds O/G it is columns (K, positions) @ the
    gradient laid out as (positions, O/G), both operands stored row by row as BLAS reads them: the
    seed net's second layer, (200 x 480) @ (480 x 8) per sample, ran at 100 GFLOP/s so on one
    thread, at 47 with the gradient stored (8, 480) and read transposed, and at 25 as (8 x 480) @
    (480 x 200). Otherwise it is the gradient as it lies (O/G, positions) @ columns.T, which spares
    reordering a gradient of many channels (LeNet's first layer: 0.50 against 1.04 ms)."""
    g, o = geometry.groups, w_shape[0]
    out_hw = grad_out.shape[2:]
    dtype = np.result_type(x, grad_out)
    layout = Columns(x.shape, geometry, out_hw, o, dtype, _wide_rows(w_shape, g))
    windows = layout.windows(x)
    transposed = _weight_grad_transposed(w_shape, g)
    k = math.prod(w_shape[1:])
    total = np.zeros((g, k, o // g) if transposed else (g, o // g, k), dtype=dtype)
    zero_extra = layout.wide and not np.isfinite(x).all()  # as in _weight_grad_im2col
    for samples, rows, columns in layout.each_block(windows, zero_extra):
        grads = layout.block_rows(grad_out, samples, rows, positions_first=transposed)
        if transposed:
            total += np.matmul(columns, grads).sum(axis=0)
        else:
            total += np.matmul(grads, columns.swapaxes(-1, -2)).sum(axis=0)
        del grads
    return (total.swapaxes(-1, -2) if transposed else total).reshape(w_shape)


def conv2d_weight_grad_shifted(x: np.ndarray, grad_out: np.ndarray, w_shape, geometry) -> np.ndarray:
    """``conv2d_weight_grad`` over shifted columns, for stride 1, one group, whole rows and finite
    ``x``: per chunk one GEMM, the output gradient kw times (copy j moved on by j * dw positions,
    ``Columns.shifted_grads``) @ the shifted columns transposed, whose row (j, o) is the gradient of
    kernel column j's weights of output channel o. The extra positions of whole rows hold other
    positions' values, met by the gradient's zeros there: an inf or NaN among them would give NaN
    (0 * inf), hence finite inputs only."""
    o, c, kh, kw = w_shape
    out_hw = grad_out.shape[2:]
    dtype = np.result_type(x, grad_out)
    layout = Columns(x.shape, geometry, out_hw, o, dtype, wide_rows=True, shifted=True,
                     large=not _per_sample(w_shape, out_hw, 1))
    windows = layout.row_windows(x)
    total = np.zeros((kw * o, c * kh), dtype)
    for chunk in layout.chunks:
        columns, _, grads = layout.shifted_columns(windows, chunk, dtype, more_rows=kw * o)
        layout.shifted_grads(grad_out[chunk], grads)
        total += memory.matmul(grads, columns[0].T)
        del columns, grads  # before the next chunk's are made
    return np.ascontiguousarray(total.reshape(kw, o, c, kh).transpose(1, 2, 3, 0))


def conv2d_input_grad(grad_out: np.ndarray, w: np.ndarray, x_shape, geometry) -> np.ndarray:
    """dL/dx, the transposed convolution of ``grad_out``."""
    # With stride 1 it is a correlation (below), whose columns have O/G * kh * kw rows. Otherwise
    # it is weights.T @ grad, whose columns (C/G * kh * kw rows) are added back onto the input
    # (col2im) in kh * kw passes. Measured: the correlation is faster unless the output has many
    # more channels than the input (as in a first layer): 2.1 against 2.9 ms for 8 -> 8 channels,
    # 4.0 against 4.2 for 32 -> 64, 2.9 against 2.2 for 16 -> 64.
    if _input_grad_by_correlation(w.shape, x_shape, geometry):
        (crop_h, crop_w), transposed = _as_correlation(geometry)
        grad_out = grad_out[:, :, crop_h : grad_out.shape[2] - crop_h, crop_w : grad_out.shape[3] - crop_w]
        return conv2d(grad_out, flipped_transpose(w, geometry.groups), transposed)
    g, o = geometry.groups, w.shape[0]
    dtype = np.result_type(grad_out, w)
    layout = Columns(x_shape, geometry, grad_out.shape[2:], o, dtype, wide_rows=False)
    weights_t = w.reshape(g, o // g, -1).swapaxes(1, 2)
    padded = memory.zeros((x_shape[0], x_shape[1], *layout.padded_hw), dtype)
    for chunk in layout.chunks:
        layout.add_to_image(memory.matmul(weights_t, layout.from_image(grad_out[chunk])), padded[chunk])
    return crop_spatial(padded, geometry.padding)


def _as_correlation(geometry) -> tuple:
    """The input gradient with stride 1 as a correlation: dx[h] = sum_i w[i] g[h + p - d*i], a
    correlation of g padded by d*(k-1) - p with the flipped kernel, input and output channels
    swapped per group. Returns the crop of g where that padding is negative, and the geometry."""
    reach = [d * (k - 1) for d, k in zip(geometry.dilation, geometry.kernel)]
    pad = [r - p for r, p in zip(reach, geometry.padding)]
    crop = tuple(max(0, -q) for q in pad)
    return crop, replace(geometry, stride=(1, 1), padding=tuple(max(0, q) for q in pad))


def flipped_transpose(w: np.ndarray, groups: int) -> np.ndarray:
    """(O, C/G, kh, kw) -> (C, O/G, kh, kw), each kernel rotated by 180 degrees: the weights of the
    transposed convolution."""
    o, cg, kh, kw = w.shape
    flipped = w.reshape(groups, o // groups, cg, kh, kw)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(groups * cg, o // groups, kh, kw)
