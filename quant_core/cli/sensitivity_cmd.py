"""``quant-explorer sensitivity``: which tensors matter, as a cost table per tensor and type.

    sensitivity INPUT [--imatrix F] [--text FILE] [--preset PRESET] [llama-quantize options] [--json]

Prints, per quantizable tensor, its measured sensitivity S and the predicted increase of mean
KL divergence for every candidate type (additive across tensors). Results are cached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from ..assets import DEMO_CALIBRATION_TEXT
from ..errors import QuantError
from ..inputs import read_input_head
from ..qtypes import qtype
from ..quality import read_text_file
from ..sensitivity import SensitivityProgress, SensitivitySettings, SensitivityTable, iter_sensitivity
from .options import add_quant_options, open_and_plan

HELP = "predicted KL-divergence cost of every candidate type of every tensor (measured, cached)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", metavar="INPUT.gguf", help="the model (F16/BF16/F32, or quantized with --allow-requantize)"
    )
    parser.add_argument(
        "--preset", metavar="PRESET", help="plan whose quantizable tensors are measured (default Q4_K_M)"
    )
    m = parser.add_argument_group("measurement")
    m.add_argument(
        "--text",
        metavar="FILE",
        help="calibration text (default: the demo's calibration text, disjoint from its held-out text)",
    )
    m.add_argument("--ctx", type=int, metavar="N", help="tokens per chunk (default: by model size)")
    m.add_argument("--chunks", type=int, metavar="N", help="chunks per run (default: by model size)")
    m.add_argument("--max-units", type=int, metavar="N", help="most probe runs; more tensors are grouped by depth")
    m.add_argument("--no-cache", action="store_true", help="measure again, neither reading nor writing the cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_quant_options(parser)


def _settings(args: argparse.Namespace, model: object) -> SensitivitySettings:
    changes = {}
    for arg, name in (("ctx", "n_ctx"), ("chunks", "chunks"), ("max_units", "max_units")):
        value = getattr(args, arg)
        if value is not None:
            if value <= 0:
                raise QuantError(f"--{arg.replace('_', '-')} must be positive, got {value}")
            changes[name] = value
    settings = SensitivitySettings.for_model(model, **changes)  # type: ignore[arg-type]
    return replace(settings, threads=args.threads)


def _progress(p: SensitivityProgress, tty: bool, last: list[str]) -> None:
    if tty:
        print(f"\r{p.stage:>8}: {100 * p.fraction:5.1f}%  {p.detail[:48]:<48}", end="", file=sys.stderr, flush=True)
    elif p.stage != (last[0] if last else None):
        print(f"{p.stage}...", file=sys.stderr, flush=True)
    last[:] = [p.stage]


def run(args: argparse.Namespace) -> int:
    # many short llama.cpp runs: idle OpenMP threads must sleep, not spin (10x slower on a busy machine)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    text_path = Path(args.text) if args.text else DEMO_CALIBRATION_TEXT
    read_input_head(text_path, "text file", QuantError, 0)  # a FIFO or device would never end
    text = read_text_file(text_path)
    model, plan, imatrix, keys = open_and_plan(args, args.preset or "Q4_K_M")
    settings = _settings(args, model)
    tty = sys.stderr.isatty()
    table: SensitivityTable | None = None
    last: list[str] = []
    with closing(iter_sensitivity(model, plan, text, imatrix, not args.no_cache, settings, keys)) as items:
        for item in items:
            if isinstance(item, SensitivityTable):
                table = item
            else:
                _progress(item, tty, last)
    if tty and last:
        print(file=sys.stderr)
    if table is None:
        raise QuantError("the computation produced no table")
    if args.json:
        print(json.dumps({"model": args.input, "text": str(text_path), **table.as_json()}))
    else:
        print_table(table)
    return 0


def print_table(table: SensitivityTable) -> None:
    """Per tensor: S and the predicted mean-KLD increase per type (columns by bits per weight)."""
    types = sorted({t for per in table.costs.values() for t in per}, key=lambda t: (qtype(t).bpw, t))
    width = max(len(n) for n in table.costs)
    print(f"exponent beta {table.beta:.3f} on error energy; floor {table.floor:.2e}; {len(table.measured)} probe runs")
    print("predicted increase of mean KLD when the tensor alone takes the type ('-': not a candidate)")
    print(f"{'tensor':<{width}} {'S':>9} " + " ".join(f"{t:>8}" for t in types))
    for name, per in table.costs.items():
        cells = " ".join(f"{per[t]:8.1e}" if t in per else f"{'-':>8}" for t in types)
        print(f"{name:<{width}} {table.sensitivity[name]:9.3g} {cells}")
