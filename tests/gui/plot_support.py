"""Set-up shared by the inspector, size, error-overview and export tests: a small real model."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from explorer.session import ExplorerSession
from tests.core.synthetic import write_llama_gguf

SMALL = dict(n_embd=256, n_layer=2, n_ff=512, n_vocab=256, n_head=4, n_head_kv=1, tied=False)
WAIT_MS = 60_000  # numba compiles kernels on first use


def small_model(directory: Path) -> Path:
    return write_llama_gguf(directory / "small.gguf", **SMALL)


def open_small(directory: Path) -> ExplorerSession:
    """A session with the small model open (statistics start in the background)."""
    session = ExplorerSession()
    assert session.open_model(small_model(directory))
    return session


def wait_idle(qtbot, session: ExplorerSession, timeout_ms: int = WAIT_MS) -> None:
    """Until every scheduled statistics job has finished."""
    qtbot.waitUntil(lambda: session.idle, timeout=timeout_ms)


def spin(seconds: float) -> None:
    """Process events for a while (the GUI thread stays live)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.005)
