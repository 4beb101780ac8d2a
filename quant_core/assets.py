"""Where the bundled files live: the one place that knows the layout of ``assets/``.

In a source checkout (and an editable install) they are the repository's top-level ``assets/``
folder; a regular install ships the same files as data files under
``<prefix>/share/quant-explorer/assets`` (``[tool.setuptools.data-files]`` in pyproject.toml).
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

_CHECKOUT_ASSETS = Path(__file__).resolve().parent.parent / "assets"
_SHARE = Path("share") / "quant-explorer" / "assets"


def _assets_dir() -> Path:
    candidates = [_CHECKOUT_ASSETS]
    for prefix in (sysconfig.get_path("data"), sys.prefix, sys.base_prefix):
        candidates.append(Path(prefix) / _SHARE)
    for folder in candidates:
        if folder.is_dir():
            return folder
    return _CHECKOUT_ASSETS


ASSETS: Path = _assets_dir()
"""The folder of bundled files."""

DEMO_MODEL: Path = ASSETS / "demo-llama.gguf"
"""The trained demo model (a small llama language model, F16), opened when no model is given."""

DEMO_EVAL_TEXT: Path = ASSETS / "demo-eval.txt"
"""Held-out text the demo model never saw in training: the default text for quality measurements."""

DEMO_CALIBRATION_TEXT: Path = ASSETS / "demo-calibration.txt"
"""A slice of the demo's training texts, disjoint from the held-out text: the default text that
sensitivity runs calibrate on, so quality measured afterwards on DEMO_EVAL_TEXT is out of sample."""

SYNTHETIC_MODEL: Path = ASSETS / "demo-synthetic-llama.gguf"
"""Random weights with realistic statistics (``quant_core.demo``), used by tests."""

HQQ_MEASUREMENTS: Path = ASSETS / "hqq-measurements.json"
"""HQQ- vs ggml-encoded weight error and model quality per type (``tools/measure_hqq.py``), read by
``quant_core.hqq_policy`` to decide where HQQ may be suggested."""
