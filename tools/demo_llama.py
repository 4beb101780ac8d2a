"""A minimal llama-architecture language model in PyTorch, computed exactly as llama.cpp's LLAMA arch.

Used by ``train_demo_model.py``. The conventions are llama.cpp's, so the weights are written to
GGUF as they are (no Q/K permutation):

* RMSNorm ``x / sqrt(mean(x²) + eps) * w`` before attention and before the feed-forward block;
* rotary embedding on *adjacent* pairs ``(x[2i], x[2i+1])`` with angle ``pos · base^(-2i/d)``
  (ggml's normal, non-NeoX rope, which llama.cpp applies to the LLAMA arch);
* grouped-query attention: query head ``h`` reads key/value head ``h // (n_head / n_head_kv)``;
* SwiGLU feed-forward ``down(silu(gate(x)) * up(x))``; a separate output matrix (not tied).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LlamaShape:
    """Hyper-parameters (llama.cpp's names)."""

    n_vocab: int = 4096
    n_embd: int = 256
    n_layer: int = 6
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 768
    n_ctx: int = 512
    rope_base: float = 10000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(shape: LlamaShape, n_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, (n_pos, head_dim / 2)."""
    inv = shape.rope_base ** (-torch.arange(0, shape.head_dim, 2, dtype=torch.float64) / shape.head_dim)
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs of the last axis of ``x`` (batch, heads, positions, head_dim)."""
    pairs = x.unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, s: LlamaShape) -> None:
        super().__init__()
        self.s = s
        kv = s.head_dim * s.n_head_kv
        self.attn_norm = RMSNorm(s.n_embd, s.rms_eps)
        self.attn_q = nn.Linear(s.n_embd, s.n_embd, bias=False)
        self.attn_k = nn.Linear(s.n_embd, kv, bias=False)
        self.attn_v = nn.Linear(s.n_embd, kv, bias=False)
        self.attn_output = nn.Linear(s.n_embd, s.n_embd, bias=False)
        self.ffn_norm = RMSNorm(s.n_embd, s.rms_eps)
        self.ffn_gate = nn.Linear(s.n_embd, s.n_ff, bias=False)
        self.ffn_up = nn.Linear(s.n_embd, s.n_ff, bias=False)
        self.ffn_down = nn.Linear(s.n_ff, s.n_embd, bias=False)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, n, self.s.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        s = self.s
        h = self.attn_norm(x)
        q = apply_rope(self._heads(self.attn_q(h), s.n_head), cos, sin)
        k = apply_rope(self._heads(self.attn_k(h), s.n_head_kv), cos, sin)
        v = self._heads(self.attn_v(h), s.n_head_kv)
        group = s.n_head // s.n_head_kv
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_output(a.transpose(1, 2).flatten(2))
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))


class Llama(nn.Module):
    """Token ids (batch, positions) -> logits (batch, positions, n_vocab)."""

    def __init__(self, s: LlamaShape) -> None:
        super().__init__()
        self.s = s
        self.token_embd = nn.Embedding(s.n_vocab, s.n_embd)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layer))
        self.output_norm = RMSNorm(s.n_embd, s.rms_eps)
        self.output = nn.Linear(s.n_embd, s.n_vocab, bias=False)
        cos, sin = rope_tables(s, s.n_ctx)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2 style: N(0, 0.02), projections into the residual stream scaled by depth
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = (
                    0.02 / math.sqrt(2 * self.s.n_layer)
                    if name.endswith(("attn_output.weight", "ffn_down.weight"))
                    else 0.02
                )
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.token_embd(ids)
        for block in self.blocks:
            x = block(x, self.cos[:t], self.sin[:t])
        return self.output(self.output_norm(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def gguf_tensors(self) -> list[tuple[str, torch.Tensor]]:
        """(llama.cpp tensor name, weight) in llama.cpp's order; matrices are (rows, row length)."""
        out = [("token_embd.weight", self.token_embd.weight)]
        kinds = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")
        for i, block in enumerate(self.blocks):
            out += [(f"blk.{i}.{kind}.weight", getattr(block, kind).weight) for kind in kinds]
        out += [("output_norm.weight", self.output_norm.weight), ("output.weight", self.output.weight)]
        return out
