"""``quant-explorer bench``: quantize/dequantize throughput per type."""

from __future__ import annotations

import argparse

import numba

from ..bench import default_types, run_bench
from ..qtypes import qtype
from .ggml_ref import load_ggml_quantizer

HELP = "measure quantize/dequantize throughput (million elements per second) per type"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--types", nargs="+", metavar="TYPE", help="types to measure (default: all)")
    parser.add_argument("--rows", type=int, default=4096, help="matrix rows (default 4096)")
    parser.add_argument("--cols", type=int, default=4096, help="matrix columns (default 4096)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per type, best kept")
    parser.add_argument("--imatrix", action="store_true", help="quantize with an importance matrix")
    parser.add_argument(
        "--ggml",
        nargs="?",
        const="auto",
        metavar="LIB",
        help="also time ggml's C quantizer (libggml-base from llama-cpp-python, or a path)",
    )


def run(args: argparse.Namespace) -> int:
    types = [qtype(t).name for t in args.types] if args.types else default_types()
    ggml = load_ggml_quantizer(args.ggml, args.threads) if args.ggml else None
    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    mode = "with imatrix" if args.imatrix else "no imatrix"
    print(f"{args.rows} x {args.cols} float32 N(0, 0.02^2), {threads} thread(s), {mode}")
    header = f"{'type':<9}{'quantize':>12}{'dequantize':>12}{'jit warm-up':>13}"
    header += f"{'ggml C':>10}{'ratio':>8}" if ggml else ""
    print(header + "\n" + " " * 9 + f"{'Melem/s':>12}{'Melem/s':>12}{'s':>13}")
    for res in run_bench(types, args.rows, args.cols, args.threads, args.repeats, args.imatrix, ggml):
        line = f"{res.type_name:<9}{res.quantize_melem_s:>12.1f}{res.dequantize_melem_s:>12.1f}{res.warmup_s:>13.2f}"
        if ggml:
            g = res.ggml_melem_s
            line += f"{g:>10.1f}{res.quantize_melem_s / g:>8.2f}" if g else f"{'-':>10}{'-':>8}"
        print(line, flush=True)
    return 0
