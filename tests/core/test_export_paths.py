"""check_output_path: the one place that decides whether an output path can be written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quant_core.export import ExportError, check_output_path


def test_usable_path_is_returned_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in.gguf"
    src.write_bytes(b"GGUF")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_output_path(src, " ~/out.gguf ") == tmp_path / "out.gguf"
    assert check_output_path(src, tmp_path / "in.gguf.bak") == tmp_path / "in.gguf.bak"


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("", "no output file given"),
        ("{src}", "the output path is the input file"),
        ("{link}", "the output path is the input file"),
        ("{tmp}", "is a directory"),
        ("{tmp}/none/o.gguf", "does not exist"),
    ],
)
def test_refused_paths_say_why_in_one_line(tmp_path: Path, out: str, message: str) -> None:
    src = tmp_path / "in.gguf"
    src.write_bytes(b"GGUF")
    os.link(src, tmp_path / "link.gguf")
    text = out.format(src=src, link=tmp_path / "link.gguf", tmp=tmp_path)
    with pytest.raises(ExportError, match=message) as err:
        check_output_path(src, text)
    assert "\n" not in str(err.value)
