"""Quality of a plan without a file from the user: export to a temporary file, measure, delete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from typing import Any

from ..export import iter_export
from ..model import MetaField, Model
from ..plan import Plan
from .cache import temporary_file
from .measure import QualityProgress, ensure_base_file, iter_candidate_pass
from .stats import QualityReport


def iter_plan_quality(
    model: Model,
    plan: Plan,
    text: bytes,
    imatrix: Any | None = None,
    imatrix_keys: list[MetaField] | None = None,
    n_ctx: int = 512,
    chunks: int | None = None,
    threads: int | None = None,
    base_file: str | os.PathLike[str] | None = None,
) -> Iterator[QualityProgress | QualityReport]:
    """Measure ``plan`` applied to ``model`` against ``model`` itself (the base).

    Order: base pass (cached), export to a temporary file in the cache folder, candidate pass.
    The temporary file is deleted when the measurement ends, fails or is cancelled.
    """
    base = yield from ensure_base_file(model.path, text, n_ctx, chunks, threads, base_file)
    with temporary_file(".gguf") as candidate:
        with closing(
            iter_export(model, plan, candidate, imatrix=imatrix, threads=threads, imatrix_keys=imatrix_keys)
        ) as export:
            for p in export:
                yield QualityProgress("export", p.bytes_done, p.bytes_total)
        size = candidate.stat().st_size
        for item in iter_candidate_pass(base, candidate, threads):
            yield replace(item, candidate_bytes=size) if isinstance(item, QualityReport) else item
