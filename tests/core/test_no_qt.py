"""quant_core must stay importable without Qt: it serves the CLI and headless use."""
from __future__ import annotations

import subprocess
import sys


def test_importing_quant_core_loads_no_qt() -> None:
    code = (
        "import sys, quant_core, quant_core.cli, quant_core.kernels\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'explorer'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"quant_core imported Qt modules: {out.stdout}"
