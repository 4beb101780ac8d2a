"""Which encoder writes each tensor's blocks: ggml's own search, or HQQ's optimiser.

An encoder never changes a tensor's type or size, only how the scales and mins of its blocks
are chosen. The plan options hold the choice at three levels (first that applies wins):

* ``QuantOptions.encoders``: per tensor, by exact output name (what the window's toggle makes);
* ``QuantOptions.tensor_encoders``: ``PATTERN=ENCODER`` rules, regex search, first match wins;
* ``QuantOptions.encoder``: the default for every tensor.

A tensor whose type HQQ cannot encode (or that is copied, not converted) always uses ggml; its
``encoder_why`` says so. Tensors whose type an auto-mix chose take HQQ from a rule or the default
only where HQQ measurably wins on KLD (:func:`quant_core.hqq_policy.hqq_wins`); a per-tensor
choice is always honoured. :func:`resolve_encoders` fills in ``TensorPlan.encoder``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from gguf import GGUFValueType

from .errors import EncoderError
from .model import MetaField
from .qtypes import ENCODERS, HQQ_TYPES
from .reasons import ReasonKind
from .regex_guard import UnsafePatternError, check_pattern

if TYPE_CHECKING:
    from .plan import Plan, QuantOptions, TensorPlan

GGML = "ggml"
HQQ = "hqq"
ENCODER_KEY = "quantize.encoder"
HQQ_COUNT_KEY = "quantize.encoder.hqq_tensors"


def parse_encoder(name: str, what: str = "encoder") -> str:
    """An encoder name ("ggml" or "hqq"), case-insensitive; raises EncoderError."""
    key = str(name).strip().lower()
    if key not in ENCODERS:
        raise EncoderError(f"invalid {what} {name!r} (known: {', '.join(ENCODERS)})")
    return key


def parse_tensor_encoder(entry: str) -> tuple[str, str]:
    """``PATTERN=ENCODER`` as ``--tensor-encoder`` takes it (pattern lower-cased, like --tensor-type)."""
    pattern, sep, name = entry.partition("=")
    if not sep or not pattern or not name:
        raise EncoderError(f"malformed tensor encoder {entry!r}: expected PATTERN=ENCODER")
    pattern = pattern.lower()
    try:
        check_pattern(pattern)
    except re.error as err:
        raise EncoderError(f"invalid regular expression {pattern[:80]!r}: {err}") from None
    except UnsafePatternError as err:
        raise EncoderError(f"tensor encoder pattern {pattern[:80]!r} refused: {err}") from None
    return pattern, parse_encoder(name, f"encoder in {entry!r}")


def hqq_encodable(type_name: str) -> bool:
    """True for the types HQQ can encode (the affine ones: Q4_1, Q5_1, Q2_K, Q4_K, Q5_K)."""
    return str(type_name).upper() in HQQ_TYPES


def uses_encoders(options: QuantOptions) -> bool:
    """True when the options ask for anything but ggml's encoder somewhere."""
    return options.encoder != GGML or any(e != GGML for _, e in (*options.tensor_encoders, *options.encoders))


def wanted_encoder(options: QuantOptions, name: str, patterns: list[tuple[re.Pattern[str], str]]) -> tuple[str, str]:
    """The encoder the options ask for ``name`` and why, before any type check."""
    chosen = dict(options.encoders).get(name)
    if chosen is not None:
        return chosen, "explicit"
    for regex, encoder in patterns:
        if regex.search(name):
            return encoder, f"encoder rule {regex.pattern}={encoder}"
    return options.encoder, ("default" if options.encoder == GGML else f"--encoder {options.encoder}")


def _effective(tp: TensorPlan, wanted: str, why: str, has_imatrix: bool) -> tuple[str, str]:
    if wanted == GGML:
        return GGML, why if why != "explicit" else "ggml chosen for this tensor"
    if not tp.quantizable or not tp.converts:
        return GGML, "not re-encoded (copied or not quantized)"
    if not hqq_encodable(tp.type):
        return GGML, f"HQQ cannot encode {tp.type}: ggml's encoder"
    if why == "explicit":
        return HQQ, "HQQ chosen for this tensor"
    if tp.why.kind is ReasonKind.AUTO_MIX:
        offered, note = hqq_offered(tp.type, has_imatrix)
        if not offered:
            return GGML, f"auto-mix type {tp.type}: ggml kept ({note})"
    return HQQ, why


