"""Export passes each tensor's encoder to quantize, records HQQ in the metadata, keeps ggml's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gguf
import pytest

import quant_core.export as export_mod
from quant_core.encoders import ENCODER_KEY, HQQ_COUNT_KEY, hqq_tensors
from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quantize import quantize
from quant_core.size import project_size


def _export(src: Path, out: Path, **options: object) -> None:
    model = open_model(src)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M", **options))
    for _ in iter_export(model, plan, out):
        pass


def test_export_asks_quantize_for_each_tensors_encoder(
    small_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def spy(rows, type_name, imatrix=None, threads=None, encoder="ggml"):
        asked.append((type_name, encoder))
        return quantize(rows, type_name, imatrix=imatrix, threads=threads)  # ggml's bytes: kernels not needed

    monkeypatch.setattr(export_mod, "quantize", spy)
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M", encoder="hqq"))
    out = tmp_path / "hqq.gguf"
    for _ in iter_export(model, plan, out):
        pass
    assert {t for t, e in asked if e == "hqq"} == {"Q4_K"}
    assert {t for t, e in asked if e == "ggml"} == {"Q6_K"}
    reader = gguf.GGUFReader(out)
    assert reader.fields[ENCODER_KEY].contents() == "hqq"
    assert reader.fields[HQQ_COUNT_KEY].contents() == len(hqq_tensors(plan))
    assert out.stat().st_size == project_size(model, plan).file_bytes


def test_an_all_ggml_plan_writes_the_same_bytes_as_before(small_gguf: Path, tmp_path: Path) -> None:
    """Encoder options that end up ggml everywhere (Q6_K only) change nothing in the file."""
    plain, ggml_only = tmp_path / "plain.gguf", tmp_path / "ggml.gguf"
    _export(small_gguf, plain, pure=True, tensor_types=((".", "Q6_K"),))
    _export(small_gguf, ggml_only, pure=True, tensor_types=((".", "Q6_K"),), encoder="hqq")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (plain, ggml_only)]
    assert digest[0] == digest[1]
    assert ENCODER_KEY not in gguf.GGUFReader(ggml_only).fields


def test_hqq_export_changes_only_the_hqq_tensors_and_decodes_with_gguf_py(small_gguf: Path, tmp_path: Path) -> None:
    ggml_out, hqq_out = tmp_path / "ggml.gguf", tmp_path / "hqq.gguf"
    _export(small_gguf, ggml_out)
    _export(small_gguf, hqq_out, tensor_encoders=(("ffn_up", "hqq"),))
    source = {t.name: t for t in gguf.GGUFReader(small_gguf).tensors}
    ggml = {t.name: t for t in gguf.GGUFReader(ggml_out).tensors}
    for t in gguf.GGUFReader(hqq_out).tensors:
        same = bytes(t.data) == bytes(ggml[t.name].data)
        assert same != ("ffn_up" in t.name), t.name
        if "ffn_up" in t.name:
            x = source[t.name].data.astype("float32")
            y = gguf.dequantize(t.data, t.tensor_type).reshape(x.shape)
            assert float(((x - y) ** 2).sum() / (x**2).sum()) ** 0.5 < 0.15  # Q4_K-sized error
