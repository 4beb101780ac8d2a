"""A source model truncated or replaced while it is read: one clean ModelError line, never a
SIGBUS death. The truncation cases run in a subprocess, so a regression to memory-mapped reads
fails the test (negative return code) instead of killing pytest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from quant_core.model import open_model

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo-llama.gguf"

pytestmark = pytest.mark.skipif(not DEMO.is_file(), reason="assets/demo-llama.gguf missing")

# opens MODEL, truncates it to the start of its last tensor, then runs ACTION;
# prints the ModelError and exits 3, or exits 0 if nothing was raised
_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from quant_core.export import iter_export
    from quant_core.model import ModelError, open_model
    from quant_core.plan import QuantOptions, build_plan

    src, out, action = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    model = open_model(src)
    last = max(model.tensors, key=lambda t: t.data_offset)
    os.truncate(src, last.data_offset + 100)
    try:
        if action == "export":
            plan = build_plan(model, QuantOptions(preset=sys.argv[4]))
            for _ in iter_export(model, plan, out):
                pass
        elif action == "rows":
            model.rows_f32(last.name, slice(0, 64))
        elif action == "pick":
            model.rows_f32(last.name, [0, 1, 2, last.n_rows - 1])
        elif action == "raw":
            model.raw(last.name)
    except ModelError as err:
        print(err)
        sys.exit(3)
    """
)


def _run(tmp_path: Path, action: str, *extra: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "model.gguf"
    shutil.copyfile(DEMO, src)
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(src), str(tmp_path / "out.gguf"), action, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "action", [("export", "Q8_0"), ("export", "F16"), ("rows",), ("pick",), ("raw",)], ids=lambda a: "-".join(a)
)
def test_truncated_while_open_is_one_line(tmp_path: Path, action: tuple[str, ...]) -> None:
    proc = _run(tmp_path, *action)
    assert proc.returncode == 3, f"rc {proc.returncode} (a negative code is a signal)\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert lines == ["model.gguf changed on disk while being read (truncated)"]
    assert proc.stderr == ""
    assert not (tmp_path / "out.gguf").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.gguf"]  # no partial file left


def test_replaced_by_rename_keeps_reading_the_opened_file(tmp_path: Path) -> None:
    src = tmp_path / "model.gguf"
    shutil.copyfile(DEMO, src)
    model = open_model(src)
    name = model.tensors[-1].name
    before = model.raw(name)
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 64)
    os.replace(other, src)
    assert np.array_equal(model.raw(name), before)
    assert np.array_equal(model.rows_f32(name), open_model(DEMO).rows_f32(name))


@pytest.mark.parametrize(
    "rows",
    [None, slice(3, 40), slice(5, None, 7), slice(-9, None), [0, 1, 2, 9, 10, 4095], [-1, 0, -2], "mask"],
    ids=["all", "slice", "step", "negative-slice", "runs", "negative", "mask"],
)
def test_row_selections_match_the_tensor(rows: object) -> None:
    model = open_model(DEMO)
    t = model.tensor("output.weight")
    full = model.rows_f32(t.name)
    assert full.shape == (t.n_rows, t.n_per_row)
    expected = np.asarray(model._reader.data[t.data_offset : t.data_offset + t.n_bytes]).view(np.float16)
    assert np.array_equal(full, expected.reshape(t.n_rows, t.n_per_row).astype(np.float32))
    if isinstance(rows, str):
        rows = np.arange(t.n_rows) % 3 == 1
    picked = model.rows_f32(t.name, rows if not isinstance(rows, list) else np.array(rows))
    assert np.array_equal(picked, full[rows if rows is not None else slice(None)])


def test_raw_ranges_concatenate_to_the_tensor() -> None:
    model = open_model(DEMO)
    t = model.tensors[-1]
    whole = model.raw(t.name)
    assert whole.size == t.n_bytes
    parts = [model.raw(t.name, s, s + 100_000) for s in range(0, t.n_bytes, 100_000)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert model.raw(t.name, t.n_bytes - 5, t.n_bytes + 50).size == 5
