"""Read the ggml tensors llama.cpp hands to its evaluation callback (``cb_eval``), through ctypes.

The callback receives a ``struct ggml_tensor *``; its layout (ggml.h of the llama.cpp that
llama-cpp-python 0.3.36 vendors) is mirrored by :class:`GgmlTensor`. The few ggml functions
needed (op names, buffer kind, copies out of a backend buffer) come from ``libggml-base``, the
library llama-cpp-python ships next to ``libllama``.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from ..quality.errors import RuntimeMissingError

GGML_MAX_DIMS = 4
GGML_MAX_OP_PARAMS = 64
GGML_MAX_SRC = 10
GGML_MAX_NAME = 64
GGML_TYPE_F32 = 0
GGML_TYPE_I32 = 26


class GgmlTensor(ctypes.Structure):
    """``struct ggml_tensor`` as declared in ggml.h."""


GgmlTensor._fields_ = [
    ("type", ctypes.c_int),
    ("buffer", ctypes.c_void_p),
    ("ne", ctypes.c_int64 * GGML_MAX_DIMS),
    ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
    ("op", ctypes.c_int),
    ("op_params", ctypes.c_int32 * (GGML_MAX_OP_PARAMS // 4)),
    ("flags", ctypes.c_int32),
    ("src", ctypes.POINTER(GgmlTensor) * GGML_MAX_SRC),
    ("view_src", ctypes.POINTER(GgmlTensor)),
    ("view_offs", ctypes.c_size_t),
    ("data", ctypes.c_void_p),
    ("name", ctypes.c_char * GGML_MAX_NAME),
    ("extra", ctypes.c_void_p),
    ("padding", ctypes.c_char * 8),
]

TensorPtr = ctypes.POINTER(GgmlTensor)
_lib: dict[str, Any] = {}


def ggml_base() -> ctypes.CDLL:
    """llama-cpp-python's ``libggml-base`` with the signatures used here (loaded once)."""
    if "lib" in _lib:
        return _lib["lib"]
    try:
        import llama_cpp
    except (ImportError, OSError):
        raise RuntimeMissingError() from None
    folder = Path(llama_cpp.__file__).parent / "lib"
    candidates = sorted(folder.glob("libggml-base.*"))
    if not candidates:
        raise RuntimeMissingError()
    lib = ctypes.CDLL(str(candidates[0]))
    lib.ggml_op_name.argtypes, lib.ggml_op_name.restype = [ctypes.c_int], ctypes.c_char_p
    lib.ggml_nbytes.argtypes, lib.ggml_nbytes.restype = [TensorPtr], ctypes.c_size_t
    lib.ggml_nrows.argtypes, lib.ggml_nrows.restype = [TensorPtr], ctypes.c_int64
    lib.ggml_backend_buffer_is_host.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_buffer_is_host.restype = ctypes.c_bool
    lib.ggml_backend_tensor_get.argtypes = [TensorPtr, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.ggml_backend_tensor_get.restype = None
    _lib["lib"] = lib
    return lib


class OpNames:
    """Names of ggml ops by enum value, asked of ggml once per value seen (never out of range)."""

    def __init__(self) -> None:
        self._lib = ggml_base()
        self._names: dict[int, str] = {}

    def __call__(self, op: int) -> str:
        name = self._names.get(op)
        if name is None:
            name = self._names[op] = self._lib.ggml_op_name(op).decode()
        return name


def weight_name(t: GgmlTensor) -> str:
    """The weight's name without a backend prefix or copy suffix (``CUDA0#blk.0.x#0``)."""
    name = t.name.decode("utf-8", "replace")
    if "#" in name:
        name = name.split("#", 2)[1]
    return name


def tensor_array(ptr: Any, dtype: type) -> np.ndarray:
    """A numpy copy of a tensor's elements with shape ``(ne3, ne2, ne1, ne0)``, strides honoured."""
    lib = ggml_base()
    t = ptr.contents
    nbytes = int(lib.ggml_nbytes(ptr))
    raw = np.empty(nbytes, dtype=np.uint8)
    if t.buffer and not lib.ggml_backend_buffer_is_host(t.buffer):
        lib.ggml_backend_tensor_get(ptr, raw.ctypes.data, 0, nbytes)
    else:
        ctypes.memmove(raw.ctypes.data, t.data, nbytes)
    shape = tuple(int(t.ne[i]) for i in reversed(range(GGML_MAX_DIMS)))
    strides = tuple(int(t.nb[i]) for i in reversed(range(GGML_MAX_DIMS)))
    if strides[-1] != np.dtype(dtype).itemsize:
        raise ValueError(f"tensor {t.name!r} is not contiguous in its rows")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.ndarray(shape, dtype=dtype, buffer=raw, strides=strides)
