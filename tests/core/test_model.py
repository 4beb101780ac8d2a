"""Opening models: header only, categories, hyper-parameters, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quant_core.model import ModelError, open_model, tensor_category, tensor_layer


def test_open_reads_tensors_and_hyperparameters(small_gguf: Path) -> None:
    m = open_model(small_gguf)
    assert (m.arch, m.n_layer, m.n_head, m.n_head_kv, m.n_expert, m.n_gqa) == ("llama", 3, 4, 1, 0, 4)
    q = m.tensor("blk.1.attn_q.weight")
    assert q.shape == (256, 256) and q.src_type == "F16" and q.layer == 1 and q.category == "attn_q"
    assert m.tensor("blk.0.attn_norm.weight").src_type == "F32"
    rows = m.rows_f32("blk.1.ffn_down.weight", slice(2, 5))
    assert rows.shape == (3, 512) and rows.dtype == np.float32
    assert np.array_equal(rows, m.rows_f32("blk.1.ffn_down.weight")[2:5])


@pytest.mark.parametrize(
    "name,category,layer",
    [
        ("output.weight", "output", None),
        ("token_embd.weight", "token_embd", None),
        ("blk.12.attn_qkv.weight", "attn_qkv", 12),
        ("blk.3.attn_kv_b.weight", "attn_kv_b", 3),
        ("blk.0.ffn_gate_exps.weight", "ffn_gate", 0),
        ("blk.0.ffn_down_shexp.weight", "ffn_down", 0),
        ("blk.0.attn_norm.weight", "other", 0),
    ],
)
def test_categories_follow_llama_cpp(name: str, category: str, layer: int | None) -> None:
    assert tensor_category(name) == category
    assert tensor_layer(name) == layer


def test_not_a_gguf(tmp_path: Path) -> None:
    p = tmp_path / "x.gguf"
    p.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelError, match="not a GGUF file"):
        open_model(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        open_model(tmp_path / "missing.gguf")


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.0005])
def test_truncated_file(small_gguf: Path, tmp_path: Path, keep: float) -> None:
    data = small_gguf.read_bytes()
    p = tmp_path / "cut.gguf"
    p.write_bytes(data[: max(8, int(len(data) * keep))])
    with pytest.raises(ModelError, match=r"truncated|corrupt"):
        open_model(p)


def test_unknown_tensor_type(small_gguf: Path, tmp_path: Path) -> None:
    data = bytearray(small_gguf.read_bytes())
    m = open_model(small_gguf)
    # the type field of the first tensor info sits 12 bytes before its offset field's end
    name = m.tensors[0].name.encode()
    at = data.index(name) + len(name)
    n_dims = int.from_bytes(data[at : at + 4], "little")
    type_at = at + 4 + 8 * n_dims
    data[type_at : type_at + 4] = (42).to_bytes(4, "little")  # Q2_0: unknown to gguf-py
    p = tmp_path / "q20.gguf"
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="unsupported tensor type"):
        open_model(p)
