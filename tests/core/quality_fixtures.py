"""Tiny llama GGUFs that llama.cpp can load and tokenize (byte-level BPE), for quality tests.

Random weights: the numbers mean nothing, but every step of a measurement runs for real and
two files can be made to differ in vocabulary size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType, TokenType

MERGES = ["Ġ t", "t h", "h e", "Ġ a", "i n"]


def _byte_tokens() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tiny_llama(
    path: Path, n_extra_tokens: int = 0, seed: int = 0, n_embd: int = 256, n_ff: int = 512, n_layer: int = 2
) -> Path:
    """Write an F16 llama with a byte-level BPE vocabulary (BOS added) of 256 + merges + 2 (+ extra)."""
    rng = np.random.default_rng(seed)
    tokens = _byte_tokens() + [m.replace(" ", "") for m in MERGES] + ["<s>", "</s>"]
    tokens += [f"<extra_{i}>" for i in range(n_extra_tokens)]
    types = [TokenType.NORMAL] * (256 + len(MERGES)) + [TokenType.CONTROL] * (2 + n_extra_tokens)
    n_vocab, n_head, n_head_kv = len(tokens), 4, 2
    head_dim = n_embd // n_head
    w = GGUFWriter(path, "llama")
    w.add_name("tiny test llama")
    w.add_context_length(1024)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
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

    def mat(rows: int, cols: int, std: float) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * std).astype(np.float16)

    s = 1 / np.sqrt(n_embd)
    w.add_tensor("token_embd.weight", mat(n_vocab, n_embd, 1.0))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(n_embd, n_embd, s))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(n_head_kv * head_dim, n_embd, s))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(n_head_kv * head_dim, n_embd, s))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(n_embd, n_embd, s))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(n_ff, n_embd, s))
        w.add_tensor(f"blk.{i}.ffn_up.weight", mat(n_ff, n_embd, s))
        w.add_tensor(f"blk.{i}.ffn_down.weight", mat(n_embd, n_ff, 1 / np.sqrt(n_ff)))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", mat(n_vocab, n_embd, s))  # logits within 16 of the maximum
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def sample_text(n_bytes: int, seed: int = 0) -> bytes:
    """Deterministic English-like text of about ``n_bytes`` bytes (one token per byte, mostly)."""
    rng = np.random.default_rng(seed)
    words = [
        "the",
        "of",
        "and",
        "to",
        "in",
        "that",
        "it",
        "was",
        "he",
        "for",
        "on",
        "are",
        "as",
        "with",
        "his",
        "they",
        "at",
        "be",
        "this",
        "from",
        "have",
        "or",
        "by",
        "one",
        "had",
        "not",
        "but",
        "what",
        "all",
        "were",
        "when",
        "we",
        "there",
        "can",
        "an",
        "your",
        "which",
        "their",
        "said",
        "if",
        "do",
        "will",
        "each",
    ]
    out: list[str] = []
    while sum(len(x) + 1 for x in out) < n_bytes:
        out.append(words[int(rng.integers(len(words)))])
    return " ".join(out).encode()[:n_bytes]
