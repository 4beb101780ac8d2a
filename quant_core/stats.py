"""Error statistics of a quantization: x (original weights) against x_hat (dequantized).

Everything is computed in one parallel numba pass over the rows, without any temporary
whole-tensor array:

* sums (of x^2, e^2, x_hat^2, x*x_hat and w*e^2, with e = x - x_hat in float64) are
  accumulated per row, then added up in row order, so the results are identical for any
  thread count and for any split of the rows into chunks;
* the histogram of e uses a range that grows while the data streams by: the bins cover
  [-R, R) with R a power of two and a power-of-two bin width, so doubling R (or any power
  of two) merges aligned bins exactly. The final histogram equals the one computed directly
  with the final range, whatever order or chunking the values came in. R ends up as the
  smallest power of two above max|e|, so the data always spans between half and all of the
  bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import get_num_threads, njit, prange

from .errors import ImatrixError, NonFiniteError, ShapeError
from .kernels._common import JIT, JIT_PARALLEL

DEFAULT_BINS = 128
NO_RANGE = -(1 << 20)
"""Histogram exponent meaning "no non-zero value seen yet" (only the zero bin can be used)."""

_NO_WEIGHTS = np.zeros(0, dtype=np.float32)
_NO_WEIGHTS.flags.writeable = False  # same numba type as a real (read-only) weight vector
_T_X2, _T_E2, _T_H2, _T_XH, _T_WE2, _T_MAX = range(6)


@dataclass(frozen=True, eq=False)
class ErrorStats:
    """Error statistics of x_hat against x (all values computed in float64).

    Attributes
    ----------
    n : number of elements.
    rmse : sqrt(mean((x - x_hat)^2)).
    rel_rmse : ||x - x_hat|| / ||x||; for an all-zero x it is 0 when x_hat is zero too and
        inf otherwise.
    max_abs : max |x - x_hat|.
    snr_db : 10 log10(sum x^2 / sum (x - x_hat)^2): inf when x_hat == x, -inf when x is all
        zero but x_hat is not.
    cosine : cosine similarity of x and x_hat; 1 when both are all zero, 0 when only one is.
    weighted_mse : sum_rc w_c (x - x_hat)_rc^2 / (rows * sum_c w_c) with the per-column
        importance w; None without an importance matrix, nan when every w_c is 0.
    hist_counts : int64 counts of x - x_hat per bin.
    hist_edges : float64 bin edges (len(hist_counts) + 1), symmetric around 0 over [-R, R]
        with R the smallest power of two above max_abs ([-1, 1] when every error is 0).
        Bin i holds edges[i] <= e < edges[i+1].
    """

    n: int
    rmse: float
    rel_rmse: float
    max_abs: float
    snr_db: float
    cosine: float
    weighted_mse: float | None
    hist_counts: npt.NDArray[np.int64]
    hist_edges: npt.NDArray[np.float64]


# --- histogram primitives (numba) -------------------------------------------------------


@njit(**JIT)
def _range_of(top, bins):
    """(limit, scale) of a histogram over [-2**top, 2**top): |e| < limit fits, bin = floor(e*scale)."""
    if top == NO_RANGE:
        return 0.0, 0.0
    return math.ldexp(1.0, top), math.ldexp(bins / 2.0, -top)


@njit(**JIT)
def _rebin(counts, top, new_top):
    """Widen the range from 2**top to 2**new_top in place: 2**k aligned bins become one."""
    if new_top <= top:
        return
    half = counts.shape[0] // 2
    k = min(new_top - top, 62)
    merged = np.zeros_like(counts)
    for j in range(counts.shape[0]):
        merged[((j - half) >> k) + half] += counts[j]
    counts[:] = merged


@njit(**JIT)
def _add_outside(counts, top, e):
    """Slow path of the histogram for |e| >= current limit: zero, growth or non-finite.

    Returns ``(top, ok)``; ``ok`` is False for NaN/inf, which are not counted.
    """
    a = abs(e)
    if not a <= 1.7976931348623157e308:
        return top, False
    half = counts.shape[0] // 2
    if a == 0.0:
        counts[half] += 1  # bin [0, width) exists for every range
        return top, True
    new_top = math.frexp(a)[1]  # smallest power of two strictly above a
    _rebin(counts, top, new_top)
    scale = _range_of(new_top, counts.shape[0])[1]
    counts[np.int64(np.floor(e * scale)) + half] += 1
    return new_top, True


@njit(**JIT)
def _merge_hist(dst, dst_top, src, src_top):
    """Add histogram ``src`` into ``dst`` (both rebinned to the wider range); returns the top."""
    top = max(dst_top, src_top)
    _rebin(dst, dst_top, top)
    tmp = src.copy()
    _rebin(tmp, src_top, top)
    dst += tmp
    return top


# --- the one-pass kernels ---------------------------------------------------------------


@njit(**JIT)
def _row_stats(xr, hr, w, counts, top, out):
    """Accumulate one row: sums and max into ``out[0:6]``, errors into the histogram.

    Returns ``(top, ok)``; ``ok`` is False when the row holds a non-finite value.
    """
    half = counts.shape[0] // 2
    limit, scale = _range_of(top, counts.shape[0])
    has_w = w.shape[0] > 0
    sx2 = se2 = sh2 = sxh = swe2 = amax = 0.0
    ok = True
    for c in range(xr.shape[0]):
        xv = np.float64(xr[c])
        hv = np.float64(hr[c])
        e = xv - hv
        e2 = e * e
        sx2 += xv * xv
        se2 += e2
        sh2 += hv * hv
        sxh += xv * hv
        if has_w:
            swe2 += np.float64(w[c]) * e2
        a = abs(e)
        amax = max(amax, a)
        if a < limit:
            counts[np.int64(np.floor(e * scale)) + half] += 1
        else:
            top, good = _add_outside(counts, top, e)
            ok = ok and good
            limit, scale = _range_of(top, counts.shape[0])
    out[_T_X2] = sx2
    out[_T_E2] = se2
    out[_T_H2] = sh2
    out[_T_XH] = sxh
    out[_T_WE2] = swe2
    out[_T_MAX] = amax
    return top, ok


@njit(**JIT_PARALLEL)
def _accumulate(x, xh, w, totals, counts, top_box, n_parts):
    """Add rows of (x, xh) to the running ``totals``/``counts``/``top_box[0]``.

    Rows are split into ``n_parts`` contiguous parts, each with its own histogram; per-row
    sums are added to ``totals`` in row order afterwards. Returns the first row holding a
    non-finite value (and then leaves the running state untouched), or -1.
    """
    rows = x.shape[0]
    bins = counts.shape[0]
    row_out = np.zeros((rows, 6))
    row_ok = np.ones(rows, dtype=np.bool_)
    part_counts = np.zeros((n_parts, bins), dtype=np.int64)
    part_top = np.full(n_parts, NO_RANGE, dtype=np.int64)
    for p in prange(n_parts):
        top = NO_RANGE
        for r in range(p * rows // n_parts, (p + 1) * rows // n_parts):
            top, ok = _row_stats(x[r], xh[r], w, part_counts[p], top, row_out[r])
            row_ok[r] = ok
        part_top[p] = top
    for r in range(rows):
        if not row_ok[r]:
            return r
    for r in range(rows):
        for k in range(5):
            totals[k] += row_out[r, k]
        totals[_T_MAX] = max(totals[_T_MAX], row_out[r, _T_MAX])
    top = top_box[0]
    for p in range(n_parts):
        top = _merge_hist(counts, top, part_counts[p], part_top[p])
    top_box[0] = top
    return -1


@njit(**JIT_PARALLEL)
def _value_hist(x, counts, top_box, n_parts):
    """Histogram of the values of x into ``counts``; returns the first non-finite row or -1."""
    rows = x.shape[0]
    part_counts = np.zeros((n_parts, counts.shape[0]), dtype=np.int64)
    part_top = np.full(n_parts, NO_RANGE, dtype=np.int64)
    bad = np.full(n_parts, -1, dtype=np.int64)
    for p in prange(n_parts):
        top = NO_RANGE
        half = counts.shape[0] // 2
        for r in range(p * rows // n_parts, (p + 1) * rows // n_parts):
            limit, scale = _range_of(top, counts.shape[0])
            for c in range(x.shape[1]):
                v = np.float64(x[r, c])
                if abs(v) < limit:
                    part_counts[p, np.int64(np.floor(v * scale)) + half] += 1
                else:
                    top, good = _add_outside(part_counts[p], top, v)
                    limit, scale = _range_of(top, counts.shape[0])
                    if not good and bad[p] < 0:
                        bad[p] = r
        part_top[p] = top
    for p in range(n_parts):
        if bad[p] >= 0:
            return bad[p]
    top = top_box[0]
    for p in range(n_parts):
        top = _merge_hist(counts, top, part_counts[p], part_top[p])
    top_box[0] = top
    return -1


# --- Python API ----------------------------------------------------------------------------


class StatsAccumulator:
    """Streams row chunks of (x, x_hat) into error statistics.

    ``add`` chunk after chunk in row order gives bit-for-bit the result of one
    :func:`error_stats` call on the whole tensor. ``merge`` combines accumulators of
    different row ranges: counts, max and histogram are exact, the sums may differ from a
    single pass in the last bits (float addition order).
    """

    def __init__(self, imatrix: npt.ArrayLike | None = None, bins: int = DEFAULT_BINS) -> None:
        self._bins = _check_bins(bins)
        self._weights = None if imatrix is None else _check_weights(imatrix)
        self._cols = -1 if self._weights is None else self._weights.shape[0]
        self._rows = 0
        self._totals = np.zeros(6)
        self._counts = np.zeros(self._bins, dtype=np.int64)
        self._top = np.array([NO_RANGE], dtype=np.int64)

    @property
    def n(self) -> int:
        """Number of elements added so far."""
        return self._rows * max(self._cols, 0)

    def add(self, x: npt.ArrayLike, x_hat: npt.ArrayLike) -> None:
        """Add a chunk of rows: x and x_hat of equal shape (rows, n) (1-D is one row)."""
        xa, ha = _as_rows(x, "x"), _as_rows(x_hat, "x_hat")
        if xa.shape != ha.shape:
            raise ShapeError(f"x has shape {xa.shape} but x_hat has shape {ha.shape}")
        self._check_cols(xa.shape[1])
        if xa.shape[0] == 0:
            return
        w = _NO_WEIGHTS if self._weights is None else self._weights
        bad = _accumulate(xa, ha, w, self._totals, self._counts, self._top, _parts(xa.shape[0]))
        if bad >= 0:
            raise NonFiniteError(f"x or x_hat contains a non-finite value in row {self._rows + bad}")
        self._rows += xa.shape[0]

    def merge(self, other: StatsAccumulator) -> None:
        """Add the statistics of ``other`` (same bins, imatrix and row length) to this one."""
        if other._bins != self._bins or (other._weights is None) != (self._weights is None):
            raise ValueError("can only merge accumulators with the same bins and imatrix use")
        if self._weights is not None and not np.array_equal(self._weights, other._weights):
            raise ValueError("can only merge accumulators with the same importance matrix")
        if other._rows == 0:
            return
        self._check_cols(other._cols)
        self._totals[:5] += other._totals[:5]
        self._totals[_T_MAX] = max(self._totals[_T_MAX], other._totals[_T_MAX])
        self._top[0] = _merge_hist(self._counts, self._top[0], other._counts, other._top[0])
        self._rows += other._rows

    def result(self) -> ErrorStats:
        """The statistics of everything added so far (raises ShapeError when empty)."""
        n = self.n
        if n == 0:
            raise ShapeError("no elements to compute error statistics on")
        sx2, se2, sh2, sxh, swe2, amax = (float(v) for v in self._totals)
        counts, edges = _finish_hist(self._counts, int(self._top[0]))
        return ErrorStats(
            n=n,
            rmse=math.sqrt(se2 / n),
            rel_rmse=_ratio_sqrt(se2, sx2),
            max_abs=amax,
            snr_db=_snr_db(sx2, se2),
            cosine=_cosine(sxh, sx2, sh2),
            weighted_mse=self._weighted_mse(swe2),
            hist_counts=counts,
            hist_edges=edges,
        )

    def _weighted_mse(self, swe2: float) -> float | None:
        if self._weights is None:
            return None
        total_w = float(np.sum(self._weights, dtype=np.float64)) * self._rows
        return swe2 / total_w if total_w != 0.0 else math.nan

    def _check_cols(self, cols: int) -> None:
        if self._cols < 0:
            self._cols = cols
        elif cols != self._cols:
            what = "the importance matrix has" if self._weights is not None else "earlier rows have"
            raise ShapeError(f"rows have {cols} columns but {what} {self._cols}")


def error_stats(
    x: npt.ArrayLike,
    x_hat: npt.ArrayLike,
    imatrix: npt.ArrayLike | None = None,
    bins: int = DEFAULT_BINS,
) -> ErrorStats:
    """Error statistics of ``x_hat`` against ``x`` (float32 arrays of shape (rows, n)).

    One parallel pass, no temporary copies of float32 input. ``imatrix`` is the per-column
    importance (length n) used for ``weighted_mse``; ``bins`` (a power of two, 4..65536) is
    the number of histogram bins over [-R, R). Raises ShapeError for mismatched or empty
    arrays, NonFiniteError for NaN/inf, ImatrixError for a bad importance vector.
    """
    acc = StatsAccumulator(imatrix, bins)
    acc.add(x, x_hat)
    return acc.result()


def weight_histogram(
    x: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Histogram ``(counts, edges)`` of the values of x in one parallel pass.

    The edges are symmetric over [-R, R) with R the smallest power of two above max|x| (as
    for the error histogram of :class:`ErrorStats`), so 1/2 to all of the bins are in use.
    """
    nb = _check_bins(bins)
    xa = _as_rows(x, "x")
    counts = np.zeros(nb, dtype=np.int64)
    top = np.array([NO_RANGE], dtype=np.int64)
    if xa.size:
        bad = _value_hist(xa, counts, top, _parts(xa.shape[0]))
        if bad >= 0:
            raise NonFiniteError(f"x contains a non-finite value in row {bad}")
    return _finish_hist(counts, int(top[0]))


