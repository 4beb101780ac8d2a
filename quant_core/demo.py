"""The synthetic demo model shipped in ``assets/``: a small llama GGUF with realistic weight statistics.

The weights are random, not trained: the file exists so the explorer has something to open on
first start. They imitate what matters for quantization error in real checkpoints:

* heavy tails: Student-t (df 4) values scaled to a standard deviation of about 0.02;
* a few outlier input channels: columns scaled 5-10x in the tensors that read the residual
  stream (attn_q/k/v, ffn_gate/up), as seen in trained transformers;
* scales that vary per output row and grow with depth, smaller output projections;
* norm weights around 1, F32 (llama.cpp never quantizes them); matrices F16.

Row lengths (256 and 768) are multiples of 256, so every K-quant applies. Generation is seeded
and deterministic for a given numpy version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

DEMO_NAME = "Quant Explorer demo (synthetic weights)"
DEMO_DESCRIPTION = (
    "Random weights with heavy tails and outlier channels, made to demonstrate "
    "quantization error. Not a language model: it cannot generate text."
)
DEMO_SEED = 20240611


@dataclass(frozen=True)
class DemoShape:
    """Hyper-parameters of the demo model."""

    n_embd: int = 256
    n_layer: int = 4
    n_ff: int = 768
    n_vocab: int = 512
    n_head: int = 4
    n_head_kv: int = 1
    context_length: int = 2048
    outlier_channels: int = 4


DEMO_SHAPE = DemoShape()
_TAIL_DF = 4.0
_STD = 0.02
_READS_RESIDUAL = ("attn_q", "attn_k", "attn_v", "ffn_gate", "ffn_up")


def demo_tensor_shapes(shape: DemoShape = DEMO_SHAPE) -> list[tuple[str, tuple[int, ...]]]:
    """(name, ggml shape) of every tensor, in writing order; ``shape[0]`` is the row length."""
    s = shape
    n_embd_kv = s.n_embd // s.n_head * s.n_head_kv
    out: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (s.n_embd, s.n_vocab))]
    for i in range(s.n_layer):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (s.n_embd,)),
            (p + "attn_q.weight", (s.n_embd, s.n_embd)),
            (p + "attn_k.weight", (s.n_embd, n_embd_kv)),
            (p + "attn_v.weight", (s.n_embd, n_embd_kv)),
            (p + "attn_output.weight", (s.n_embd, s.n_embd)),
            (p + "ffn_norm.weight", (s.n_embd,)),
            (p + "ffn_gate.weight", (s.n_embd, s.n_ff)),
            (p + "ffn_up.weight", (s.n_embd, s.n_ff)),
            (p + "ffn_down.weight", (s.n_ff, s.n_embd)),
        ]
    out += [("output_norm.weight", (s.n_embd,)), ("output.weight", (s.n_embd, s.n_vocab))]
    return out


def _matrix(
    rng: np.random.Generator,
    name: str,
    ggml_shape: tuple[int, ...],
    layer: int | None,
    shape: DemoShape,
    outliers: np.ndarray,
    outlier_gain: np.ndarray,
) -> np.ndarray:
    n_cols, n_rows = ggml_shape  # numpy layout is (rows, row length)
    t = rng.standard_t(_TAIL_DF, size=(n_rows, n_cols))
    t *= _STD / np.sqrt(_TAIL_DF / (_TAIL_DF - 2.0))  # unit-variance t, then std 0.02
    depth = 0.0 if layer is None else layer / max(1, shape.n_layer - 1)
    scale = 0.8 + 0.5 * depth  # later layers have larger weights
    if name.endswith(("attn_output.weight", "ffn_down.weight")):
        scale *= 0.7  # projections back into the residual stream are smaller
    row_scale = np.exp(rng.normal(0.0, 0.25, size=(n_rows, 1)))  # per output row spread
    w = t * (scale * row_scale)
    category = name.split(".")[-2]
    if category in _READS_RESIDUAL and (category.startswith("attn") or (layer or 0) % 2 == 0):
        w[:, outliers] *= outlier_gain  # attention everywhere, the FFN of every other layer
    return w


def _norm(rng: np.random.Generator, n: int) -> np.ndarray:
    return (1.0 + rng.normal(0.0, 0.1, size=n)).astype(np.float32)


def write_demo_model(path: str | os.PathLike[str], seed: int = DEMO_SEED, shape: DemoShape = DEMO_SHAPE) -> Path:
    """Write the synthetic llama demo GGUF (F16 matrices, F32 norms) to ``path``; return the path.

    The same ``seed`` gives the same bytes (for a given numpy version).
    """
    out = Path(path)
    rng = np.random.default_rng(seed)
    s = shape
    outliers = np.sort(rng.choice(s.n_embd, size=s.outlier_channels, replace=False))
    outlier_gain = rng.uniform(5.0, 10.0, size=s.outlier_channels)
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(DEMO_NAME)
    w.add_description(DEMO_DESCRIPTION)
    w.add_block_count(s.n_layer)
    w.add_context_length(s.context_length)
    w.add_embedding_length(s.n_embd)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_rope_dimension_count(s.n_embd // s.n_head)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s.n_vocab)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    for name, ggml_shape in demo_tensor_shapes(s):
        if len(ggml_shape) == 1:
            w.add_tensor(name, _norm(rng, ggml_shape[0]))
            continue
        layer = int(name.split(".")[1]) if name.startswith("blk.") else None
        data = _matrix(rng, name, ggml_shape, layer, s, outliers, outlier_gain)
        w.add_tensor(name, data.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def main() -> None:  # pragma: no cover - maintenance entry point
    """Regenerate the committed asset: ``python -m quant_core.demo [OUT.gguf]``."""
    import sys

    from .assets import SYNTHETIC_MODEL

    target = sys.argv[1] if len(sys.argv) > 1 else str(SYNTHETIC_MODEL)
    print(f"wrote {write_demo_model(target)} ({Path(target).stat().st_size} bytes)")


if __name__ == "__main__":  # pragma: no cover
    main()
