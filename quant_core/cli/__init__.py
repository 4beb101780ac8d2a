"""Command line of Quant Explorer (Qt-free): ``quant-explorer SUBCOMMAND ...``."""

from __future__ import annotations

from .main import SUBCOMMANDS, main

__all__ = ["SUBCOMMANDS", "main"]
