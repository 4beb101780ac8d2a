"""llama-quantize's mixture rules (``llama_tensor_get_type_impl``), with the reason for each choice.

Each rule returns the type and a :class:`~quant_core.reasons.Reason`: a mixture rule that fired,
or the preset default when none did.

The rules are stateful exactly as in llama.cpp: attn_v-like and ffn tensors are counted in
processing order, and a tensor whose type came from a user pattern (or ``--pure``) does not
advance the counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import TensorInfo
from .reasons import PRESET_DEFAULT, Reason, ReasonKind, mixture, preset_default

_ATTN_V_LIKE = ("attn_v", "attn_qkv", "attn_kv_b")
_IQ12_FTYPES = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
_Q5K_OUTPUT_FTYPES = ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
_EXPERT8_ATTN_OUT = (
    "Q2_K",
    "IQ3_XS",
    "IQ3_XXS",
    "Q3_K_S",
    "Q3_K_M",
    "IQ4_NL",
    "Q4_K_S",
    "Q4_K_M",
    "IQ3_S",
    "IQ3_M",
    "IQ4_XS",
)


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama.cpp's layer selector for the _M presets: first/last eighth and every third between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


@dataclass
class RuleContext:
    """Model facts and running counters (llama.cpp's ``quantize_state_impl``)."""

    arch: str
    n_layer: int
    n_gqa: int
    n_expert: int
    is_70b: bool
    has_imatrix: bool
    has_tied_embeddings: bool
    n_attention_wv: int
    output_tensor_type: str | None = None
    token_embedding_type: str | None = None
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0

    @property
    def falcon(self) -> bool:
        return self.arch == "falcon"


def mixture_type(
    ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str, block_of: dict[str, int]
) -> tuple[str, Reason]:
    """The type the preset's mixture rules give tensor ``t`` (default ``new_type``), and why."""
    cat = t.category
    if cat == "output" or (ctx.has_tied_embeddings and cat == "token_embd"):
        return _output(ctx, ftype, t, new_type, block_of)
    if ftype == "MXFP4_MOE":
        if len(t.shape) > 2 and t.shape[2] > 1 and (ctx.arch != "bailingmoe3" or cat.startswith("ffn_")):
            return "MXFP4", mixture("MXFP4_MOE: stacked experts get MXFP4")
        return "Q8_0", mixture("MXFP4_MOE: non-expert tensors get Q8_0")
    if cat == "token_embd":
        return _token_embd(ctx, ftype, new_type)
    if ftype in _IQ12_FTYPES:
        return _very_low_bit(ctx, ftype, cat, new_type)
    handler = _BY_CATEGORY.get("attn_v" if cat in _ATTN_V_LIKE else cat)
    if handler is None:
        return new_type, PRESET_DEFAULT
    return handler(ctx, ftype, t, new_type)


def _output(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str, block_of: dict[str, int]) -> tuple[str, Reason]:
    what = "output" if t.category == "output" else "tied token_embd (follows output)"
    if ctx.output_tensor_type is not None:
        return ctx.output_tensor_type, Reason(ReasonKind.OUTPUT_TENSOR_TYPE, f"{what}: --output-tensor-type")
    if ftype == "MXFP4_MOE":
        return "Q8_0", mixture(f"{what}: MXFP4_MOE keeps it at Q8_0")
    if ctx.falcon or t.shape[0] % block_of[new_type] != 0:
        return "Q8_0", mixture(f"{what}: row length {t.shape[0]} not divisible by {block_of[new_type]} -> Q8_0")
    if ftype in _Q5K_OUTPUT_FTYPES:
        return "Q5_K", mixture(f"{what}: {ftype} uses Q5_K")
    if new_type != "Q8_0":
        return "Q6_K", mixture(f"{what}: always at least Q6_K")
    return new_type, preset_default(f"{what}: preset default")


def _token_embd(ctx: RuleContext, ftype: str, new_type: str) -> tuple[str, Reason]:
    if ctx.token_embedding_type is not None:
        return ctx.token_embedding_type, Reason(ReasonKind.TOKEN_EMBEDDING_TYPE, "token_embd: --token-embedding-type")
    if ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
        return "Q2_K", mixture(f"token_embd: {ftype} uses Q2_K")
    if ftype in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
        return "IQ3_S", mixture(f"token_embd: {ftype} uses IQ3_S")
    if ftype in ("TQ1_0", "TQ2_0"):
        return "Q4_K", mixture(f"token_embd: {ftype} uses Q4_K")
    return new_type, PRESET_DEFAULT


def _very_low_bit(ctx: RuleContext, ftype: str, cat: str, new_type: str) -> tuple[str, Reason]:
    iq2sm = ftype in ("IQ2_S", "IQ2_M")
    if cat in _ATTN_V_LIKE:
        ctx.i_attention_wv += 1
        if ctx.n_gqa >= 4 or ctx.n_expert >= 4:
            return "Q4_K", mixture(f"{ftype}: attn_v with GQA {ctx.n_gqa} / {ctx.n_expert} experts -> Q4_K")
        chosen = "IQ3_S" if iq2sm else "Q2_K"
        return chosen, mixture(f"{ftype}: attn_v -> {chosen}")
    if ctx.n_expert == 8 and cat == "attn_k":
        return "Q4_K", mixture(f"{ftype}: attn_k of an 8-expert model -> Q4_K")
    if cat == "ffn_down":
        i = ctx.i_ffn_down
        ctx.i_ffn_down += 1
        if i < ctx.n_layer // 8:
            chosen = "IQ3_S" if iq2sm else "Q2_K"
            return chosen, mixture(f"{ftype}: ffn_down in the first eighth of the layers -> {chosen}")
        return new_type, PRESET_DEFAULT
    if cat == "attn_output":
        if ctx.n_expert == 8:
            return "Q5_K", mixture(f"{ftype}: attn_output of an 8-expert model -> Q5_K")
        if ftype in ("IQ1_S", "IQ1_M"):
            return "IQ2_XXS", mixture(f"{ftype}: attn_output -> IQ2_XXS")
        if iq2sm:
            return "IQ3_S", mixture(f"{ftype}: attn_output -> IQ3_S")
    return new_type, PRESET_DEFAULT


def _attn_v(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str) -> tuple[str, Reason]:
    i, n = ctx.i_attention_wv, ctx.n_attention_wv
    gqa4 = ctx.n_gqa >= 4
    chosen, why = new_type, None
    if ftype == "Q2_K":
        chosen, why = ("Q4_K", "GQA >= 4") if gqa4 else ("Q3_K", "Q2_K mix")
    elif ftype == "Q2_K_S" and gqa4:
        chosen, why = "Q4_K", "GQA >= 4"
    elif ftype == "IQ3_XXS":
        if gqa4:
            chosen, why = "Q4_K", "GQA >= 4"
        else:
            chosen, why = ("IQ3_XXS", "with imatrix") if ctx.has_imatrix else ("IQ3_S", "no imatrix")
    elif ftype in ("IQ3_XS", "IQ3_S") and gqa4:
        chosen, why = "Q4_K", "GQA >= 4"
    elif ftype == "IQ3_M":
        chosen, why = "Q4_K", "IQ3_M mix"
    elif ftype == "Q3_K_M":
        chosen, why = ("Q5_K", "first two attn_v") if i < 2 else ("Q4_K", "Q3_K_M mix")
    elif ftype == "Q3_K_L":
        chosen, why = "Q5_K", "Q3_K_L mix"
    elif ftype in ("IQ4_NL", "IQ4_XS") and gqa4:
        chosen, why = "Q5_K", "GQA >= 4"
    elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, n):
        chosen, why = "Q6_K", f"use_more_bits({i}, {n})"
    elif ftype == "Q4_K_S" and i < 4:
        chosen, why = "Q5_K", "first four attn_v"
    if ctx.is_70b and chosen in ("Q3_K", "Q4_K"):
        chosen, why = "Q5_K", "70B model"
    if ctx.n_expert == 8:
        chosen, why = "Q8_0", "8-expert model"
    ctx.i_attention_wv += 1
    if why is None:
        return chosen, preset_default(f"{ftype}: {t.category} preset default")
    return chosen, mixture(f"{ftype}: {t.category} {why}" + ("" if chosen == new_type else f" -> {chosen}"))


