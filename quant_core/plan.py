"""Decide every tensor's type exactly as llama-quantize does, then apply the user's choices.

``build_plan(model, options)`` reproduces ``llama_tensor_get_type``: not-quantizable tensors,
``--token-embedding-type`` / ``--output-tensor-type``, ``--tensor-type`` patterns (first match
wins), the preset's mixture rules, and the shape fallback. Explicit per-tensor types (what the
GUI's clicks produce) are applied last and change only the tensor they name. Each tensor's
:class:`~quant_core.reasons.Reason` says which of these decided its type.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from . import reasons
from .encoders import resolve_encoders
from .errors import QuantError
from .ftypes import FileType, file_type
from .model import Model, TensorInfo, tensor_layer
from .qtypes import QTYPES, qtype
from .reasons import Reason
from .regex_guard import UnsafePatternError, check_pattern
from .rules import RuleContext, mixture_type


class PlanError(QuantError):
    """Options or choices that cannot make a plan (bad pattern, incompatible explicit type, ...)."""


_NEVER_QUANTIZED = (
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
)
_FALLBACK = {
    **dict.fromkeys(("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_XS"), "IQ4_NL"),
    **dict.fromkeys(("Q2_K", "Q3_K", "TQ1_0", "TQ2_0"), "Q4_0"),
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


@dataclass(frozen=True)
class QuantOptions:
    """llama-quantize's options, with its meaning. Types are ggml names in upper case.

    ``encoder``, ``tensor_encoders`` (``PATTERN=ENCODER`` rules) and ``encoders`` (per tensor
    name) are ours: which encoder writes the blocks (see :mod:`quant_core.encoders`).
    """

    preset: str = "Q4_K_M"
    tensor_types: tuple[tuple[str, str], ...] = ()
    output_tensor_type: str | None = None
    token_embedding_type: str | None = None
    pure: bool = False
    leave_output_tensor: bool = False
    allow_requantize: bool = False
    imatrix: str | None = None
    include_weights: tuple[str, ...] = ()
    exclude_weights: tuple[str, ...] = ()
    override_kv: tuple[str, ...] = ()
    prune_layers: tuple[int, ...] = ()
    encoder: str = "ggml"
    tensor_encoders: tuple[tuple[str, str], ...] = ()
    encoders: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TensorPlan:
    """The decision for one tensor of the output file.

    ``why`` says where ``type`` comes from (read its ``kind``); ``preset_why`` is the same for
    ``preset_type``, the type without explicit choices. ``encoder`` ("ggml" or "hqq") writes
    the blocks; ``encoder_why`` says why, in words.
    """

    name: str
    source: TensorInfo
    type: str
    why: Reason
    preset_type: str
    preset_why: Reason
    quantizable: bool
    requires_imatrix: bool
    encoder: str = "ggml"
    encoder_why: str = "default"

    @property
    def reason(self) -> str:
        """Why the tensor has its type, in words (for people; code reads ``why.kind``)."""
        return self.why.text

    @property
    def preset_reason(self) -> str:
        """Why the preset alone would choose ``preset_type``, in words."""
        return self.preset_why.text

    @property
    def converts(self) -> bool:
        """True when the data is re-encoded; False when the source bytes are copied."""
        return self.type != self.source.src_type

    @property
    def n_bytes(self) -> int:
        if not self.converts:
            return self.source.n_bytes
        return qtype(self.type).tensor_bytes(self.source.shape)


@dataclass(frozen=True)
class Plan:
    """Every output tensor's type, in output order, with the options that produced it."""

    options: QuantOptions
    file_type: FileType
    tensors: tuple[TensorPlan, ...]
    has_imatrix: bool
    explicit: Mapping[str, str] = field(default_factory=dict)
    pruned_block_count: int | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {tp.name: i for i, tp in enumerate(self.tensors)})

    def tensor(self, name: str) -> TensorPlan:
        try:
            return self.tensors[self._index[name]]
        except KeyError:
            raise PlanError(f"no tensor named {name!r} in the plan") from None

    def types(self) -> dict[str, str]:
        return {tp.name: tp.type for tp in self.tensors}


def allows_quantization(t: TensorInfo, options: QuantOptions, arch: str) -> bool:
    """llama.cpp's ``tensor_allows_quantization``."""
    name = t.name
    if len(_trimmed(t.shape)) < 2:
        return False
    if not name.endswith("weight") or "_norm.weight" in name:
        return False
    if options.leave_output_tensor and name == "output.weight":
        return False
    if any(s in name for s in _NEVER_QUANTIZED):
        return False
    return name not in ("position_embd.weight", "token_types.weight")


