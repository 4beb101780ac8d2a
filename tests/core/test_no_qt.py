"""quant_core must stay importable without Qt: it serves the CLI and headless use.

import-linter checks the import graph statically (``lint-imports``, run by ``make test``); this
test checks what actually gets loaded, which also catches imports made by third-party packages
or inside functions that run at import time.
"""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("PySide6", "pyqtgraph", "explorer")

# Imports every module of the package in a fresh interpreter, then lists the forbidden ones loaded.
_PROBE = """
import importlib, pkgutil, sys
import quant_core
names = ["quant_core"] + [m.name for m in pkgutil.walk_packages(quant_core.__path__, "quant_core.")]
for name in names:
    importlib.import_module(name)
print(len(names))
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})))
"""


def _probe(forbidden: tuple[str, ...]) -> tuple[int, str]:
    """(number of modules imported, comma-separated forbidden modules loaded)."""
    code = _PROBE.format(forbidden=set(forbidden))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = out.stdout.splitlines()[-2:]
    return int(count), loaded


def test_importing_every_quant_core_module_loads_no_qt() -> None:
    count, loaded = _probe(FORBIDDEN)
    assert count > 40, f"only {count} modules found: the package walk is broken"
    assert loaded == "", f"importing quant_core loaded: {loaded}"


def test_the_probe_sees_a_forbidden_module() -> None:
    # a module that imports numpy at import time, standing in for one that imports Qt
    count, loaded = _probe(("numpy",))
    assert count > 40 and "numpy" in loaded.split(",")
