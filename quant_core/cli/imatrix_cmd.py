"""``quant-explorer imatrix``: compute an importance matrix from a text, as llama-imatrix does.

    imatrix MODEL.gguf [--text FILE] [--ctx 512] [--chunks N] [-o OUT.gguf] [--output-format dat]
    imatrix --show-statistics IMATRIX.gguf

The text defaults to the demo's calibration text; the output to ``<model name>.imatrix.gguf``
in the current folder (``.dat`` in the name, or ``--output-format dat``, writes the legacy
format). Progress goes to stderr; an interrupted run leaves no file.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from pathlib import Path

from ..assets import DEMO_CALIBRATION_TEXT
from ..errors import QuantError
from ..imatrix_calc import ImatrixProgress, ImatrixResult, iter_imatrix
from ..imatrix_calc.statistics import format_statistics, statistics_for_file
from ..inputs import read_input_head
from ..quality import read_text_file

HELP = "compute an importance matrix from a text (as llama-imatrix), or show an imatrix's statistics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.gguf", nargs="?", help="the model to evaluate (F16/BF16/F32 best)")
    parser.add_argument("--text", metavar="FILE", help="calibration text (default: the demo's calibration text)")
    parser.add_argument("--ctx", type=int, default=512, metavar="N", help="tokens per chunk (default 512)")
    parser.add_argument("--chunks", type=int, metavar="N", help="evaluate at most N chunks (default: all)")
    parser.add_argument("-o", "--output", metavar="OUT", help="output file (default: <model>.imatrix.gguf)")
    parser.add_argument(
        "--output-format", choices=("gguf", "dat"), help="file format (default: dat for a .dat name, else gguf)"
    )
    parser.add_argument("--process-output", action="store_true", help="also collect output.weight")
    parser.add_argument("--threads", type=int, metavar="N", help="threads for llama.cpp (default: all CPUs)")
    parser.add_argument(
        "--show-statistics", metavar="IMATRIX", help="print per-tensor statistics of an importance matrix file"
    )


def run(args: argparse.Namespace) -> int:
    if args.show_statistics:
        if args.model:
            raise QuantError("--show-statistics reads an existing importance matrix: give no MODEL")
        print(format_statistics(*statistics_for_file(args.show_statistics)))
        return 0
    if not args.model:
        raise QuantError("give MODEL.gguf (or --show-statistics IMATRIX)")
    if args.ctx <= 0:
        raise QuantError(f"--ctx must be positive, got {args.ctx}")
    text_path = Path(args.text) if args.text else DEMO_CALIBRATION_TEXT
    read_input_head(text_path, "text file", QuantError, 0)  # a FIFO or device would never end
    read_input_head(args.model, "model", QuantError, 0)
    out = Path(args.output) if args.output else Path(f"{Path(args.model).stem}.imatrix.gguf")
    items = iter_imatrix(
        args.model,
        read_text_file(text_path),
        out,
        n_ctx=args.ctx,
        chunks=args.chunks,
        dataset=str(args.text or text_path),
        fmt=args.output_format,
        process_output=args.process_output,
        threads=args.threads,
    )
    tty = sys.stderr.isatty()
    result = None
    with closing(items):
        for item in items:
            if isinstance(item, ImatrixResult):
                result = item
            else:
                _progress(item, tty)
    if tty:
        print(file=sys.stderr)
    if result is None:
        raise QuantError("the computation produced no file")
    print(
        f"wrote {result.path}: {result.entries} tensors, {result.chunks} chunks of {result.chunk_size} tokens "
        f"({result.seconds:.1f} s)"
    )
    return 0


def _progress(p: ImatrixProgress, tty: bool) -> None:
    if tty:
        print(
            f"\rimatrix: {100 * p.fraction:5.1f}% ({p.done}/{p.total} chunks)   ", end="", file=sys.stderr, flush=True
        )
    elif p.done == 0:
        print(f"imatrix: {p.total} chunks...", file=sys.stderr, flush=True)
