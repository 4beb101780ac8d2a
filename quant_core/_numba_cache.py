"""Where numba keeps compiled kernels: a directory named after the kernels' source code.

numba invalidates a cached function only when its own file changes, not when a helper it
inlines from another module does; a stale kernel would then write wrong bytes. Naming the
cache directory after a hash of every module that defines kernels makes any change to any of
them start from a clean cache. ``NUMBA_CACHE_DIR`` set by the user is respected.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_PACKAGE = Path(__file__).resolve().parent
_KERNEL_SOURCES = ("kernels/*.py", "qtypes.py", "stats.py", "reader.py")  # qtypes: sizes kernels compile in


def source_digest() -> str:
    """Hash of the modules that define numba functions."""
    digest = hashlib.sha256(numba.__version__.encode())
    for pattern in _KERNEL_SOURCES:
        for path in sorted(_PACKAGE.glob(pattern)):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def configure() -> None:
    """Point numba's cache at ``<user cache>/quant-explorer/numba-<digest>`` (if writable)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = root / "quant-explorer" / f"numba-{source_digest()}"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # numba's default (next to the sources) still works
    if os.access(target, os.W_OK):
        numba.config.CACHE_DIR = str(target)
