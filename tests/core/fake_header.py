"""A sparse GGUF with a 7B-class tensor table (Llama-3-8B: 291 tensors) but no weights on disk.

Only the header is written; the file is then extended to its full size without writing data
(a sparse file), so opening, planning and sizing run on real headers in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from .synthetic import llama_tensor_shapes

LLAMA3_8B = dict(n_embd=4096, n_layer=32, n_ff=14336, n_vocab=128256, n_head=32, n_head_kv=8, tied=False)


def write_sparse_llama_gguf(
    path: Path, n_embd: int, n_layer: int, n_ff: int, n_vocab: int, n_head: int, n_head_kv: int, tied: bool
) -> Path:
    """Write a llama GGUF header (F16 weights, F32 norms) over a sparse file of the full size."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(n_layer)
    w.add_context_length(8192)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    total = 0
    for name, shape in llama_tensor_shapes(n_embd, n_layer, n_ff, n_vocab, n_head, n_head_kv, tied):
        dtype = np.float32 if len(shape) == 1 else np.float16
        n_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, shape[::-1], np.dtype(dtype), n_bytes)
        total += gguf.GGUFWriter.ggml_pad(n_bytes, w.data_alignment)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    fout.truncate(fout.tell() + total)
    w.close()
    return path