def _attn_k(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str) -> tuple[str, Reason]:
    if ctx.n_expert == 8:
        return "Q8_0", mixture(f"{ftype}: attn_k of an 8-expert model -> Q8_0")
    return _attn_q(ctx, ftype, t, new_type)


def _attn_q(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str) -> tuple[str, Reason]:
    if ftype == "IQ3_XS":
        return "IQ3_XXS", mixture(f"IQ3_XS: {t.category} -> IQ3_XXS")
    if ftype == "IQ3_XXS":
        return "IQ2_S", mixture(f"IQ3_XXS: {t.category} -> IQ2_S")
    return new_type, PRESET_DEFAULT


def _layer(ctx: RuleContext, t: TensorInfo, counter: int) -> int:
    """Dense models count ffn tensors in order; MoE models parse ``blk.N.`` (as llama.cpp)."""
    if max(1, ctx.n_expert) > 1 and t.layer is not None:
        return t.layer
    return counter


def _ffn_down(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str) -> tuple[str, Reason]:
    i, n = _layer(ctx, t, ctx.i_ffn_down), ctx.n_layer
    ctx.i_ffn_down += 1
    chosen, why = new_type, None
    if ftype == "Q2_K":
        chosen, why = "Q3_K", "Q2_K mix"
    elif ftype == "Q2_K_S":
        if i < n // 8:
            chosen, why = "Q4_K", "first eighth of the layers"
    elif ftype == "IQ3_XXS" and not ctx.has_imatrix:
        chosen, why = ("Q4_K", "first eighth, no imatrix") if i < n // 8 else ("Q3_K", "no imatrix")
    elif ftype == "Q3_K_M":
        if i < n // 16:
            chosen, why = "Q5_K", "first sixteenth of the layers"
        elif not ctx.falcon or use_more_bits(i, n):
            chosen, why = "Q4_K", "Q3_K_M mix"
        else:
            chosen, why = "Q3_K", "Falcon"
    elif ftype == "IQ3_M" and (i < n // 8 or (ctx.n_expert == 8 and use_more_bits(i, n))):
        chosen, why = "Q4_K", "first eighth of the layers"
    elif ftype == "Q3_K_L":
        chosen, why = ("Q4_K", "Falcon") if ctx.falcon else ("Q5_K", "Q3_K_L mix")
    elif ftype == "Q4_K_M":
        if ctx.falcon:
            if i < n // 16:
                chosen, why = "Q6_K", "Falcon, first sixteenth"
            elif use_more_bits(i, n):
                chosen, why = "Q5_K", f"Falcon, use_more_bits({i}, {n})"
            else:
                chosen, why = "Q4_K", "Falcon"
        elif use_more_bits(i, n):
            chosen, why = "Q6_K", f"use_more_bits({i}, {n})"
    elif i < n // 8 and ftype in ("IQ4_NL", "IQ4_XS") and not ctx.has_imatrix:
        chosen, why = "Q5_K", "first eighth, no imatrix"
    elif ftype == "Q5_K_M" and use_more_bits(i, n):
        chosen, why = "Q6_K", f"use_more_bits({i}, {n})"
    elif ftype == "Q4_K_S" and not ctx.falcon and i < n // 8:
        chosen, why = "Q5_K", "first eighth of the layers"
    elif ftype in ("Q4_0", "Q5_0") and ctx.has_imatrix and i < n // 8:
        chosen = "Q4_1" if ftype == "Q4_0" else "Q5_1"
        why = "first eighth, with imatrix"
    if why is None:
        return chosen, PRESET_DEFAULT
    return chosen, mixture(f"{ftype}: ffn_down {why}" + ("" if chosen == new_type else f" -> {chosen}"))


def _attn_output(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str) -> tuple[str, Reason]:
    chosen = new_type
    if not ctx.falcon:
        if ctx.n_expert == 8:
            if ftype in _EXPERT8_ATTN_OUT:
                chosen = "Q5_K"
        else:
            chosen = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}.get(
                ftype, new_type
            )
    elif ftype == "Q3_K_L":
        chosen = "Q4_K"
    if chosen == new_type:
        return chosen, PRESET_DEFAULT
    return chosen, mixture(f"{ftype}: attn_output -> {chosen}")


def _ffn_gate_up(ctx: RuleContext, ftype: str, t: TensorInfo, new_type: str) -> tuple[str, Reason]:
    if t.category == "ffn_gate":
        i = _layer(ctx, t, ctx.i_ffn_gate)
        ctx.i_ffn_gate += 1
    else:
        i = _layer(ctx, t, ctx.i_ffn_up)
        ctx.i_ffn_up += 1
    n = ctx.n_layer
    if ftype == "IQ3_XS" and n // 8 <= i < 7 * n // 8:
        return "IQ3_XXS", mixture(f"IQ3_XS: {t.category} in the middle layers -> IQ3_XXS")
    return new_type, PRESET_DEFAULT


_BY_CATEGORY = {
    "attn_v": _attn_v,
    "attn_k": _attn_k,
    "attn_q": _attn_q,
    "ffn_down": _ffn_down,
    "attn_output": _attn_output,
    "ffn_gate": _ffn_gate_up,
    "ffn_up": _ffn_gate_up,
}
