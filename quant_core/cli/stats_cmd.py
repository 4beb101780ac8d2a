"""``quant-explorer stats``: per-tensor error statistics of a plan."""

from __future__ import annotations

import argparse
import json
import math
import re

from ..errors import QuantError
from ..evaluate import DEFAULT_SAMPLE_ROWS, iter_evaluate
from ..regex_guard import UnsafePatternError, compile_safe
from .options import add_quant_options, open_and_plan

HELP = "per-tensor quantization error of a preset (sampled rows by default, --rows 0 for all)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_quant_options(parser)
    parser.add_argument("--tensor", metavar="REGEX", help="only tensors whose name matches")
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_SAMPLE_ROWS,
        help=f"rows sampled per tensor (default {DEFAULT_SAMPLE_ROWS}; 0 = all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("input", metavar="INPUT.gguf")
    parser.add_argument("preset", metavar="PRESET")


def _finite(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) or math.isinf(v) else v


def run(args: argparse.Namespace) -> int:
    model, plan, imatrix, _keys = open_and_plan(args, args.preset)
    try:
        pattern = compile_safe(args.tensor) if args.tensor else None
    except (re.error, UnsafePatternError) as err:
        raise QuantError(f"invalid --tensor regex: {err}") from None
    names = [tp.name for tp in plan.tensors if tp.quantizable and (pattern is None or pattern.search(tp.name))]
    rows = args.rows if args.rows > 0 else None
    results = []
    if not args.json:
        print(
            f"{'tensor':<36} {'type':<8} {'rows':>7} {'rel_rmse':>9} {'rmse':>10} {'max_abs':>10} "
            f"{'snr_db':>7} {'cosine':>9}"
        )
    for ev in iter_evaluate(model, plan, names, rows, imatrix, args.threads):
        s = ev.stats
        if args.json:
            results.append(
                {
                    "name": ev.name,
                    "type": ev.type,
                    "encoder": ev.encoder,
                    "rows": ev.rows_used,
                    "n_rows": ev.n_rows,
                    "rmse": s.rmse,
                    "rel_rmse": _finite(s.rel_rmse),
                    "max_abs": s.max_abs,
                    "snr_db": _finite(s.snr_db),
                    "cosine": s.cosine,
                    "weighted_mse": _finite(s.weighted_mse),
                }
            )
        else:
            type_label = ev.type + ("+hqq" if ev.encoder == "hqq" else "")  # the type as HQQ encodes it
            print(
                f"{ev.name:<36} {type_label:<8} {ev.rows_used:>7} {s.rel_rmse:>9.4%} {s.rmse:>10.3e} "
                f"{s.max_abs:>10.3e} {s.snr_db:>7.2f} {s.cosine:>9.6f}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"preset": plan.file_type.name, "tensors": results}))
    return 0
