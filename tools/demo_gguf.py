"""Byte-level BPE tokenizer for the demo model, and the GGUF writer llama.cpp reads it back from.

The tokenizer is trained with the ``tokenizers`` package: GPT-2's byte-level pre-tokenizer (its
regex is the one llama.cpp applies for ``tokenizer.ggml.pre = "gpt-2"``), no prefix space, one
special token ``<|endoftext|>`` (id 0) that is both BOS and EOS, as in GPT-2. In GGUF it is
``tokenizer.ggml.model = "gpt2"`` with the byte-level token strings, their types and the merges,
and ``add_bos_token = true``: llama.cpp prepends BOS, as training did at the start of every sequence.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL = "<|endoftext|>"
BOS_ID = EOS_ID = 0


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE of ``vocab_size`` tokens (special token and all 256 bytes included)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    if tok.token_to_id(SPECIAL) != BOS_ID or tok.get_vocab_size() != vocab_size:
        raise ValueError(f"tokenizer has {tok.get_vocab_size()} tokens, wanted {vocab_size} with {SPECIAL} first")
    return tok


def encode(tok: Tokenizer, text: str) -> np.ndarray:
    """Token ids of ``text`` without BOS (int32)."""
    return np.asarray(tok.encode(text).ids, dtype=np.int32)


def _vocab_and_merges(tok: Tokenizer) -> tuple[list[str], list[str]]:
    model = json.loads(tok.to_str())["model"]
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("tokenizer ids are not contiguous")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return [t for t, _ in by_id], merges


def _add_tokenizer(w: gguf.GGUFWriter, tok: Tokenizer) -> None:
    tokens, merges = _vocab_and_merges(tok)
    types = [gguf.TokenType.CONTROL if t == SPECIAL else gguf.TokenType.NORMAL for t in tokens]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([int(t) for t in types])
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)


def write_gguf(
    path: Path, shape: dict, tensors: list[tuple[str, np.ndarray]], tok: Tokenizer, name: str, description: str
) -> None:
    """Write a llama GGUF: matrices F16, 1-D tensors (norms) F32, llama hyper-parameters and tokenizer."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_description(description)
    w.add_block_count(shape["n_layer"])
    w.add_context_length(shape["n_ctx"])
    w.add_embedding_length(shape["n_embd"])
    w.add_feed_forward_length(shape["n_ff"])
    w.add_head_count(shape["n_head"])
    w.add_head_count_kv(shape["n_head_kv"])
    w.add_rope_dimension_count(shape["n_embd"] // shape["n_head"])
    w.add_rope_freq_base(shape["rope_base"])
    w.add_layer_norm_rms_eps(shape["rms_eps"])
    w.add_vocab_size(shape["n_vocab"])
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    _add_tokenizer(w, tok)
    for tensor_name, data in tensors:
        w.add_tensor(tensor_name, data.astype(np.float32 if data.ndim == 1 else np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
