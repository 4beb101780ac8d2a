"""Where the app finds its bundled files (the one place that knows the layout).

The files live inside the ``explorer`` package (``explorer/assets/``) and are declared as
package data in ``pyproject.toml``, so a regular (non-editable) install ships them too.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_MODEL = ASSETS / "demo-synthetic-llama.gguf"
