"""Optional side-by-side timing against ggml's own ``ggml_quantize_chunk`` through ctypes.

Only used by ``quant-explorer bench --ggml``; the library comes from an installed
llama-cpp-python (which builds and ships libggml-base) or from an explicit path.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable

import numpy as np

from ..errors import QuantError
from ..qtypes import qtype


def _find_library(spec: str) -> str:
    if spec != "auto":
        return spec
    try:
        import llama_cpp
    except ImportError:
        raise QuantError("--ggml needs llama-cpp-python installed, or a path to libggml-base") from None
    lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    found = sorted(glob.glob(os.path.join(lib_dir, "libggml-base.*")))
    if not found:
        raise QuantError(f"no libggml-base in {lib_dir}")
    return found[0]


def load_ggml_quantizer(spec: str, threads: int | None) -> Callable[[str, np.ndarray, np.ndarray | None], np.ndarray]:
    """Return ``fn(type_name, x, imatrix) -> bytes`` calling ggml's quantizer row-chunked on threads."""
    lib = ctypes.CDLL(_find_library(spec))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_void_p,
    ]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    n_threads = max(1, threads or os.cpu_count() or 1)

    def quantize(type_name: str, x: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
        qt = qtype(type_name)
        lib.ggml_quantize_init(int(qt.ggml_type))
        rows, cols = x.shape
        out = np.empty((rows, qt.row_bytes(cols)), dtype=np.uint8)
        qw = None if imatrix is None else imatrix.ctypes.data
        chunks = np.array_split(np.arange(rows), n_threads)

        def work(rs: np.ndarray) -> None:
            if rs.size:
                lib.ggml_quantize_chunk(
                    int(qt.ggml_type), x.ctypes.data, out.ctypes.data, int(rs[0]) * cols, rs.size, cols, qw
                )

        if n_threads == 1:
            work(chunks[0])
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_threads) as pool:
                list(pool.map(work, chunks))
        return out

    return quantize
