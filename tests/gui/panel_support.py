"""Shared set-up for the plan-editing panel tests: a small real GGUF opened in a session."""
from __future__ import annotations

from pathlib import Path

from explorer.session import ExplorerSession
from tests.core.synthetic import write_llama_gguf

# n_ff = 544 is not a multiple of 256: ffn_down rows cannot take K-quants (fallback, disabled types)
SMALL_MODEL = dict(n_embd=256, n_layer=2, n_ff=544, n_vocab=256, n_head=4, n_head_kv=1, tied=False)


def small_model(directory: Path) -> Path:
    return write_llama_gguf(directory / "small.gguf", **SMALL_MODEL)


def open_session(directory: Path) -> ExplorerSession:
    """A session with the small model open (statistics start in the background)."""
    session = ExplorerSession()
    assert session.open_model(small_model(directory))
    return session
