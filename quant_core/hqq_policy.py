"""Where the HQQ encoder may be suggested: only where the measurements say it wins.

The numbers are ``assets/hqq-measurements.json`` (written by ``tools/measure_hqq.py``): for each
type (every quantizable tensor at that type) and the Q4_K_M / Q5_K_M mixes, without and with an
importance matrix, the mean KLD of the ggml- and the HQQ-encoded model against the unquantized
one. HQQ wins for a configuration only if its mean KLD is lower than ggml's on every model
measured for quality, by more than twice the combined uncertainty of the two means (a
difference within the noise of the measurement is not a win). Without the file (or the row),
HQQ is never suggested.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from .assets import HQQ_MEASUREMENTS


@cache
def _kld_table(path: str) -> dict[tuple[str, bool], list[tuple[str, float, float, float]]]:
    """(configuration, with imatrix) -> [(model, ggml KLD, hqq KLD, margin) per model measured]."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    kld: dict[tuple[str, str, bool, str], tuple[float, float]] = {}
    for row in doc.get("results", []):
        q = row.get("quality")
        if q:
            kld[(row["model"], row["config"], bool(row["imatrix"]), row["encoder"])] = (
                q["kld_mean"],
                q.get("kld_unc") or 0.0,
            )
    pairs: dict[tuple[str, bool], list[tuple[str, float, float, float]]] = {}
    for (model, config, with_imatrix, encoder), (value, unc) in kld.items():
        other = kld.get((model, config, with_imatrix, "hqq"))
        if encoder == "ggml" and other is not None:
            pairs.setdefault((config, with_imatrix), []).append((model, value, other[0], kld_margin(unc, other[1])))
    return pairs


def kld_margin(ggml_unc: float, hqq_unc: float) -> float:
    """How much lower HQQ's mean KLD must be to count as a win: twice the combined uncertainty."""
    return 2.0 * (ggml_unc * ggml_unc + hqq_unc * hqq_unc) ** 0.5


def hqq_wins(type_name: str, with_imatrix: bool, path: str | os.PathLike[str] = HQQ_MEASUREMENTS) -> bool:
    """True when HQQ's mean KLD is lower than ggml's for ``type_name`` (a type such as "Q4_K", or
    a mix "Q4_K_M") with or without an importance matrix, beyond the measurement's uncertainty,
    on every model measured."""
    pairs = _kld_table(str(path)).get((str(type_name).strip().upper(), bool(with_imatrix)), [])
    return bool(pairs) and all(hqq < ggml - margin for _, ggml, hqq, margin in pairs)


def kld_pairs(
    type_name: str, with_imatrix: bool, path: str | os.PathLike[str] = HQQ_MEASUREMENTS
) -> list[tuple[str, float, float]]:
    """[(model, ggml mean KLD, hqq mean KLD), ...] measured for the configuration; [] if none."""
    rows = _kld_table(str(path)).get((str(type_name).strip().upper(), bool(with_imatrix)), [])
    return [(model, ggml, hqq) for model, ggml, hqq, _ in rows]


def measured_configs(path: str | os.PathLike[str] = HQQ_MEASUREMENTS) -> list[tuple[str, bool]]:
    """The (configuration, with imatrix) pairs the measurements have a KLD comparison for."""
    return sorted(_kld_table(str(path)))
