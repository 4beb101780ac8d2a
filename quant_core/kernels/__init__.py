"""Numba kernels, one module per type family. Importing this package registers them all."""
from __future__ import annotations

import importlib
import pkgutil

from .registry import DEQUANTIZERS, QUANTIZERS

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["QUANTIZERS", "DEQUANTIZERS"]
