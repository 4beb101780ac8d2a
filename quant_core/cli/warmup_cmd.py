"""``quant-explorer warmup``: compile the numba kernels ahead of use, with one progress line."""

from __future__ import annotations

import argparse
import sys
import time

from ..warmup import cold_types, iter_processes_progress, start_warmup_processes, warmup_order

HELP = "compile the quantization kernels now (they are cached), so no type stalls on first use"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--types", nargs="+", metavar="TYPE", help="types to compile (default: all)")
    parser.add_argument("--jobs", type=int, default=None, help="processes compiling at once (default: one per core)")


def run(args: argparse.Namespace) -> int:
    order = warmup_order(args.types)  # unknown names fail here, before anything compiles
    cold = cold_types(order)
    live = sys.stdout.isatty()
    start = time.perf_counter()
    compiled = 0
    if cold:  # in other processes, one per core: numba compiles on one core
        procs = start_warmup_processes(cold, jobs=args.jobs, nice=0)
        for progress in iter_processes_progress(procs, len(cold)):
            compiled += not progress.cached
            if live:
                line = f"Preparing kernels… {progress.done}/{progress.total} {progress.type_name}"
                print(f"\r{line:<40}", end="", flush=True)
        if live:
            print("\r", end="")
    took = time.perf_counter() - start
    already = len(order) - compiled
    print(f"Kernels ready: {len(order)} type(s), {compiled} prepared now, {already} already cached ({took:.1f} s)")
    return 0
