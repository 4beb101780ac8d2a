"""Fixtures for the core tests: small real GGUF models written with gguf-py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .synthetic import write_llama_gguf

SMALL = dict(n_embd=256, n_layer=3, n_ff=512, n_vocab=320, n_head=4, n_head_kv=1, tied=False)
SMALL_TIED_ODD = dict(n_embd=256, n_layer=2, n_ff=288, n_vocab=300, n_head=4, n_head_kv=4, tied=True)


@pytest.fixture(scope="session")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer llama model, F16 weights, GQA 4, untied output."""
    return write_llama_gguf(tmp_path_factory.mktemp("models") / "small.gguf", **SMALL)


@pytest.fixture(scope="session")
def tied_odd_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tied embeddings and n_ff 288 (ffn_down rows not divisible by 256: shape fallbacks)."""
    return write_llama_gguf(tmp_path_factory.mktemp("models") / "tied.gguf", seed=1, **SMALL_TIED_ODD)
