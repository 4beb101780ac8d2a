"""Non-regular, unreadable, too long and left-over paths: refused in one line, swept, never hung."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from quant_core import export, inputs, partial_files
from quant_core.cli import main
from quant_core.errors import ImatrixError
from quant_core.export import ExportError, check_output_path, iter_export
from quant_core.imatrix import load_imatrix, write_imatrix_gguf
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.recipe import Recipe, RecipeError


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quant-explorer: error: "), err
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


# --- inputs that are FIFOs or devices are refused without reading -------------------------------


def test_fifo_imatrix_is_refused(fifo: Path) -> None:
    with pytest.raises(ImatrixError, match="FIFO"):
        load_imatrix(fifo)


def test_device_imatrix_is_refused() -> None:
    with pytest.raises(ImatrixError, match="device"):
        load_imatrix("/dev/zero")


def test_fifo_recipe_is_refused(fifo: Path) -> None:
    with pytest.raises(RecipeError, match="FIFO"):
        Recipe.load(fifo)


@pytest.mark.parametrize("flag", ["--tensor-type-file", "--recipe", "--imatrix"])
@pytest.mark.parametrize("source", ["fifo", "/dev/zero"])
def test_cli_refuses_non_regular_inputs(
    small_gguf: Path, fifo: Path, flag: str, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(fifo) if source == "fifo" else source
    assert main(["plan", flag, path, str(small_gguf), "Q4_K_M"]) == 1
    assert "not a regular file" in _one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of their mode")
@pytest.mark.parametrize("flag", ["--tensor-type-file", "--recipe", "--imatrix"])
def test_unreadable_inputs_are_one_line(
    small_gguf: Path, tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secret"
    path.write_text("x")
    path.chmod(0)
    assert main(["plan", flag, str(path), str(small_gguf), "Q4_K_M"]) == 1
    assert "permission denied" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("flag", ["--tensor-type-file", "--recipe", "--imatrix"])
def test_permission_denied_is_one_line_even_for_root(
    small_gguf: Path, tmp_path: Path, flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secret"
    path.write_text("x")
    real_open = os.open

    def deny(name: str, *args: object, **kwargs: object) -> int:
        if os.fspath(name) == str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return real_open(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inputs.os, "open", deny)
    assert main(["plan", flag, str(path), str(small_gguf), "Q4_K_M"]) == 1
    assert f"{path}: permission denied" in _one_error_line(capsys.readouterr().err)


# --- output paths --------------------------------------------------------------------------------


def test_output_may_not_be_a_device_or_fifo(small_gguf: Path, fifo: Path) -> None:
    with pytest.raises(ExportError, match="is a FIFO"):
        check_output_path(small_gguf, fifo)
    with pytest.raises(ExportError, match="is a device"):
        check_output_path(small_gguf, "/dev/null")


@pytest.mark.parametrize("flag", ["--imatrix", "--recipe", "--tensor-type-file"])
def test_output_may_not_be_any_input(
    small_gguf: Path, tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "input.dat"
    victim.write_bytes(b"precious")
    link = tmp_path / "alias.dat"
    link.symlink_to(victim)
    assert main(["quantize", flag, str(victim), str(small_gguf), str(link), "Q8_0"]) == 1
    assert "output path is the input file" in _one_error_line(capsys.readouterr().err)
    assert victim.read_bytes() == b"precious"


def test_export_refuses_to_overwrite_its_imatrix(small_gguf: Path, tmp_path: Path) -> None:
    imx = tmp_path / "imx.gguf"
    write_imatrix_gguf(imx, {"blk.0.attn_q.weight": np.ones((1, 256), np.float32)}, {"blk.0.attn_q.weight": [512]})
    model = open_model(small_gguf)
    imatrix = load_imatrix(imx)
    plan = build_plan(model, QuantOptions(preset="Q8_0"), has_imatrix=True)
    before = imx.read_bytes()
    with pytest.raises(ExportError, match="the input file"):
        next(iter_export(model, plan, imx, imatrix=imatrix))
    assert imx.read_bytes() == before


def test_output_name_too_long_is_one_line(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("x" * 300 + ".gguf")
    assert main(["quantize", str(small_gguf), str(out), "Q8_0"]) == 1
    assert "too long" in _one_error_line(capsys.readouterr().err)


def test_output_name_at_the_limit_still_exports(small_gguf: Path, tmp_path: Path) -> None:
    """The partial file's longer name is cut to fit, so the longest legal output name works."""
    out = tmp_path / ("y" * (partial_files.name_max(tmp_path) - 5) + ".gguf")
    assert main(["quantize", str(small_gguf), str(out), "Q8_0"]) == 0
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == [out.name]