def hqq_offered(type_name: str, with_imatrix: bool) -> tuple[bool, str]:
    """Whether the app may suggest HQQ for ``type_name``, and the measured reason in words.

    True only for a type HQQ can encode where it measurably wins on KLD
    (:func:`quant_core.hqq_policy.hqq_wins`).
    """
    if not hqq_encodable(type_name):
        return False, f"HQQ cannot encode {type_name}"
    from .hqq_policy import hqq_wins, kld_pairs, measured_configs

    imatrix = "with" if with_imatrix else "without"
    if (str(type_name).upper(), bool(with_imatrix)) not in measured_configs():
        return False, f"HQQ is not measured against ggml for {type_name} {imatrix} an importance matrix yet"
    pairs = "; ".join(f"{model}: {hqq:.6f} vs {ggml:.6f}" for model, ggml, hqq in kld_pairs(type_name, with_imatrix))
    measured = f" (measured mean KLD, HQQ vs ggml's encoder: {pairs})"
    if hqq_wins(type_name, with_imatrix):
        return True, f"HQQ won on KLD for {type_name} {imatrix} an importance matrix{measured}"
    return False, f"HQQ did not win on KLD for {type_name} {imatrix} an importance matrix{measured}"


def resolve_encoders(plan: Plan) -> Plan:
    """The plan with every tensor's ``encoder`` and ``encoder_why`` set from its options."""
    o = plan.options
    if not uses_encoders(o):
        if all(tp.encoder == GGML and tp.encoder_why == "default" for tp in plan.tensors):
            return plan
        return replace(plan, tensors=tuple(replace(tp, encoder=GGML, encoder_why="default") for tp in plan.tensors))
    for _, encoder in (("", o.encoder), *o.tensor_encoders, *o.encoders):
        parse_encoder(encoder)
    names = {tp.name for tp in plan.tensors}
    unknown = sorted(n for n, _ in o.encoders if n not in names)
    if unknown:
        raise EncoderError(f"encoder for unknown tensor {unknown[0]!r}")
    patterns = [(re.compile(p), e) for p, e in o.tensor_encoders]
    out = []
    for tp in plan.tensors:
        wanted, why = wanted_encoder(o, tp.name, patterns)
        encoder, why = _effective(tp, parse_encoder(wanted), why, plan.has_imatrix)
        out.append(replace(tp, encoder=encoder, encoder_why=why))
    return replace(plan, tensors=tuple(out))


def hqq_tensors(plan: Plan) -> list[str]:
    """Names of the tensors the plan encodes with HQQ."""
    return [tp.name for tp in plan.tensors if tp.encoder == HQQ]


def identity_note(plan: Plan) -> str | None:
    """None when the export is byte-identical to llama-quantize's; else what to say instead."""
    n = len(hqq_tensors(plan))
    if not n:
        return None
    return f"not byte-identical to llama-quantize (HQQ-encoded tensors: {n}); same types and size"


def policy_warnings(plan: Plan) -> list[str]:
    """One line per type the plan HQQ-encodes although HQQ did not win on KLD for it (as asked)."""
    by_type: dict[str, int] = {}
    for name in hqq_tensors(plan):
        t = plan.tensor(name).type
        by_type[t] = by_type.get(t, 0) + 1
    lines = []
    for type_name, n in sorted(by_type.items()):
        offered, note = hqq_offered(type_name, plan.has_imatrix)
        if not offered:
            lines.append(f"{note}; {n} {type_name} tensor(s) use it as asked")
    return lines


def encoder_metadata(plan: Plan) -> list[MetaField]:
    """Keys recording the HQQ encoder in the output (none when every tensor uses ggml's)."""
    n = len(hqq_tensors(plan))
    if not n:
        return []
    return [
        MetaField(ENCODER_KEY, b"hqq", GGUFValueType.STRING),
        MetaField(HQQ_COUNT_KEY, n, GGUFValueType.UINT32),
    ]


def with_tensor_encoders(options: QuantOptions, names: Iterable[str], encoder: str) -> QuantOptions:
    """The options with ``encoder`` chosen per tensor for ``names`` (other tensors unchanged)."""
    chosen = dict(options.encoders)
    for name in names:
        chosen[name] = parse_encoder(encoder)
    return replace(options, encoders=tuple(sorted(chosen.items())))
