"""Metadata of every GGUF value type is read fast and written back unchanged."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan

KV = [
    ("general.architecture", "llama", gguf.GGUFValueType.STRING),
    ("test.u8", 7, gguf.GGUFValueType.UINT8),
    ("test.i8", -7, gguf.GGUFValueType.INT8),
    ("test.u16", 700, gguf.GGUFValueType.UINT16),
    ("test.i16", -700, gguf.GGUFValueType.INT16),
    ("test.i32", -70000, gguf.GGUFValueType.INT32),
    ("test.u64", 2**40, gguf.GGUFValueType.UINT64),
    ("test.i64", -(2**40), gguf.GGUFValueType.INT64),
    ("test.f32", 0.25, gguf.GGUFValueType.FLOAT32),
    ("test.f64", 1e-300, gguf.GGUFValueType.FLOAT64),
    ("test.bool", True, gguf.GGUFValueType.BOOL),
    ("llama.block_count", 1, gguf.GGUFValueType.UINT32),
]
TOKENS = [b"<s>", b"\xe2\x96\x81the", b"\xff\xfe not utf-8", b""] + [f"t{i}".encode() for i in range(3000)]


def _write(path: Path) -> Path:
    w = gguf.GGUFWriter(str(path), arch="")
    for key, value, vtype in KV:
        w.add_key_value(key, value, vtype)
    w.add_key_value("tokenizer.ggml.tokens", TOKENS, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING)
    w.add_key_value(
        "tokenizer.ggml.scores",
        [float(i) / 4 for i in range(len(TOKENS))],
        gguf.GGUFValueType.ARRAY,
        gguf.GGUFValueType.FLOAT32,
    )
    w.add_key_value(
        "tokenizer.ggml.token_type",
        [i % 6 for i in range(len(TOKENS))],
        gguf.GGUFValueType.ARRAY,
        gguf.GGUFValueType.INT32,
    )
    w.add_tensor("blk.0.attn_q.weight", np.full((4, 256), 0.5, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_metadata_values_and_types(tmp_path: Path) -> None:
    m = open_model(_write(tmp_path / "kv.gguf"))
    meta = {f.key: f for f in m.metadata}
    for key, value, vtype in KV:
        got = meta[key]
        assert got.vtype == vtype
        assert (got.value.decode() if isinstance(got.value, bytes) else got.value) == value
    tokens = meta["tokenizer.ggml.tokens"]
    assert tokens.sub_type == gguf.GGUFValueType.STRING
    assert list(tokens.value) == TOKENS and tokens.value[1] == TOKENS[1] and tokens.value[2:4] == TOKENS[2:4]
    assert meta["tokenizer.ggml.scores"].value[9] == 2.25
    assert [f.key for f in m.metadata] == [k for k, _, _ in KV] + [
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type",
    ]


def test_export_copies_metadata_bytes(tmp_path: Path) -> None:
    src = _write(tmp_path / "kv.gguf")
    model = open_model(src)
    plan = build_plan(model, QuantOptions(preset="Q8_0"))
    out = tmp_path / "out.gguf"
    for _ in iter_export(model, plan, out):
        pass
    a, b = gguf.GGUFReader(src), gguf.GGUFReader(out)
    for key in [k for k in a.fields if not k.startswith("GGUF.")]:
        fa, fb = a.fields[key], b.fields[key]
        assert fa.types == fb.types, key
        assert b"".join(p.tobytes() for p in fa.parts[3:]) == b"".join(p.tobytes() for p in fb.parts[3:]), key
