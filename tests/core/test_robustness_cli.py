"""Hostile recipes, options and texts: one line on stderr, never a traceback or a hang."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quant_core import export
from quant_core import model as model_module
from quant_core.cli import main
from quant_core.plan import PlanError, parse_tensor_type
from quant_core.recipe import Recipe, RecipeError
from quant_core.regex_guard import UnsafePatternError, check_pattern

ROOT = Path(__file__).resolve().parents[2]


def _recipe(options: dict) -> str:
    return json.dumps({"format": "quant-explorer-recipe", "version": 1, "options": options})


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quant-explorer: error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- recipe fields and JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "options,message",
    [
        ({"pure": "false"}, r"'pure': expected true or false"),
        ({"leave_output_tensor": 0}, r"'leave_output_tensor': expected true or false"),
        ({"tensor_types": "attn_q=q8_0"}, r"'tensor_types': expected a list of strings"),
        ({"include_weights": "attn"}, r"'include_weights': expected a list of strings"),
        ({"override_kv": "a=int:1"}, r"'override_kv': expected a list of strings"),
        ({"prune_layers": "12"}, r"'prune_layers': expected a list of layer numbers"),
        ({"prune_layers": [2**40]}, r"'prune_layers': expected a list of layer numbers"),
        ({"preset": ["Q4_K_M"]}, r"'preset': expected a string"),
    ],
)
def test_recipe_fields_of_the_wrong_type_are_refused(options: dict, message: str) -> None:
    with pytest.raises(RecipeError, match=message) as err:
        Recipe.from_json(_recipe(options))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text,message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"version": ' + "9" * 5000 + "}", "invalid number"),
        ('{"version": 1e999}', "out of range"),
        ('{"version": NaN}', "NaN is not a JSON number"),
        ('{"version": -Infinity}', "-Infinity is not a JSON number"),
    ],
)
def test_absurd_json_is_one_line(text: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message) as err:
        Recipe.from_json(text)
    assert "\n" not in str(err.value)


def test_non_utf8_recipe_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(_recipe({"preset": "Q4_K_M"}).encode().replace(b"Q4_K_M", b"Q4\xff_K_M"))
    with pytest.raises(RecipeError, match=r"r\.json is not valid UTF-8 \(byte \d+\)"):
        Recipe.load(path)


def test_recipe_with_string_list_fails_in_the_cli(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.json"
    path.write_text(_recipe({"pure": "false"}))
    assert main(["plan", "--recipe", str(path), str(small_gguf), "Q4_K_M"]) == 1
    assert "'pure': expected true or false" in _one_error_line(capsys.readouterr().err)


# --- non-UTF-8 options and files ------------------------------------------------------------------


def test_non_utf8_argument_is_one_line(small_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = b"attn_q\xff=q8_0".decode("utf-8", "surrogateescape")
    assert main(["plan", "--tensor-type", bad, str(small_gguf), "Q4_K_M"]) == 2
    assert "is not valid UTF-8" in _one_error_line(capsys.readouterr().err)


def test_non_utf8_tensor_type_file_is_one_line(
    small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "types.txt"
    path.write_bytes(b"attn_q=q8_0\nffn\xfe=q6_k\n")
    assert main(["plan", "--tensor-type-file", str(path), str(small_gguf), "Q4_K_M"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "tensor type file" in line and "not valid UTF-8 (byte 15)" in line


@pytest.mark.parametrize("command", ["eval", "sensitivity"])
def test_text_file_that_is_a_fifo_is_refused(
    small_gguf: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "text"
    os.mkfifo(fifo)
    argv = [command, str(small_gguf), *([str(small_gguf)] if command == "eval" else []), "--text", str(fifo)]
    assert main(argv) == 1
    assert "FIFO" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "body",
    [
        '"options": {"override_kv": ["general.name=str:\\udcff"]}',
        '"options": {"imatrix": "a\\ud800b"}',
        '"explicit": {"\\udcff": "Q8_0"}',
    ],
)
def test_recipe_strings_that_are_not_unicode_are_refused(body: str) -> None:
    text = '{"format": "quant-explorer-recipe", "version": 1, ' + body + "}"
    with pytest.raises(RecipeError, match="not valid Unicode"):
        Recipe.from_json(text)


# --- --tensor-type regexes that would backtrack without end ----------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["(" * 5000 + "a" + ")" * 5000, "(a+)+b", "(a|a)*b", "(x+x+)+y", "(a?){30}a{30}", ".*.*.*.*x", "a?a?a?a?b"],
)
def test_catastrophic_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafePatternError):
        check_pattern(pattern)
    with pytest.raises(PlanError, match="refused: ") as err:
        parse_tensor_type(f"{pattern}=q8_0")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "pattern", [r"blk\.(1|2)\.attn_.*", "ffn_(up|down)", r"blk\.\d+\.ffn_down", "^output\\.weight$", "(ab)*c"]
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    check_pattern(pattern)
    assert parse_tensor_type(f"{pattern}=q8_0")[0] == pattern


def test_refused_pattern_does_not_hang_the_cli(small_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    assert main(["plan", "--tensor-type", "(.*a)+$=q8_0", str(small_gguf), "Q4_K_M"]) == 1
    assert "nested quantifiers" in _one_error_line(capsys.readouterr().err)
    assert main(["stats", "--tensor", "(.*a)+$", str(small_gguf), "Q4_K_M"]) == 1
    assert "nested quantifiers" in _one_error_line(capsys.readouterr().err)
    assert time.perf_counter() - start < 30


# --- closed pipes and signals -----------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from quant_core.cli import main; sys.exit(main())", *args]


@pytest.mark.parametrize("command", ["plan", "stats"])
def test_output_into_a_closed_pipe_ends_quietly(small_gguf: Path, command: str) -> None:
    """As ``plan ... | head -1`` once head has exited: the reader end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        _cli(command, str(small_gguf), "Q4_K_M"), stdout=write_end, stderr=subprocess.PIPE, env=env
    ) as proc:
        os.close(write_end)
        _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGPIPE
    assert err.decode() == ""


def test_unreadable_model_is_one_line(
    small_gguf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def deny(name: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))

    monkeypatch.setattr(model_module, "open", deny, raising=False)
    assert main(["plan", str(small_gguf), "Q4_K_M"]) == 1
    assert "permission denied" in _one_error_line(capsys.readouterr().err).lower()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_no_partial_file(
    small_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, capsys: pytest.CaptureFixture[str]
) -> None:
    real = export._tensor_chunks

    def chunks_then_signal(*args: object, **kwargs: object):
        for n in real(*args, **kwargs):  # type: ignore[arg-type]
            yield n
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(export, "_tensor_chunks", chunks_then_signal)
    before = signal.getsignal(signum)
    out = tmp_path / "o.gguf"
    assert main(["quantize", str(small_gguf), str(out), "Q8_0"]) == 128 + signum
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signum) == before
