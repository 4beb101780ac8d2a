"""Where the HQQ encoder may be suggested: only where the measurements say it wins.

The numbers are ``assets/hqq-measurements.json`` (written by ``tools/measure_hqq.py``): for each
type (every quantizable tensor at that type) and the Q4_K_M / Q5_K_M mixes, without and with an
importance matrix, the mean KLD of the ggml- and the HQQ-encoded model against the unquantized
one. HQQ wins for a configuration only if its mean KLD is lower than ggml's on every model
measured for quality. Without the file (or the row), HQQ is never suggested.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from .assets import HQQ_MEASUREMENTS


@cache
def _kld_pairs(path: str) -> dict[tuple[str, bool], list[tuple[float, float]]]:
    """(configuration, with imatrix) -> [(ggml KLD, hqq KLD) per model with a quality pass]."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    kld: dict[tuple[str, str, bool, str], float] = {}
    for row in doc.get("results", []):
        if row.get("quality"):
            kld[(row["model"], row["config"], bool(row["imatrix"]), row["encoder"])] = row["quality"]["kld_mean"]
    pairs: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for (model, config, with_imatrix, encoder), value in kld.items():
        other = kld.get((model, config, with_imatrix, "hqq"))
        if encoder == "ggml" and other is not None:
            pairs.setdefault((config, with_imatrix), []).append((value, other))
    return pairs


def hqq_wins(type_name: str, with_imatrix: bool, path: str | os.PathLike[str] = HQQ_MEASUREMENTS) -> bool:
    """True when HQQ's mean KLD is lower than ggml's for ``type_name`` (a type such as "Q4_K", or
    a mix "Q4_K_M") with or without an importance matrix, on every model measured."""
    pairs = _kld_pairs(str(path)).get((str(type_name).strip().upper(), bool(with_imatrix)), [])
    return bool(pairs) and all(hqq < ggml for ggml, hqq in pairs)


def measured_configs(path: str | os.PathLike[str] = HQQ_MEASUREMENTS) -> list[tuple[str, bool]]:
    """The (configuration, with imatrix) pairs the measurements have a KLD comparison for."""
    return sorted(_kld_pairs(str(path)))
