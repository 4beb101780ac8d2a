"""Argument parsing and dispatch for the subcommands."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from ..errors import QuantError

# subcommand -> module in quant_core.cli providing ``add_arguments(parser)`` and ``run(args)``
SUBCOMMANDS: dict[str, str] = {
    "quantize": "quantize_cmd",
    "plan": "plan_cmd",
    "stats": "stats_cmd",
    "eval": "eval_cmd",
    "bench": "bench",
    "warmup": "warmup_cmd",
    "sensitivity": "sensitivity_cmd",
}


def _version() -> str:
    try:
        return version("quant-explorer")
    except PackageNotFoundError:  # running from a source tree
        return "dev"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quant-explorer",
        description="Design, preview and export mixed-precision GGUF quantizations. "
        "Without a subcommand the desktop app starts.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = import_module(f"{__package__}.{module_name}")
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; user errors print one line to stderr and return non-zero."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = import_module(f"{__package__}.{SUBCOMMANDS[args.command]}")
    try:
        return int(module.run(args) or 0)
    except QuantError as err:
        print(f"quant-explorer: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("quant-explorer: interrupted", file=sys.stderr)
        return 130
