"""The export dialog writes the plan with progress, cancels cleanly, verifies and reports errors."""

from __future__ import annotations

import os
import time

import pytest
from PySide6.QtCore import Qt, QTimer

import explorer.session as session_module
from explorer.dialogs.export_dialog import PROGRESS_STEPS, ExportDialog, default_output, format_duration
from quant_core.export import ExportError, check_output_path
from quant_core.model import open_model
from quant_core.recipe import Recipe

from .support import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui


@pytest.fixture
def dialog(show, session):
    return show(ExportDialog(session))


@pytest.fixture
def slow_export(monkeypatch):
    """Export that pauses after every chunk, so a test can act while it runs."""
    real = session_module.iter_export

    def slow(*args, **kwargs):
        gen = real(*args, **kwargs)
        try:
            for item in gen:
                time.sleep(0.2)
                yield item
        finally:
            gen.close()  # as the worker does: the core removes its partial file

    monkeypatch.setattr(session_module, "iter_export", slow)


def set_path(qtbot, dialog: ExportDialog, path) -> None:
    dialog.path_edit.clear()
    qtbot.keyClicks(dialog.path_edit, str(path))


def test_defaults(dialog, session):
    assert dialog.path_edit.text() == str(session.model.path.with_name("small-Q4_K_M.gguf"))
    assert dialog.threads_spin.value() == (os.cpu_count() or 1)
    assert f"{session.size.file_bytes:,} bytes" in dialog.projected_label.text()
    assert dialog.worker is None and not dialog.finished_ok
    assert default_output(session.model.path.with_name("Llama-F16.gguf"), "Q6_K").name == "Llama-Q6_K.gguf"
    assert format_duration(3725) == "1 h 02 min" and format_duration(65) == "1 min 05 s"


def test_export_with_progress_then_verified(qtbot, dialog, session, tmp_path):
    wait_idle(qtbot, session)
    assert session.set_types(["blk.1.ffn_up.weight"], "Q8_0")
    out = tmp_path / "out.gguf"
    set_path(qtbot, dialog, out)
    dialog.threads_spin.setValue(1)
    progress_texts = []
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    worker = dialog.worker
    assert worker is not None and not dialog.export_button.isEnabled()
    worker.signals.yielded.connect(lambda _p: progress_texts.append(dialog.progress_label.text()))
    with qtbot.waitSignal(worker.signals.finished, timeout=WAIT_MS):
        pass
    assert dialog.finished_ok, dialog.result_label.text()
    assert dialog.progress.value() == PROGRESS_STEPS
    assert any("MB/s" in t and "tensor " in t for t in progress_texts)
    written = out.stat().st_size
    assert written == session.size.file_bytes
    assert f"{written:,}</b> bytes = projected <b>{session.size.file_bytes:,}" in dialog.result_label.text()
    model = open_model(out)
    assert {t.name: t.src_type for t in model.tensors} == {tp.name: tp.type for tp in session.plan.tensors}
    assert model.tensor("blk.1.ffn_up.weight").src_type == "Q8_0"
    assert dialog.cancel_button.text() == "&Close" and dialog.export_button.isEnabled()


def test_cancel_midway_leaves_no_file_and_gui_stays_live(qtbot, dialog, session, tmp_path, slow_export):
    wait_idle(qtbot, session)
    out = tmp_path / "cancelled.gguf"
    set_path(qtbot, dialog, out)
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    worker = dialog.worker
    qtbot.waitUntil(
        lambda: dialog.last_progress is not None and dialog.last_progress.tensor_index >= 2, timeout=WAIT_MS
    )
    assert list(tmp_path.glob(".cancelled.gguf.*.part"))  # the partial file exists while writing
    assert dialog.cancel_button.text() == "&Cancel export"
    with qtbot.waitSignal(worker.signals.finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.cancel_button, Qt.LeftButton)
    timer.stop()
    assert worker.cancel_requested and not dialog.finished_ok
    assert not out.exists() and not list(tmp_path.glob("*.part"))
    assert "cancelled" in dialog.progress_label.text()
    assert dialog.isVisible()  # cancelling the export does not close the dialog
    assert len(ticks) > 10  # the event loop kept running during the export


def core_message(input_path, out) -> str:
    with pytest.raises(ExportError) as err:
        check_output_path(input_path, out)
    return str(err.value)


def test_refuses_input_path_and_shows_core_errors_in_one_line(qtbot, dialog, session, tmp_path):
    for out in (session.model.path, tmp_path / "missing" / "x.gguf", tmp_path, "  "):
        set_path(qtbot, dialog, out)
        message = core_message(session.model.path, out)
        assert message[1:] in dialog.path_note.text() or (not str(out).strip() and not dialog.path_note.text())
        qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
        assert dialog.worker is None
        assert message[1:] in dialog.result_label.text()
    assert "input file" in core_message(session.model.path, session.model.path)
    assert "does not exist" in core_message(session.model.path, tmp_path / "missing" / "x.gguf")

    # an error raised by the core in the worker: IQ2_XXS needs an importance matrix (clicks cannot
    # assign it without one; a recipe can)
    recipe = tmp_path / "iq2.json"
    Recipe(options=session.state.options, explicit={"blk.0.ffn_up.weight": "IQ2_XXS"}).save(recipe)
    assert session.load_recipe(recipe)
    set_path(qtbot, dialog, tmp_path / "iq.gguf")
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    with qtbot.waitSignal(dialog.worker.signals.finished, timeout=WAIT_MS):
        pass
    text = dialog.result_label.text()
    assert "Export failed" in text and "importance matrix" in text
    assert "Traceback" not in text and "\n" not in text
    assert not dialog.finished_ok and not (tmp_path / "iq.gguf").exists()


def test_browse_and_escape_while_running(qtbot, dialog, session, tmp_path, monkeypatch, slow_export):
    target = tmp_path / "chosen.gguf"
    monkeypatch.setattr("explorer.dialogs.export_dialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(dialog.browse_button, Qt.LeftButton)
    assert dialog.path_edit.text() == str(target)
    wait_idle(qtbot, session)
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    worker = dialog.worker
    qtbot.waitUntil(lambda: dialog.last_progress is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(worker.signals.finished, timeout=WAIT_MS):
        qtbot.keyClick(dialog, Qt.Key_Escape)  # Esc cancels first ...
        assert dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)  # ... then closes
    assert worker.cancel_requested and not dialog.finished_ok
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_a_file_other_than_projected_fails_verification_with_the_core_message(qtbot, dialog, session, tmp_path):
    out = tmp_path / "v.gguf"
    set_path(qtbot, dialog, out)
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    dialog._projected += 32  # as if the projection and the writer disagreed
    with qtbot.waitSignal(dialog.worker.signals.finished, timeout=WAIT_MS):
        pass
    written = out.stat().st_size
    text = dialog.result_label.text()
    assert not dialog.finished_ok
    assert f"Verification failed: the file has {written:,} bytes, projected {written + 32:,}" in text
