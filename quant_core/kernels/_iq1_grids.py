"""The IQ1_S / IQ1_M lattice: the 2048-point ternary grid, its lookup map and neighbour lists.

The grid itself is data carried by gguf-py (``gguf.quants.IQ1_S``, used by its dequantizer);
here it is only re-expressed as codes 0, 1, 2 (for -1, 0, +1). The map and the neighbour lists
are what ggml's ``iq2xs_init_impl`` derives for the 1-bit grid, in the same layout:

* ``kmap[u]`` for a point ``u = sum(L[j] << 2j)`` (eight codes in 0..2) is its grid index when
  the point is on the grid, else ``-(offset + 1)``;
* ``neighbours[offset]`` is a count ``n`` followed by ``n`` grid indices: every grid point at one
  of the three smallest squared distances from ``u``, ordered by (distance, index).

The tables are built once, on first use, and kept in memory (tens of milliseconds, plus
loading the builder from numba's disk cache), so importing the package costs nothing. The lookup helpers
shared by both IQ1 quantizers live here too.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit

from ._common import F32, JIT, f32_to_u32

NGRID = 2048
KMAP_SIZE = 43692  # largest 2-bit packed point with codes <= 2, plus one (as in ggml)
NWANT = 3  # neighbours at the 3 smallest distinct distances
MAX_D2 = 8 * 4  # codes differ by at most 2 per coordinate
FLT_MAX = F32(3.4028234663852886e38)
# Levels (-1, 0, +1) + delta: row 0 for delta = +0.125, row 1 for delta = -0.125.
LEVELS = np.array([[-0.875, 0.125, 1.125], [-1.125, -0.125, 0.875]], dtype=np.float32)


@njit(**JIT)
def _point_codes(u, pos):
    """Unpack the 8 two-bit codes of ``u`` into ``pos``; False if a code is 3 (never looked up)."""
    for k in range(8):
        c = (u >> (2 * k)) & 3
        if c == 3:
            return False
        pos[k] = c
    return True


@njit(**JIT)
def _half_ids(grid):
    """Base-3 number of each grid point's first and last four codes: ``ids[j, 0/1]`` in 0..80."""
    ids = np.zeros((NGRID, 2), dtype=np.int64)
    for j in range(NGRID):
        for half in range(2):
            v = 0
            for k in range(3, -1, -1):
                v = 3 * v + np.int64(grid[j, 4 * half + k])
            ids[j, half] = v
    return ids


@njit(**JIT)
def _half_distances(pos, table):
    """``table[half, c]``: squared distance of the point's half to every 4-code half ``c``."""
    for half in range(2):
        for c in range(81):
            s = 0
            v = c
            for k in range(4):
                t = v % 3 - pos[4 * half + k]
                s += t * t
                v //= 3
            table[half, c] = s


@njit(**JIT)
def _neighbours_of(pos, ids, table, d2, hist, out, start):
    """Write count + neighbour indices of the point ``pos`` at ``out[start]``; return the end.

    Neighbours are the grid points at the NWANT smallest distances, in (distance, index)
    order, placed by a counting sort.
    """
    _half_distances(pos, table)
    hist[:] = 0
    for j in range(NGRID):
        s = table[0, ids[j, 0]] + table[1, ids[j, 1]]
        d2[j] = s
        hist[s] += 1
    found = 0
    limit = 0
    n = 0
    for dist in range(MAX_D2 + 1):  # hist becomes each kept distance's first slot
        c = hist[dist]
        hist[dist] = start + 1 + n
        if c > 0 and found < NWANT:
            found += 1
            limit = dist
            n += c
    for j in range(NGRID):
        if d2[j] <= limit:
            out[hist[d2[j]]] = j
            hist[d2[j]] += 1
    out[start] = n
    return start + 1 + n


@njit(**JIT)
def _build_tables(grid):
    """Map and neighbour lists of the ternary grid (codes 0..2), as ggml lays them out."""
    kmap = np.full(KMAP_SIZE, -1, dtype=np.int32)
    for i in range(NGRID):
        u = 0
        for k in range(8):
            u |= np.int64(grid[i, k]) << (2 * k)
        kmap[u] = i
    ids = _half_ids(grid)
    pos = np.zeros(8, dtype=np.int64)
    table = np.zeros((2, 81), dtype=np.int64)
    d2 = np.zeros(NGRID, dtype=np.int64)
    hist = np.zeros(MAX_D2 + 1, dtype=np.int64)
    out = np.zeros(1 << 19, dtype=np.uint16)
    end = 0
    for u in range(KMAP_SIZE):
        if kmap[u] >= 0 or not _point_codes(u, pos):
            continue
        if end + NGRID + 1 > out.shape[0]:
            bigger = np.zeros(2 * out.shape[0], dtype=np.uint16)
            bigger[:end] = out[:end]
            out = bigger
        kmap[u] = -(end + 1)
        end = _neighbours_of(pos, ids, table, d2, hist, out, end)
    return kmap, out[:end].copy()


