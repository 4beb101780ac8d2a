"""A Markdown model card for one quantization or a ladder of them: pure text from plain data.

The card says what was quantized (source model, architecture, parameters, source type, its
SHA-256 when known), lists every file with its size, bits per weight and, when measured, its
quality against the source (perplexity, KL divergence, how often the top token stays the same,
and on which text), and gives each file's recipe: the llama-quantize command that reproduces it
and its types per tensor category. Building the data from models, plans and files is
:mod:`quant_core.card_data`; this module only formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_DASH = "—"


@dataclass(frozen=True)
class SourceInfo:
    """The model the quantizations were made from."""

    name: str
    file_name: str | None  # None: not known (a card built from quantized files alone)
    architecture: str
    n_parameters: int
    file_type: str | None
    file_bytes: int | None
    sha256: str | None = None


@dataclass(frozen=True)
class QualityRow:
    """One measurement against the source, as ``llama-perplexity --kl-divergence`` reports it."""

    ppl: float
    ppl_base: float
    kld_mean: float
    kld_p99: float
    same_top_p: float
    text: str
    n_chunk: int
    n_ctx: int
    pp_tps: float | None = None  # speed as llama-bench measures it, when measured
    tg_tps: float | None = None


@dataclass(frozen=True)
class TypeCount:
    """``count`` tensors of one category stored as ``type`` in ``n_bytes`` bytes."""

    type: str
    count: int
    n_bytes: int


@dataclass(frozen=True)
class CardEntry:
    """One exported quantization.

    ``categories`` maps a tensor category (llama.cpp's: token_embd, attn_v, ffn_down, …) to
    its types; ``parts`` names the files of a split output (empty: one file).
    """

    file_name: str
    preset: str
    file_bytes: int
    bpw: float
    categories: tuple[tuple[str, tuple[TypeCount, ...]], ...]
    command: str | None = None
    imatrix: str | None = None
    parts: tuple[str, ...] = ()
    quality: QualityRow | None = None
    note: str | None = None


def format_size(n: int) -> str:
    """Bytes in binary units, as the app shows them: '3.21 MiB', '4.07 GiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_count(n: int) -> str:
    """A parameter count: '12.6 M', '7.24 B', '900 K'."""
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return str(n)


def render_card(source: SourceInfo, entries: Sequence[CardEntry], title: str | None = None) -> str:
    """The whole card: title, source, the files table, quality notes and one section per file."""
    if not entries:
        raise ValueError("a model card needs at least one quantization")
    lines = [f"# {title or f'{source.name} GGUF'}", ""]
    lines += _intro(source, entries)
    lines += ["", "## Source", ""] + _source_table(source)
    lines += ["", "## Files", ""] + files_table(entries)
    lines += _quality_notes(entries)
    for entry in entries:
        lines += ["", f"## {entry.file_name}", ""] + entry_section(entry)
    return "\n".join(lines).rstrip() + "\n"


def _intro(source: SourceInfo, entries: Sequence[CardEntry]) -> list[str]:
    what = "one quantization" if len(entries) == 1 else f"{len(entries)} quantizations"
    of = f" of `{source.file_name}`" if source.file_name else ""
    how = (
        " Each file's section gives the `llama-quantize` command that reproduces it."
        if any(e.command for e in entries)
        else ""
    )
    return [
        f"GGUF files of **{source.name}** ({source.architecture}, {format_count(source.n_parameters)} "
        f"parameters) for llama.cpp: {what}{of}, made with Quant Explorer.{how}"
    ]


def _source_table(source: SourceInfo) -> list[str]:
    rows = [
        ("Model", source.name),
        ("Architecture", source.architecture),
        ("Parameters", f"{format_count(source.n_parameters)} ({source.n_parameters:,})"),
    ]
    if source.file_name:
        rows.append(("Source file", f"`{source.file_name}`"))
    if source.file_type:
        rows.append(("Source type", source.file_type))
    if source.file_bytes is not None:
        rows.append(("Source size", f"{format_size(source.file_bytes)} ({source.file_bytes:,} bytes)"))
    if source.sha256:
        rows.append(("Source SHA-256", f"`{source.sha256}`"))
    return ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows]


