"""The type table: the single source of truth about every ggml tensor type we handle.

Block and byte sizes come from ``gguf.GGML_QUANT_SIZES``; what we add is how llama.cpp treats
each type (whether the importance matrix is used or required), how many elements share one
scale, and a human description. Everything else (kernels, plan, export, GUI) asks this table
instead of restating a fact: which types are float, which need an imatrix, block sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from .errors import EncoderError, UnknownTypeError

QK_K: int = gguf.QK_K
"""Elements per super-block (256): the K-quants, the lattice i-quants, IQ4_XS, TQ1_0 and TQ2_0."""


@dataclass(frozen=True)
class QType:
    """One ggml tensor type.

    Attributes
    ----------
    name : ggml's spelling in upper case ("Q4_K", "IQ4_XS", "BF16").
    ggml_type : the gguf enum member.
    block_size : elements per block (1 for float types).
    type_size : bytes per block.
    uses_imatrix : ggml's quantizer takes the importance matrix into account.
    ggml_requires_imatrix : ggml_quantize_chunk refuses to run without one.
    llama_requires_imatrix : llama-quantize refuses this target type without one
        (token_embd / output exempt).
    scale_group : elements sharing one scale (a K-quant's sub-block; the block for the
        single-scale types; 1 for floats): the group whose levels the inspector draws.
    description : one line for tooltips.
    """

    name: str
    ggml_type: GGMLQuantizationType
    block_size: int
    type_size: int
    uses_imatrix: bool
    ggml_requires_imatrix: bool
    llama_requires_imatrix: bool
    scale_group: int
    description: str

    @property
    def bpw(self) -> float:
        """Bits per weight."""
        return 8.0 * self.type_size / self.block_size

    @property
    def is_float(self) -> bool:
        """F32, F16 and BF16: stored element by element, no block and no scale."""
        return self.block_size == 1

    def row_bytes(self, n_per_row: int) -> int:
        """Bytes of one row of ``n_per_row`` elements (which must be a multiple of the block)."""
        return (n_per_row // self.block_size) * self.type_size

    def tensor_bytes(self, shape: tuple[int, ...]) -> int:
        """Bytes of a tensor whose first (ggml ne[0]) dimension is ``shape[0]``."""
        n_rows = 1
        for dim in shape[1:]:
            n_rows *= dim
        return n_rows * self.row_bytes(shape[0])


# name: (uses imatrix, ggml requires it, llama-quantize requires it, scale group, description)
_TRAITS: dict[str, tuple[bool, bool, bool, int, str]] = {
    "F32": (False, False, False, 1, "32-bit float, lossless"),
    "F16": (False, False, False, 1, "16-bit IEEE half float, near lossless"),
    "BF16": (False, False, False, 1, "16-bit brain float: f32 range, 8-bit mantissa"),
    "Q8_0": (False, False, False, 32, "8-bit, one fp16 scale per 32 weights; near lossless"),
    "Q4_0": (True, False, False, 32, "legacy 4-bit, symmetric, scale per 32 weights"),
    "Q4_1": (True, False, False, 32, "legacy 4-bit, scale and offset per 32 weights"),
    "Q5_0": (True, False, False, 32, "legacy 5-bit, symmetric, scale per 32 weights"),
    "Q5_1": (True, False, False, 32, "legacy 5-bit, scale and offset per 32 weights"),
    "Q2_K": (True, False, False, 16, "2-bit K-quant, 4-bit scales and mins per 16 weights"),
    "Q3_K": (True, False, False, 16, "3-bit K-quant, 6-bit scales per 16 weights"),
    "Q4_K": (True, False, False, 32, "4-bit K-quant, 6-bit scales and mins per 32; the Q4_K_M workhorse"),
    "Q5_K": (True, False, False, 32, "5-bit K-quant, 6-bit scales and mins per 32 weights"),
    "Q6_K": (True, False, False, 16, "6-bit K-quant, 8-bit scales per 16; close to Q8_0 quality"),
    "IQ4_NL": (True, False, False, 32, "4-bit non-linear grid, scale per 32 weights"),
    "IQ4_XS": (True, False, False, 32, "4-bit non-linear grid, 6-bit scales per 32 in 256-blocks"),
    "IQ3_XXS": (True, False, True, 32, "3.06-bit lattice quant (needs an imatrix in llama-quantize)"),
    "IQ3_S": (True, False, False, 32, "3.44-bit lattice quant"),
    "IQ2_XXS": (True, True, True, 32, "2.06-bit lattice quant, imatrix required"),
    "IQ2_XS": (True, True, True, 16, "2.31-bit lattice quant, imatrix required"),
    "IQ2_S": (True, False, True, 16, "2.56-bit lattice quant (needs an imatrix in llama-quantize)"),
    "IQ1_S": (True, True, True, 32, "1.56-bit ternary lattice quant, imatrix required"),
    "IQ1_M": (True, False, True, 16, "1.75-bit ternary lattice quant (needs an imatrix in llama-quantize)"),
    "TQ1_0": (False, False, False, 256, "1.69-bit ternary, for ternary-trained models"),
    "TQ2_0": (False, False, False, 256, "2.06-bit ternary, for ternary-trained models"),
    "MXFP4": (False, False, False, 32, "OCP microscaling FP4 (E2M1 with E8M0 scale per 32)"),
    "NVFP4": (False, False, False, 16, "NVIDIA FP4 (E2M1 with UE4M3 scale per 16)"),
}


def _build_table() -> dict[str, QType]:
    table: dict[str, QType] = {}
    for name, (uses, ggml_req, llama_req, group, desc) in _TRAITS.items():
        gtype = GGMLQuantizationType[name]
        block, size = GGML_QUANT_SIZES[gtype]
        table[name] = QType(name, gtype, block, size, uses, ggml_req, llama_req, group, desc)
    return table


QTYPES: dict[str, QType] = _build_table()
"""Every type quant_core can write, by upper-case ggml name."""


def qtype(name: str | QType | GGMLQuantizationType) -> QType:
    """Look a type up by ggml name (case-insensitive), enum member or QType."""
    if isinstance(name, QType):
        return name
    if isinstance(name, GGMLQuantizationType):
        key = name.name
    else:
        key = str(name).strip().upper()
    try:
        return QTYPES[key]
    except KeyError:
        known = ", ".join(QTYPES)
        raise UnknownTypeError(f"unknown tensor type {name!r} (known: {known})") from None


ENCODERS: tuple[str, ...] = ("ggml", "hqq")
"""How a type's blocks can be chosen. "ggml": llama-quantize's own searches (byte-identical, the
default). "hqq": HQQ's proximal optimiser of each group's affine scale and zero, written as
ordinary blocks of the same type (llama.cpp loads them unchanged; the bytes differ)."""

HQQ_TYPES: frozenset[str] = frozenset({"Q4_1", "Q5_1", "Q2_K", "Q4_K", "Q5_K"})
"""The types whose blocks are affine (a scale and a min per group), which HQQ can encode."""


def encoders_for(name: str | QType) -> tuple[str, ...]:
    """The encoders that can write type ``name``: ("ggml", "hqq") for :data:`HQQ_TYPES`, else ("ggml",)."""
    qt = qtype(name)
    return ENCODERS if qt.name in HQQ_TYPES else ENCODERS[:1]


def check_encoder(name: str | QType, encoder: str) -> str:
    """The encoder's canonical name (lower case) if it can write type ``name``; else EncoderError."""
    qt = qtype(name)
    key = str(encoder).strip().lower()
    if key not in ENCODERS:
        raise EncoderError(f"unknown encoder {encoder!r} (known: {', '.join(ENCODERS)})")
    if key not in encoders_for(qt):
        hqq = ", ".join(n for n in QTYPES if n in HQQ_TYPES)
        raise EncoderError(f"the {key} encoder cannot write {qt.name} (it writes {hqq})")
    return key


def is_float_type(name: str) -> bool:
    """True for the float types (F32, F16, BF16); False for quantized and unknown type names.

    Unlike :func:`qtype` it never raises: a model's source tensors may have types we cannot write.
    """
    qt = QTYPES.get(str(name).strip().upper())
    return qt is not None and qt.is_float
