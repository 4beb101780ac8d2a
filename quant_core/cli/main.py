"""Argument parsing and dispatch for the subcommands."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from ..errors import QuantError
from ..inputs import os_reason
from .signals import exit_code, stop_signals_interrupt

# subcommand -> module in quant_core.cli providing ``add_arguments(parser)`` and ``run(args)``
SUBCOMMANDS: dict[str, str] = {
    "quantize": "quantize_cmd",
    "plan": "plan_cmd",
    "stats": "stats_cmd",
    "eval": "eval_cmd",
    "bench": "bench",
    "bench-model": "bench_model_cmd",
    "warmup": "warmup_cmd",
    "sensitivity": "sensitivity_cmd",
    "card": "card_cmd",
    "imatrix": "imatrix_cmd",
    "compare": "compare_cmd",
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
    argv = sys.argv[1:] if argv is None else argv
    bad = next((a for a in argv if not _is_utf8(a)), None)
    if bad is not None:
        print(f"quant-explorer: error: argument {bad!r} is not valid UTF-8", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = import_module(f"{__package__}.{SUBCOMMANDS[args.command]}")
    try:
        with stop_signals_interrupt():
            return int(module.run(args) or 0)
    except QuantError as err:
        print(f"quant-explorer: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print("quant-explorer: interrupted", file=sys.stderr)
        return exit_code(err)
    except BrokenPipeError:
        _silence_stdout()  # the reader (e.g. ``head``) has gone: end quietly
        return 128 + int(signal.SIGPIPE)
    except OSError as err:  # anything the commands did not turn into a QuantError
        where = f" {err.filename}" if err.filename else ""
        print(f"quant-explorer: error: cannot access{where}: {os_reason(err)}", file=sys.stderr)
        return 1


def _is_utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return True


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout replaced by an object without a descriptor
        pass
