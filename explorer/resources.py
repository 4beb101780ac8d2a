"""The app's bundled files, resolved by the core's one place that knows the layout."""

from __future__ import annotations

from quant_core.assets import ASSETS, DEMO_EVAL_TEXT, DEMO_MODEL, SYNTHETIC_MODEL

__all__ = ["ASSETS", "DEMO_EVAL_TEXT", "DEMO_MODEL", "SYNTHETIC_MODEL"]
