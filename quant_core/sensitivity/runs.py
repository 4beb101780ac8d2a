"""One real measurement: the model with only some tensors changed, scored by llama.cpp.

Every quantizable tensor keeps its source type (its bytes are copied) except the ones named in
``changes``; the plan is exported to a temporary file and evaluated against the cached base
log-probabilities of the unchanged model (:func:`quant_core.quality.iter_plan_quality`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import MetaField, Model
from ..plan import Plan, with_explicit
from ..quality import QualityProgress, QualityReport, iter_plan_quality


@dataclass(frozen=True)
class RunSettings:
    """How a measurement run evaluates: context, chunks and threads."""

    n_ctx: int
    chunks: int
    threads: int | None = None


def source_plan(plan: Plan, changes: Mapping[str, str]) -> Plan:
    """``plan`` with every quantizable tensor at its source type, except ``changes``."""
    explicit = {tp.name: tp.source.src_type for tp in plan.tensors if tp.quantizable}
    explicit.update(changes)
    return with_explicit(plan, explicit)


def iter_kld(
    model: Model,
    plan: Plan,
    changes: Mapping[str, str],
    text: bytes,
    settings: RunSettings,
    imatrix: Any | None = None,
    imatrix_keys: list[MetaField] | None = None,
) -> Iterator[QualityProgress | float]:
    """Progress, then the mean KLD of the model with ``changes`` applied."""
    candidate = source_plan(plan, changes)
    for item in iter_plan_quality(
        model,
        candidate,
        text,
        imatrix,
        imatrix_keys,
        n_ctx=settings.n_ctx,
        chunks=settings.chunks,
        threads=settings.threads,
    ):
        if isinstance(item, QualityReport):
            yield float(item.kld_mean)
        else:
            yield item
