"""IQ2 lattice tables: the grids (from gguf-py) and the neighbour lists ggml's search uses.

The grids are data carried by gguf-py for its dequantizers (``gguf.quants.IQ2_XXS`` with 256
points, ``IQ2_XS`` with 512, ``IQ2_S`` with 1024); each point is eight 2-bit codes l in 0..2
(decoded as 8, 25, 43, searched as the odd levels 2l+1). ggml's ``iq2xs_init_impl`` derives
from a grid a map from every packed code to the grid index or, off the grid, to a list of the
grid points at the ``nwant`` smallest squared distances (2 for IQ2_XXS/IQ2_XS, 1 for IQ2_S),
ordered by (distance, index).

The quantizers clamp every code to 0..2, so only the 3^8 = 6561 codes without a 3 are ever
looked up; the tables cover exactly those, indexed in base 3 (``sum l_i * 3**i``), which keeps
them small (the map fits in L1) and the build short. They are built lazily on first use
(a cached numba loop, tens of milliseconds) and kept in memory; that is as cheap as
reading them back from a disk cache would be.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import numpy as np
from numba import njit

from ._common import JIT

N_CODES = 3**8
POW3 = 3 ** np.arange(8, dtype=np.int64)

_GRID_SIZE = {"IQ2_XXS": 256, "IQ2_XS": 512, "IQ2_S": 1024}
_NWANT = {"IQ2_XXS": 2, "IQ2_XS": 2, "IQ2_S": 1}


class Iq2Tables(NamedTuple):
    """Arrays handed to the numba kernels (all C-contiguous)."""

    values: np.ndarray  # float32[G, 8]: the decode grid exactly as gguf-py holds it
    codes: np.ndarray  # int32[G, 8]: the 2-bit codes l (search level 2l+1)
    slots: np.ndarray  # uint8[G, 8]: 3*i + l, where the search finds the error term of position i
    kmap: np.ndarray  # int32[6561]: grid index, or -(offset + 1) into neighbours
    neighbours: np.ndarray  # int32[...]: at an offset, n then n grid indices


_CACHE: dict[str, Iq2Tables] = {}
_VALUES: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()
BUILD_SECONDS: dict[str, float] = {}
"""Wall time each table set took to build (for reports and tests)."""


def _gguf_grid(type_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The decode grid of gguf-py and its 2-bit codes (index into the class's grid_map)."""
    from gguf import quants

    cls = getattr(quants, type_name)
    cls.init_grid()
    size = _GRID_SIZE[type_name]
    values = np.ascontiguousarray(np.asarray(cls.grid, dtype=np.float32).reshape(size, 8))
    levels_map = np.asarray(cls.grid_map, dtype=np.float32)
    codes = np.searchsorted(levels_map, values).astype(np.int32)
    assert np.array_equal(levels_map[codes], values), "grid value outside the grid map"
    return values, codes


@njit(**JIT)
def _nearest_distances(codes, pos, nwant, d2):
    """Fill d2 with the distances of ``pos`` to every grid point; return the nwant-th smallest."""
    big = np.int64(1 << 30)
    m1 = big
    m2 = big
    for j in range(codes.shape[0]):
        s = np.int64(0)
        for k in range(8):
            t = codes[j, k] - pos[k]
            s += t * t
        d2[j] = s
        if s < m1:
            m2 = m1
            m1 = s
        elif m1 < s < m2:
            m2 = s
    return m1 if nwant == 1 else m2


@njit(**JIT)
def _neighbour_lists(codes, kmap, nwant):
    """Neighbour lists of every off-grid code; fills kmap with offsets, returns the flat lists.

    The squared distance of the levels 2l+1 is 4 * sum (l - l')^2; the factor keeps the order.
    """
    n_grid = codes.shape[0]
    d2 = np.empty(n_grid, dtype=np.int64)
    pos = np.empty(8, dtype=np.int64)
    flat = np.empty(1 << 16, dtype=np.int32)
    used = 0
    for u in range(kmap.shape[0]):
        if kmap[u] >= 0:
            continue
        rest = u
        for k in range(8):
            pos[k] = rest % 3
            rest //= 3
        limit = _nearest_distances(codes, pos, nwant, d2)
        if used + 1 + n_grid > flat.shape[0]:
            grown = np.empty(2 * flat.shape[0], dtype=np.int32)
            grown[:used] = flat[:used]
            flat = grown
        start = used
        used += 1
        level = np.int64(-1)
        while True:  # each distinct distance up to the limit, ascending; indices ascending
            nxt = np.int64(1 << 30)
            for j in range(n_grid):
                if level < d2[j] < nxt:
                    nxt = d2[j]
            if nxt > limit:
                break
            for j in range(n_grid):
                if d2[j] == nxt:
                    flat[used] = j
                    used += 1
            level = nxt
        flat[start] = used - start - 1
        kmap[u] = -(start + 1)
    return flat[:used].copy()


def _build(type_name: str) -> Iq2Tables:
    values, codes = _gguf_grid(type_name)
    _VALUES.setdefault(type_name, values)
    kmap = np.full(N_CODES, -1, dtype=np.int32)
    assert (codes < 3).all(), "IQ2 grid point with a code 3"
    kmap[codes.astype(np.int64) @ POW3] = np.arange(codes.shape[0], dtype=np.int32)
    flat = _neighbour_lists(codes, kmap, _NWANT[type_name])
    slots = (3 * np.arange(8)[None, :] + codes).astype(np.uint8)
    return Iq2Tables(values, np.ascontiguousarray(codes), slots, kmap, flat)


def iq2_tables(type_name: str) -> Iq2Tables:
    """The tables of ``"IQ2_XXS"``, ``"IQ2_XS"`` or ``"IQ2_S"``, built once per process."""
    tables = _CACHE.get(type_name)
    if tables is None:
        if type_name not in _GRID_SIZE:
            raise ValueError(f"no IQ2 grid for {type_name}")
        with _LOCK:  # concurrent first calls build once
            tables = _CACHE.get(type_name)
            if tables is None:
                start = time.perf_counter()
                tables = _build(type_name)
                BUILD_SECONDS[type_name] = time.perf_counter() - start
                _CACHE[type_name] = tables
    return tables


def iq2_values(type_name: str) -> np.ndarray:
    """The decode grid float32[G, 8] alone (what the dequantizers need), without neighbours."""
    values = _VALUES.get(type_name)
    if values is None:
        if type_name not in _GRID_SIZE:
            raise ValueError(f"no IQ2 grid for {type_name}")
        values = _VALUES.setdefault(type_name, _gguf_grid(type_name)[0])
    return values
