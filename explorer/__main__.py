"""``quant-explorer`` entry point: subcommands go to the Qt-free CLI, anything else to the GUI."""

from __future__ import annotations

import os
import sys

# Before numba or llama.cpp starts libgomp: idle OpenMP threads sleep instead of spinning, so the
# kernels and llama.cpp do not steal each other's cores (see quant_core/quality/runtime.py).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from quant_core.cli import SUBCOMMANDS
from quant_core.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and (args[0] in SUBCOMMANDS or args[0] in ("-h", "--help", "--version")):
        return cli_main(args)
    from .app import main as gui_main  # Qt is imported only when the GUI starts

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