def files_table(entries: Sequence[CardEntry]) -> list[str]:
    """One row per file: size, bits per weight and the measured quality (or dashes)."""
    measured = any(e.quality is not None for e in entries)
    timed = any(e.quality is not None and e.quality.pp_tps is not None for e in entries)
    head = ["File", "Preset", "Size", "Bits per weight"]
    if measured:
        head += ["PPL", "Mean KLD", "99% KLD", "Same top p"]
    if timed:
        head += ["pp t/s", "tg t/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for e in sorted(entries, key=lambda e: e.file_bytes):
        row = [f"`{e.file_name}`", e.preset, format_size(e.file_bytes), f"{e.bpw:.2f}"]
        if measured:
            row += _quality_cells(e.quality)
        if timed:
            row += _speed_cells(e.quality)
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _quality_cells(q: QualityRow | None) -> list[str]:
    if q is None:
        return [_DASH] * 4
    return [f"{q.ppl:.4f}", f"{q.kld_mean:.6f}", f"{q.kld_p99:.6f}", f"{100 * q.same_top_p:.2f} %"]


def _speed_cells(q: QualityRow | None) -> list[str]:
    if q is None or q.pp_tps is None or q.tg_tps is None:
        return [_DASH] * 2
    return [f"{q.pp_tps:.1f}", f"{q.tg_tps:.1f}"]


def _quality_notes(entries: Sequence[CardEntry]) -> list[str]:
    setups = sorted({(q.text, q.n_chunk, q.n_ctx, q.ppl_base) for e in entries if (q := e.quality) is not None})
    if not setups:
        return []
    lines = [""]
    for text, n_chunk, n_ctx, ppl_base in setups:
        lines.append(
            f"Quality measured with llama.cpp against the source model on `{text}` ({n_chunk} chunks of "
            f"{n_ctx} tokens; source perplexity {ppl_base:.4f}), with the statistics of "
            "`llama-perplexity --kl-divergence`: KL divergence of the token distributions and how "
            "often the most likely token stays the same. Lower KLD is closer to the source."
        )
    if any(e.quality is not None and e.quality.pp_tps is not None for e in entries):
        lines.append(
            "Speed (tokens per second) measured as `llama-bench` measures it (pp: prompt processing, "
            "tg: generation) on the machine that made this card; compare rows, not machines."
        )
    return lines


def entry_section(entry: CardEntry) -> list[str]:
    """One file's details: size, parts, quality, the command, and the types per category."""
    lines = [f"- Preset {entry.preset}, {format_size(entry.file_bytes)} ({entry.file_bytes:,} bytes), "]
    lines[0] += f"{entry.bpw:.2f} bits per weight"
    if entry.parts:
        lines.append(
            f"- Split into {len(entry.parts)} parts (load the first): " + ", ".join(f"`{p}`" for p in entry.parts)
        )
    if entry.imatrix:
        lines.append(f"- Importance matrix: `{entry.imatrix}`")
    if entry.quality is not None:
        q = entry.quality
        lines.append(
            f"- Quality on `{q.text}`: PPL {q.ppl:.4f} (source {q.ppl_base:.4f}), mean KLD {q.kld_mean:.6f}, "
            f"99% KLD {q.kld_p99:.6f}, same top token {100 * q.same_top_p:.2f} %"
        )
    if entry.note:
        lines.append(f"- Note: {entry.note}")
    if entry.command:
        lines += ["", "Reproduce with llama.cpp:", "", "```sh", entry.command, "```"]
    if entry.categories:
        lines += ["", "| Tensor category | Types (tensors) | Size |", "|---|---|---:|"]
        for category, types in entry.categories:
            listed = ", ".join(f"{t.type} ({t.count})" for t in types)
            lines.append(f"| {category} | {listed} | {format_size(sum(t.n_bytes for t in types))} |")
    return lines


def _cell(text: str) -> str:
    """Table cell text: pipes escaped, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")