def _trimmed(shape: tuple[int, ...]) -> tuple[int, ...]:
    dims = list(shape)
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


def parse_type(name: str, what: str = "type") -> str:
    """A ggml type name, case-insensitive, as llama-quantize accepts it."""
    try:
        return qtype(name).name
    except QuantError:
        raise PlanError(f"invalid {what} {name!r}") from None


def parse_tensor_type(entry: str) -> tuple[str, str]:
    """``PATTERN=TYPE`` as llama-quantize parses it: split at the first '=', pattern lower-cased."""
    pattern, sep, type_name = entry.partition("=")
    if not sep or not pattern or not type_name:
        raise PlanError(f"malformed tensor type {entry!r}: expected PATTERN=TYPE")
    pattern = pattern.lower()
    shown = repr(pattern) if len(pattern) <= 80 else repr(pattern[:40] + "…" + pattern[-20:])  # one short line
    try:
        check_pattern(pattern)
    except re.error as err:
        raise PlanError(f"invalid regular expression {shown}: {err}") from None
    except UnsafePatternError as err:
        raise PlanError(f"tensor type pattern {shown} refused: {err}") from None
    return pattern, parse_type(type_name.strip(), f"type in {entry!r}")


def llama_order(tensors: list[TensorInfo]) -> list[TensorInfo]:
    """llama.cpp's weights_map order: non-layer tensors by name, then by layer, then by name."""
    return sorted(tensors, key=lambda t: (-1 if t.layer is None else t.layer, t.name.encode()))


def prune(tensors: list[TensorInfo], layers: tuple[int, ...]) -> tuple[list[tuple[str, TensorInfo]], int | None]:
    """Drop ``layers`` and renumber the rest (``--prune-layers``); returns (out name, tensor) pairs."""
    if not layers:
        return [(t.name, t) for t in tensors], None
    drop = sorted(set(layers))
    mapped: dict[int, int | None] = {}
    next_id = 0
    out = []
    for t in tensors:
        if t.layer is None:
            out.append((t.name, t))
            continue
        if t.layer not in mapped:
            if t.layer in drop:
                mapped[t.layer] = None
            elif t.layer < drop[0]:
                mapped[t.layer] = t.layer
                next_id = t.layer + 1
            else:
                mapped[t.layer] = next_id
                next_id += 1
        new = mapped[t.layer]
        if new is not None:
            out.append((re.sub(r"^blk\.\d+\.", f"blk.{new}.", t.name, count=1), t))
    return out, next_id


def build_plan(
    model: Model,
    options: QuantOptions,
    explicit: Mapping[str, str] | None = None,
    has_imatrix: bool | None = None,
) -> Plan:
    """Resolve every tensor's type as llama-quantize would, then apply explicit per-tensor types."""
    ft = file_type(options.preset)
    patterns = [(re.compile(p), t) for p, t in options.tensor_types]
    imatrix_given = bool(options.imatrix) if has_imatrix is None else has_imatrix
    pairs, block_count = prune(llama_order(model.tensors), options.prune_layers)
    ctx = _rule_context(model, options, pairs, imatrix_given)
    block_of = {name: q.block_size for name, q in QTYPES.items()}
    planned = []
    for out_name, t in pairs:
        renamed = replace(t, name=out_name, layer=tensor_layer(out_name)) if out_name != t.name else t
        quantizable = allows_quantization(renamed, options, model.arch)
        if quantizable:
            new_type, reason = _choose(ctx, ft, renamed, options, patterns, block_of)
        else:
            new_type, reason = t.src_type, reasons.NOT_QUANTIZABLE
        needs = quantizable and _requires_imatrix(out_name, new_type, ft.name)
        planned.append(TensorPlan(out_name, t, new_type, reason, new_type, reason, quantizable, needs))
    plan = Plan(options, ft, tuple(planned), imatrix_given, {}, block_count)
    return with_explicit(plan, explicit or {})


def with_explicit(
    plan: Plan, explicit: Mapping[str, str], auto_mixed: Collection[str] = (), why: Mapping[str, Reason] | None = None
) -> Plan:
    """The plan with explicit per-tensor types on top (only the named tensors change).

    Names in ``auto_mixed`` were chosen by the auto-mix search: their reason kind is AUTO_MIX.
    ``why`` gives other explicit types their own reason (a clone of a reference file).
    """
    explicit = {name: parse_type(t) for name, t in explicit.items()}
    names = {tp.name for tp in plan.tensors}
    unknown = sorted(set(explicit) - names)
    if unknown:
        raise PlanError(f"explicit type for unknown tensor {unknown[0]!r}")
    out = []
    for tp in plan.tensors:
        chosen = explicit.get(tp.name)
        if chosen is None:
            needs = tp.quantizable and _requires_imatrix(tp.name, tp.preset_type, plan.file_type.name)
            out.append(replace(tp, type=tp.preset_type, why=tp.preset_why, requires_imatrix=needs))
            continue
        problem = type_problem(tp, chosen)
        if problem:
            raise PlanError(f"{tp.name}: {problem}")
        needs = _requires_imatrix(tp.name, chosen, plan.file_type.name)
        reason = reasons.AUTO_MIX if tp.name in auto_mixed else (why or {}).get(tp.name, reasons.EXPLICIT)
        out.append(replace(tp, type=chosen, why=reason, requires_imatrix=needs))
    return resolve_encoders(replace(plan, tensors=tuple(out), explicit=dict(explicit)))


