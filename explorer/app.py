"""GUI start-up (the main window arrives with the explorer issue)."""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print(
        "quant-explorer: the desktop window is not built yet; "
        "use a subcommand (see 'quant-explorer --help')",
        file=sys.stderr,
    )
    return 2
