"""``quant-explorer card``: one Markdown model card for a ladder of GGUF files."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..card_data import CardError, entry_from_file, read_eval_json, source_info, write_card
from ..model import Model, open_model
from ..model_card import QualityRow, SourceInfo, render_card

HELP = "write a Markdown model card listing GGUF files (size, bits per weight, types, quality, command)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="GGUF", help="the quantized files (the first part of a split one)")
    parser.add_argument("--source", metavar="SRC.gguf", help="the model they were made from (adds the commands)")
    parser.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="JSON",
        help="output of `quant-explorer eval --json` for one of the files (repeatable)",
    )
    parser.add_argument("--title", help="the card's title (default: the model's name)")
    parser.add_argument(
        "-o", "--output", metavar="FILE.md", help="where to write (default: README.md beside the files)"
    )


def run(args: argparse.Namespace) -> int:
    quality: dict[str, QualityRow] = {}
    for path in args.eval:
        name, row = read_eval_json(Path(path))
        quality[name] = row
    source = open_model(args.source) if args.source else None
    entries = [entry_from_file(Path(f), source, None) for f in args.files]
    unknown = set(quality) - {e.file_name for e in entries}
    if unknown:
        raise CardError(f"--eval measured {', '.join(sorted(unknown))}, which is not among the files")
    entries = [replace(e, quality=quality.get(e.file_name)) for e in entries]
    first = open_model(args.files[0])
    info = source_info(source) if source is not None else _from_quant(first)
    out = Path(args.output) if args.output else Path(args.files[0]).parent / "README.md"
    if out.suffix.lower() == ".gguf" or any(out.resolve() == Path(f).resolve() for f in [*args.files, *args.eval]):
        raise CardError(f"{out} is a model or an input; write the card to a .md file")
    write_card(out, render_card(info, entries, args.title))
    print(f"wrote {out}: {len(entries)} file(s)")
    return 0


def _from_quant(model: Model) -> SourceInfo:
    """Without the source, what a quantized file says about it (no source file, type, size or hash)."""
    return replace(source_info(model, hash_limit=-1), file_name=None, file_type=None, file_bytes=None)
