"""Where the app finds its bundled files (the one place that knows the layout)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
DEMO_MODEL = ASSETS / "demo-synthetic-llama.gguf"
