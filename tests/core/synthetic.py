"""Synthetic llama-architecture models for tests: header-only Model objects and real GGUF files."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from quant_core.model import Model, TensorInfo, tensor_category, tensor_layer


def llama_tensor_shapes(
    n_embd: int, n_layer: int, n_ff: int, n_vocab: int, n_head: int, n_head_kv: int, tied: bool
) -> list[tuple[str, tuple[int, ...]]]:
    """(name, ggml shape) of a llama model, in GGUF-writing order (as convert_hf_to_gguf does)."""
    n_embd_kv = n_embd // n_head * n_head_kv
    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (n_embd, n_vocab))]
    for i in range(n_layer):
        p = f"blk.{i}."
        shapes += [
            (p + "attn_norm.weight", (n_embd,)),
            (p + "attn_q.weight", (n_embd, n_embd)),
            (p + "attn_k.weight", (n_embd, n_embd_kv)),
            (p + "attn_v.weight", (n_embd, n_embd_kv)),
            (p + "attn_output.weight", (n_embd, n_embd)),
            (p + "ffn_norm.weight", (n_embd,)),
            (p + "ffn_gate.weight", (n_embd, n_ff)),
            (p + "ffn_up.weight", (n_embd, n_ff)),
            (p + "ffn_down.weight", (n_ff, n_embd)),
        ]
    shapes.append(("output_norm.weight", (n_embd,)))
    if not tied:
        shapes.append(("output.weight", (n_embd, n_vocab)))
    return shapes


GOLDEN_MODELS = {
    "vis-a": dict(n_embd=256, n_layer=8, n_ff=768, n_vocab=1000, n_head=8, n_head_kv=2, tied=False),
    "vis-b": dict(n_embd=512, n_layer=32, n_ff=544, n_vocab=1000, n_head=8, n_head_kv=8, tied=True),
}


def header_model(
    n_embd: int,
    n_layer: int,
    n_ff: int,
    n_vocab: int,
    n_head: int,
    n_head_kv: int,
    tied: bool,
    arch: str = "llama",
    n_expert: int = 0,
) -> Model:
    """A Model with F16 weights and F32 norms but no file behind it (enough for planning)."""
    tensors = []
    for name, shape in llama_tensor_shapes(n_embd, n_layer, n_ff, n_vocab, n_head, n_head_kv, tied):
        src = "F32" if len(shape) == 1 else "F16"
        n_bytes = int(np.prod(shape)) * (4 if src == "F32" else 2)
        tensors.append(TensorInfo(name, shape, src, n_bytes, 0, tensor_layer(name), tensor_category(name)))
    return Model(Path("synthetic.gguf"), [], tensors, arch, n_layer, n_head, n_head_kv, n_expert, 0, None)


def write_llama_gguf(
    path: Path,
    n_embd: int,
    n_layer: int,
    n_ff: int,
    n_vocab: int,
    n_head: int,
    n_head_kv: int,
    tied: bool,
    seed: int = 0,
    weight_dtype: type = np.float16,
) -> Path:
    """Write a real llama GGUF with seeded N(0, 0.02^2) weights (F16 by default) and F32 norms."""
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("synthetic test model")
    w.add_block_count(n_layer)
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1 if weight_dtype == np.float16 else 0)
    for name, shape in llama_tensor_shapes(n_embd, n_layer, n_ff, n_vocab, n_head, n_head_kv, tied):
        if len(shape) == 1:
            data = np.ones(shape[::-1], dtype=np.float32)
        else:
            data = rng.normal(0, 0.02, size=shape[::-1]).astype(weight_dtype)
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
