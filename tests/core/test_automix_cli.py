"""The auto-mix on the command line: --target-size / --target-bpw / --target-memory on plan and quantize."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant_core.automix.interim import weight_error_costs
from quant_core.cli import main
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.qtypes import qtype
from quant_core.size import project_size

TYPES = ("Q4_0", "Q5_0", "Q8_0", "F16")


@pytest.fixture(scope="module")
def costs_file(small_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A constructed cost table in the sensitivity --json layout (attn_v five times as sensitive)."""
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    tensors = [
        {"name": tp.name, "costs": {t: (5.0 if "attn_v" in tp.name else 1.0) * 2 ** (-qtype(t).bpw) for t in TYPES}}
        for tp in plan.tensors
        if tp.quantizable
    ]
    path = tmp_path_factory.mktemp("costs") / "costs.json"
    path.write_text(json.dumps({"tensors": tensors}))
    return path


def _q4km_bytes(small_gguf: Path, **options: object) -> int:
    model = open_model(small_gguf)
    return project_size(model, build_plan(model, QuantOptions(preset="Q4_K_M", **options))).file_bytes


def test_plan_json_with_a_size_target(small_gguf: Path, costs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    budget = _q4km_bytes(small_gguf, tensor_types=(("attn_q", "Q8_0"),)) + 50_000
    argv = [
        "plan",
        "--target-size",
        str(budget),
        "--costs",
        str(costs_file),
        "--tensor-type",
        "attn_q=q8_0",
        str(small_gguf),
        "Q4_K_M",
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert set(doc) == {"file_bytes", "bpw", "byte_identical_to_llama_quantize", "tensors"}
    assert doc["file_bytes"] <= budget
    kinds = {t["name"]: t["reason_kind"] for t in doc["tensors"]}
    assert kinds["blk.0.attn_q.weight"] == "user_rule"
    assert kinds["blk.0.attn_v.weight"] == "auto_mix"
    assert sum(t["bytes"] for t in doc["tensors"]) * 8 / sum(
        t.n_elements for t in open_model(small_gguf).tensors
    ) == pytest.approx(doc["bpw"])
    assert "auto-mix:" in captured.err and "optimal" in captured.err


def test_size_suffixes(small_gguf: Path, costs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kib = _q4km_bytes(small_gguf) // 1024
    assert (
        main(["plan", "--target-size", f"{kib}k", "--costs", str(costs_file), str(small_gguf), "Q4_K_M", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["file_bytes"] <= kib * 1024


def test_quantize_to_a_size(
    small_gguf: Path, costs_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = _q4km_bytes(small_gguf) + 777
    out = tmp_path / "mix.gguf"
    assert (
        main(
            [
                "quantize",
                "--target-size",
                f"{budget}b",
                "--costs",
                str(costs_file),
                str(small_gguf),
                str(out),
                "Q4_K_M",
                "2",
            ]
        )
        == 0
    )
    assert out.stat().st_size <= budget
    assert f"verified: {out.stat().st_size} bytes = projected" in capsys.readouterr().out


def test_bpw_and_memory_targets(small_gguf: Path, costs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--target-bpw", "5.2", "--costs", str(costs_file), str(small_gguf), "Q4_K_M", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bpw"] <= 5.2
    kv = 2 * 3 * 64 * 2 * 2048  # K and V, 3 layers x 1 KV head x 64 dims, f16, 2048 cells
    memory = _q4km_bytes(small_gguf) + kv
    assert (
        main(
            [
                "plan",
                "--target-memory",
                str(memory),
                "--ctx",
                "2048",
                "--costs",
                str(costs_file),
                str(small_gguf),
                "Q4_K_M",
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["file_bytes"] <= _q4km_bytes(small_gguf)
    assert f"KV cache {kv} bytes" in captured.err


@pytest.mark.parametrize(
    "flags,match",
    [
        (["--target-size", "1k"], "below the smallest achievable file"),
        (["--target-size", "12q"], "invalid --target-size"),
        (["--target-bpw", "four"], "invalid --target-bpw"),
        (["--target-bpw", "0.3"], "below the smallest achievable"),
        (["--target-memory", "1g"], "needs --ctx"),
        (["--ctx", "512"], "give --target-memory"),
        (["--target-memory", "2m", "--ctx", "65536"], "KV cache"),
        (["--target-size", "1g", "--cache-type-k", "q9"], "invalid --cache-type-k"),
    ],
)
def test_bad_budgets_give_one_line(
    small_gguf: Path, costs_file: Path, capsys: pytest.CaptureFixture[str], flags: list[str], match: str
) -> None:
    assert main(["plan", *flags, "--costs", str(costs_file), str(small_gguf), "Q4_K_M"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert match in err


def test_bad_cost_file(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["plan", "--target-bpw", "5", "--costs", str(bad), str(small_gguf), "Q4_K_M"]) == 1
    assert "expected {tensor: {type: cost}}" in capsys.readouterr().err


def test_interim_weight_error_ranks_types(small_gguf: Path) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    table = weight_error_costs(model, plan, types=("Q2_K", "Q4_K", "Q8_0", "F16"))
    assert set(table) == {tp.name for tp in plan.tensors if tp.quantizable}
    for costs in table.values():
        assert costs["F16"] == 0.0
        assert costs["Q2_K"] > costs["Q4_K"] > costs["Q8_0"] > 0