@cache
def iq1_grid() -> np.ndarray:
    """The iq1s grid as int8 codes 0..2 (value + 1), shape (2048, 8), from gguf-py's table."""
    from gguf.quants import IQ1_S

    IQ1_S.init_grid()
    values = np.asarray(IQ1_S.grid, dtype=np.float32).reshape(NGRID, 8)
    grid = np.ascontiguousarray(values + 1).astype(np.int8)
    grid.flags.writeable = False
    return grid


@cache
def iq1_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(grid, kmap, neighbours, codes)`` for the IQ1 quantizers, built on first call and cached.

    ``codes[i]`` packs the 8 two-bit codes of grid point ``neighbours[i]`` (for the count
    entries of ``neighbours`` it is meaningless).
    """
    grid = iq1_grid()
    kmap, neighbours = _build_tables(grid)
    packed = (grid.astype(np.int32) << (2 * np.arange(8, dtype=np.int32))).sum(axis=1, dtype=np.int32)
    codes = packed[np.minimum(neighbours, NGRID - 1)]
    for arr in (kmap, neighbours, codes):
        arr.flags.writeable = False
    return grid, kmap, neighbours, codes


@njit(inline="always", **JIT)
def _first_least(ncodes, start, n, err):
    """Offset of the first of the ``n`` packed candidates from ``ncodes[start]`` with the least
    error sum (-1 if none is below FLT_MAX). Needs every ``err`` >= 0.

    Each candidate's sum runs over i = 0..7 in ggml's order. For non-negative floats the bit
    patterns order like the values, so (bits << 32 | offset) has its minimum at the first
    smallest sum: one min-reduction over all candidates, which vectorizes.
    """
    key = np.uint64(0xFFFFFFFFFFFFFFFF)
    for t in range(n):
        codes = ncodes[start + t]
        d2 = F32(0.0)
        for i in range(8):
            c = (codes >> (2 * i)) & 3
            d2 += err[0, i] if c == 0 else (err[1, i] if c == 1 else err[2, i])
        bits = np.uint64(f32_to_u32(d2 + F32(0.0)))  # + 0 turns a -0 sum into +0
        key = min(key, (bits << np.uint64(32)) | np.uint64(t))
    if (key >> np.uint64(32)) >= np.uint64(f32_to_u32(FLT_MAX)):
        return -1
    return np.int64(key & np.uint64(0xFFFFFFFF))


@njit(inline="always", **JIT)
def best_neighbour(neigh, ncodes, off, grid, x, xo, weight, wo, scale, lv, err):
    """ggml's iq1_find_best_neighbour2: the listed neighbour of least weighted squared error.

    ``err[l, i] = w_i * (scale*lv[l] - x_i)^2`` is tabulated once per group: exactly the terms
    ggml sums, so each candidate is 8 look-ups summed in the same order. ``ncodes`` holds the
    neighbours' codes packed two bits each (see :func:`iq1_tables`); with no negative term the
    search is one vectorized pass (:func:`_first_least`), else ggml's loop as written.
    """
    nonneg = True
    for l in range(3):
        for i in range(8):
            diff = scale * lv[l] - x[xo + i]
            e = weight[wo + i] * diff * diff
            err[l, i] = e
            nonneg = nonneg and e >= 0
    n = np.int64(neigh[off])
    if nonneg:
        t = _first_least(ncodes, off + 1, n, err)
        gi = np.int64(neigh[off + 1 + t]) if t >= 0 else -1
    else:
        best = FLT_MAX
        gi = -1
        for t in range(1, n + 1):
            g = np.int64(neigh[off + t])
            d2 = F32(0.0)
            for i in range(8):
                d2 += err[grid[g, i], i]
            if d2 < best:
                best = d2
                gi = g
    if gi < 0:
        # Only reachable with non-finite errors; ggml's whole-grid fallback then reads past
        # the block (it indexes the values by grid index), so take the first neighbour.
        gi = np.int64(neigh[off + 1])
    return gi


@njit(inline="always", **JIT)
def grid_index(L, lo, tables, x, xo, weight, scale, lv, err):
    """Grid index of the 8 codes ``L[lo:lo+8]``, off-grid points going to their best neighbour.

    ``x[xo + lo:]`` and ``weight[lo:]`` are the group's values, ``tables`` what
    :func:`iq1_tables` returns; returns ``(index, on_grid)``.
    """
    grid, kmap, neigh, ncodes = tables
    u = 0
    for j in range(8):
        u |= np.int64(L[lo + j]) << (2 * j)
    gi = np.int64(kmap[u])
    if gi >= 0:
        return gi, True
    return best_neighbour(neigh, ncodes, -gi - 1, grid, x, xo + lo, weight, lo, scale, lv, err), False


@njit(inline="always", **JIT)
def group_sums(grid, g, lv, mult, x, xo, weight, wo, sumqx, sumq2):
    """The running sums w*q*x and w*q*q plus one 8-group at grid point ``g``.

    ``q = lv[code] * mult`` (ggml's value of the code), ``x[xo:]`` and ``weight[wo:]`` the
    group's values; the terms are added in element order as in ggml.
    """
    for j in range(8):
        w = weight[wo + j]
        q = lv[grid[g, j]] * mult
        sumqx += w * q * x[xo + j]
        sumq2 += w * q * q
    return sumqx, sumq2
