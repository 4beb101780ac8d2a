"""A GGUF file built field by field, so tests can write headers gguf-py's writer refuses to.

:class:`Header` holds metadata pairs and tensor infos as plain values; every length, count and
type field can be overridden with an arbitrary number, which is what the structure and fuzz
tests mutate. ``Header.to_bytes()`` lays the file out as gguf.cpp expects unless told otherwise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

ALIGN = 32
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
F32_T, F16_T = 0, 1
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?"}
_SCALAR |= {U64: "<Q", I64: "<q", F64: "<d"}


def gstr(b: bytes, length: int | None = None) -> bytes:
    """A GGUF string: u64 length (or ``length`` if given) then the bytes."""
    return struct.pack("<Q", (len(b) if length is None else length) & (2**64 - 1)) + b


def value_bytes(vtype: int, value: object, sub: int | None = None) -> bytes:
    """The serialized value of a metadata pair (no key, no type)."""
    if vtype == STR:
        return gstr(value if isinstance(value, bytes) else str(value).encode())
    if vtype == ARR:
        items = list(value)  # type: ignore[call-overload]
        return struct.pack("<IQ", sub, len(items)) + b"".join(value_bytes(sub, v) for v in items)
    return struct.pack(_SCALAR[vtype], value)


@dataclass
class KV:
    key: bytes
    vtype: int
    payload: bytes  # the serialized value
    key_len: int | None = None

    def to_bytes(self) -> bytes:
        return gstr(self.key, self.key_len) + struct.pack("<I", self.vtype & 0xFFFFFFFF) + self.payload


def kv(key: str, vtype: int, value: object, sub: int | None = None) -> KV:
    return KV(key.encode(), vtype, value_bytes(vtype, value, sub))


@dataclass
class Tensor:
    name: bytes
    dims: list[int]  # ggml order, ne0 first
    ttype: int
    offset: int | None = None  # None: packed after the previous tensor, as gguf.cpp requires
    name_len: int | None = None
    n_dims: int | None = None

    def nbytes(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n * (4 if self.ttype == F32_T else 2)

    def to_bytes(self, offset: int) -> bytes:
        n_dims = len(self.dims) if self.n_dims is None else self.n_dims
        dims = b"".join(struct.pack("<Q", d & (2**64 - 1)) for d in self.dims)
        return (
            gstr(self.name, self.name_len)
            + struct.pack("<I", n_dims & 0xFFFFFFFF)
            + dims
            + struct.pack("<IQ", self.ttype & 0xFFFFFFFF, offset & (2**64 - 1))
        )


@dataclass
class Header:
    kvs: list[KV] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    n_kv: int | None = None
    n_tensors: int | None = None
    version: int = 3
    align: int = ALIGN  # the padding written, whatever general.alignment says

    def to_bytes(self) -> bytes:
        n_kv = len(self.kvs) if self.n_kv is None else self.n_kv
        n_t = len(self.tensors) if self.n_tensors is None else self.n_tensors
        out = bytearray(b"GGUF" + struct.pack("<IQQ", self.version, n_t & (2**64 - 1), n_kv & (2**64 - 1)))
        for pair in self.kvs:
            out += pair.to_bytes()
        data = bytearray()
        for t in self.tensors:
            offset = len(data) if t.offset is None else t.offset
            out += t.to_bytes(offset)
            size = min(t.nbytes(), 1 << 20) if all(d > 0 for d in t.dims) else 0
            chunk = np.linspace(-1, 1, max(size // 2, 0), dtype=np.float16).tobytes()[:size]
            data += chunk + bytes(-len(chunk) % self.align)
        out += bytes(-len(out) % self.align)
        return bytes(out + data)


def valid_header() -> Header:
    """A small llama model that opens, plans and exports: one layer, F32 norms, F16 weights."""
    kvs = [
        kv("general.architecture", STR, "llama"),
        kv("general.name", STR, "bytes test"),
        kv("llama.block_count", U32, 1),
        kv("llama.context_length", U32, 64),
        kv("llama.embedding_length", U32, 64),
        kv("llama.feed_forward_length", U32, 128),
        kv("llama.attention.head_count", U32, 4),
        kv("llama.attention.head_count_kv", U32, 2),
        kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        kv("general.file_type", U32, 1),
        kv("tokenizer.ggml.tokens", ARR, [b"<s>", b"a", b"b"], STR),
        kv("tokenizer.ggml.scores", ARR, [0.0, 1.0, 2.0], F32),
    ]
    tensors = [
        Tensor(b"token_embd.weight", [64, 3], F16_T),
        Tensor(b"blk.0.attn_norm.weight", [64], F32_T),
        Tensor(b"blk.0.attn_q.weight", [64, 64], F16_T),
        Tensor(b"blk.0.attn_k.weight", [64, 32], F16_T),
        Tensor(b"blk.0.attn_v.weight", [64, 32], F16_T),
        Tensor(b"blk.0.attn_output.weight", [64, 64], F16_T),
        Tensor(b"blk.0.ffn_norm.weight", [64], F32_T),
        Tensor(b"blk.0.ffn_gate.weight", [64, 128], F16_T),
        Tensor(b"blk.0.ffn_up.weight", [64, 128], F16_T),
        Tensor(b"blk.0.ffn_down.weight", [128, 64], F16_T),
        Tensor(b"output_norm.weight", [64], F32_T),
        Tensor(b"output.weight", [64, 3], F16_T),
    ]
    return Header(kvs, tensors)
