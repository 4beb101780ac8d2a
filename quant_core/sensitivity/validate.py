"""Validation: predicted against measured single-tensor KLD changes, ranked (Spearman).

Pairs (tensor, type) are drawn at random (seeded) among the table's candidates, leaving out the
types the tensor was calibrated with (its unit's probes), its source type and the float types;
each is measured with only that tensor changed, exactly like a calibration run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import MetaField, Model
from ..plan import Plan
from ..quality import QualityProgress
from .runs import RunSettings, iter_kld
from .table import SensitivityProgress, SensitivitySettings, SensitivityTable

_SKIPPED = ("F16", "BF16", "F32")


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v), np.float64)
    r[order] = np.arange(1, len(v) + 1)
    for value in np.unique(v):
        same = v == value
        if same.sum() > 1:
            r[same] = r[same].mean()
    return r


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long sequences (nan with fewer than 3 values)."""
    if len(a) != len(b):
        raise ValueError("sequences of different lengths")
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class PairResult:
    """One validated pair: the table's prediction and the measured change of mean KLD."""

    name: str
    type: str
    predicted: float
    measured: float


def validation_pairs(table: SensitivityTable, plan: Plan, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct (tensor, type) pairs not used for calibration, drawn at random."""
    pool = []
    for name, per_type in table.costs.items():
        src = plan.tensor(name).source.src_type
        pool += [(name, t) for t in per_type if t not in _SKIPPED and t != src and t not in table.probes[name]]
    rng = random.Random(seed)
    rng.shuffle(pool)
    return sorted(pool[:count])


def iter_validation(
    model: Model,
    plan: Plan,
    table: SensitivityTable,
    pairs: Sequence[tuple[str, str]],
    text: bytes,
    settings: SensitivitySettings,
    imatrix: Any | None = None,
    imatrix_keys: list[MetaField] | None = None,
    store: Any | None = None,
) -> Iterator[SensitivityProgress | list[PairResult]]:
    """Measure every pair (progress per run), then yield the list of results."""
    rs = RunSettings(settings.n_ctx, settings.chunks, settings.threads)
    results = []
    for i, (name, type_name) in enumerate(pairs):
        rid = f"{name}|{type_name}"
        kld = store.get("runs", rid) if store is not None else None
        if kld is None:
            for item in iter_kld(model, plan, {name: type_name}, text, rs, imatrix, imatrix_keys):
                if isinstance(item, QualityProgress):
                    yield SensitivityProgress("validate", i + item.fraction, len(pairs), rid)
                else:
                    kld = item
            if store is not None:
                store.put("runs", rid, kld)
        results.append(PairResult(name, type_name, table.cost(name, type_name), max(kld - table.floor, 0.0)))
    yield results
