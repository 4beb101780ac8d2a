"""Export writes what the plan says, exactly as big as projected, and never leaves a partial file."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import gguf
import numpy as np
import pytest

import quant_core.export as export_mod
from quant_core import quantize
from quant_core.export import ExportError, iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.reasons import ReasonKind
from quant_core.size import project_size

from .synthetic import write_llama_gguf


def _export(src: Path, out: Path, preset: str, **options) -> None:
    model = open_model(src)
    plan = build_plan(model, QuantOptions(preset=preset, **options))
    for _ in iter_export(model, plan, out):
        pass


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("preset", ["Q4_K_M", "Q8_0", "Q3_K_S", "IQ4_XS", "F16", "Q5_1"])
def test_projected_size_equals_written_size(small_gguf: Path, tmp_path: Path, preset: str) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset=preset))
    projected = project_size(model, plan).file_bytes
    out = tmp_path / "out.gguf"
    _export(small_gguf, out, preset)
    assert out.stat().st_size == projected


def test_projected_size_with_fallbacks_and_tied_embeddings(tied_odd_gguf: Path, tmp_path: Path) -> None:
    model = open_model(tied_odd_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    assert any(tp.why.kind is ReasonKind.SHAPE_FALLBACK for tp in plan.tensors)
    out = tmp_path / "out.gguf"
    _export(tied_odd_gguf, out, "Q4_K_M")
    assert out.stat().st_size == project_size(model, plan).file_bytes


def test_exported_file_rereads_with_metadata_and_tensors(small_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.gguf"
    _export(small_gguf, out, "Q4_K_M")
    src, dst = gguf.GGUFReader(small_gguf), gguf.GGUFReader(out)
    src_keys = [k for k in src.fields if not k.startswith("GGUF.") and k != "general.file_type"]
    dst_keys = [k for k in dst.fields if not k.startswith("GGUF.")]
    assert dst_keys == src_keys + ["general.quantization_version", "general.file_type"]
    assert dst.fields["general.file_type"].contents() == 15
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    by_name = {t.name: t for t in dst.tensors}
    assert [t.name for t in dst.tensors] == [tp.name for tp in plan.tensors]
    for tp in plan.tensors:
        t = by_name[tp.name]
        assert t.tensor_type.name == tp.type
        assert tuple(int(d) for d in t.shape) == tp.source.shape
        if tp.converts:
            want = quantize(model.rows_f32(tp.source.name), tp.type)
            assert np.array_equal(np.asarray(t.data).reshape(want.shape), want), tp.name
        else:
            assert np.array_equal(np.asarray(t.data).view(np.uint8).ravel(), model.raw(tp.source.name)), tp.name


def test_output_equal_to_input_is_refused(small_gguf: Path) -> None:
    before = _sha(small_gguf)
    with pytest.raises(ExportError, match="output path is the input"):
        _export(small_gguf, small_gguf, "Q4_K_M")
    assert _sha(small_gguf) == before


def test_missing_output_directory_is_refused(small_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        _export(small_gguf, tmp_path / "nope" / "out.gguf", "Q4_K_M")


def test_cancel_leaves_no_file(small_gguf: Path, tmp_path: Path) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    gen = iter_export(model, plan, tmp_path / "out.gguf")
    first = next(gen)
    assert first.bytes_done > 0
    gen.close()
    assert list(tmp_path.iterdir()) == []


def test_disk_full_leaves_no_file(small_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield  # pragma: no cover

    monkeypatch.setattr(export_mod, "_tensor_chunks", full)
    with pytest.raises(ExportError, match="disk full"):
        _export(small_gguf, tmp_path / "out.gguf", "Q4_K_M")
    assert list(tmp_path.iterdir()) == []


def test_nan_weights_fail_cleanly(tmp_path: Path) -> None:
    src = tmp_path / "nan.gguf"
    writer = gguf.GGUFWriter(str(src), "llama")
    writer.add_block_count(1)
    data = np.zeros((4, 256), dtype=np.float16)
    data[2, 7] = np.nan
    writer.add_tensor("blk.0.attn_q.weight", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    before = _sha(src)
    with pytest.raises(ExportError, match=r"blk\.0\.attn_q\.weight.*non-finite"):
        _export(src, tmp_path / "out.gguf", "Q4_K_M")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.gguf"]
    assert _sha(src) == before


def test_requantize_needs_permission(small_gguf: Path, tmp_path: Path) -> None:
    q8 = tmp_path / "q8.gguf"
    _export(small_gguf, q8, "Q8_0")
    with pytest.raises(ExportError, match="allow-requantize"):
        _export(q8, tmp_path / "q4.gguf", "Q4_K_M")
    _export(q8, tmp_path / "q4.gguf", "Q4_K_M", allow_requantize=True)
    assert gguf.GGUFReader(tmp_path / "q4.gguf").fields["general.file_type"].contents() == 15


def test_prune_layers_renumbers_and_sets_block_count(small_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned.gguf"
    _export(small_gguf, out, "Q8_0", prune_layers=(1,))
    r = gguf.GGUFReader(out)
    assert r.fields["llama.block_count"].contents() == 2
    assert list(r.fields)[-1] == "llama.block_count"
    layers = sorted({int(t.name.split(".")[1]) for t in r.tensors if t.name.startswith("blk.")})
    assert layers == [0, 1]


def test_override_kv_is_appended(small_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "kv.gguf"
    _export(small_gguf, out, "Q8_0", override_kv=("general.name=str:renamed", "llama.context_length=int:-512"))
    r = gguf.GGUFReader(out)
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    assert keys[-2:] == ["general.name", "llama.context_length"]
    assert r.fields["general.name"].contents() == "renamed"
    assert r.fields["llama.context_length"].contents() == 512
    assert r.fields["llama.context_length"].types == [gguf.GGUFValueType.UINT32]


def test_f32_source_model_exports(tmp_path: Path) -> None:
    src = write_llama_gguf(
        tmp_path / "f32.gguf",
        n_embd=256,
        n_layer=1,
        n_ff=256,
        n_vocab=64,
        n_head=4,
        n_head_kv=4,
        tied=True,
        weight_dtype=np.float32,
    )
    out = tmp_path / "out.gguf"
    _export(src, out, "Q6_K")
    assert (
        out.stat().st_size
        == project_size(open_model(src), build_plan(open_model(src), QuantOptions(preset="Q6_K"))).file_bytes
    )
