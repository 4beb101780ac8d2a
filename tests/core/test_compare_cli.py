"""``quant-explorer compare`` and ``plan`` / ``quantize --like REF.gguf``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant_core.cli import main
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.size import project_size

from .conftest import SMALL
from .plan_header import write_plan_header
from .synthetic import write_llama_gguf


def _plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_quantize_like_its_own_output_is_byte_identical(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "q4km.gguf"
    assert main(["quantize", str(small_gguf), str(first), "Q4_K_M"]) == 0
    second = tmp_path / "clone.gguf"
    assert main(["quantize", str(small_gguf), str(second), "--like", str(first)]) == 0  # preset from the file
    assert second.read_bytes() == first.read_bytes()
    out = capsys.readouterr()
    assert "cloned" in out.err and "from q4km.gguf" in out.err


def test_plan_like_gives_the_reference_types_with_the_cloned_reason(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = open_model(small_gguf)
    q3 = build_plan(model, QuantOptions(preset="Q3_K_M"))
    ref = write_plan_header(tmp_path / "published-Q3_K_M.gguf", model, q3)
    doc = _plan_json(capsys, "plan", str(small_gguf), "Q6_K", "--like", str(ref))
    assert {t["name"]: t["type"] for t in doc["tensors"]} == q3.types()
    quantizable = {tp.name for tp in q3.tensors if tp.quantizable}
    assert {t["reason_kind"] for t in doc["tensors"] if t["name"] in quantizable} == {"cloned"}
    assert all(t["reason"] == "cloned from published-Q3_K_M.gguf" for t in doc["tensors"] if t["name"] in quantizable)


def test_plan_like_across_depth(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep_path = write_llama_gguf(tmp_path / "deep.gguf", **dict(SMALL, n_layer=9))
    deep = open_model(deep_path)
    ladder = {
        f"blk.{j}.ffn_down.weight": t for j, t in enumerate(["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] * 2) if j < 9
    }
    ref_plan = build_plan(deep, QuantOptions(preset="Q4_K_M"), ladder)
    ref = write_plan_header(tmp_path / "deep-mix.gguf", deep, ref_plan)
    doc = _plan_json(capsys, "plan", str(small_gguf), "--like", str(ref))
    types = {t["name"]: t["type"] for t in doc["tensors"]}
    # 3 layers onto 9: 0 -> 0, 1 -> 4, 2 -> 8
    assert [types[f"blk.{i}.ffn_down.weight"] for i in range(3)] == [
        ladder[f"blk.{j}.ffn_down.weight"] for j in (0, 4, 8)
    ]


def test_compare_prints_summary_and_category_table(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = open_model(small_gguf)
    q4 = build_plan(model, QuantOptions(preset="Q4_K_M"))
    ref = write_plan_header(tmp_path / "ref.gguf", model, q4, {"blk.1.ffn_up.weight": "Q8_0"})
    assert main(["compare", str(small_gguf), str(ref)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "differs from ref.gguf in 1 tensors: 1 ffn_up Q4_K→Q8_0"
    ffn_up = next(line for line in lines if line.startswith("ffn_up "))
    assert ffn_up.split()[-1] == "1"
    doc = _plan_json(capsys, "compare", str(small_gguf), str(ref))
    assert [t["name"] for t in doc["tensors"] if t["differs"]] == ["blk.1.ffn_up.weight"]
    assert doc["plan_file_bytes"] == project_size(model, q4).file_bytes
    assert doc["ref_file_bytes"] == ref.stat().st_size


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "{in}", "{tmp}/missing.gguf"], "missing.gguf: no such file"),
        (["compare", "{in}", "{tmp}/text.gguf"], "text.gguf is not a GGUF file"),
        (["plan", "{in}", "--like", "{tmp}/text.gguf"], "text.gguf is not a GGUF file"),
        (["plan", "{in}"], "PRESET is required"),
        (["quantize", "{in}", "{tmp}/text.gguf", "Q4_K_M", "--like", "{tmp}/text.gguf"], "is the input file"),
    ],
)
def test_bad_reference_is_one_line(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "text.gguf").write_text("hello")
    args = [a.format(**{"in": small_gguf, "tmp": tmp_path}) for a in argv]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
