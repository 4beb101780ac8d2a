"""quant_core: the numeric core of Quant Explorer (no Qt).

Bit-exact numba re-implementations of ggml's quantizers and dequantizers, the type table,
and error statistics.
"""

from __future__ import annotations

from . import _numba_cache

_numba_cache.configure()  # before any kernel module is imported

from .errors import (  # noqa: E402
    EncoderError,
    ImatrixError,
    NonFiniteError,
    QuantError,
    ShapeError,
    UnknownTypeError,
    UnsupportedTypeError,
)
from .qtypes import QTYPES, QType, qtype  # noqa: E402
from .quantize import dequantize, quantize  # noqa: E402

__all__ = [
    "QTYPES",
    "QType",
    "qtype",
    "quantize",
    "dequantize",
    "QuantError",
    "UnknownTypeError",
    "UnsupportedTypeError",
    "ShapeError",
    "NonFiniteError",
    "ImatrixError",
    "EncoderError",
]
