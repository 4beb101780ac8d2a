"""Speed (and optionally quality) of a plan without a file from the user.

The plan is exported once to a temporary file, which is measured and then deleted (also when the
measurement fails or is cancelled), as :func:`~.plan_quality.iter_plan_quality` does for quality.
"""

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
from .speed import SpeedReport, SpeedSettings
from .speed_process import iter_speed
from .stats import QualityReport


def iter_plan_speed(
    model: Model,
    plan: Plan,
    settings: SpeedSettings | None = None,
    imatrix: Any | None = None,
    imatrix_keys: list[MetaField] | None = None,
    threads: int | None = None,
    text: bytes | None = None,
    n_ctx: int = 512,
    chunks: int | None = None,
    base_file: str | os.PathLike[str] | None = None,
) -> Iterator[QualityProgress | QualityReport | SpeedReport]:
    """Export ``plan`` of ``model`` to a temporary file and measure its speed.

    With ``text``, its quality against ``model`` is measured first on the same file (base pass
    cached, as for :func:`~.plan_quality.iter_plan_quality`), so one run yields a
    :class:`QualityReport` and then a :class:`SpeedReport`. ``threads`` is for the export and the
    quality passes; the speed's threads are ``settings.threads``.
    """
    settings = settings or SpeedSettings()
    settings.resolved().check()  # a clear error before any work
    base = None
    if text is not None:
        base = yield from ensure_base_file(model.path, text, n_ctx, chunks, threads, base_file)
    with temporary_file(".gguf") as candidate:
        with closing(
            iter_export(model, plan, candidate, imatrix=imatrix, threads=threads, imatrix_keys=imatrix_keys)
        ) as export:
            for p in export:
                yield QualityProgress("export", p.bytes_done, p.bytes_total)
        size = candidate.stat().st_size
        if base is not None:
            for item in iter_candidate_pass(base, candidate, threads):
                yield replace(item, candidate_bytes=size) if isinstance(item, QualityReport) else item
        yield from iter_speed(candidate, settings)
