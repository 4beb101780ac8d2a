"""llama-quantize's file types (presets): name, llama_ftype id and default tensor type."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import QuantError
from .qtypes import is_float_type


@dataclass(frozen=True)
class FileType:
    """One preset as llama-quantize names it (``Q4_K_M``), with its ``general.file_type`` id."""

    name: str
    ftype: int
    default_type: str
    description: str

    @property
    def is_float(self) -> bool:
        return is_float_type(self.default_type)


_TABLE: tuple[tuple[str, int, str, str], ...] = (
    ("Q4_0", 2, "Q4_0", "legacy 4.5 bpw"),
    ("Q4_1", 3, "Q4_1", "legacy 5.0 bpw"),
    ("Q5_0", 8, "Q5_0", "legacy 5.5 bpw"),
    ("Q5_1", 9, "Q5_1", "legacy 6.0 bpw"),
    ("IQ2_XXS", 19, "IQ2_XXS", "2.06 bpw lattice, imatrix required"),
    ("IQ2_XS", 20, "IQ2_XS", "2.31 bpw lattice, imatrix required"),
    ("IQ2_S", 28, "IQ2_XS", "2.5 bpw mix, imatrix required"),
    ("IQ2_M", 29, "IQ2_S", "2.7 bpw mix, imatrix required"),
    ("IQ1_S", 24, "IQ1_S", "1.56 bpw, imatrix required"),
    ("IQ1_M", 31, "IQ1_M", "1.75 bpw, imatrix required"),
    ("TQ1_0", 36, "TQ1_0", "1.69 bpw ternary"),
    ("TQ2_0", 37, "TQ2_0", "2.06 bpw ternary"),
    ("Q2_K", 10, "Q2_K", "2.96G, +3.52 ppl @ Llama-3-8B"),
    ("Q2_K_S", 21, "Q2_K", "2.96G, +3.18 ppl @ Llama-3-8B, imatrix required"),
    ("IQ3_XXS", 23, "IQ3_XXS", "3.06 bpw lattice, imatrix required"),
    ("IQ3_S", 26, "IQ3_S", "3.44 bpw lattice"),
    ("IQ3_M", 27, "IQ3_S", "3.66 bpw mix"),
    ("IQ3_XS", 22, "IQ3_S", "3.3 bpw mix"),
    ("Q3_K_S", 11, "Q3_K", "3.41G, +1.63 ppl @ Llama-3-8B"),
    ("Q3_K_M", 12, "Q3_K", "3.74G, +0.66 ppl @ Llama-3-8B"),
    ("Q3_K_L", 13, "Q3_K", "4.03G, +0.56 ppl @ Llama-3-8B"),
    ("IQ4_NL", 25, "IQ4_NL", "4.50 bpw non-linear"),
    ("IQ4_XS", 30, "IQ4_XS", "4.25 bpw non-linear"),
    ("Q4_K_S", 14, "Q4_K", "4.37G, +0.27 ppl @ Llama-3-8B"),
    ("Q4_K_M", 15, "Q4_K", "4.58G, +0.18 ppl @ Llama-3-8B"),
    ("Q5_K_S", 16, "Q5_K", "5.21G, +0.10 ppl @ Llama-3-8B"),
    ("Q5_K_M", 17, "Q5_K", "5.33G, +0.06 ppl @ Llama-3-8B"),
    ("Q6_K", 18, "Q6_K", "6.14G, +0.02 ppl @ Llama-3-8B"),
    ("Q8_0", 7, "Q8_0", "7.96G, +0.003 ppl @ Llama-3-8B"),
    ("MXFP4_MOE", 38, "MXFP4", "MXFP4 experts, Q8_0 elsewhere"),
    ("F16", 1, "F16", "14.00G, +0.0020 ppl @ Mistral-7B"),
    ("BF16", 32, "BF16", "14.00G, -0.0050 ppl @ Mistral-7B"),
    ("F32", 0, "F32", "26.00G @ 7B"),
)

FILE_TYPES: dict[str, FileType] = {name: FileType(name, ft, dt, desc) for name, ft, dt, desc in _TABLE}
"""Every preset, in llama-quantize's listing order."""

ALIASES: dict[str, str] = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}


def file_type(name: str | int) -> FileType:
    """Look a preset up by name (case-insensitive, aliases accepted) or by numeric ftype."""
    if isinstance(name, int) or str(name).strip().isdigit():
        number = int(name)
        for ft in FILE_TYPES.values():
            if ft.ftype == number:
                return ft
        raise QuantError(f"unknown file type number {number}")
    key = str(name).strip().upper()
    key = ALIASES.get(key, key)
    try:
        return FILE_TYPES[key]
    except KeyError:
        raise QuantError(f"unknown preset {name!r} (known: {', '.join(FILE_TYPES)})") from None
