"""Where numba keeps compiled kernels: a directory named after the kernels' source code.

numba invalidates a cached function only when its own file changes, not when a helper it
inlines from another module does; a stale kernel would then write wrong bytes. Naming the
cache directory after a hash of every module that defines kernels makes any change to any of
them start from a clean cache.

The directory is ``<root>/numba-<digest>`` with ``<root>`` the first of: ``QUANT_EXPLORER_CACHE``,
``$XDG_CACHE_HOME/quant-explorer``, ``~/.cache/quant-explorer``. ``NUMBA_CACHE_DIR`` set by the
user is respected as it is (no digest).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_PACKAGE = Path(__file__).resolve().parent
_KERNEL_SOURCES = ("kernels/*.py", "stats.py", "reader.py")
CACHE_ENV = "QUANT_EXPLORER_CACHE"


def kernel_source_files() -> list[Path]:
    """The modules that define numba functions, in a fixed order."""
    return [path for pattern in _KERNEL_SOURCES for path in sorted(_PACKAGE.glob(pattern))]


def source_digest() -> str:
    """Hash of the modules that define numba functions."""
    digest = hashlib.sha256(numba.__version__.encode())
    for path in kernel_source_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Quant Explorer's folder in the user cache (``QUANT_EXPLORER_CACHE`` overrides it)."""
    own = os.environ.get(CACHE_ENV)
    if own:
        return Path(own).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quant-explorer"


def cache_dir() -> Path | None:
    """The directory numba caches kernels in now (None: numba's default, next to the sources)."""
    return Path(numba.config.CACHE_DIR) if numba.config.CACHE_DIR else None


def configure() -> None:
    """Point numba's cache at ``<cache root>/numba-<digest>`` (if writable)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    target = cache_root() / f"numba-{source_digest()}"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # numba's default (next to the sources) still works
    if os.access(target, os.W_OK):
        numba.config.CACHE_DIR = str(target)
