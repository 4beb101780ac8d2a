"""Text output shared by the subcommands."""

from __future__ import annotations

from ..encoders import HQQ, identity_note, policy_warnings
from ..plan import Plan
from ..reasons import ReasonKind
from ..size import SizeReport


def print_plan_table(plan: Plan, size: SizeReport) -> None:
    """Per-tensor plan in llama-quantize's --dry-run spirit, then the totals."""
    width = max((len(tp.name) for tp in plan.tensors), default=10)
    for tp in plan.tensors:
        shape = ", ".join(str(d) for d in tp.source.shape)
        print(
            f"{tp.name:<{width}}  [{shape:>16}]  {tp.source.src_type:>6} -> {tp.type:<7} "
            f"{tp.n_bytes / 1024**2:9.3f} MiB  {tp.reason}" + (" [HQQ-encoded]" if tp.encoder == HQQ else "")
        )
    print(
        f"preset {plan.file_type.name}: {size.tensor_bytes / 1024**2:.2f} MiB of tensors "
        f"({size.bpw:.2f} BPW), file {size.file_bytes} bytes"
    )
    fallbacks = sum(1 for tp in plan.tensors if tp.why.kind is ReasonKind.SHAPE_FALLBACK)
    if fallbacks:
        print(f"{fallbacks} tensor(s) required fallback quantization")
    note = identity_note(plan)
    if note:
        print(f"note: {note}")
    for line in policy_warnings(plan):
        print(f"warning: {line}")
    missing = [tp.name for tp in plan.tensors if tp.requires_imatrix and not plan.has_imatrix]
    if missing:
        print(f"warning: {len(missing)} tensor(s) need an importance matrix (first: {missing[0]})")
