"""A source dequantized from a quantized file is told from a real float model."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from quant_core.assets import DEMO_MODEL
from quant_core.model import open_model
from quant_core.provenance import distinct_per_block, looks_dequantized, median_distinct
from quant_core.quantize import dequantize, quantize

from .synthetic import llama_tensor_shapes, write_llama_gguf

SHAPE = dict(n_embd=256, n_layer=2, n_ff=512, n_vocab=256, n_head=4, n_head_kv=1, tied=False)


def _write_dequantized(path, type_name: str):
    """The synthetic model with every matrix passed through ``type_name`` and stored as F16."""
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(SHAPE["n_layer"])
    w.add_embedding_length(SHAPE["n_embd"])
    w.add_feed_forward_length(SHAPE["n_ff"])
    w.add_head_count(SHAPE["n_head"])
    w.add_head_count_kv(SHAPE["n_head_kv"])
    w.add_context_length(256)
    w.add_layer_norm_rms_eps(1e-5)
    for name, shape in llama_tensor_shapes(**SHAPE):
        if len(shape) == 1:
            w.add_tensor(name, np.ones(shape, np.float32))
            continue
        x = rng.normal(0, 0.02, size=shape[::-1]).astype(np.float32)
        w.add_tensor(name, dequantize(quantize(x, type_name), type_name, shape[0]).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_distinct_per_block_counts_each_block() -> None:
    rows = np.array([[1, 1, 2, 3, 5, 5, 5, 5]], np.float32)
    assert distinct_per_block(rows, 4).tolist() == [3, 1]


@pytest.mark.parametrize("type_name", ["Q4_K", "Q3_K", "Q4_0"])
def test_model_dequantized_from_a_low_bit_file_is_flagged(tmp_path, type_name: str) -> None:
    model = open_model(_write_dequantized(tmp_path / "deq.gguf", type_name))
    assert median_distinct(model) <= 16
    assert looks_dequantized(model)


def test_real_float_models_are_not_flagged(tmp_path) -> None:
    synthetic = open_model(write_llama_gguf(tmp_path / "f16.gguf", **SHAPE))
    assert median_distinct(synthetic) >= 28
    assert not looks_dequantized(synthetic)
    demo = open_model(DEMO_MODEL)
    assert not looks_dequantized(demo)
