"""llama.cpp loads our split output from its first part and computes the same logits as unsplit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")

from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality.runtime import ChunkEvaluator, LlamaModel
from quant_core.split import SplitSpec

DEMO = Path(__file__).resolve().parents[2] / "assets"
N_CTX = 64


def _logits(path: Path, text: bytes) -> np.ndarray:
    model = LlamaModel(path)
    try:
        tokens = model.tokenize(text)[:N_CTX]
        evaluator = ChunkEvaluator(model, N_CTX, threads=1)
        try:
            return next(evaluator.iter_chunks(tokens, 1)).copy()
        finally:
            evaluator.close()
    finally:
        model.close()


def test_llama_cpp_loads_our_split_output_with_identical_logits(tmp_path: Path) -> None:
    model = open_model(DEMO / "demo-llama.gguf")
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    for _ in iter_export(model, plan, tmp_path / "whole.gguf"):
        pass
    for _ in iter_export(model, plan, tmp_path / "demo.gguf", split=SplitSpec(max_tensors=10)):
        pass
    parts = sorted(tmp_path.glob("demo-*-of-*.gguf"))
    assert len(parts) == 4
    text = (DEMO / "demo-eval.txt").read_bytes()[:2000]
    split = _logits(parts[0], text)
    whole = _logits(tmp_path / "whole.gguf", text)
    assert split.shape == whole.shape and split.shape[0] > 0
    assert np.isfinite(split).all()
    np.testing.assert_array_equal(split, whole)
