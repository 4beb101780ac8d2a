"""The command line: JSON plan format, llama-quantize's positionals, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest

from quant_core.cli import main
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.size import project_size


def test_plan_json(small_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(small_gguf), "Q4_K_M", "--json", "--tensor-type", "attn_q=q8_0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    model = open_model(small_gguf)
    opts = QuantOptions(preset="Q4_K_M", tensor_types=(("attn_q", "Q8_0"),))
    assert doc["file_bytes"] == project_size(model, build_plan(model, opts)).file_bytes
    assert set(doc) == {"file_bytes", "bpw", "byte_identical_to_llama_quantize", "tensors"}
    assert doc["byte_identical_to_llama_quantize"] is True
    entry = next(t for t in doc["tensors"] if t["name"] == "blk.0.attn_q.weight")
    assert entry["type"] == "Q8_0" and entry["reason_kind"] == "user_rule" and "attn_q" in entry["reason"]
    keys = {"name", "type", "bytes", "reason", "reason_kind", "encoder", "encoder_reason"}
    assert all(set(t) == keys and t["encoder"] == "ggml" for t in doc["tensors"])
    assert all(t["type"] == t["type"].upper() for t in doc["tensors"])


def test_quantize_writes_the_file(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.gguf"
    assert main(["quantize", str(small_gguf), str(out), "q8_0", "2"]) == 0
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == 7
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"wrote {out}")
    assert lines[1] == f"verified: {out.stat().st_size} bytes = projected"


def test_quantize_default_output_name(small_gguf: Path, tmp_path: Path) -> None:
    src = tmp_path / "m.gguf"
    src.write_bytes(small_gguf.read_bytes())
    assert main(["quantize", str(src), "Q8_0"]) == 0
    assert (tmp_path / "ggml-model-Q8_0.gguf").is_file()


def test_dry_run_writes_nothing(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quantize", "--dry-run", str(small_gguf), str(tmp_path / "o.gguf"), "Q4_K_M"]) == 0
    assert "BPW" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv,match",
    [
        (["quantize", "{in}", "{in}", "Q4_K_M"], "output path is the input"),
        (["quantize", "{tmp}/nothere.gguf", "{tmp}/o.gguf", "Q4_K_M"], "no such file"),
        (["quantize", "{in}", "{tmp}/o.gguf", "Q9_X"], "unknown preset"),
        (["quantize", "--tensor-type", "attn_q", "{in}", "{tmp}/o.gguf", "Q4_K_M"], "malformed tensor type"),
        (["quantize", "--tensor-type", "attn_q=q9", "{in}", "{tmp}/o.gguf", "Q4_K_M"], "invalid type"),
        (["quantize", "{in}", "{tmp}/none/o.gguf", "Q4_K_M"], "does not exist"),
        (["quantize", "--override-kv", "a=int:x", "{in}", "{tmp}/o.gguf", "Q4_K_M"], "invalid int"),
        (["quantize", "{in}", "{tmp}/o.gguf", "IQ2_XXS"], "needs an importance matrix"),
        (["plan", "{tmp}/junk.gguf", "Q4_K_M"], "not a GGUF file"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    (tmp_path / "junk.gguf").write_text("hello")
    args = [a.format(**{"in": small_gguf, "tmp": tmp_path}) for a in argv]
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert match in err
    assert not (tmp_path / "o.gguf").exists()


def test_stats_json(small_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(small_gguf), "Q4_K_M", "--tensor", r"blk\.2\.attn_[qv]", "--rows", "8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [t["name"] for t in doc["tensors"]]
    assert names == ["blk.2.attn_q.weight", "blk.2.attn_v.weight"]
    q, v = doc["tensors"]
    assert q["type"] == "Q4_K" and v["type"] == "Q6_K"
    assert 0 < v["rel_rmse"] < q["rel_rmse"] < 0.2
