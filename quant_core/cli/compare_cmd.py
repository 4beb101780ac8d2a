"""``quant-explorer compare``: a plan beside a reference GGUF (a published quant), tensor by tensor."""

from __future__ import annotations

import argparse
import json

from ..compare import Comparison, Total, compare, open_reference
from ..size import project_size
from .like import reference_preset
from .options import add_quant_options, open_and_plan

HELP = "compare a plan of MODEL with a reference GGUF: types, bytes and bpw per tensor, category and layer"
_DEFAULT_PRESET = "Q4_K_M"
_LISTED = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_quant_options(parser)
    parser.add_argument("--preset", metavar="PRESET", help="the plan's preset (default: the reference's file type)")
    parser.add_argument("--layers", action="store_true", help="also print the totals per layer")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("input", metavar="MODEL.gguf")
    parser.add_argument("reference", metavar="REF.gguf")


def run(args: argparse.Namespace) -> int:
    ref = open_reference(args.reference)
    preset = args.preset or reference_preset(ref) or _DEFAULT_PRESET
    model, plan, _imatrix, keys = open_and_plan(args, preset)
    result = compare(model, plan, ref, project_size(model, plan, keys))
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    print(result.summary())
    print(
        f"plan {plan.file_type.name} of {model.path.name} ({result.n_plan_layers} layers): "
        f"{result.plan_file_bytes / 1024**2:.2f} MiB, {result.total.plan_bpw:.2f} BPW; "
        f"{result.reference} ({result.n_ref_layers} layers): "
        f"{result.ref_file_bytes / 1024**2:.2f} MiB, {result.total.ref_bpw:.2f} BPW"
    )
    _print_totals("category", result.by_category)
    if args.layers:
        _print_totals("layer", result.by_layer)
    _print_differences(result)
    return 0


def _print_totals(what: str, totals: tuple[Total, ...]) -> None:
    print()
    print(f"{what:<14} {'plan MiB':>10} {'plan bpw':>9} {'ref MiB':>10} {'ref bpw':>8} {'differ':>7}")
    for t in totals:
        key = t.key if t.ref_key is None else f"{t.key} (ref {t.ref_key})"
        print(
            f"{key:<14} {t.plan_bytes / 1024**2:10.3f} {t.plan_bpw:9.2f} "
            f"{t.ref_bytes / 1024**2:10.3f} {t.ref_bpw:8.2f} {t.differing:7d}"
        )


def _print_differences(result: Comparison) -> None:
    rows = result.differing
    if rows:
        print()
        width = max(len(r.name) for r in rows)
        for r in rows:
            plan_part = f"plan {r.plan_type:<7} {r.plan_bpw:5.2f} bpw"
            print(f"{r.name:<{width}}  {plan_part}  ref {r.ref_type:<7} {r.ref_bpw or 0.0:5.2f} bpw")
    for label, names in (("only in the plan", result.plan_only), ("only in the reference", result.ref_only)):
        if names:
            more = f", … ({len(names)} in all)" if len(names) > _LISTED else ""
            print(f"{label}: " + ", ".join(names[:_LISTED]) + more)
