"""``quant-explorer imatrix``: compute, default names, one-line errors, ``--show-statistics``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quant_core.assets import DEMO_MODEL
from quant_core.cli.main import main
from quant_core.imatrix import load_imatrix

DATA = Path(__file__).resolve().parents[1] / "data" / "imatrix"


@pytest.fixture
def runtime() -> None:
    pytest.importorskip("llama_cpp", reason="needs the quality extra (llama-cpp-python)")


def test_compute_with_defaults(runtime: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["imatrix", str(DEMO_MODEL), "--ctx", "256", "--chunks", "3", "--threads", "2"]) == 0
    out = tmp_path / "demo-llama.imatrix.gguf"
    im = load_imatrix(out)
    assert (im.chunk_count, im.chunk_size, len(im.entries)) == (3, 256, 28)
    assert im.datasets[0].endswith("demo-calibration.txt")
    assert f"wrote {out.name}" in capsys.readouterr().out


def test_dat_by_suffix_and_by_flag(runtime: None, tmp_path: Path) -> None:
    assert main(["imatrix", str(DEMO_MODEL), "--ctx", "128", "--chunks", "2", "-o", str(tmp_path / "a.dat")]) == 0
    assert load_imatrix(tmp_path / "a.dat").format == "dat"
    args = ["imatrix", str(DEMO_MODEL), "--ctx", "128", "--chunks", "2", "--output-format", "dat"]
    assert main([*args, "-o", str(tmp_path / "b.imatrix")]) == 0
    assert load_imatrix(tmp_path / "b.imatrix").format == "dat"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text", "/nonexistent/t.txt"], "t.txt"),
        (["--ctx", "0"], "--ctx must be positive"),
        (["--ctx", "40000"], "at least 80000"),
        (["-o", str(DEMO_MODEL)], "overwrite the model"),
        (["-o", "/nonexistent/folder/x.gguf"], "no such folder"),
        (["-o", "/"], "it is a folder"),
    ],
)
def test_errors_are_one_line(runtime: None, args: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main(["imatrix", str(DEMO_MODEL), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_missing_model_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["imatrix", str(tmp_path / "none.gguf")]) == 1
    assert "none.gguf" in capsys.readouterr().err
    assert main(["imatrix"]) == 1


def test_show_statistics(capsys) -> None:
    assert main(["imatrix", "--show-statistics", str(DATA / "llama_imatrix.gguf")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["Layer", "Tensor", "Σ(Act²)"]
    assert sum(1 for line in lines if "ffn_down" in line) == 4
    assert main(["imatrix", "--show-statistics", str(DATA / "record.json")]) == 1
    assert main(["imatrix", str(DEMO_MODEL), "--show-statistics", str(DATA / "llama_imatrix.gguf")]) == 1


def test_interrupt_leaves_no_file(runtime: None, tmp_path: Path) -> None:
    text = tmp_path / "long.txt"
    text.write_bytes(DEMO_MODEL.with_name("demo-calibration.txt").read_bytes() * 4)
    # a shell's background jobs inherit an ignored SIGINT: restore Python's handler first
    entry = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from quant_core.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    cmd = [sys.executable, "-c", entry, "imatrix", str(DEMO_MODEL), "--text", str(text), "--ctx", "128"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([*cmd, "-o", "out.gguf"], stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    assert proc.stderr is not None
    proc.stderr.read(1)  # the progress has started
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.txt"]