def type_problem(tp: TensorPlan, type_name: str, has_importance: bool | None = None) -> str | None:
    """Why ``type_name`` cannot be chosen for this tensor, or None when it can.

    ``has_importance`` (given by views that know the loaded importance matrix) is whether it has
    an entry for this tensor: False also refuses the types llama-quantize will not write without
    one (``token_embd`` and ``output`` exempt, as there).
    """
    if not tp.quantizable:
        return "llama.cpp never quantizes this tensor"
    q = qtype(type_name)
    if tp.source.n_per_row % q.block_size:
        return f"row length {tp.source.n_per_row} is not a multiple of {q.name}'s block size {q.block_size}"
    if has_importance is False and _requires_imatrix(tp.name, q.name, ""):
        return f"{q.name} needs an importance matrix with an entry for this tensor (none is loaded for it)"
    return None


def _rule_context(model: Model, options: QuantOptions, pairs: list, has_imatrix: bool) -> RuleContext:
    names = [n for n, _ in pairs]
    return RuleContext(
        arch=model.arch,
        n_layer=model.n_layer,
        n_gqa=model.n_gqa,
        n_expert=model.n_expert,
        is_70b=model.arch == "llama" and model.n_layer == 80 and model.n_head != model.n_head_kv,
        has_imatrix=has_imatrix,
        has_tied_embeddings="output.weight" not in names,
        n_attention_wv=sum(1 for _, t in pairs if t.category in ("attn_v", "attn_qkv", "attn_kv_b")),
        output_tensor_type=options.output_tensor_type,
        token_embedding_type=options.token_embedding_type,
    )


def _choose(
    ctx: RuleContext, ft: FileType, t: TensorInfo, options: QuantOptions, patterns: list, block_of: dict
) -> tuple[str, Reason]:
    if options.token_embedding_type and t.category == "token_embd":
        return options.token_embedding_type, reasons.TOKEN_EMBEDDING_TYPE
    if options.output_tensor_type and t.category == "output":
        return options.output_tensor_type, reasons.OUTPUT_TENSOR_TYPE
    if ft.is_float:
        return ft.default_type, reasons.preset_default(f"{ft.name}: every quantizable tensor")
    new_type, reason = ft.default_type, reasons.PRESET_DEFAULT
    for regex, type_name in patterns:
        if regex.search(t.name):
            new_type, reason = type_name, reasons.user_rule(regex.pattern, type_name)
            break
    else:
        if options.pure:
            reason = reasons.PURE
        else:
            new_type, reason = mixture_type(ctx, ft.name, t, new_type, block_of)
    return _fallback(t, new_type, reason, block_of)


def shape_fallback(t: TensorInfo, type_name: str, reason: Reason) -> tuple[str, Reason]:
    """llama-quantize's fallback when ``t``'s row length cannot hold ``type_name``'s blocks.

    Returns ``type_name`` and ``reason`` unchanged when it fits, else the fallback type and a
    SHAPE_FALLBACK reason naming the wanted type.
    """
    return _fallback(t, type_name, reason, {name: q.block_size for name, q in QTYPES.items()})


def _fallback(t: TensorInfo, new_type: str, reason: Reason, block_of: dict) -> tuple[str, Reason]:
    ncols = t.shape[0]
    block = block_of[new_type]
    if ncols % block == 0:
        return new_type, reason
    target = _FALLBACK.get(new_type, new_type if block <= 32 else None)
    if target is None:
        raise PlanError(f"{t.name}: no tensor type fallback is defined for type {new_type}")
    if ncols % block_of[target]:
        target = "F16"
    return target, reason.fallen_back(new_type, ncols, block)


def _requires_imatrix(name: str, type_name: str, ftype: str) -> bool:
    if name in ("token_embd.weight", "per_layer_token_embd.weight", "output.weight"):
        return False
    return qtype(type_name).llama_requires_imatrix or (type_name == "Q2_K" and ftype == "Q2_K_S")
