"""Export with an importance matrix: per-tensor weights, requirements and the quantize.imatrix keys."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from quant_core import quantize
from quant_core.cli import main
from quant_core.imatrix import load_imatrix, write_imatrix_gguf
from quant_core.model import open_model


def _make_imatrix(model_path: Path, out: Path, skip: tuple[str, ...] = (), bad: str | None = None) -> Path:
    model = open_model(model_path)
    rng = np.random.default_rng(7)
    sums, counts = {}, {}
    for t in model.tensors:
        if t.layer is None or len(t.shape) < 2 or any(s in t.name for s in skip):
            continue
        n = t.shape[0] + (1 if t.name == bad else 0)
        sums[t.name] = rng.gamma(2.0, 1.0, size=n).astype(np.float32) * 100
        counts[t.name] = np.array([100], dtype=np.float32)
    write_imatrix_gguf(out, sums, counts, chunk_size=64, datasets=("alice.txt",))
    return out


def test_imatrix_changes_bytes_and_adds_keys(small_gguf: Path, tmp_path: Path) -> None:
    imat = _make_imatrix(small_gguf, tmp_path / "imatrix.gguf")
    out = tmp_path / "q.gguf"
    assert main(["quantize", "--imatrix", str(imat), str(small_gguf), str(out), "Q4_K_M"]) == 0
    r = gguf.GGUFReader(out)
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    assert keys[-4:] == [
        "quantize.imatrix.file",
        "quantize.imatrix.dataset",
        "quantize.imatrix.entries_count",
        "quantize.imatrix.chunks_count",
    ]
    assert r.fields["quantize.imatrix.dataset"].contents() == "alice.txt"
    name = "blk.1.attn_q.weight"
    model, im = open_model(small_gguf), load_imatrix(imat)
    data = next(t for t in r.tensors if t.name == name).data
    x = model.rows_f32(name)
    want = quantize(x, "Q4_K", imatrix=im.entries[name])
    assert np.array_equal(np.asarray(data).reshape(want.shape), want)
    assert not np.array_equal(want, quantize(x, "Q4_K"))


def test_missing_entry_for_a_type_that_needs_one(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imat = _make_imatrix(small_gguf, tmp_path / "imatrix.gguf", skip=("blk.2.ffn_up",))
    assert main(["quantize", "--imatrix", str(imat), str(small_gguf), str(tmp_path / "o.gguf"), "IQ3_XXS"]) == 1
    assert "blk.2.ffn_up.weight" in capsys.readouterr().err
    assert not (tmp_path / "o.gguf").exists()


def test_wrong_imatrix_size_is_an_error(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imat = _make_imatrix(small_gguf, tmp_path / "imatrix.gguf", bad="blk.0.attn_k.weight")
    assert main(["quantize", "--imatrix", str(imat), str(small_gguf), str(tmp_path / "o.gguf"), "Q4_K_M"]) == 1
    err = capsys.readouterr().err
    assert "blk.0.attn_k.weight" in err and "values" in err
    assert not (tmp_path / "o.gguf").exists()


def test_not_an_imatrix(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"\x01\x02")
    assert main(["quantize", "--imatrix", str(junk), str(small_gguf), str(tmp_path / "o.gguf"), "Q4_K_M"]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
