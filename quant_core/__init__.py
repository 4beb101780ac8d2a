"""quant_core: the numeric core of Quant Explorer (no Qt).

Bit-exact numba re-implementations of ggml's quantizers and dequantizers, the type table,
and error statistics.
"""
from __future__ import annotations

from .errors import (
    ImatrixError,
    NonFiniteError,
    QuantError,
    ShapeError,
    UnknownTypeError,
    UnsupportedTypeError,
)
from .qtypes import QTYPES, QType, qtype
from .quantize import dequantize, quantize

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
]
