"""A tiny mixture-of-experts llama that llama.cpp loads (random weights), for the imatrix tests.

Four experts, two used per token: llama.cpp evaluates the stacked expert weights with
``MUL_MAT_ID``, so an importance matrix of it has per-expert sums and counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType, TokenType

from .quality_fixtures import MERGES, _byte_tokens

N_EXPERT = 4
N_EXPERT_USED = 2


def write_tiny_moe(path: Path, seed: int = 0, n_embd: int = 128, n_ff: int = 256, n_layer: int = 2) -> Path:
    """Write an F16 llama with 4 experts per layer (2 used) and a byte-level BPE vocabulary."""
    rng = np.random.default_rng(seed)
    tokens = _byte_tokens() + [m.replace(" ", "") for m in MERGES] + ["<s>", "</s>"]
    types = [TokenType.NORMAL] * (256 + len(MERGES)) + [TokenType.CONTROL] * 2
    n_vocab, n_head, n_head_kv = len(tokens), 4, 2
    head_dim = n_embd // n_head
    w = GGUFWriter(path, "llama")
    w.add_name("tiny test moe")
    w.add_context_length(1024)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(N_EXPERT_USED)
    w.add_vocab_size(n_vocab)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(256 + len(MERGES))
    w.add_eos_token_id(257 + len(MERGES))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def mat(*shape: int, std: float) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float16)

    s = 1 / np.sqrt(n_embd)
    w.add_tensor("token_embd.weight", mat(n_vocab, n_embd, std=1.0))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(n_embd, n_embd, std=s))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(n_head_kv * head_dim, n_embd, std=s))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(n_head_kv * head_dim, n_embd, std=s))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(n_embd, n_embd, std=s))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate_inp.weight", mat(N_EXPERT, n_embd, std=s).astype(np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate_exps.weight", mat(N_EXPERT, n_ff, n_embd, std=s))
        w.add_tensor(f"blk.{i}.ffn_up_exps.weight", mat(N_EXPERT, n_ff, n_embd, std=s))
        w.add_tensor(f"blk.{i}.ffn_down_exps.weight", mat(N_EXPERT, n_embd, n_ff, std=1 / np.sqrt(n_ff)))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", mat(n_vocab, n_embd, std=s))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
