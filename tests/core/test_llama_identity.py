"""Our export is byte-identical to llama-quantize's for the same preset and options.

tests/data/identity/expected.json holds the sha256 of llama-quantize's output for a small
model (tiny-llama.gguf) under many presets and options; record.py beside it shows how it was
made. Each case runs our exporter with the same arguments and compares the hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from quant_core.cli import main

HERE = Path(__file__).resolve().parent.parent / "data" / "identity"
EXPECTED = HERE / "expected.json"


def _runs() -> list:
    if not EXPECTED.exists():
        return []
    doc = json.loads(EXPECTED.read_text())
    return [pytest.param(r, id=" ".join([*r["args"], r["preset"]]).replace(str(HERE), "")) for r in doc["runs"]]


def test_reference_model_is_the_recorded_one() -> None:
    doc = json.loads(EXPECTED.read_text())
    assert hashlib.sha256((HERE / "tiny-llama.gguf").read_bytes()).hexdigest() == doc["model_sha256"]
    assert len(doc["runs"]) >= 40


@pytest.mark.parametrize("run", _runs())
def test_same_bytes_as_llama_quantize(run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)  # imatrix paths are written into the file as given
    out = tmp_path / "out.gguf"
    code = main(["quantize", *run["args"], "tiny-llama.gguf", str(out), run["preset"], "2"])
    if run.get("fails"):
        assert code != 0 and not out.exists()  # llama-quantize refused this one too
        return
    assert code == 0
    data = out.read_bytes()
    assert len(data) == run["bytes"]
    assert hashlib.sha256(data).hexdigest() == run["sha256"]
