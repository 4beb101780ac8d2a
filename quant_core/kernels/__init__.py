"""Numba kernels, one module per type family. Importing this package registers them all.

Where each type's kernels live (``registry.kernel_map()`` is the live version of this table;
``tests/core/test_registry.py`` fails if the two differ):

=======  ========  ==========
type     quantize  dequantize
=======  ========  ==========
F32      floats    floats
F16      floats    floats
BF16     floats    floats
Q8_0     q8_0      q8_0
Q4_0     legacy    legacy
Q4_1     legacy    legacy
Q5_0     legacy    legacy
Q5_1     legacy    legacy
Q2_K     q2_k      q2_k
Q3_K     q3_k      q3_k
Q4_K     kq_4_5    kq_4_5
Q5_K     kq_4_5    kq_4_5
Q6_K     q6_k      q6_k
IQ4_NL   iq4       iq4
IQ4_XS   iq4       iq4
IQ3_XXS  iq3       iq3
IQ3_S    iq3       iq3
IQ2_XXS  iq2       iq2
IQ2_XS   iq2       iq2
IQ2_S    iq2       iq2
IQ1_S    iq1       iq1
IQ1_M    iq1_m     iq1
TQ1_0    ternary   ternary
TQ2_0    ternary   ternary
MXFP4    fp4       fp4
NVFP4    fp4       fp4
=======  ========  ==========

The HQQ encoder (``hqq_affine``) writes Q4_1, Q5_1, Q2_K, Q4_K and Q5_K blocks with HQQ's
scales and mins; it registers under ``registry.ENCODER_QUANTIZERS["hqq"]`` and its output is
decoded by the dequantizers above.

Shared helpers (private modules): ``_common`` (bit casts, fp16/bf16 rounding, the jit options
``JIT`` / ``JIT_PARALLEL``), ``_rows`` (row drivers), ``_simd`` (vector block reductions),
``_kq_affine`` / ``_kq_affine_batch`` / ``_kq_symmetric`` / ``_kq_codes`` (K-quant scale
searches and packing), ``_legacy_imat`` (imatrix path of Q4_0..Q5_1), ``_iq*_grids`` and
``_iq2_search`` (lattice tables and searches). Block and byte sizes come from the type table
(:mod:`quant_core.qtypes`), never from literals.
"""

from __future__ import annotations

import importlib
import pkgutil

from .registry import DEQUANTIZERS, ENCODER_QUANTIZERS, QUANTIZERS, kernel_map

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["DEQUANTIZERS", "ENCODER_QUANTIZERS", "QUANTIZERS", "kernel_map"]
