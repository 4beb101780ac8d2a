"""Plan changes are checked completely before they apply; slow reads and command lines run off the GUI thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import explorer.llama_command as command_module
import explorer.session as session_module
from quant_core.imatrix import write_imatrix_dat

from .support import WAIT_MS

pytestmark = pytest.mark.gui
TENSOR = "blk.0.ffn_up.weight"


def _imatrix(tmp_path, session):
    names = [tp.name for tp in session.plan.tensors if tp.quantizable]
    path = tmp_path / "m.imatrix.dat"
    sums = {n: np.ones(session.plan.tensor(n).source.shape[0], np.float32) for n in names}
    write_imatrix_dat(path, sums, {n: np.array([512]) for n in names}, chunk_size=512)
    return path


def test_bad_override_kv_is_refused_before_anything_changes(qtbot, session):
    errors: list[str] = []
    session.error.connect(errors.append)
    state, plan, size, steps = session.state, session.plan, session.size, session.undo_stack.count()
    assert not session.set_options("override", override_kv=("general.name=text:x",))
    assert len(errors) == 1 and errors[0].startswith("recipe option 'override_kv':") and "\n" not in errors[0]
    assert (session.state, session.plan, session.size) == (state, plan, size)
    assert session.undo_stack.count() == steps


def test_imatrix_is_read_off_the_gui_thread(qtbot, session, tmp_path, monkeypatch):
    path = _imatrix(tmp_path, session)
    release, threads = threading.Event(), []
    real = session_module.load_for_quantize

    def slow_read(*args):
        threads.append(threading.current_thread())
        assert release.wait(30)
        return real(*args)

    monkeypatch.setattr(session_module, "load_for_quantize", slow_read)
    start = time.monotonic()
    assert session.set_imatrix(str(path))
    assert time.monotonic() - start < 1.0
    assert session.imatrix is None and not session.idle and "reading importance matrix" in session.busy_text
    qtbot.waitUntil(lambda: bool(threads), timeout=WAIT_MS)
    qtbot.wait(50)  # the GUI thread runs its event loop while the file is read
    assert threads[0] is not threading.main_thread() and session.imatrix is None
    with qtbot.waitSignal(session.imatrix_changed, timeout=WAIT_MS):
        release.set()
    assert session.imatrix is not None and session.state.options.imatrix == str(path)
    assert session.undo_stack.undoText() == "importance matrix"
    session.undo_stack.undo()
    assert session.imatrix is None
    session.undo_stack.redo()  # read once: the redo is immediate
    assert session.imatrix is not None and len(threads) == 1


def test_unreadable_imatrix_is_one_error_and_nothing_changes(qtbot, session, tmp_path):
    errors: list[str] = []
    session.error.connect(errors.append)
    steps = session.undo_stack.count()
    assert not session.set_imatrix(str(tmp_path / "missing.dat"))  # at once: nothing to wait for
    assert len(errors) == 1 and "missing.dat" in errors[0]
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"\x05\x00\x00\x00abc")
    with qtbot.waitSignal(session.error, timeout=WAIT_MS) as blocker:
        assert session.set_imatrix(str(bad))
    assert "bad.dat" in blocker.args[0] and "\n" not in blocker.args[0]
    qtbot.waitUntil(lambda: session._reading is None, timeout=WAIT_MS)
    assert session.imatrix is None and session.undo_stack.count() == steps


def test_command_line_is_built_off_the_gui_thread_and_reused(qtbot, session, monkeypatch):
    threads = []
    real = command_module.llama_quantize_command

    def recording(*args):
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(command_module, "llama_quantize_command", recording)
    assert session.set_types([TENSOR], "Q8_0")
    with qtbot.waitSignal(session.command_ready, timeout=WAIT_MS) as blocker:
        session.request_llama_command()
    assert threads == [threads[0]] and threads[0] is not threading.main_thread()
    assert "--tensor-type" in blocker.args[0] and r"blk\.0\.ffn_up=q8_0" in blocker.args[0]
    assert session.llama_command() == blocker.args[0] and len(threads) == 1  # copy: no rebuild
    with qtbot.waitSignal(session.command_ready, timeout=WAIT_MS):
        session.request_llama_command()
    assert len(threads) == 1
    assert session.reset_types([TENSOR])
    with qtbot.waitSignal(session.command_ready, timeout=WAIT_MS) as blocker:
        session.request_llama_command()
    assert len(threads) == 2 and "ffn_up" not in blocker.args[0]