# --- failures while writing ----------------------------------------------------------------------


def _failing(code: int, what: str):
    def fail(*_args: object, **_kwargs: object) -> None:
        raise OSError(code, os.strerror(code), what)

    return fail


def test_no_free_inodes_is_one_line(
    small_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(partial_files.tempfile, "mkstemp", _failing(errno.ENOSPC, "mkstemp"))
    assert main(["quantize", str(small_gguf), str(tmp_path / "o.gguf"), "Q8_0"]) == 1
    assert "no free inodes" in _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_failed_rename_and_failed_cleanup_is_one_line(
    small_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(export.os, "replace", _failing(errno.EIO, "replace"))
    real_unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", _failing(errno.EROFS, "unlink"))
    assert main(["quantize", str(small_gguf), str(tmp_path / "o.gguf"), "Q8_0"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "Input/output error" in line and "could not be removed either (Read-only file system)" in line
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and partial_files.is_partial_name(left[0].name)
    real_unlink(left[0])


# --- partial files of killed exports ----------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sigkilled_export_leaves_a_recognisable_file_swept_by_the_next(small_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.gguf"
    script = (
        "import os, signal, sys\n"
        "from quant_core import export\n"
        "real = export._tensor_chunks\n"
        "def chunks(*a, **k):\n"
        "    for n in real(*a, **k):\n"
        "        yield n\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "export._tensor_chunks = chunks\n"
        "from quant_core.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    rc = subprocess.run(
        [sys.executable, "-c", script, "quantize", str(small_gguf), str(out), "Q8_0"], env=env
    ).returncode
    assert rc == -9
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and partial_files.is_partial_name(left[0].name) and left[0].name.startswith(".o.gguf.")
    assert main(["quantize", str(small_gguf), str(out), "Q8_0"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.gguf"]


def test_sweep_keeps_live_and_foreign_files(tmp_path: Path) -> None:
    dead = tmp_path / f".a.gguf.{_dead_pid()}.abcd_123.part"
    live = tmp_path / f".b.gguf.{os.getppid()}.abcd_123.part"
    other = tmp_path / ".c.gguf.abcd_123.part"  # not our pattern (no process id)
    for p in (dead, live, other):
        p.write_bytes(b"x")
    assert partial_files.sweep_partials(tmp_path) == [dead]
    assert sorted(tmp_path.iterdir()) == sorted([live, other])


def test_sweep_removes_a_file_whose_pid_was_reused(tmp_path: Path) -> None:
    stale = tmp_path / f".a.gguf.{os.getppid()}.abcd_123.part"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))  # written long before the process now holding that id started
    assert partial_files.sweep_partials(tmp_path) == [stale]


# --- a GGUF importance matrix with large metadata is read like a model header --------------------


def test_gguf_imatrix_with_large_metadata_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.gguf"
    datasets = [f"dataset-{i:07d}" for i in range(250_000)]
    write_imatrix_gguf(path, {"w": np.ones((1, 32), np.float32)}, {"w": [512]}, datasets=datasets)
    load_imatrix(path)  # warm-up: compiles the header reader's string scan once
    start = time.perf_counter()
    imatrix = load_imatrix(path)
    assert time.perf_counter() - start < 5.0
    assert imatrix.datasets == datasets and imatrix.chunk_size == 512
