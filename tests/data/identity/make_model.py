"""How tests/data/identity/tiny-llama.gguf was made (kept for reference; the file is committed).

Weights come from an integer LCG (exact in any numpy), shaped like LLM weights: roughly
normal with a few outlier columns; F16 weights, F32 norms, llama architecture, 2 layers.
"""
from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

N_EMBD, N_LAYER, N_FF, N_VOCAB, N_HEAD, N_HEAD_KV = 256, 2, 256, 128, 4, 1


def lcg_normal(n: int, seed: int) -> np.ndarray:
    """Irwin-Hall approximation of N(0, 1) from a 32-bit LCG: deterministic everywhere."""
    state = np.uint64(seed * 2654435761 % 2**32)
    a, c = np.uint64(1664525), np.uint64(1013904223)
    draws = np.empty(n * 4, dtype=np.uint64)
    for i in range(draws.size):
        state = (a * state + c) % np.uint64(2**32)
        draws[i] = state
    u = draws.astype(np.float64) / 2**32
    return ((u.reshape(n, 4).sum(axis=1) - 2.0) * np.sqrt(3.0)).astype(np.float32)


def weight(shape: tuple[int, int], seed: int) -> np.ndarray:
    rows, cols = shape
    w = lcg_normal(rows * cols, seed).reshape(rows, cols) * np.float32(0.02)
    w[:, seed % cols] *= np.float32(8.0)  # one outlier input channel
    return w.astype(np.float16)


def main(out: Path) -> None:
    kv = N_EMBD // N_HEAD * N_HEAD_KV
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name("tiny reference model")
    w.add_block_count(N_LAYER)
    w.add_context_length(128)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    seed = 1
    w.add_tensor("token_embd.weight", weight((N_VOCAB, N_EMBD), seed))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, np.float32))
        for name, shape in (("attn_q", (N_EMBD, N_EMBD)), ("attn_k", (kv, N_EMBD)), ("attn_v", (kv, N_EMBD)),
                            ("attn_output", (N_EMBD, N_EMBD))):
            seed += 1
            w.add_tensor(p + name + ".weight", weight(shape, seed))
        w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, np.float32))
        for name, shape in (("ffn_gate", (N_FF, N_EMBD)), ("ffn_up", (N_FF, N_EMBD)), ("ffn_down", (N_EMBD, N_FF))):
            seed += 1
            w.add_tensor(p + name + ".weight", weight(shape, seed))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    w.add_tensor("output.weight", weight((N_VOCAB, N_EMBD), seed + 1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()



def make_imatrix(model_path: Path, out: Path) -> None:
    """A GGUF imatrix for the model's layer weights, as llama-imatrix would write it."""
    from quant_core.imatrix import write_imatrix_gguf
    from quant_core.model import open_model

    model = open_model(model_path)
    sums, counts = {}, {}
    for i, t in enumerate(t for t in model.tensors if t.layer is not None and len(t.shape) == 2):
        sums[t.name] = (np.abs(lcg_normal(t.shape[0], 100 + i)) + np.float32(0.05)) * np.float32(256.0)
        counts[t.name] = np.array([256], dtype=np.float32)
    write_imatrix_gguf(out, sums, counts, chunk_size=128, chunk_count=2, datasets=("alice29.txt",))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    if len(sys.argv) > 2:
        make_imatrix(Path(sys.argv[1]), Path(sys.argv[2]))
