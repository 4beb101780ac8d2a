"""Registry of kernels by type name: the dispatch table that replaces if-chains.

Kernel contracts (all numba-compiled, array in, array out):

* quantizer ``fn(x, qw) -> uint8[rows, row_bytes]`` where ``x`` is a C-contiguous float32
  ``(rows, n_per_row)`` array (possibly read-only) and ``qw`` is a float32 importance vector of
  length ``n_per_row`` or of length 0 for "no imatrix".
* dequantizer ``fn(q, n_per_row) -> float32[rows, n_per_row]`` where ``q`` is a C-contiguous
  uint8 ``(rows, row_bytes)`` array.

Kernels may assume valid input: the public wrappers in ``quant_core.quantize`` validate.

Each registration also records the module that defines the kernel (``kernel_map()``), which is
the map of the package (see the table in ``quant_core.kernels``). A type has one kernel of
each kind: registering a second one is an error.
"""

from __future__ import annotations

from collections.abc import Callable

QUANTIZERS: dict[str, Callable] = {}
DEQUANTIZERS: dict[str, Callable] = {}
QUANTIZER_MODULES: dict[str, str] = {}
"""Type name -> short name of the module defining its quantizer (``"kq_4_5"`` for Q4_K)."""
DEQUANTIZER_MODULES: dict[str, str] = {}
"""Type name -> short name of the module defining its dequantizer."""
ENCODER_QUANTIZERS: dict[str, dict[str, Callable]] = {"ggml": QUANTIZERS}
"""Encoder name -> type name -> quantizer. "ggml" is :data:`QUANTIZERS` itself; other encoders
(see ``qtypes.ENCODERS``) write the same block layout with their own choice of scales, and are
decoded by the type's one dequantizer."""
ENCODER_QUANTIZER_MODULES: dict[str, dict[str, str]] = {"ggml": QUANTIZER_MODULES}


def _register(name: str, fn: Callable, kernels: dict[str, Callable], modules: dict[str, str]) -> None:
    if name in kernels:
        raise ValueError(f"a second kernel registered for {name} (in {fn.__module__}; first in {modules[name]})")
    kernels[name] = fn
    modules[name] = fn.__module__.rpartition(".")[2]


def quantizer(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as the quantizer of type ``name``."""

    def register(fn: Callable) -> Callable:
        _register(name, fn, QUANTIZERS, QUANTIZER_MODULES)
        return fn

    return register


def encoder_quantizer(encoder: str, name: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as encoder ``encoder``'s quantizer of type ``name``."""

    def register(fn: Callable) -> Callable:
        kernels = ENCODER_QUANTIZERS.setdefault(encoder, {})
        _register(name, fn, kernels, ENCODER_QUANTIZER_MODULES.setdefault(encoder, {}))
        return fn

    return register


def dequantizer(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as the dequantizer of type ``name``."""

    def register(fn: Callable) -> Callable:
        _register(name, fn, DEQUANTIZERS, DEQUANTIZER_MODULES)
        return fn

    return register


def kernel_map() -> dict[str, tuple[str, str]]:
    """Type name -> (quantizer module, dequantizer module), short names, "" where there is none."""
    names = list(QUANTIZERS) + [n for n in DEQUANTIZERS if n not in QUANTIZERS]
    return {n: (QUANTIZER_MODULES.get(n, ""), DEQUANTIZER_MODULES.get(n, "")) for n in names}
