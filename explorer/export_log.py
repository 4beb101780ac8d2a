"""The exports made while the app runs, so that a model card can list a whole ladder.

Each verified export is kept as a model-card entry with its source model and folder; the card
written next to an export lists every export of the same source into the same folder (an
export written again under the same name replaces its earlier entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

from quant_core.model_card import CardEntry

_LOGS: WeakKeyDictionary[object, list[ExportRecord]] = WeakKeyDictionary()


@dataclass(frozen=True)
class ExportRecord:
    """One verified export: the source model file, the output folder and its card entry."""

    source: Path
    folder: Path
    entry: CardEntry


def exports(owner: object) -> list[ExportRecord]:
    """Every export recorded for ``owner`` (the session), oldest first."""
    return list(_LOGS.get(owner, []))


def record_export(owner: object, source: Path, folder: Path, entry: CardEntry) -> list[CardEntry]:
    """Record an export; returns the entries of the same source and folder (the ladder)."""
    log = _LOGS.setdefault(owner, [])
    same = (source.resolve(), folder.resolve())
    log[:] = [r for r in log if (r.source.resolve(), r.folder.resolve(), r.entry.file_name) != (*same, entry.file_name)]
    log.append(ExportRecord(source, folder, entry))
    return [r.entry for r in log if (r.source.resolve(), r.folder.resolve()) == same]
