"""The sparse Llama-3-8B header used to measure GUI-thread costs at 7B scale is a real GGUF header."""

from __future__ import annotations

from pathlib import Path

from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.recipe import llama_quantize_args
from quant_core.size import project_size

from .fake_header import LLAMA3_8B, write_sparse_llama_gguf


def test_sparse_llama3_8b_header(tmp_path: Path) -> None:
    path = write_sparse_llama_gguf(tmp_path / "llama3-8b.gguf", **LLAMA3_8B)
    model = open_model(path)
    assert len(model.tensors) == 291 and model.n_layer == 32
    assert model.file_size > 16e9 and path.stat().st_blocks * 512 < 1024**2  # nothing written
    assert model.n_parameters > 8.0e9
    explicit = {f"blk.{i}.ffn_down.weight": "Q8_0" for i in range(0, 32, 2)}
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"), explicit)
    assert project_size(model, plan).file_bytes < model.file_size / 3
    args = llama_quantize_args(model, plan, str(path), "out.gguf")
    rules = [args[i + 1].rsplit("=", 1) for i, a in enumerate(args) if a == "--tensor-type"]
    assert len(rules) <= 3  # one alternation per type, not one rule per tensor
    upstream = QuantOptions(preset="Q4_K_M", tensor_types=tuple((p, t.upper()) for p, t in rules))
    assert build_plan(model, upstream).types() == plan.types()