# --- helpers -----------------------------------------------------------------------------------


def _check_bins(bins: int) -> int:
    b = int(bins)
    if b < 4 or b > 65536 or b & (b - 1):
        raise ValueError(f"bins must be a power of two between 4 and 65536, got {bins}")
    return b


def _readonly(a: np.ndarray) -> np.ndarray:
    # one numba specialization for every caller: C-contiguous, read-only (a view, no copy)
    view = a.view()
    view.flags.writeable = False
    return view


def _as_rows(x: npt.ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise ShapeError(f"{what} must be a float array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ShapeError(f"{what} must be a (rows, n) array, got shape {arr.shape}")
    return _readonly(np.ascontiguousarray(arr, dtype=np.float32))


def _check_weights(imatrix: npt.ArrayLike) -> np.ndarray:
    w = np.ascontiguousarray(np.asarray(imatrix, dtype=np.float32).reshape(-1))
    if not np.isfinite(w).all():
        raise ImatrixError("importance matrix contains non-finite values")
    return _readonly(w)


def _parts(rows: int) -> int:
    return max(1, min(rows, 4 * get_num_threads()))


def _finish_hist(counts: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    bins = counts.shape[0]
    top = 0 if top == NO_RANGE else top
    width = math.ldexp(2.0, top) / bins  # 2R / bins, exact (powers of two)
    edges = (np.arange(bins + 1, dtype=np.float64) - bins // 2) * width
    return counts.copy(), edges


def _ratio_sqrt(num: float, den: float) -> float:
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return math.sqrt(num / den)


def _snr_db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _cosine(sxh: float, sx2: float, sh2: float) -> float:
    if sx2 == 0.0 or sh2 == 0.0:
        return 1.0 if sx2 == sh2 else 0.0
    return sxh / math.sqrt(sx2 * sh2)
