"""``eval --preset`` measures the plan as exported, so with each tensor's encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")

from quant_core.cli.main import main
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import cache as quality_cache
from quant_core.size import project_size

from .quality_fixtures import sample_text, write_tiny_llama

N_CTX = 128


def test_eval_of_a_preset_uses_the_encoder(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(quality_cache.ENV_VAR, str(tmp_path / "cache"))
    base = write_tiny_llama(tmp_path / "base.gguf")
    text = tmp_path / "text.txt"
    text.write_bytes(sample_text(5 * N_CTX) + b"\n")
    args = ["eval", str(base), "--preset", "Q4_K_M", "--text", str(text), "--ctx", str(N_CTX), "--json"]
    docs = {}
    for encoder in ("ggml", "hqq"):
        assert main([*args, "--encoder", encoder]) == 0
        docs[encoder] = json.loads(capsys.readouterr().out)
    model = open_model(base)
    for encoder, doc in docs.items():
        plan = build_plan(model, QuantOptions(preset="Q4_K_M", encoder=encoder))
        assert doc["candidate_bytes"] == project_size(model, plan).file_bytes  # the exported plan's file
    assert docs["hqq"]["candidate_bytes"] > docs["ggml"]["candidate_bytes"]  # the two encoder keys
    assert docs["hqq"]["kld_mean"] != docs["ggml"]["kld_mean"]
