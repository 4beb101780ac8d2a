"""``quant-explorer plan``: every tensor's type, size and reason, as text or JSON."""

from __future__ import annotations

import argparse
import json

from ..encoders import identity_note
from ..errors import QuantError
from ..size import project_size
from .options import add_quant_options, open_and_plan
from .report import print_plan_table
from .target import add_target_options

HELP = "show the per-tensor plan of a preset (types, bytes, reasons) and the exact file size"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_quant_options(parser)
    add_target_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("input", metavar="INPUT.gguf")
    parser.add_argument("preset", metavar="PRESET", nargs="?", help="llama-quantize preset (with --like: optional)")


def run(args: argparse.Namespace) -> int:
    if args.preset is None and not args.like:
        raise QuantError("PRESET is required (or --like REF.gguf)")
    model, plan, _imatrix, keys = open_and_plan(args, args.preset)
    size = project_size(model, plan, keys)
    if args.json:
        doc = {
            "file_bytes": size.file_bytes,
            "bpw": size.bpw,
            "byte_identical_to_llama_quantize": identity_note(plan) is None,
            "tensors": [
                {
                    "name": tp.name,
                    "type": tp.type,
                    "bytes": tp.n_bytes,
                    **tp.why.as_json(),
                    "encoder": tp.encoder,
                    "encoder_reason": tp.encoder_why,
                }
                for tp in plan.tensors
            ],
        }
        print(json.dumps(doc))
    else:
        print_plan_table(plan, size)
    return 0
