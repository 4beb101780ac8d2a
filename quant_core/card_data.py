"""The data of a model card, from a plan being exported or from GGUF files already written.

:func:`entry_from_plan` describes an export (its command is the app's ``llama-quantize``
command line, with ``llama-gguf-split`` after it for a split output); :func:`entry_from_file`
describes a written GGUF (its preset from ``general.file_type``; its command rebuilt from the
source model when that is given). Quality comes from a measurement or from the JSON that
``quant-explorer eval --json`` prints. :func:`write_card` writes the Markdown atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import QuantError
from .ftypes import file_type
from .layout import pad
from .model import CATEGORIES, Model, open_model
from .model_card import CardEntry, QualityRow, SourceInfo, TypeCount
from .plan import Plan, QuantOptions, build_plan
from .recipe import llama_quantize_command
from .size import SizeReport
from .split import SplitSpec, assign_parts, parse_part_name, part_paths, split_prefix

HASH_LIMIT = 4 * 1024**3  # hash sources up to this size (a few seconds); larger ones are not hashed


class CardError(QuantError):
    """A model card that cannot be built or written."""


def source_info(model: Model, hash_limit: int = HASH_LIMIT) -> SourceInfo:
    """The source model's facts; its SHA-256 when it is one file of at most ``hash_limit`` bytes."""
    name = model.meta("general.name")
    ftype = model.meta("general.file_type")
    try:
        type_name = file_type(int(ftype)).name if ftype is not None else _dominant_type(model)
    except QuantError:
        type_name = _dominant_type(model)
    sha = None
    if not model.part_paths and model.file_size <= hash_limit:
        sha = sha256_of(model.path)
    return SourceInfo(
        name=_text(name) if name is not None else model.path.stem,
        file_name=model.path.name,
        architecture=model.arch or "unknown",
        n_parameters=model.n_parameters,
        file_type=type_name,
        file_bytes=model.file_size,
        sha256=sha,
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dominant_type(model: Model) -> str:
    by_type: dict[str, int] = defaultdict(int)
    for t in model.tensors:
        by_type[t.src_type] += t.n_bytes
    return max(by_type, key=by_type.__getitem__) if by_type else "unknown"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def categories(items: Iterable[tuple[str, str, int]]) -> tuple[tuple[str, tuple[TypeCount, ...]], ...]:
    """(category, type, bytes) per tensor -> per category, its types by bytes (largest first)."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for category, type_name, n_bytes in items:
        slot = counts[category][type_name]
        slot[0] += 1
        slot[1] += n_bytes
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return tuple(
        (c, tuple(TypeCount(t, n, b) for t, (n, b) in sorted(types.items(), key=lambda kv: (-kv[1][1], kv[0]))))
        for c, types in sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
    )


def entry_from_plan(
    model: Model,
    plan: Plan,
    size: SizeReport,
    out: Path,
    parts: Sequence[int] | None = None,
    split: SplitSpec | None = None,
    quality: QualityRow | None = None,
) -> CardEntry:
    """The card entry of exporting ``plan`` to ``out`` (split into ``parts`` when given)."""
    command = llama_quantize_command(model, plan, model.path.name, out.name)
    part_names: tuple[str, ...] = ()
    if parts is not None and split is not None:
        part_names = tuple(p.name for p in part_paths(out, len(parts)))
        prefix = split_prefix(out).name
        command += "\n" + shlex.join(["llama-gguf-split", *split.describe().split(), out.name, prefix])
    return CardEntry(
        file_name=part_names[0] if part_names else out.name,
        preset=plan.options.preset,
        file_bytes=sum(parts) if parts is not None else size.file_bytes,
        bpw=size.bpw,
        categories=categories((tp.source.category, tp.type, tp.n_bytes) for tp in plan.tensors),
        command=command,
        imatrix=Path(plan.options.imatrix).name if plan.options.imatrix else None,
        parts=part_names,
        quality=quality,
    )


def entry_from_file(path: Path, source: Model | None = None, quality: QualityRow | None = None) -> CardEntry:
    """The card entry of a written GGUF (the first part of a split one)."""
    m = open_model(path)
    ftype = m.meta("general.file_type")
    try:
        preset = file_type(int(ftype)).name if ftype is not None else _dominant_type(m)
    except QuantError:
        preset = _dominant_type(m)
    imatrix = m.meta("quantize.imatrix.file")
    n_elements = sum(t.n_elements for t in m.tensors)
    tensor_bytes = sum(t.n_bytes for t in m.tensors)
    return CardEntry(
        file_name=path.name,
        preset=preset,
        file_bytes=m.file_size,
        bpw=tensor_bytes * 8.0 / n_elements if n_elements else 0.0,
        categories=categories((t.category, t.src_type, t.n_bytes) for t in m.tensors),
        command=_command_for(m, source, preset, _text(imatrix) if imatrix is not None else None, infer_split(m)),
        imatrix=Path(_text(imatrix)).name if imatrix is not None else None,
        parts=tuple(p.name for p in m.part_paths),
        quality=quality,
    )


def infer_split(model: Model) -> SplitSpec | None:
    """A llama-gguf-split limit that cuts ``model``'s tensors into its parts (None: unsplit or none found).

    A tensor count when every part but the last has the same count; else the smallest whole
    number of megabytes (or gigabytes) that reproduces the cut.
    """
    if not model.part_paths:
        return None
    sizes = [pad(t.n_bytes) for t in model.tensors]
    counts = [sum(1 for t in model.tensors if t.part == i) for i in range(len(model.part_paths))]
    candidates = [SplitSpec(max_tensors=counts[0])] if len(set(counts[:-1])) == 1 else []
    per_part = [sum(n for n, t in zip(sizes, model.tensors, strict=True) if t.part == i) for i in range(len(counts))]
    for unit in (1000**2, 1000**3):
        candidates.append(SplitSpec(max_bytes=-(-max(per_part) // unit) * unit))
    for spec in candidates:
        try:
            if [len(r) for r in assign_parts(sizes, spec)] == counts:
                return spec
        except QuantError:
            continue
    return None


def _command_for(
    quant: Model, source: Model | None, preset: str, imatrix: str | None, split: SplitSpec | None
) -> str | None:
    """llama-quantize's command making ``quant``'s types from ``source`` (None if it cannot).

    For a split file, the command writes the unsplit file and ``llama-gguf-split`` cuts it.
    """
    if source is None:
        return None
    types = {t.name: t.src_type for t in quant.tensors}
    try:
        options = QuantOptions(preset=preset, imatrix=imatrix)
        base = build_plan(source, options, has_imatrix=imatrix is not None)
        explicit = {tp.name: types[tp.name] for tp in base.tensors if types.get(tp.name, tp.type) != tp.type}
        if set(types) != {tp.name for tp in base.tensors}:
            return None  # other tensors (pruned layers, another model): no command reproduces it
        plan = build_plan(source, options, explicit, has_imatrix=imatrix is not None)
        if plan.types() != types:
            return None
    except QuantError:
        return None
    if not quant.part_paths:
        return llama_quantize_command(source, plan, source.path.name, quant.path.name)
    prefix = parse_part_name(quant.path)
    whole = f"{prefix[0].name}.gguf" if prefix else quant.path.name
    command = llama_quantize_command(source, plan, source.path.name, whole)
    if split is None:
        return command + f"\n# then cut {whole} into {len(quant.part_paths)} parts with llama-gguf-split"
    return command + "\n" + shlex.join(["llama-gguf-split", *split.describe().split(), whole, whole[:-5]])


def quality_row(report: Any, text: str | os.PathLike[str]) -> QualityRow:
    """A card's quality row from a :class:`~quant_core.quality.QualityReport` (or its JSON)."""
    get = report.get if isinstance(report, Mapping) else lambda k: getattr(report, k)
    try:
        return QualityRow(
            ppl=float(get("ppl")),
            ppl_base=float(get("ppl_base")),
            kld_mean=float(get("kld_mean")),
            kld_p99=float(get("kld_p99")),
            same_top_p=float(get("same_top_p")),
            text=Path(text).name,
            n_chunk=int(get("n_chunk")),
            n_ctx=int(get("n_ctx")),
            pp_tps=_optional_float(get, "pp_tps"),
            tg_tps=_optional_float(get, "tg_tps"),
        )
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CardError(f"not a quality report ({err})") from None


def _optional_float(get: Any, key: str) -> float | None:
    try:
        value = get(key)
    except (KeyError, AttributeError):
        return None
    return None if value is None else float(value)


def read_eval_json(path: Path) -> tuple[str, QualityRow]:
    """(candidate file name, quality) from the output of ``quant-explorer eval --json``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CardError(f"{path}: cannot read an eval JSON ({err})") from None
    if not isinstance(doc, dict) or "candidate" not in doc or "text" not in doc:
        raise CardError(f"{path}: not the output of `quant-explorer eval --json`")
    try:
        return Path(str(doc["candidate"])).name, quality_row(doc, str(doc["text"]))
    except CardError as err:
        raise CardError(f"{path}: {err}") from None


def card_path(out: str | os.PathLike[str]) -> Path:
    """Where the card of an export to ``out`` goes: ``NAME.md`` beside ``NAME.gguf``."""
    prefix = split_prefix(out)
    return prefix.with_name(prefix.name + ".md")


def write_card(path: Path, text: str) -> Path:
    """Write the card atomically (a temporary file renamed); CardError with one line on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CardError(f"cannot write the model card {path}: {err.strerror or err}") from None
    return path
