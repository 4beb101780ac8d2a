"""The trained demo model in assets/: llama shape, GQA, tensor types, tokenizer metadata, size, and it learned."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "demo-llama.gguf"
TEXT = ROOT / "assets" / "demo-eval.txt"
DATA = ROOT / "tests" / "data" / "demo"
KINDS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="trained demo model not checked out")


@pytest.fixture(scope="module")
def reader() -> gguf.GGUFReader:
    return gguf.GGUFReader(MODEL)


def _kv(reader: gguf.GGUFReader, key: str):
    return reader.get_field(key).contents()


def test_llama_shape_with_gqa_and_quantizable_rows(reader):
    assert _kv(reader, "general.architecture") == "llama"
    assert "trained" in _kv(reader, "general.name").lower()
    n_embd, n_ff = _kv(reader, "llama.embedding_length"), _kv(reader, "llama.feed_forward_length")
    n_head, n_head_kv = _kv(reader, "llama.attention.head_count"), _kv(reader, "llama.attention.head_count_kv")
    n_layer = _kv(reader, "llama.block_count")
    assert n_embd % 256 == 0 and n_ff % 256 == 0
    assert n_layer >= 4
    assert n_head_kv < n_head and n_head % n_head_kv == 0
    assert _kv(reader, "llama.rope.dimension_count") == n_embd // n_head
    n_vocab = len(_kv(reader, "tokenizer.ggml.tokens"))
    kv = n_embd // n_head * n_head_kv
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}  # ggml order: row length first
    expected = {
        "token_embd.weight": (n_embd, n_vocab),
        "output_norm.weight": (n_embd,),
        "output.weight": (n_embd, n_vocab),
    }
    for i in range(n_layer):
        expected |= {
            f"blk.{i}.attn_norm.weight": (n_embd,),
            f"blk.{i}.attn_q.weight": (n_embd, n_embd),
            f"blk.{i}.attn_k.weight": (n_embd, kv),
            f"blk.{i}.attn_v.weight": (n_embd, kv),
            f"blk.{i}.attn_output.weight": (n_embd, n_embd),
            f"blk.{i}.ffn_norm.weight": (n_embd,),
            f"blk.{i}.ffn_gate.weight": (n_embd, n_ff),
            f"blk.{i}.ffn_up.weight": (n_embd, n_ff),
            f"blk.{i}.ffn_down.weight": (n_ff, n_embd),
        }
    assert shapes == expected


def test_matrices_f16_norms_f32_separate_output_and_small_file(reader):
    for t in reader.tensors:
        want = gguf.GGMLQuantizationType.F32 if len(t.shape) == 1 else gguf.GGMLQuantizationType.F16
        assert t.tensor_type == want, t.name
    by_name = {t.name: t for t in reader.tensors}
    assert not np.array_equal(by_name["output.weight"].data, by_name["token_embd.weight"].data)
    norm = by_name["blk.0.attn_norm.weight"].data
    assert not np.allclose(norm, 1.0)  # trained, not initial
    assert MODEL.stat().st_size <= 25 * 1024 * 1024


def test_tokenizer_metadata_is_gpt2_byte_level_with_bos(reader):
    assert _kv(reader, "tokenizer.ggml.model") == "gpt2"
    assert _kv(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert _kv(reader, "tokenizer.ggml.add_bos_token") is True
    tokens = _kv(reader, "tokenizer.ggml.tokens")
    types = _kv(reader, "tokenizer.ggml.token_type")
    bos = _kv(reader, "tokenizer.ggml.bos_token_id")
    assert len(tokens) == len(types) and len(tokens) % 256 == 0
    assert types[bos] == gguf.TokenType.CONTROL
    assert sum(t == gguf.TokenType.CONTROL for t in types) == 1
    merges = _kv(reader, "tokenizer.ggml.merges")
    assert len(merges) > len(tokens) // 2 and all(m.count(" ") == 1 for m in merges)
    assert "Ġthe" in tokens  # byte-level: a space is Ġ


def test_eval_text_gives_enough_chunks_of_valid_ids(reader):
    ids = np.load(DATA / "eval_tokens.npy")
    n_vocab = len(_kv(reader, "tokenizer.ggml.tokens"))
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < n_vocab
    assert (len(ids) + 1) // 512 >= 20
    text = TEXT.read_bytes().decode("utf-8")
    assert "\r" not in text and len(text) > 2 * len(ids)


def test_training_log_records_a_falling_loss_below_unigram():
    log = json.loads((DATA / "training.json").read_text())
    curve = log["curve"]
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] - 1.0
    assert curve[-1]["heldout_loss"] < curve[0]["heldout_loss"]
    assert log["heldout_ppl"] < 0.5 * log["unigram_ppl"]
