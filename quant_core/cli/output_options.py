"""``quantize``'s output options: split parts (as llama-gguf-split writes them) and a model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..card_data import card_path, entry_from_plan, source_info, write_card
from ..errors import QuantError
from ..model import Model
from ..model_card import render_card
from ..plan import Plan
from ..size import SizeReport, project_parts
from ..split import SplitSpec, parse_split_size, part_paths
from ..verify import Verification, verify_written


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--split-max-size``, ``--split-max-tensors`` and ``--model-card``."""
    g = parser.add_argument_group("output files")
    limit = g.add_mutually_exclusive_group()
    limit.add_argument(
        "--split-max-size",
        metavar="N(M|G)",
        help="write llama-gguf-split parts NAME-00001-of-0000N.gguf of at most N megabytes (M) or gigabytes (G)",
    )
    limit.add_argument(
        "--split-max-tensors", type=int, metavar="N", help="write llama-gguf-split parts of at most N tensors"
    )
    g.add_argument(
        "--model-card",
        action="store_true",
        help="also write a Markdown model card NAME.md beside the output (source, recipe, types, size)",
    )


def split_spec(args: argparse.Namespace) -> SplitSpec | None:
    """The split the options ask for, or None for one file."""
    if getattr(args, "split_max_size", None):
        return SplitSpec(max_bytes=parse_split_size(args.split_max_size))
    if getattr(args, "split_max_tensors", None) is not None:
        if args.split_max_tensors < 1:
            raise QuantError("--split-max-tensors must be at least 1")
        return SplitSpec(max_tensors=args.split_max_tensors)
    return None


def written_files(out: str | Path, parts: list[int] | None) -> list[Path]:
    """The files an export to ``out`` wrote: ``out`` itself, or its split parts."""
    return [Path(out)] if parts is None else part_paths(out, len(parts))


def projected_parts(model: Model, plan: Plan, spec: SplitSpec | None, keys: list | None) -> list[int] | None:
    """Exact size of every part (None when not split)."""
    return None if spec is None else project_parts(model, plan, spec, keys)


def print_parts(out: str | Path, parts: list[int]) -> None:
    """One line per part: its name and size."""
    for path, n in zip(written_files(out, parts), parts, strict=True):
        print(f"  {path.name}: {n} bytes ({n / 1024**2:.2f} MiB)")


def verify_output(out: str | Path, plan: Plan, size: SizeReport, parts: list[int] | None) -> Verification:
    """Re-open what was written (the first part of a split) and check it against the projection."""
    if parts is None:
        return verify_written(out, plan, size.file_bytes)
    return verify_written(written_files(out, parts)[0], plan, sum(parts), parts)


def write_model_card(
    model: Model, plan: Plan, size: SizeReport, out: str | Path, parts: list[int] | None, spec: SplitSpec | None
) -> Path:
    """Write ``NAME.md`` beside the output: the source, this file, its command and types."""
    entry = entry_from_plan(model, plan, size, Path(out), parts, spec)
    return write_card(card_path(out), render_card(source_info(model), [entry]))
