"""Measure what the GUI thread pays on a 7B-class header (Llama-3-8B, 291 tensors, sparse file).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/gui_thread_costs.py [WORKDIR]

Statistics jobs are switched off so only the GUI thread's own work is timed: a plan change with
every view attached, reading an importance matrix (225 entries) and building the llama-quantize
command line for a 112-tensor hand mix, each next to what the same work costs when done inline.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from explorer.main_window import MainWindow
from explorer.session import ExplorerSession
from quant_core.imatrix import load_for_quantize, write_imatrix_gguf
from quant_core.recipe import llama_quantize_command
from tests.core.fake_header import LLAMA3_8B, write_sparse_llama_gguf


def timed_ms(fn):
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def run_until(signal, timeout_ms: int = 20000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def settle(ms: int = 1000) -> None:
    """Let pending repaints happen, so that they are not charged to the next measurement."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def longest_stall_ms(action, signal) -> float:
    """Run ``action`` and the event loop until ``signal``; the longest gap between 5 ms ticks.

    The applied change itself (plan, size, views) is included: it runs when the signal comes.
    """
    settle()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    start = time.perf_counter()
    action()
    run_until(signal)
    timer.stop()
    return float(np.diff([start, *ticks, time.perf_counter()]).max() * 1000)


def write_imatrix(path: Path, session: ExplorerSession) -> None:
    rng = np.random.default_rng(0)
    names = [t for t in session.model.tensors if len(t.shape) == 2 and t.name != "token_embd.weight"]
    sums = {t.name: rng.random(t.shape[0], dtype=np.float32) for t in names}
    write_imatrix_gguf(path, sums, {t.name: np.array([1000]) for t in names})


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    _app = QApplication([])  # kept alive until the end
    session = ExplorerSession()
    session._timer.timeout.disconnect()  # no statistics jobs
    window = MainWindow(session)
    window.show_error = print
    window.show()
    idle = longest_stall_ms(
        lambda: QTimer.singleShot(1000, lambda: session.busy_changed.emit("")), session.busy_changed
    )
    print(f"baseline: longest gap between 5 ms ticks with nothing to do, over 1 s: {idle:.1f} ms")
    ms, _ = timed_ms(lambda: session.open_model(write_sparse_llama_gguf(work / "llama3-8b.gguf", **LLAMA3_8B)))
    print(f"open the model ({len(session.plan.tensors)} tensors), views included: {ms:.1f} ms")
    names = [tp.name for tp in session.plan.tensors if tp.quantizable]
    for name in names[10:13]:
        settle()
        ms, _ = timed_ms(lambda n=name: session.set_types([n], "Q8_0"))
        print(f"plan change (one tensor), views included: {ms:.1f} ms")
    imatrix = work / "imatrix.gguf"
    write_imatrix(imatrix, session)
    ms, _ = timed_ms(lambda: load_for_quantize(str(imatrix)))
    print(f"read the importance matrix inline: {ms:.1f} ms")
    stall = longest_stall_ms(lambda: session.set_imatrix(str(imatrix)), session.imatrix_changed)
    print(f"set_imatrix: longest GUI-thread stall until applied: {stall:.1f} ms")
    mix = [n for n in names if n.startswith("blk.") and int(n.split(".")[1]) % 2 == 0]
    session.set_types(mix, "Q6_K")
    settle()
    ms, _ = timed_ms(lambda: llama_quantize_command(session.model, session.plan, str(session.model.path), "O.gguf"))
    print(f"build the command line inline ({len(mix)} hand-typed tensors): {ms:.1f} ms")
    session._command = None  # the plan panel may have built it already: build it again
    stall = longest_stall_ms(session.request_llama_command, session.command_ready)
    print(f"request_llama_command: longest GUI-thread stall until ready: {stall:.1f} ms")
    ms, _ = timed_ms(session.llama_command)
    print(f"copy the command afterwards: {ms:.3f} ms")
    session.undo_stack.cleanChanged.disconnect()  # the window must not hear the stack's destruction
    window.close()
    session.shutdown()


if __name__ == "__main__":
    main()
