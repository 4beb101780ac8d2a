"""KV-cache bytes at a context length, as llama.cpp allocates them (b11312, one sequence).

llama.cpp pads the context to a multiple of 256 cells and gives every attention layer a K and a
V tensor of ``cells`` rows: K rows hold ``head_k * n_head_kv(layer)`` values, V rows
``head_v * n_head_kv(layer)``, each row in the cache type (F16 by default, Q8_0 with
``--cache-type-k/v q8_0``). Sliding-window layers (Gemma-2/3, Cohere-2, gpt-oss) keep only
``pad256(min(cells, n_swa + n_ubatch))`` cells unless the full-size SWA cache is requested
(``--swa-full``; llama-cli and llama-server default to the small one). Which layers slide comes
from ``{arch}.attention.sliding_window_pattern`` when the file has it, else from the
architecture's default pattern in llama.cpp.

Recurrent, hybrid and MLA architectures allocate differently and are refused with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import QuantError
from ..model import Model
from ..qtypes import qtype

KV_PAD = 256
DEFAULT_UBATCH = 512
KV_TYPES = ("F16", "BF16", "F32", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL")

# architecture -> (pattern, dense_first) of llama.cpp's set_swa_pattern when the file has none
_SWA_PATTERNS: dict[str, tuple[int, bool]] = {
    "gemma2": (2, False),
    "gemma3": (6, False),
    "cohere2": (4, False),
    "gpt-oss": (2, False),
}
_UNSUPPORTED_KEYS = ("ssm.", "wkv.", "attention.kv_lora_rank", "shortconv.", "attention.shared_kv_layers")


class KVError(QuantError):
    """A model whose KV cache this estimate does not know how to size, or bad cache settings."""


@dataclass(frozen=True)
class KVLayout:
    """Per attention layer: KV heads, K and V head sizes, and whether it uses the sliding window."""

    n_head_kv: tuple[int, ...]
    head_k: tuple[int, ...]
    head_v: tuple[int, ...]
    swa: tuple[bool, ...]
    n_swa: int


@dataclass(frozen=True)
class KVBytes:
    """The cache's size: K and V bytes, and the cells of full and sliding-window layers."""

    k_bytes: int
    v_bytes: int
    cells: int
    swa_cells: int

    @property
    def total(self) -> int:
        return self.k_bytes + self.v_bytes


def kv_layout(model: Model) -> KVLayout:
    """The attention geometry llama.cpp reads from the model's metadata."""
    arch = model.arch
    meta = {f.key: f.value for f in model.metadata}
    for key in meta:
        if key.startswith(f"{arch}.") and any(k in key for k in _UNSUPPORTED_KEYS):
            raise KVError(f"KV cache size of architecture {arch!r} is not supported (recurrent, hybrid or MLA cache)")
    n_layer = model.n_layer
    n_head = _per_layer(meta.get(f"{arch}.attention.head_count"), n_layer, 0)
    if not any(n_head):
        raise KVError(f"{model.path.name}: no attention heads in the metadata, cannot size a KV cache")
    n_head_kv = _per_layer(meta.get(f"{arch}.attention.head_count_kv"), n_layer, None) or n_head
    n_embd = int(meta.get(f"{arch}.embedding_length", 0))
    default_head = n_embd // n_head[0]
    head_k_full = int(meta.get(f"{arch}.attention.key_length", default_head))
    head_v_full = int(meta.get(f"{arch}.attention.value_length", default_head))
    head_k_swa = int(meta.get(f"{arch}.attention.key_length_swa", head_k_full))
    head_v_swa = int(meta.get(f"{arch}.attention.value_length_swa", head_v_full))
    n_swa = int(meta.get(f"{arch}.attention.sliding_window", 0) or 0)
    swa = _swa_layers(arch, meta, n_layer, n_swa)
    return KVLayout(
        n_head_kv=tuple(n_head_kv),
        head_k=tuple(head_k_swa if s else head_k_full for s in swa),
        head_v=tuple(head_v_swa if s else head_v_full for s in swa),
        swa=swa,
        n_swa=n_swa,
    )


def kv_cache_bytes(
    model: Model | KVLayout,
    n_ctx: int,
    type_k: str = "F16",
    type_v: str = "F16",
    n_ubatch: int = DEFAULT_UBATCH,
    swa_full: bool = False,
) -> KVBytes:
    """Bytes of the KV cache llama.cpp allocates for one sequence of ``n_ctx`` tokens."""
    if n_ctx <= 0:
        raise KVError(f"context length must be positive, got {n_ctx}")
    layout = model if isinstance(model, KVLayout) else kv_layout(model)
    tk, tv = _cache_type(type_k), _cache_type(type_v)
    cells = _pad(n_ctx)
    swa_cells = cells if swa_full else _pad(min(cells, layout.n_swa + n_ubatch))
    k = v = 0
    for kv_heads, hk, hv, is_swa in zip(layout.n_head_kv, layout.head_k, layout.head_v, layout.swa):
        if kv_heads == 0:
            continue
        rows = swa_cells if is_swa else cells
        k += tk.row_bytes(hk * kv_heads) * rows
        v += tv.row_bytes(hv * kv_heads) * rows
    return KVBytes(k, v, cells, swa_cells if any(layout.swa) else 0)


def _cache_type(name: str):
    qt = qtype(name)
    if qt.name not in KV_TYPES:
        raise KVError(f"KV cache type {qt.name} is not one llama.cpp offers ({', '.join(KV_TYPES)})")
    return qt


def _pad(n: int) -> int:
    return (n + KV_PAD - 1) // KV_PAD * KV_PAD


def _per_layer(value: Any, n_layer: int, default: int | None) -> list[int]:
    if value is None:
        return [] if default is None else [default] * n_layer
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value][:n_layer]
    return [int(value)] * n_layer


def _swa_layers(arch: str, meta: dict[str, Any], n_layer: int, n_swa: int) -> tuple[bool, ...]:
    if n_swa <= 0:
        return (False,) * n_layer
    pattern = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, (list, tuple)):
        return tuple(bool(p) for p in pattern[:n_layer])
    if pattern is None:
        if arch not in _SWA_PATTERNS:
            raise KVError(f"architecture {arch!r} has a sliding window but no known layer pattern")
        n_pattern, dense_first = _SWA_PATTERNS[arch]
    else:
        n_pattern, dense_first = int(pattern), False
    if n_pattern == 0:
        return (True,) * n_layer
    if dense_first:
        return tuple(il % n_pattern != 0 for il in range(n_layer))
    return tuple(il % n_pattern < n_pattern - 1 for il in range(n_layer))
