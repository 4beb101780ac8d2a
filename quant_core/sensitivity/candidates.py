"""Which types a tensor may take in a cost table, and which of them probe its sensitivity.

A candidate must apply to the tensor as it is: the row length is a multiple of the type's block
(no shape fallback), we can write the type, and a type that llama-quantize (or ggml) refuses
without an importance matrix is offered only when the matrix has values for this tensor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..imatrix import Imatrix, tensor_importance
from ..kernels import QUANTIZERS
from ..plan import TensorPlan
from ..qtypes import is_float_type, qtype

CANDIDATE_TYPES: tuple[str, ...] = (
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "Q2_K", "Q3_K",
    "IQ4_XS", "IQ4_NL", "Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0",
    "BF16", "F16",
)  # fmt: skip
"""Default candidates: llama.cpp's ``--target-bpw`` set (ternary and FP4 types are left out)."""

PROBE_TYPES: tuple[str, ...] = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL")
"""Types a sensitivity run may quantize a tensor to: plain, fast, no importance matrix needed."""

_EXEMPT = ("token_embd.weight", "per_layer_token_embd.weight", "output.weight")


def needs_imatrix(tp: TensorPlan, type_name: str) -> bool:
    """Whether ``type_name`` cannot be used for this tensor without importance values."""
    q = qtype(type_name)
    return q.ggml_requires_imatrix or (q.llama_requires_imatrix and tp.name not in _EXEMPT)


def candidate_types(tp: TensorPlan, imatrix: Imatrix | None, types: Sequence[str] = CANDIDATE_TYPES) -> list[str]:
    """The candidates valid for ``tp`` (see the module docstring), in the order of ``types``.

    The source type is always a candidate when the source is quantized: its bytes are copied.
    """
    has_values = tensor_importance(imatrix, tp.source) is not None
    out = []
    for name in types:
        q = qtype(name)
        if tp.source.n_per_row % q.block_size or q.name not in QUANTIZERS:
            continue
        if needs_imatrix(tp, q.name) and not has_values:
            continue
        out.append(q.name)
    src = tp.source.src_type
    if not is_float_type(src) and src not in out and src in {qtype(t).name for t in types}:
        out.append(src)
    return out


def probe_choices(candidates: Iterable[str], source_type: str) -> list[str]:
    """Candidates that may serve as probe types (never the source type, whose cost is zero)."""
    return [t for t in candidates if t in PROBE_TYPES and t != source_type]
