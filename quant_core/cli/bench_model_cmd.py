"""``quant-explorer bench-model``: prompt and generation speed of a GGUF, as ``llama-bench`` measures it.

    bench-model MODEL.gguf [-p 512] [-n 128] [-r 5] [-t THREADS] [-b 2048] [-ub 512] [-ngl N] [--json]
    bench-model MODEL.gguf --preset Q4_K_M Q8_0 [llama-quantize options] [...]

With ``--preset``, each preset (with the llama-quantize options given) is quantized from
MODEL.gguf into a temporary file, measured, and the file deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from ..errors import QuantError
from ..model import open_model
from ..quality import QualityProgress, SpeedReport, SpeedSettings, iter_plan_speed, iter_speed
from ..size import project_size
from .options import add_quant_options, open_and_plan
from .speed_options import SpeedRow, add_speed_options, show_speed_progress, speed_settings, speed_table

HELP = "measure prompt-processing and generation speed (tokens/s) with llama.cpp, as llama-bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.gguf", help="the model to measure (or to quantize with --preset)")
    parser.add_argument(
        "--preset",
        nargs="+",
        action="extend",
        default=[],
        metavar="PRESET",
        help="measure these presets of MODEL instead (each quantized to a temporary file)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per model")
    add_speed_options(parser.add_argument_group("llama-bench options"), short=True)
    add_quant_options(parser)


def _measure(items: Iterator[QualityProgress | SpeedReport], name: str) -> SpeedReport:
    report = None
    with closing(items):
        for item in items:
            if isinstance(item, SpeedReport):
                report = item
            elif isinstance(item, QualityProgress):
                show_speed_progress(item, name)
    if sys.stderr.isatty():
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
    if report is None:
        raise QuantError(f"{name}: the measurement produced no report")
    return report


def _rows(args: argparse.Namespace, settings: SpeedSettings) -> Iterator[SpeedRow]:
    if not args.preset:
        model = open_model(args.model)
        tensor_bytes = sum(t.n_bytes for t in model.tensors)
        report = _measure(iter_speed(args.model, settings), Path(args.model).name)
        yield SpeedRow(Path(args.model).name, tensor_bytes, model.n_parameters, report)
        return
    args.input = args.model
    for preset in args.preset:
        model, plan, imatrix, keys = open_and_plan(args, preset)
        size = project_size(model, plan, keys)
        items = iter_plan_speed(model, plan, settings, imatrix, keys, threads=args.threads)
        yield SpeedRow(preset.upper(), size.tensor_bytes, size.n_elements, _measure(items, preset))


def run(args: argparse.Namespace) -> int:
    settings = speed_settings(args)
    rows = []
    for row in _rows(args, settings):
        rows.append(row)
        if args.json:
            doc = {"model": row.name, "tensor_bytes": row.tensor_bytes, "n_params": row.n_params}
            print(json.dumps({**doc, **row.report.as_json()}), flush=True)
    if not args.json:
        print(speed_table(rows))
    return 0
