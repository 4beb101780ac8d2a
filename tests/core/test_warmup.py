"""Ahead-of-time kernel compilation: order, markers, cancel, the child process and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from quant_core import QuantError, UnknownTypeError, _numba_cache, quantize, warmup
from quant_core.cli import main as cli_main
from quant_core.cli import warmup_cmd
from quant_core.evaluate import evaluate_tensor, sample_rows
from quant_core.kernels import DEQUANTIZERS, QUANTIZERS
from quant_core.model import open_model
from quant_core.qtypes import QTYPES

from .synthetic import write_llama_gguf


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Markers in an empty folder: every type looks cold."""
    folder = tmp_path / "warm"
    monkeypatch.setattr(warmup, "marker_dir", lambda: folder)
    return folder


@pytest.fixture
def fake_compile(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record what would be compiled instead of compiling it."""
    calls: list[str] = []
    monkeypatch.setattr(warmup, "_warm_common", lambda threads: calls.append(warmup.COMMON))
    monkeypatch.setattr(warmup, "_warm_type", lambda name, threads: calls.append(name))
    return calls


def test_order_puts_first_types_first_and_names_them_canonically() -> None:
    assert warmup.warmup_order(["q6_k", "Q4_K", "q8_0"], first=["q4_k", "IQ1_S"]) == ["Q4_K", "Q6_K", "Q8_0"]
    order = warmup.warmup_order(first=["Q6_K"])
    assert order[0] == "Q6_K" and sorted(order) == sorted(warmup.all_types())
    with pytest.raises(UnknownTypeError):
        warmup.warmup_order(["Q9_K"])


def test_yields_progress_for_every_quantizable_type(markers: Path, fake_compile: list[str]) -> None:
    progress = list(warmup.iter_warmup())
    quantizable = [name for name in QTYPES if name in QUANTIZERS and name in DEQUANTIZERS]
    assert [p.type_name for p in progress] == quantizable
    assert [p.done for p in progress] == list(range(1, len(quantizable) + 1))
    assert {p.total for p in progress} == {len(quantizable)} and not any(p.cached for p in progress)
    assert fake_compile == [warmup.COMMON, *quantizable]  # the shared kernels once, before the first type
    assert warmup.cold_types() == []


def test_a_second_run_skips_what_is_cached_until_the_sources_change(
    markers: Path, fake_compile: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    list(warmup.iter_warmup(["Q4_K", "Q8_0"]))
    fake_compile.clear()
    again = list(warmup.iter_warmup(["Q8_0", "Q4_K", "Q6_K"]))
    assert [(p.type_name, p.cached) for p in again] == [("Q8_0", True), ("Q4_K", True), ("Q6_K", False)]
    assert fake_compile == ["Q6_K"]
    monkeypatch.setattr(warmup, "source_stamp", lambda: "edited sources")
    assert warmup.cold_types(["Q8_0", "Q6_K"]) == ["Q8_0", "Q6_K"]


def test_closing_the_generator_cancels_between_types(markers: Path, fake_compile: list[str]) -> None:
    gen = warmup.iter_warmup(["Q8_0", "Q4_0", "Q6_K"])
    first = next(gen)
    gen.close()
    assert first.type_name == "Q8_0" and fake_compile == [warmup.COMMON, "Q8_0"]
    assert warmup.cold_types(["Q8_0", "Q4_0", "Q6_K"]) == ["Q4_0", "Q6_K"]


@pytest.mark.slow  # compiles kernels unless they are cached
def test_statistics_of_a_model_reuse_the_warmed_kernels(tmp_path: Path, markers: Path) -> None:
    """After the warm-up, the statistics path (F16 source rows, imatrix absent and present) adds no
    numba specialization: numba's cache then serves every later process without compiling."""
    list(warmup.iter_warmup(["F16", "Q4_K"]))  # the model's source type and the planned type
    model = open_model(write_llama_gguf(tmp_path / "m.gguf", 256, 1, 512, 256, 4, 1, tied=False))
    t = model.tensor("blk.0.ffn_down.weight")
    imatrix = np.linspace(0.5, 2.0, t.n_per_row, dtype=np.float32)
    imatrix.flags.writeable = False  # as loaded from a file
    before = _specializations()
    for values in (None, imatrix):
        evaluate_tensor(model, t, "Q4_K", sample_rows(t.n_rows, 8), values)
    assert _specializations() == before


def test_a_read_only_imatrix_uses_the_same_kernel_as_none() -> None:
    x = np.random.default_rng(0).normal(0, 0.02, (2, 256)).astype(np.float32)
    w = np.ones(256, dtype=np.float32)
    w.flags.writeable = False
    quantize(x, "Q8_0")
    before = len(QUANTIZERS["Q8_0"].signatures)
    quantize(x, "Q8_0", imatrix=w)
    assert len(QUANTIZERS["Q8_0"].signatures) == before


def _specializations() -> dict[str, int]:
    kernels = {f"q {k}": f for k, f in QUANTIZERS.items()} | {f"d {k}": f for k, f in DEQUANTIZERS.items()}
    return {name: len(f.signatures) for name, f in kernels.items() if isinstance(f, numba.core.dispatcher.Dispatcher)}


def test_progress_lines_round_trip() -> None:
    p = warmup.WarmupProgress(7, 26, "Q4_K", 3.25, False)
    assert warmup.WarmupProgress.parse(p.line()) == p
    assert warmup.WarmupProgress.parse("NumbaWarning: something") is None
    assert warmup.WarmupProgress.parse("progress 1 x Q4_K 0.1 0") is None


def test_module_main_prints_one_parsable_line_per_type(
    markers: Path, fake_compile: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert warmup.main(["--types", "Q8_0", "q4_0", "--first", "Q4_0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [warmup.WarmupProgress.parse(line).type_name for line in lines] == ["Q4_0", "Q8_0"]


def _fake_child(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_progress_of_several_processes_is_counted_together() -> None:
    procs = [_fake_child("print('progress 1 1 Q8_0 0.5 0')"), _fake_child("print('progress 1 1 Q4_0 0.5 1')")]
    progress = list(warmup.iter_processes_progress(procs, 2))
    assert sorted(p.type_name for p in progress) == ["Q4_0", "Q8_0"]
    assert [(p.done, p.total) for p in progress] == [(1, 2), (2, 2)]


def test_closing_the_progress_reader_stops_the_processes() -> None:
    procs = [_fake_child("import time\nprint('progress 1 3 Q8_0 0.5 0', flush=True)\ntime.sleep(60)")]
    procs.append(_fake_child("import time\ntime.sleep(60)"))
    reader = warmup.iter_processes_progress(procs, 4)
    assert next(reader) == warmup.WarmupProgress(1, 4, "Q8_0", 0.5, False)
    reader.close()
    assert all(proc.poll() is not None for proc in procs)


def test_a_failing_process_is_reported() -> None:
    procs = [_fake_child("print('progress 1 2 Q8_0 0.5 0')\nraise SystemExit(3)")]
    with pytest.raises(QuantError, match="status 3"):
        list(warmup.iter_processes_progress(procs, 2))


@pytest.mark.slow  # compiles kernels unless they are cached
def test_processes_share_out_the_types_and_compile_into_the_shared_cache() -> None:
    types = ["Q8_0", "Q4_0", "Q5_0"]
    procs = warmup.start_warmup_processes(types, first=["Q5_0"], jobs=2, nice=0)
    assert len(procs) == 2 and sum("--no-common" in proc.args for proc in procs) == 1
    progress = list(warmup.iter_processes_progress(procs, len(types)))
    assert sorted(p.type_name for p in progress) == sorted(types)
    assert [p.done for p in progress] == [1, 2, 3] and {p.total for p in progress} == {3}
    assert warmup.cold_types(types) == []  # their markers are in this process's cache


def test_cli_warmup_prints_one_line(
    markers: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli_main(["warmup", "--types", "q8_0", "q4_0"]) == 0  # cold here: run by the processes
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("Kernels ready: 2 type(s), ")
    list(warmup.iter_warmup(["Q8_0"]))  # the markers this process reads
    monkeypatch.setattr(warmup_cmd, "start_warmup_processes", lambda *a, **k: pytest.fail("nothing is cold"))
    assert cli_main(["warmup", "--types", "q8_0"]) == 0
    assert "0 prepared now, 1 already cached" in capsys.readouterr().out


def test_cli_warmup_rejects_an_unknown_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["warmup", "--types", "Q9_K"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Q9_K" in err[0]


def test_cache_root_follows_quant_explorer_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv(_numba_cache.CACHE_ENV, str(tmp_path / "qe"))
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    _numba_cache.configure()
    assert _numba_cache.cache_dir() == tmp_path / "qe" / f"numba-{_numba_cache.source_digest()}"
    assert warmup.marker_dir() == _numba_cache.cache_dir() / "warm"
