"""Speed measured in a child process, so that it runs as ``llama-bench`` runs.

OpenMP reads its wait policy once, when llama.cpp's library is loaded. The application sets
``OMP_WAIT_POLICY=passive`` (idle threads sleep, so llama.cpp and the numba kernels share the
cores politely), which makes one-token-at-a-time generation of a small model several times slower
than llama-bench, started from a plain shell, measures it. The child starts llama.cpp with
OpenMP's default policy instead, and is alone in its process (no GUI thread, no numba workers).

Protocol: the child prints one JSON object per line: ``{"progress": [stage, done, total]}``,
then ``{"report": {...}}`` or ``{"error": "one line"}``. It prints progress at least once per
llama.cpp call, so if the parent vanishes without cancelling, the broken pipe ends it there.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from .errors import QualityError, RuntimeMissingError
from .measure import QualityProgress
from .speed import SpeedReport, SpeedSettings

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding quant_core
_CHILD = f"import sys; from {__name__} import main; sys.exit(main(sys.argv[1:]))"
HEARTBEAT_S = 0.2  # the last progress again this often while the child is silent (so cancel is prompt)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)  # OpenMP's default, as llama-bench from a shell
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    return env


def iter_speed(
    path: str | os.PathLike[str], settings: SpeedSettings | None = None
) -> Iterator[QualityProgress | SpeedReport]:
    """Measure ``path``'s prompt (pp) and generation (tg) speed as llama-bench: progress, then the report.

    Stop iterating to cancel: the child process is killed at once. While one long llama.cpp call
    runs (a big model's prompt batch), the last progress item is repeated every
    :data:`HEARTBEAT_S` seconds, so a consumer that cancels between items is not kept waiting.
    """
    s = (settings or SpeedSettings()).resolved()
    s.check()
    p = Path(path)
    if not p.is_file():
        raise QualityError(f"no such model file: {p}")
    cmd = [sys.executable, "-c", _CHILD, str(p.resolve()), json.dumps(asdict(s))]
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, env=_child_env())
        try:
            yield from _read_child(proc)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        if proc.returncode:
            err_file.seek(0)
            tail = err_file.read().decode(errors="replace").strip().splitlines()[-1:]
            raise QualityError(f"the speed measurement stopped (code {proc.returncode}): {' '.join(tail)}".rstrip())


def _child_lines(proc: subprocess.Popen[bytes]) -> Iterator[bytes | None]:
    """The child's output lines; None whenever it has been silent for :data:`HEARTBEAT_S`."""
    assert proc.stdout is not None
    if os.name == "nt":  # select() does not take pipes there
        yield from proc.stdout
        return
    fd, pending = proc.stdout.fileno(), b""
    while True:
        ready, _, _ = select.select([fd], [], [], HEARTBEAT_S)
        if not ready:
            yield None
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        *lines, pending = (pending + chunk).split(b"\n")
        yield from lines


def _read_child(proc: subprocess.Popen[bytes]) -> Iterator[QualityProgress | SpeedReport]:
    last: QualityProgress | None = None
    for line in _child_lines(proc):
        if line is None:
            if last is not None:
                yield last
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # anything else a library printed
        if "progress" in doc:
            last = QualityProgress(*doc["progress"])
            yield last
        elif "report" in doc:
            yield SpeedReport.from_json(doc["report"])
            return
        elif "error" in doc:
            proc.wait()
            if doc.get("missing"):
                raise RuntimeMissingError()
            raise QualityError(doc["error"])


def _emit(doc: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """The child's work: measure MODEL with the settings given as JSON, report on stdout."""
    try:
        # Load llama.cpp (and with it libgomp, which reads OMP_WAIT_POLICY now) before
        # load_runtime() sets the application's passive default.
        from llama_cpp import llama_cpp  # noqa: F401
    except (ImportError, OSError):
        _emit({"error": str(RuntimeMissingError()), "missing": True})
        return 0
    from .speed import iter_speed_here

    try:
        for item in iter_speed_here(argv[0], SpeedSettings(**json.loads(argv[1]))):
            if isinstance(item, SpeedReport):
                _emit({"report": item.as_json()})
            else:
                _emit({"progress": [item.stage, item.done, item.total]})
    except QualityError as err:
        _emit({"error": str(err)})
    return 0
