"""The window's background kernel warm-up: progress in the status bar, statistics held until the
plan's types are ready, the process stopped on quit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMainWindow

from explorer import kernel_warmup
from explorer.kernel_warmup import KernelWarmup, plan_types
from explorer.session import ExplorerSession
from quant_core.warmup import warmup_order

from .support import wait_idle

# prints the progress of the types it is given, waiting for a file before each of the given steps
_FAKE = """
import os, sys, time
names, waits = sys.argv[1].split(","), dict(a.split("=") for a in sys.argv[2:])
for i, name in enumerate(names, 1):
    gate = waits.get(str(i))
    while gate and not os.path.exists(gate):
        time.sleep(0.02)
    print(f"progress {i} {len(names)} {name} 0.1 0", flush=True)
"""


@pytest.fixture
def fake_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Every type cold; the warm-up process replaced by one that waits for ``files[step]``."""
    files = {step: tmp_path / f"go{step}" for step in ("1", "3")}
    started: list[subprocess.Popen[str]] = []

    def start(types, first):
        order = ",".join(warmup_order(types, first))
        args = [f"{step}={path}" for step, path in files.items()]
        proc = subprocess.Popen([sys.executable, "-c", _FAKE, order, *args], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        return [proc]

    monkeypatch.setattr(kernel_warmup, "cold_types", lambda types=None: ["Q8_0", "Q4_K", "Q6_K"])
    monkeypatch.setattr(kernel_warmup, "start_warmup_processes", start)
    files["started"] = started  # type: ignore[assignment]
    yield files
    for proc in started:  # a failed test leaves no process waiting for its files
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _window(qtbot, session: ExplorerSession) -> tuple[QMainWindow, KernelWarmup]:
    window = QMainWindow()
    qtbot.addWidget(window)
    warmup = KernelWarmup(window, session)
    window.show()
    return window, warmup


def test_status_bar_shows_progress_and_statistics_wait_for_the_plans_types(qtbot, session, fake_process) -> None:
    assert plan_types(session)[:3] == ["F16", "Q4_K", "Q6_K"]  # the small F16 model's Q4_K_M plan
    wait_idle(qtbot, session)  # kernels compiled once: from here only the gate can hold statistics back
    _, warmup = _window(qtbot, session)
    assert warmup.start()
    assert warmup.label.isVisible() and warmup.label.text() == "Preparing kernels… 0/3"
    session.select(["blk.0.ffn_down.weight"])
    qtbot.wait(1500)  # the inspector's job is queued behind the gate
    assert not session.idle and session.inspection is None

    fake_process["1"].touch()  # the plan's types, Q4_K and Q6_K, are compiled first
    qtbot.waitUntil(lambda: warmup.label.text() == "Preparing kernels… 2/3", timeout=10_000)
    wait_idle(qtbot, session)
    assert session.inspection is not None
    assert warmup.running and warmup.label.isVisible()

    fake_process["3"].touch()
    qtbot.waitUntil(lambda: not warmup.running, timeout=10_000)
    assert not warmup.label.isVisible() and warmup.last is not None and warmup.last.done == 3


def test_stop_ends_the_process_and_releases_the_statistics(qtbot, session, fake_process) -> None:
    _, warmup = _window(qtbot, session)
    assert warmup.start()
    proc = fake_process["started"][0]
    warmup.stop()
    assert proc.wait(5) != 0
    wait_idle(qtbot, session)


def test_nothing_starts_when_every_kernel_is_cached(qtbot, session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_warmup, "cold_types", lambda types=None: [])
    _, warmup = _window(qtbot, session)
    assert not warmup.start()
    assert not warmup.label.isVisible() and not warmup.running


@pytest.mark.slow  # compiles kernels unless they are cached
def test_the_real_process_reports_every_type(qtbot, session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_warmup, "cold_types", lambda types=None: warmup_order(types))
    _, warmup = _window(qtbot, session)
    warmup.types = ["Q8_0", "Q4_0"]
    assert warmup.start()
    qtbot.waitUntil(lambda: not warmup.running, timeout=300_000)
    assert warmup.last is not None and (warmup.last.done, warmup.last.total) == (2, 2)
    assert not warmup.label.isVisible()
