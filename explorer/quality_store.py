"""Measured mixes: what a measurement is, how a plan state is named, and the cache on disk.

A measurement is identified by its *context* (model file, evaluation text, context size, chunks,
llama.cpp runtime) and, within it, by the mix (the recipe, i.e. options plus explicit types, and
the importance matrix file). Each one is kept as a small JSON file in the quality cache folder the
core uses (``<cache>/mixes/<context>-<mix>.json``), so reopening a model shows what was measured
before on the same text, and measuring the same mix again costs nothing. A measurement may also
hold the mix's speed (llama-bench's prompt and generation tokens per second), added when asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from quant_core.encoders import uses_encoders
from quant_core.errors import QuantError
from quant_core.plan import QuantOptions
from quant_core.quality import QualityReport, SpeedReport, cache_dir
from quant_core.recipe import Recipe

from .session import PlanState

PRESET = "preset"
MIX = "mix"
STORE_FORMAT = "quant-explorer-quality"
STORE_VERSION = 1
_MAX_RULES_SHOWN = 2
_MAX_KINDS_SHOWN = 3
_LAYER_PREFIX = re.compile(r"^blk\.\d+\.")


@dataclass(frozen=True)
class Measurement:
    """One measured mix: what it is (name, kind, plan state), its size, its quality report and speed."""

    key: str
    name: str
    kind: str  # PRESET or MIX
    state: PlanState
    file_bytes: int
    bpw: float
    report: QualityReport
    speed: SpeedReport | None = None

    @property
    def recipe_text(self) -> str:
        return Recipe(self.state.options, self.state.explicit_map).to_json()


def _identity(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Real path, size and modification time of a file (None when there is none)."""
    if not path:
        return None
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        return {"path": str(p)}
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _digest(doc: Any, length: int = 20) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:length]


def runtime_version() -> str:
    """The installed llama-cpp-python version without importing it ("none" when missing)."""
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return "none"


def context_key(model_path: str | os.PathLike[str], text: bytes, n_ctx: int, chunks: int | None) -> str:
    """Names what every measurement of one model on one text with one setup shares."""
    doc = {
        "model": _identity(model_path),
        "text_sha256": hashlib.sha256(text).hexdigest(),
        "n_ctx": n_ctx,
        "chunks": chunks,
        "runtime": runtime_version(),
    }
    return _digest(doc)


def mix_key(context: str, state: PlanState) -> str:
    """A measurement's key: its context plus the recipe and the importance matrix file."""
    recipe = Recipe(state.options, state.explicit_map).to_json()
    return f"{context}-{_digest({'recipe': recipe, 'imatrix': _identity(state.options.imatrix)})}"


def preset_state(preset: str, like: QuantOptions) -> PlanState:
    """The plain preset, with the importance matrix and requantize switch of ``like``."""
    return PlanState(
        QuantOptions(
            preset=preset,
            allow_requantize=like.allow_requantize,
            imatrix=like.imatrix,
            include_weights=like.include_weights,
            exclude_weights=like.exclude_weights,
        )
    )


def describe(state: PlanState) -> tuple[str, str]:
    """A short name and the kind of a plan state: a plain preset, or a mix built on one."""
    o = state.options
    suffix = " (imatrix)" if o.imatrix else ""
    if state == preset_state(o.preset, o):
        return o.preset + suffix, PRESET
    parts = [o.preset]
    if o.tensor_types:
        shown = ", ".join(f"{p}={t}" for p, t in o.tensor_types[:_MAX_RULES_SHOWN])
        more = len(o.tensor_types) - _MAX_RULES_SHOWN
        parts.append(shown + (f" and {more} more" if more > 0 else ""))
    if state.explicit:
        parts.append(_describe_explicit(state.explicit))
    if o.output_tensor_type:
        parts.append(f"output {o.output_tensor_type}")
    if o.token_embedding_type:
        parts.append(f"embeddings {o.token_embedding_type}")
    flags = [
        name
        for name, on in (
            ("pure", o.pure),
            ("leave output", o.leave_output_tensor),
            ("pruned", bool(o.prune_layers)),
            ("kv overrides", bool(o.override_kv)),
            ("HQQ encoder", uses_encoders(o)),
        )
        if on
    ]
    parts.extend(flags)
    return " + ".join(parts) + suffix, MIX


def _kind_of(name: str) -> str:
    """'blk.3.ffn_down.weight' -> 'ffn_down'."""
    return _LAYER_PREFIX.sub("", name).removesuffix(".weight")


def _describe_explicit(explicit: tuple[tuple[str, str], ...]) -> str:
    """Per chosen type, which tensors took it: '8 ffn_gate/ffn_up → Q3_K, token_embd → Q4_K'."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for name, type_name in explicit:
        by_type[type_name].append(name)
    parts = []
    for type_name, names in sorted(by_type.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        kinds = sorted({_kind_of(n) for n in names})
        what = "/".join(kinds) if len(kinds) <= _MAX_KINDS_SHOWN else "tensors"
        parts.append(f"{len(names)} {what} → {type_name}" if len(names) > 1 else f"{what} → {type_name}")
    return ", ".join(parts)


class MeasurementStore:
    """Measurements on disk, one JSON file each; unreadable files are ignored, write errors too."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder

    @property
    def folder(self) -> Path | None:
        """``<quality cache>/mixes`` (None when the cache folder cannot be created)."""
        if self._folder is None:
            try:
                self._folder = cache_dir() / "mixes"
                self._folder.mkdir(parents=True, exist_ok=True)
            except (QuantError, OSError):
                return None
        return self._folder

    def load(self, key: str) -> Measurement | None:
        folder = self.folder
        return None if folder is None else _read(folder / f"{key}.json")

    def load_context(self, context: str) -> list[Measurement]:
        """Every stored measurement of one context, oldest first."""
        folder = self.folder
        if folder is None:
            return []
        paths = sorted(folder.glob(f"{context}-*.json"), key=lambda p: p.stat().st_mtime_ns)
        return [m for m in map(_read, paths) if m is not None]

    def save(self, m: Measurement) -> None:
        folder = self.folder
        if folder is None:
            return
        doc = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "key": m.key,
            "name": m.name,
            "kind": m.kind,
            "recipe": m.recipe_text,
            "file_bytes": m.file_bytes,
            "bpw": m.bpw,
            "report": m.report.as_json(),
            "speed": m.speed.as_json() if m.speed else None,
        }
        tmp = folder / f".{m.key}.json.part"
        try:
            tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            os.replace(tmp, folder / f"{m.key}.json")
        except OSError:
            tmp.unlink(missing_ok=True)


def _read(path: Path) -> Measurement | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != STORE_FORMAT or doc.get("version") != STORE_VERSION:
            return None
        recipe = Recipe.from_json(doc["recipe"])
        names = {f.name for f in fields(QualityReport)}
        report = QualityReport(**{k: v for k, v in doc["report"].items() if k in names})
        state = PlanState(recipe.options, tuple(sorted(recipe.explicit.items())))
        name, kind = describe(state)  # named as today's version names mixes
        speed = SpeedReport.from_json(doc["speed"]) if doc.get("speed") else None
        return Measurement(doc["key"], name, kind, state, int(doc["file_bytes"]), float(doc["bpw"]), report, speed)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, QuantError):
        return None
