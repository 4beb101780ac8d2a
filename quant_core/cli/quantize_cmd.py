"""``quant-explorer quantize``: llama-quantize's command, with our quantizer."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import closing
from pathlib import Path

from ..encoders import identity_note, policy_warnings
from ..errors import QuantError
from ..export import ExportProgress, check_output_path, iter_export
from ..ftypes import file_type
from ..size import project_size
from .like import like_preset
from .options import add_quant_options, open_and_plan
from .output_options import (
    add_output_options,
    print_parts,
    projected_parts,
    split_spec,
    verify_output,
    write_model_card,
    written_files,
)
from .report import print_plan_table
from .target import add_target_options

HELP = "quantize a GGUF model like llama-quantize: INPUT [OUTPUT] PRESET [NTHREADS] (PRESET optional with --like)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_quant_options(parser)
    add_target_options(parser)
    add_output_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and sizes, write nothing")
    parser.add_argument("positionals", nargs="+", metavar="INPUT [OUTPUT] PRESET [NTHREADS]")


def _positionals(args: argparse.Namespace) -> tuple[str, str, str, int | None]:
    p = args.positionals
    if len(p) < 2 and not (args.like and p):
        raise QuantError("usage: quantize [options] INPUT [OUTPUT] PRESET [NTHREADS]")
    inp, out = p[0], None
    try:
        preset = file_type(p[1]).name if len(p) > 1 else like_preset(args)
        rest = p[2:]
    except QuantError:
        if len(p) < 2 or (len(p) < 3 and not args.like):
            raise
        out = p[1]  # with --like, INPUT OUTPUT alone takes the reference's file type
        preset, rest = (file_type(p[2]).name, p[3:]) if len(p) > 2 else (like_preset(args), [])
    out = out or str(Path(inp).parent / f"ggml-model-{preset}.gguf")
    if len(rest) > 1:
        raise QuantError(f"unexpected argument {rest[1]!r}")
    threads = None
    if rest:
        try:
            threads = int(rest[0])
        except ValueError:
            raise QuantError(f"NTHREADS must be a number, got {rest[0]!r}") from None
    return inp, out, preset, threads if threads and threads > 0 else None


def _progress_line(p: ExportProgress) -> str:
    width = 30
    filled = int(width * p.fraction)
    eta = f"{p.eta_s:5.0f}s" if p.eta_s is not None else "   --"
    return (
        f"\r[{'=' * filled}{' ' * (width - filled)}] {100 * p.fraction:5.1f}% "
        f"{p.tensor_index}/{p.n_tensors} tensors {p.mb_per_s:7.1f} MB/s ETA {eta}"
    )


def run(args: argparse.Namespace) -> int:
    inp, out, preset, threads = _positionals(args)
    args.input = inp
    if not args.dry_run:  # before any work: the output may not be a device, FIFO or any input
        check_output_path(inp, out, (args.imatrix, args.recipe, args.tensor_type_file, args.like))
    split = split_spec(args)
    model, plan, imatrix, keys = open_and_plan(args, preset)
    for line in policy_warnings(plan) if not args.dry_run else ():  # --dry-run prints them with the plan
        print(f"warning: {line}", file=sys.stderr)
    size = project_size(model, plan, keys)
    parts = projected_parts(model, plan, split, keys)
    if args.dry_run:
        print_plan_table(plan, size)
        if parts is not None:
            print_parts(out, parts)
        return 0
    threads = args.threads or threads
    tty = sys.stderr.isatty()
    start = time.perf_counter()
    last = 0.0
    # closing() removes the partial file at once on Ctrl+C, not whenever the generator is collected
    with closing(iter_export(model, plan, out, imatrix, threads, keys, split)) as progress:
        for p in progress:
            now = time.perf_counter()
            if tty and (p.done or now - last > 0.1):
                print(_progress_line(p), end="", file=sys.stderr, flush=True)
                last = now
    if tty:
        print(file=sys.stderr)
    elapsed = time.perf_counter() - start
    written = sum(p.stat().st_size for p in written_files(out, parts))
    what = out if parts is None else f"{len(parts)} parts of {out}"
    print(f"wrote {what}: {written} bytes ({written / 1024**2:.2f} MiB, {size.bpw:.2f} BPW) in {elapsed:.1f} s")
    if parts is not None:
        print_parts(out, parts)
    print(verify_output(out, plan, size, parts).summary())
    if args.model_card:
        print(f"wrote {write_model_card(model, plan, size, out, parts, split)}")
    note = identity_note(plan)
    if note:
        print(f"note: {note}")
    return 0
