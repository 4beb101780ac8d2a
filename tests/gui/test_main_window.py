"""The main window end to end: open, shortcuts, undo/redo, bad files, drops, recipes, screenshot."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from explorer import app as app_module
from explorer.main_window import MainWindow
from explorer.resources import DEMO_MODEL
from quant_core.reasons import ReasonKind

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: messages.append(text))
    w = MainWindow()
    w.messages = messages
    qtbot.addWidget(w)
    w.show()
    yield w
    w.session.shutdown()


def test_opens_the_demo_model_and_measures_error(window, qtbot) -> None:
    assert window.open_path(DEMO_MODEL)
    s = window.session
    assert s.model is not None and s.plan is not None
    assert DEMO_MODEL.name in window.windowTitle()
    qtbot.waitUntil(lambda: s.idle and s.evaluation("blk.0.attn_q.weight") is not None, timeout=240_000)
    assert 0 < s.evaluation("blk.0.attn_q.weight").stats.rel_rmse < 0.2
    assert window.status_label.text().startswith("Ready")


def test_shortcuts_undo_and_redo_a_type_change(window, qtbot) -> None:
    window.open_path(DEMO_MODEL)
    s = window.session
    before = s.size.file_bytes
    assert s.set_types(["blk.0.ffn_down.weight"], "Q8_0")
    after = s.size.file_bytes
    assert after > before and window.windowTitle().endswith("* — Quant Explorer")
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert s.size.file_bytes == before
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert s.size.file_bytes == after
    s.select(["blk.0.ffn_down.weight"])
    window.reset_action.trigger()
    assert s.plan.tensor("blk.0.ffn_down.weight").why.kind is not ReasonKind.EXPLICIT
    assert s.size.file_bytes == before


def test_a_bad_file_gives_a_message_and_keeps_the_model(window, tmp_path) -> None:
    window.open_path(DEMO_MODEL)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    assert not window.open_path(bad)
    assert window.messages and "bad.gguf" in window.messages[-1] and "\n" not in window.messages[-1]
    assert window.session.model.path == DEMO_MODEL


def test_dropped_files_are_routed_by_kind(window, tmp_path) -> None:
    window.open_dropped(str(DEMO_MODEL))
    assert window.session.model is not None
    recipe = tmp_path / "r.json"
    window.session.set_preset("Q6_K")
    assert window.session.save_recipe(recipe)
    window.session.set_preset("Q4_0")
    window.open_dropped(str(recipe))
    assert window.session.state.options.preset == "Q6_K"
    window.open_dropped(str(tmp_path / "missing.imatrix"))
    assert window.messages  # a readable error, no exception


def test_recent_files_are_remembered(window) -> None:
    window.open_path(DEMO_MODEL)
    actions = window.recent_menu.actions()
    assert actions and actions[0].text() == DEMO_MODEL.name


def test_screenshot_option_writes_a_png(qapp, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    out = tmp_path / "shot.png"
    assert app_module.main([str(DEMO_MODEL), "--screenshot", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_an_already_quantized_model_can_be_requantized(window, qtbot, tmp_path) -> None:
    from explorer.dialogs.export_dialog import ExportDialog
    from quant_core.cli import main as cli_main

    q8 = tmp_path / "q8.gguf"
    assert cli_main(["quantize", str(DEMO_MODEL), str(q8), "Q8_0"]) == 0
    assert window.open_path(q8)
    s = window.session
    assert s.state.options.allow_requantize and window.plan_panel.requantize_check.isChecked()
    dialog = ExportDialog(s, window)
    assert any("already quantized (Q8_0)" in label.text() for label in dialog.findChildren(type(window.status_label)))
    dialog.deleteLater()
    window.plan_panel.requantize_check.click()
    assert not s.state.options.allow_requantize
