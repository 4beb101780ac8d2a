"""Test-wide settings: Qt renders offscreen, so the suite runs without a display."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# as the entry point does: idle OpenMP threads (numba, llama.cpp) sleep instead of spinning
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
