"""Registry of kernels by type name: the dispatch table that replaces if-chains.

Kernel contracts (all numba-compiled, array in, array out):

* quantizer ``fn(x, qw) -> uint8[rows, row_bytes]`` where ``x`` is a C-contiguous float32
  ``(rows, n_per_row)`` array (possibly read-only) and ``qw`` is a float32 importance vector of
  length ``n_per_row`` or of length 0 for "no imatrix".
* dequantizer ``fn(q, n_per_row) -> float32[rows, n_per_row]`` where ``q`` is a C-contiguous
  uint8 ``(rows, row_bytes)`` array.

Kernels may assume valid input: the public wrappers in ``quant_core.quantize`` validate.
"""
from __future__ import annotations

from typing import Callable

QUANTIZERS: dict[str, Callable] = {}
DEQUANTIZERS: dict[str, Callable] = {}


def quantizer(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as the quantizer of type ``name``."""

    def register(fn: Callable) -> Callable:
        QUANTIZERS[name] = fn
        return fn

    return register


def dequantizer(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as the dequantizer of type ``name``."""

    def register(fn: Callable) -> Callable:
        DEQUANTIZERS[name] = fn
        return fn

    return register
