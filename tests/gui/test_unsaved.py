"""Unsaved work is never lost silently: the title's star, the save/discard/cancel prompt, overwrites."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from explorer.dialogs.export_dialog import ExportDialog
from explorer.main_window import MainWindow
from tests.core.synthetic import write_llama_gguf

from .support import SMALL, wait_idle

pytestmark = pytest.mark.gui

TENSOR = "blk.0.ffn_down.weight"


class Prompts:
    """Stands in for ``QMessageBox.question``: records each prompt and gives a chosen answer."""

    def __init__(self) -> None:
        self.answer = QMessageBox.Cancel
        self.titles: list[str] = []

    def __call__(self, parent, title, text, *args):
        self.titles.append(title)
        return self.answer


@pytest.fixture
def prompts(monkeypatch) -> Prompts:
    p = Prompts()
    monkeypatch.setattr(QMessageBox, "question", p)
    return p


@pytest.fixture
def models(tmp_path):
    first = write_llama_gguf(tmp_path / "first.gguf", **SMALL)
    second = write_llama_gguf(tmp_path / "second.gguf", **dict(SMALL, n_layer=3))
    return first, second


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path, models, prompts):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: None)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_path(models[0])
    yield w
    w.session.shutdown()


def change_mix(window: MainWindow) -> None:
    assert window.session.set_types([TENSOR], "Q8_0")


def test_no_prompt_when_nothing_changed(window, models, prompts) -> None:
    assert "*" not in window.windowTitle()
    assert window.open_path(models[1])
    assert window.session.model.path == models[1] and prompts.titles == []


def test_star_after_a_change_gone_after_saving(window, monkeypatch, tmp_path) -> None:
    change_mix(window)
    assert window.windowTitle().startswith("first.gguf [Q4_K_M] * ")
    recipe = tmp_path / "mix.recipe.json"
    monkeypatch.setattr("explorer.main_window.QFileDialog.getSaveFileName", lambda *a, **k: (str(recipe), ""))
    window.save_action.trigger()
    assert recipe.exists() and "*" not in window.windowTitle()
    assert window.session.set_types([TENSOR], "Q6_K")
    assert "*" in window.windowTitle()
    window.undo_action.trigger()
    assert "*" not in window.windowTitle()  # back at the saved state


def test_cancel_keeps_the_current_model(window, models, prompts) -> None:
    change_mix(window)
    prompts.answer = QMessageBox.Cancel
    assert not window.open_path(models[1])
    assert prompts.titles == ["Unsaved changes"]
    assert window.session.model.path == models[0]
    assert window.session.plan.tensor(TENSOR).type == "Q8_0"
    assert "*" in window.windowTitle()


def test_discard_opens_the_other_model(window, models, prompts) -> None:
    change_mix(window)
    prompts.answer = QMessageBox.Discard
    assert window.open_path(models[1])
    assert window.session.model.path == models[1] and len(prompts.titles) == 1
    assert "*" not in window.windowTitle()


def test_save_then_open_and_cancelled_save_stays(window, models, prompts, monkeypatch, tmp_path) -> None:
    change_mix(window)
    prompts.answer = QMessageBox.Save
    chosen = [""]  # the save dialog cancelled first, then a path
    monkeypatch.setattr("explorer.main_window.QFileDialog.getSaveFileName", lambda *a, **k: (chosen[0], ""))
    assert not window.open_path(models[1])
    assert window.session.model.path == models[0]
    chosen[0] = str(tmp_path / "kept.recipe.json")
    assert window.open_path(models[1])
    assert (tmp_path / "kept.recipe.json").exists() and window.session.model.path == models[1]


def test_drop_and_recent_file_ask_too(window, models, prompts) -> None:
    change_mix(window)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(models[1]))])
    drop = QDropEvent(QPointF(10, 10), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(drop)
    assert prompts.titles == ["Unsaved changes"] and window.session.model.path == models[0]
    recent = [a for a in window.recent_menu.actions() if a.text() == models[0].name]
    assert recent
    recent[0].trigger()
    assert len(prompts.titles) == 2


def test_quitting_prompts(window, prompts, qtbot) -> None:
    change_mix(window)
    prompts.answer = QMessageBox.Cancel
    assert not window.close()
    assert window.isVisible() and prompts.titles == ["Unsaved changes"]
    prompts.answer = QMessageBox.Discard
    assert window.close()
    assert not window.isVisible()


def test_export_asks_before_overwriting(qtbot, session, prompts, tmp_path) -> None:
    wait_idle(qtbot, session)
    dialog = ExportDialog(session)
    qtbot.addWidget(dialog)
    out = tmp_path / "existing.gguf"
    out.write_bytes(b"keep me")
    dialog.path_edit.setText(str(out))
    prompts.answer = QMessageBox.No
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    assert prompts.titles == ["Replace file?"] and dialog.worker is None
    assert out.read_bytes() == b"keep me"
    prompts.answer = QMessageBox.Yes
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    assert dialog.worker is not None
    with qtbot.waitSignal(dialog.worker.signals.finished, timeout=60_000):
        pass
    assert dialog.finished_ok and out.stat().st_size == session.size.file_bytes
    fresh = tmp_path / "fresh.gguf"
    dialog.path_edit.setText(str(fresh))
    assert dialog.start() and len(prompts.titles) == 2  # a new file needs no question
    with qtbot.waitSignal(dialog.worker.signals.finished, timeout=60_000):
        pass
