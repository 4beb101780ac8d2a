"""``--encoder`` and ``--tensor-encoder`` on the command line; what plan and quantize say about them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import quant_core.export as export_mod
from quant_core.cli import main
from quant_core.quantize import quantize

from .hqq_fake_policy import use_policy


@pytest.fixture(autouse=True)
def policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured numbers where HQQ wins on Q4_K (so no warning unless a test says otherwise)."""
    use_policy(monkeypatch, {("Q4_K", False): (0.0005, 0.0004)})


def _plan_json(small_gguf: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["plan", str(small_gguf), "Q4_K_M", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_json_has_each_tensors_encoder(small_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _plan_json(small_gguf, capsys, "--encoder", "HQQ", "--tensor-encoder", r"blk\.0\.=ggml")
    by_name = {t["name"]: t for t in doc["tensors"]}
    assert by_name["blk.1.attn_q.weight"]["encoder"] == "hqq"
    assert by_name["blk.1.attn_q.weight"]["encoder_reason"] == "--encoder hqq"
    assert by_name["blk.0.attn_q.weight"]["encoder"] == "ggml"
    assert "encoder rule" in by_name["blk.0.attn_q.weight"]["encoder_reason"]
    assert by_name["output.weight"]["type"] == "Q6_K" and by_name["output.weight"]["encoder"] == "ggml"
    assert doc["byte_identical_to_llama_quantize"] is False
    plain = _plan_json(small_gguf, capsys)
    assert plain["file_bytes"] < doc["file_bytes"]  # the two metadata keys, nothing else
    assert [t["bytes"] for t in plain["tensors"]] == [t["bytes"] for t in doc["tensors"]]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--encoder", "awq"], "invalid --encoder 'awq'"),
        (["--tensor-encoder", "attn_q"], "malformed tensor encoder"),
        (["--tensor-encoder", "attn_q=gptq"], "invalid encoder in 'attn_q=gptq'"),
    ],
)
def test_bad_encoder_flags_are_one_line_errors(
    small_gguf: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["plan", str(small_gguf), "Q4_K_M", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_plan_text_marks_hqq_tensors_and_says_not_identical(
    small_gguf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(small_gguf), "Q4_K_M", "--tensor-encoder", "ffn_up=hqq"]) == 0
    out = capsys.readouterr().out
    marked = [line.split()[0] for line in out.splitlines() if line.endswith("[HQQ-encoded]")]
    assert marked == [f"blk.{i}.ffn_up.weight" for i in range(3)]
    assert "note: not byte-identical to llama-quantize (HQQ-encoded tensors: 3)" in out


def test_quantize_says_not_identical_after_verifying(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = []

    def spy(rows, type_name, imatrix=None, threads=None, encoder="ggml"):
        asked.append(encoder)
        return quantize(rows, type_name, imatrix=imatrix, threads=threads)

    monkeypatch.setattr(export_mod, "quantize", spy)
    out = tmp_path / "o.gguf"
    assert main(["quantize", "--encoder", "hqq", str(small_gguf), str(out), "Q4_K_M"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("verified:")
    assert lines[2].startswith("note: not byte-identical to llama-quantize (HQQ-encoded tensors: ")
    assert "hqq" in asked and "ggml" in asked
    assert main(["quantize", str(small_gguf), str(tmp_path / "p.gguf"), "Q8_0"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_hqq_asked_for_a_type_where_it_lost_is_a_warning_not_a_refusal(
    small_gguf: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_policy(monkeypatch, {("Q4_K", False): (0.0005, 0.0006)})
    assert main(["plan", str(small_gguf), "Q4_K_M", "--tensor-encoder", "ffn_up=hqq"]) == 0
    out = capsys.readouterr().out
    assert "warning: HQQ did not win on KLD for Q4_K without an importance matrix (measured mean KLD" in out
    assert "; 3 Q4_K tensor(s) use it as asked" in out
    use_policy(monkeypatch, {("Q4_K", False): (0.0006, 0.0005)})
    assert main(["plan", str(small_gguf), "Q4_K_M", "--tensor-encoder", "ffn_up=hqq"]) == 0
    assert "warning: HQQ" not in capsys.readouterr().out


def test_stats_measures_each_tensor_with_its_encoder(small_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["stats", str(small_gguf), "Q4_K_M", "--tensor", r"blk\.0\.ffn_up", "--rows", "16", "--json"]
    assert main(args) == 0
    (ggml,) = json.loads(capsys.readouterr().out)["tensors"]
    assert main([*args, "--encoder", "hqq"]) == 0
    (hqq,) = json.loads(capsys.readouterr().out)["tensors"]
    assert (ggml["encoder"], hqq["encoder"]) == ("ggml", "hqq") and ggml["type"] == hqq["type"] == "Q4_K"
    assert hqq["rmse"] != ggml["rmse"]
    assert main(args[:-1] + ["--encoder", "hqq"]) == 0
    assert "Q4_K+hqq" in capsys.readouterr().out
