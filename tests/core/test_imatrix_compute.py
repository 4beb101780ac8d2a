"""Importance matrices computed through llama.cpp equal llama-imatrix's.

tests/data/imatrix/ holds what llama-imatrix (b11312, built by tools/build_llama_tools.sh) wrote
for the demo model on assets/demo-calibration.txt, and record.json the commands, the sha256 of
model and text, and the ``--show-statistics`` table; tools/record_llama_imatrix.py regenerates
them. Tests that run llama.cpp's tools themselves need the build (LLAMA_BUILD, default
../llama-build) and are skipped without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")

from quant_core.errors import ImatrixError, QuantError
from quant_core.imatrix import load_imatrix
from quant_core.imatrix_calc import ImatrixProgress, ImatrixResult, iter_imatrix
from quant_core.quality import read_text_file
from quant_core.reader import HeaderReader

from .imatrix_fixtures import N_EXPERT, write_tiny_moe
from .quality_fixtures import sample_text

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "imatrix"
RECORD = json.loads((DATA / "record.json").read_text())
BUILD = Path(os.environ.get("LLAMA_BUILD", REPO.parent / "llama-build"))
RTOL = 1e-5


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tool(name: str) -> Path:
    tool = BUILD / "bin" / name
    if not tool.is_file():
        pytest.skip(f"needs llama.cpp's {name} (LLAMA_BUILD or ../llama-build)")
    return tool


def _run_tool(cmd: list[str | Path]) -> None:
    env = {**os.environ, "LD_LIBRARY_PATH": str(BUILD / "bin")}
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def _compute(out: Path, run: dict, model: Path | None = None, text: Path | None = None) -> ImatrixResult:
    """Our computation with the options of a recorded llama-imatrix run."""
    model = model or REPO / RECORD["model"]["path"]
    text = text or REPO / RECORD["text"]["path"]
    items = iter_imatrix(
        model,
        read_text_file(text),
        out,
        n_ctx=run["ctx"],
        chunks=run.get("chunks"),
        dataset=RECORD["text"]["path"],
        process_output="--process-output" in run.get("extra", []),
        threads=2,
    )
    with closing(items):
        *progress, result = list(items)
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total
    assert isinstance(result, ImatrixResult)
    return result


def _raw(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    reader = HeaderReader(str(path), "r")
    tensors = {t.name: np.array(t.data, np.float32) for t in reader.tensors}
    meta = {f.key: f.value for f in reader.meta_fields}
    return tensors, meta


def _assert_close_raw(ours: Path, theirs: Path) -> None:
    a, meta_a = _raw(ours)
    b, meta_b = _raw(theirs)
    assert list(a) == list(b)  # same tensors, same order
    for name in b:
        assert a[name].shape == b[name].shape, name
        if name.endswith(".counts"):
            assert np.array_equal(a[name], b[name]), name
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=RTOL, atol=0, err_msg=name)
    for key in ("imatrix.chunk_count", "imatrix.chunk_size", "general.type"):
        assert meta_a[key] == meta_b[key], key


def test_recorded_inputs_are_the_demo_files() -> None:
    assert _sha256(REPO / RECORD["model"]["path"]) == RECORD["model"]["sha256"], (
        "demo model changed: run tools/record_llama_imatrix.py"
    )
    assert _sha256(REPO / RECORD["text"]["path"]) == RECORD["text"]["sha256"], (
        "calibration text changed: run tools/record_llama_imatrix.py"
    )
    for run in RECORD["runs"].values():
        assert _sha256(DATA / run["file"]) == run["sha256"]


def test_gguf_equals_llama_imatrix(tmp_path: Path) -> None:
    run = RECORD["runs"]["gguf"]
    result = _compute(tmp_path / "ours.gguf", run)
    assert result.chunks == run["chunks"] and result.chunk_size == run["ctx"]
    _assert_close_raw(tmp_path / "ours.gguf", DATA / run["file"])
    assert load_imatrix(tmp_path / "ours.gguf").datasets == [RECORD["text"]["path"]]


def test_legacy_dat_equals_llama_imatrix(tmp_path: Path) -> None:
    run = RECORD["runs"]["dat"]  # also --process-output: output.weight is collected
    out = tmp_path / "ours.dat"
    _compute(out, run)
    ours, theirs = load_imatrix(out), load_imatrix(DATA / run["file"])
    assert ours.format == "dat" and list(ours.entries) == list(theirs.entries)
    assert "output.weight" in ours.entries
    for name, values in theirs.entries.items():
        np.testing.assert_allclose(ours.entries[name], values, rtol=RTOL, atol=0, err_msg=name)
    assert (ours.chunk_count, ours.datasets) == (theirs.chunk_count, theirs.datasets)


def test_experts_equal_llama_imatrix(tmp_path: Path) -> None:
    tool = _tool("llama-imatrix")
    model, text = write_tiny_moe(tmp_path / "moe.gguf"), tmp_path / "moe.txt"
    text.write_bytes(sample_text(7 * 128) + b"\n")
    theirs = tmp_path / "theirs.gguf"
    _run_tool([tool, "-m", model, "-f", text, "-c", "128", "-t", "2", "--no-ppl", "-o", theirs])
    _compute(tmp_path / "ours.gguf", {"ctx": 128}, model, text)
    _assert_close_raw(tmp_path / "ours.gguf", theirs)
    tensors, _ = _raw(tmp_path / "ours.gguf")
    counts = tensors["blk.0.ffn_up_exps.weight.counts"].reshape(-1)
    dense = tensors["blk.0.ffn_gate_inp.weight.counts"].reshape(-1)
    assert counts.size == N_EXPERT and counts.sum() == 2 * dense[0]  # two experts per token


def test_llama_quantize_and_our_export_use_our_imatrix(tmp_path: Path) -> None:
    from quant_core.cli import main

    tool = _tool("llama-quantize")
    imatrix = tmp_path / "ours.gguf"
    _compute(imatrix, RECORD["runs"]["gguf"])
    model = REPO / RECORD["model"]["path"]
    theirs, ours = tmp_path / "llama.gguf", tmp_path / "ours-q.gguf"
    _run_tool([tool, "--imatrix", imatrix, model, theirs, "IQ2_XXS", "2"])  # refused without an imatrix
    assert main(["quantize", "--imatrix", str(imatrix), str(model), str(ours), "IQ2_XXS", "2"]) == 0
    assert _sha256(ours) == _sha256(theirs)


def test_cancel_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "cancelled.gguf"
    items = iter_imatrix(REPO / RECORD["model"]["path"], read_text_file(REPO / RECORD["text"]["path"]), out, 128)
    with closing(items):
        for item in items:
            if isinstance(item, ImatrixProgress) and item.done > 0:
                break
    assert list(tmp_path.iterdir()) == []


def test_short_text_and_bad_model_are_one_line_errors(tmp_path: Path) -> None:
    model = REPO / RECORD["model"]["path"]
    with pytest.raises(ImatrixError, match="at least 1024"):
        list(iter_imatrix(model, b"only a few words", tmp_path / "x.gguf", 512))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(QuantError, match="cannot load"):
        list(iter_imatrix(bad, b"text " * 2000, tmp_path / "x.gguf", 64))
    with pytest.raises(ImatrixError, match="overwrite the model"):
        list(iter_imatrix(model, b"text", model, 64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]
