"""Speed as llama-bench measures it, on the demo model with small sizes: numbers, settings, CLI."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")

from quant_core.assets import DEMO_MODEL
from quant_core.cli.main import main
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import (
    QualityError,
    QualityProgress,
    SpeedReport,
    SpeedSettings,
    bench_default_threads,
    iter_plan_speed,
    iter_speed,
)
from quant_core.quality import cache as quality_cache
from quant_core.quality.speed import iter_speed_here

SMALL = SpeedSettings(n_prompt=32, n_gen=8, repetitions=2, threads=1)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(quality_cache.ENV_VAR, str(folder))
    return folder


def _run(items) -> tuple[list[QualityProgress], SpeedReport]:
    items = list(items)
    assert isinstance(items[-1], SpeedReport)
    assert all(isinstance(i, QualityProgress) for i in items[:-1])
    return items[:-1], items[-1]


def _check_sane(r: SpeedReport, reps: int) -> None:
    assert len(r.pp_samples) == reps and len(r.tg_samples) == reps
    assert all(v > 0 for v in r.pp_samples + r.tg_samples)
    assert r.pp_tps == pytest.approx(statistics.fmean(r.pp_samples))
    assert r.tg_tps == pytest.approx(statistics.fmean(r.tg_samples))
    assert r.pp_tps_std == pytest.approx(statistics.stdev(r.pp_samples)) and r.pp_tps_std >= 0
    assert r.tg_tps_std == pytest.approx(statistics.stdev(r.tg_samples)) and r.tg_tps_std >= 0


@pytest.mark.parametrize("reps", [2, 3])
def test_demo_model_speed_is_sane(reps: int) -> None:
    settings = SpeedSettings(n_prompt=32, n_gen=8, repetitions=reps, threads=1)
    progress, r = _run(iter_speed(DEMO_MODEL, settings))
    _check_sane(r, reps)
    assert r.settings == settings and r.file_bytes == DEMO_MODEL.stat().st_size
    stages = [p.stage for p in progress]
    assert stages[0] == "pp" and stages[-1] == "tg"
    for stage in ("pp", "tg"):
        done = [p.done for p in progress if p.stage == stage]
        assert done == sorted(done) and done[-1] == reps  # every repetition reported, in order


def test_in_process_measurement_and_default_threads() -> None:
    _, r = _run(iter_speed_here(DEMO_MODEL, SpeedSettings(n_prompt=16, n_gen=4, repetitions=2)))
    _check_sane(r, 2)
    assert r.settings.threads == bench_default_threads() >= 1


def test_only_one_test() -> None:
    _, r = _run(iter_speed(DEMO_MODEL, SpeedSettings(n_prompt=0, n_gen=4, repetitions=2, threads=1)))
    assert r.pp_samples == () and r.pp_tps is None and len(r.tg_samples) == 2
    assert r.as_json()["pp_tps"] is None


def test_bad_settings_and_files(tmp_path: Path) -> None:
    with pytest.raises(QualityError, match="repetitions"):
        list(iter_speed(DEMO_MODEL, SpeedSettings(repetitions=0)))
    with pytest.raises(QualityError, match="nothing to measure"):
        list(iter_speed(DEMO_MODEL, SpeedSettings(n_prompt=0, n_gen=0)))
    with pytest.raises(QualityError, match="no such model"):
        list(iter_speed(tmp_path / "missing.gguf", SMALL))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(QualityError, match="cannot load"):
        list(iter_speed(junk, SMALL))


def test_cancel_stops_at_once() -> None:
    items = iter_speed(DEMO_MODEL, SpeedSettings(n_prompt=32, n_gen=2000, repetitions=50, threads=1))
    first = next(items)
    assert isinstance(first, QualityProgress)
    start = time.perf_counter()
    items.close()
    assert time.perf_counter() - start < 5


def test_plan_speed_leaves_no_file(cache: Path) -> None:
    model = open_model(DEMO_MODEL)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    progress, r = _run(iter_plan_speed(model, plan, SMALL))
    _check_sane(r, 2)
    assert {p.stage for p in progress} == {"export", "pp", "tg"}
    assert r.file_bytes < DEMO_MODEL.stat().st_size / 2
    assert not [p for p in cache.rglob("*") if p.is_file()]


SPEED_KEYS = {"pp_tps", "tg_tps", "pp_tps_std", "tg_tps_std", "speed_settings"}


def test_cli_bench_model_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-model", str(DEMO_MODEL), "-p", "32", "-n", "8", "-r", "2", "-t", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc.keys() >= SPEED_KEYS and doc["pp_tps"] > 0 and doc["tg_tps"] > 0
    assert doc["speed_settings"]["threads"] == 1 and len(doc["tg_samples"]) == 2
    assert main(["bench-model", str(DEMO_MODEL), "--preset", "Q8_0", "Q4_K_M", "-p", "32", "-n", "8", "-r", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model") and "t/s" in lines[0]
    tests = [(cells[1].strip(), cells[7].strip()) for cells in (line.split("|") for line in lines[2:])]
    assert tests == [("Q8_0", "pp32"), ("Q8_0", "tg8"), ("Q4_K_M", "pp32"), ("Q4_K_M", "tg8")]


def test_cli_bench_model_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench-model", str(DEMO_MODEL), "-r", "0"]) == 1
    assert capsys.readouterr().err.strip() == "quant-explorer: error: repetitions must be at least 1, got 0"
    assert main(["bench-model", str(tmp_path / "nope.gguf")]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_eval_speed_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", str(DEMO_MODEL), "--preset", "Q8_0", "--chunks", "2", "--speed"]
    args += ["--speed-prompt", "32", "--speed-gen", "8", "--speed-reps", "2", "--speed-threads", "1", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc.keys() >= SPEED_KEYS and doc["kld_mean"] >= 0
    assert doc["pp_tps"] > 0 and doc["tg_tps"] > 0 and doc["tg_tps_std"] >= 0
    assert doc["speed_settings"] == {
        "n_prompt": 32,
        "n_gen": 8,
        "repetitions": 2,
        "threads": 1,
        "n_batch": 2048,
        "n_ubatch": 512,
        "n_gpu_layers": -1,
    }
    assert main(args[:-1]) == 0
    out = capsys.readouterr().out
    assert "pp32" in out and "tg8" in out and "Mean    KLD" in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="looks for the process in /proc")
def test_measuring_process_ends_with_its_parent(tmp_path: Path) -> None:
    model = tmp_path / "unique-name-for-this-test.gguf"
    shutil.copyfile(DEMO_MODEL, model)
    script = (
        "import os; from quant_core.quality import iter_speed, SpeedSettings; "
        f"it = iter_speed({str(model)!r}, SpeedSettings(n_prompt=8, n_gen=100000, repetitions=50, threads=1)); "
        "next(it); os._exit(0)"  # the parent vanishes without closing the generator
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    deadline = time.monotonic() + 10
    while _processes_naming(model.name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_naming(model.name) == []


def _processes_naming(name: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and name.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
