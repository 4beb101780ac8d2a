"""Why a tensor has its type: a kind that code reads, and the text shown to people.

The kind is the fact; the text is written beside it when the reason is made and is never parsed
back. Code that needs to know whether a type was chosen by hand or forced by a shape fallback
asks ``reason.kind``; people read ``reason.text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ReasonKind(Enum):
    """Where a tensor's type comes from. The value is the stable name used in JSON output."""

    PRESET_DEFAULT = "preset_default"
    """The preset's default type, no mixture rule changed it."""
    MIXTURE_RULE = "mixture_rule"
    """One of llama-quantize's mixture rules of the preset (attn_v, ffn_down, output, ...)."""
    USER_RULE = "user_rule"
    """A ``--tensor-type PATTERN=TYPE`` rule (first match wins)."""
    OUTPUT_TENSOR_TYPE = "output_tensor_type"
    """``--output-tensor-type`` (the output tensor, or tied embeddings that follow it)."""
    TOKEN_EMBEDDING_TYPE = "token_embedding_type"
    """``--token-embedding-type``."""
    PURE = "pure"
    """``--pure``: the preset's default type, mixture rules skipped."""
    EXPLICIT = "explicit"
    """A per-tensor type chosen by hand (map, table or recipe)."""
    AUTO_MIX = "auto_mix"
    """A per-tensor type chosen by the automatic mix search for a budget."""
    CLONED = "cloned"
    """A per-tensor type copied from a reference GGUF's mix (``--like REF.gguf``)."""
    SHAPE_FALLBACK = "shape_fallback"
    """The row length is not a multiple of the wanted type's block: llama-quantize's fallback."""
    NOT_QUANTIZABLE = "not_quantizable"
    """llama.cpp keeps this tensor as it is (norms, 1-D tensors, never-quantized names)."""


@dataclass(frozen=True)
class Reason:
    """Why a tensor has its type: the kind, the human text, and for a fallback the wanted type."""

    kind: ReasonKind
    text: str
    fallback_from: str | None = None

    def fallen_back(self, wanted: str, row_length: int, block: int) -> Reason:
        """This reason asked for ``wanted``, which the row length cannot hold: a shape fallback."""
        text = f"{self.text}; fallback from {wanted}: row length {row_length} not divisible by {block}"
        return Reason(ReasonKind.SHAPE_FALLBACK, text, fallback_from=wanted)

    def as_json(self) -> dict[str, str]:
        """``reason`` (text), ``reason_kind`` and, for a fallback, ``fallback_from``."""
        doc = {"reason": self.text, "reason_kind": self.kind.value}
        if self.fallback_from is not None:
            doc["fallback_from"] = self.fallback_from
        return doc


def mixture(text: str) -> Reason:
    """A preset mixture rule chose the type; ``text`` says which."""
    return Reason(ReasonKind.MIXTURE_RULE, text)


def preset_default(text: str = "preset default") -> Reason:
    """The preset's default type stands."""
    return Reason(ReasonKind.PRESET_DEFAULT, text)


def cloned(reference: str) -> Reason:
    """The type was copied from the counterpart tensor of the reference file ``reference``."""
    return Reason(ReasonKind.CLONED, f"cloned from {reference}")


def user_rule(pattern: str, type_name: str) -> Reason:
    """A ``--tensor-type`` rule matched."""
    return Reason(ReasonKind.USER_RULE, f"rule {pattern}={type_name}")


PRESET_DEFAULT = preset_default()
PURE = Reason(ReasonKind.PURE, "--pure: preset default")
OUTPUT_TENSOR_TYPE = Reason(ReasonKind.OUTPUT_TENSOR_TYPE, "--output-tensor-type")
TOKEN_EMBEDDING_TYPE = Reason(ReasonKind.TOKEN_EMBEDDING_TYPE, "--token-embedding-type")
EXPLICIT = Reason(ReasonKind.EXPLICIT, "explicit choice")
AUTO_MIX = Reason(ReasonKind.AUTO_MIX, "auto-mix")
NOT_QUANTIZABLE = Reason(ReasonKind.NOT_QUANTIZABLE, "not quantized (llama.cpp keeps this tensor as is)")
