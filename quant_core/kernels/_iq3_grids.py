"""IQ3 lattice tables: the grids (from gguf-py) and the neighbour lists ggml's search uses.

The grids are data carried by gguf-py for its dequantizers (``gguf.quants.IQ3_XXS`` with 256
points, ``gguf.quants.IQ3_S`` with 512 points); each point is four 3-bit codes l in 0..7.
From a grid, ggml's ``iq3xs_init_impl`` derives

* ``kmap[u]`` for every 12-bit packed code ``u = l0 | l1<<3 | l2<<6 | l3<<9``: the grid index
  when ``u`` is on the grid, else ``-(offset + 1)`` pointing into ``neighbours``;
* ``neighbours[offset] = n`` followed by the ``n`` grid indices nearest to ``u`` (squared
  distance of the odd levels 2l+1), keeping every point at the ``nwant`` smallest distances
  (2 for the 256 grid, 3 for the 512 grid), ordered by (distance, index).

The tables are built lazily on first use (numpy, a few milliseconds) and kept in memory.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

KMAP_SIZE = 4096


class Iq3Tables(NamedTuple):
    """Arrays handed to the numba kernels (all C-contiguous)."""

    values: np.ndarray  # float32[G, 4]: the decode grid exactly as gguf-py holds it
    levels: np.ndarray  # float32[G, 4]: the search levels 2l+1
    codes: np.ndarray  # int8[G, 4]: the 3-bit codes l
    kmap: np.ndarray  # int32[4096]
    neighbours: np.ndarray  # uint16[...]


_CACHE: dict[int, Iq3Tables] = {}
BUILD_SECONDS: dict[int, float] = {}
"""Wall time each table set took to build (for reports and tests)."""


def _gguf_grid(grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The decode grid of gguf-py and its 3-bit codes (index into the class's grid_map)."""
    from gguf import quants

    cls = quants.IQ3_XXS if grid_size == 256 else quants.IQ3_S
    cls.init_grid()
    values = np.ascontiguousarray(np.asarray(cls.grid, dtype=np.float32).reshape(grid_size, 4))
    levels_map = np.asarray(cls.grid_map, dtype=np.float32)
    codes = np.searchsorted(levels_map, values).astype(np.int8)
    assert np.array_equal(levels_map[codes], values), "grid value outside the grid map"
    return values, codes


def _neighbour_lists(levels: np.ndarray, kmap: np.ndarray, nwant: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists of every off-grid code; returns (kmap with offsets, flat neighbours)."""
    off = np.flatnonzero(kmap < 0)
    pos = (2 * ((off[:, None] >> (3 * np.arange(4))[None, :]) & 7) + 1).astype(np.float64)
    lev = levels.astype(np.float64)
    # |p - g|^2 = |p|^2 + |g|^2 - 2 p.g, exact for these small integers
    d2 = (pos * pos).sum(1)[:, None] + (lev * lev).sum(1)[None, :] - 2.0 * (pos @ lev.T)
    d2 = np.rint(d2).astype(np.int32)  # (n_off, G)
    limit = d2.min(axis=1)
    for _ in range(nwant - 1):  # the nwant-th smallest distinct distance of each row
        limit = np.where(d2 > limit[:, None], d2, np.iinfo(np.int32).max).min(axis=1)
    rows, cols = np.nonzero(d2 <= limit[:, None])
    dist = d2[rows, cols]
    order = np.lexsort((cols, dist, rows))  # per row: by distance, then grid index
    rows, cols = rows[order], cols[order]
    counts = np.bincount(rows, minlength=off.size)
    offsets = np.concatenate([[0], np.cumsum(counts + 1)[:-1]])
    first_entry = np.cumsum(counts) - counts
    flat = np.empty(rows.size + off.size, dtype=np.uint16)
    flat[offsets] = counts
    flat[offsets[rows] + 1 + (np.arange(rows.size) - first_entry[rows])] = cols
    kmap = kmap.copy()
    kmap[off] = -(offsets + 1)
    return kmap, flat


def _build(grid_size: int) -> Iq3Tables:
    values, codes = _gguf_grid(grid_size)
    levels = (2 * codes.astype(np.float32) + 1).astype(np.float32)
    packed = np.zeros(grid_size, dtype=np.int64)
    for i in range(4):
        packed |= codes[:, i].astype(np.int64) << (3 * i)
    kmap = np.full(KMAP_SIZE, -1, dtype=np.int32)
    kmap[packed] = np.arange(grid_size, dtype=np.int32)
    kmap, flat = _neighbour_lists(levels, kmap, 2 if grid_size == 256 else 3)
    return Iq3Tables(values, np.ascontiguousarray(levels), np.ascontiguousarray(codes), kmap, flat)


def iq3_tables(grid_size: int) -> Iq3Tables:
    """The tables of the 256-point (IQ3_XXS) or 512-point (IQ3_S) grid, built once."""
    tables = _CACHE.get(grid_size)
    if tables is None:
        if grid_size not in (256, 512):
            raise ValueError(f"no IQ3 grid of size {grid_size}")
        start = time.perf_counter()
        tables = _build(grid_size)
        BUILD_SECONDS[grid_size] = time.perf_counter() - start
        _CACHE[grid_size] = tables
    return tables
