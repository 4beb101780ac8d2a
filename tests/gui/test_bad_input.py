"""Bad input in the window is one line: a malformed model, a bad recipe, a bad importance matrix,
a refused rule. The message box gets the core's one-line error, the status line shows it, nothing
raises and the window keeps its size."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from explorer.dialogs.export_dialog import ExportDialog
from explorer.main_window import MainWindow
from explorer.resources import DEMO_MODEL
from quant_core.imatrix import write_imatrix_dat

from .support import WAIT_MS

pytestmark = pytest.mark.gui

LONG = "x" * 245  # a long file name in the message must not widen the window


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: messages.append(text))
    w = MainWindow()
    w.messages = messages
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_path(DEMO_MODEL)
    qtbot.wait(50)
    w.size_before = (w.width(), w.height())
    yield w
    w.session.shutdown()


def _one_line_error(window, qtbot, *needles: str) -> str:
    qtbot.waitUntil(lambda: bool(window.messages), timeout=30_000)
    qtbot.wait(50)  # let a layout change, if any, reach the window size
    message = window.messages[-1]
    assert "\n" not in message and "Traceback" not in message, message
    assert all(n in message for n in needles), message
    # the status line shows it until a later busy message replaces it; the full text stays in its tip
    assert window.status_label.toolTip() == message
    assert (window.width(), window.height()) == window.size_before
    return message


def _gguf_with_duplicate_key() -> bytes:
    def kv(key: bytes) -> bytes:
        return struct.pack("<Q", len(key)) + key + struct.pack("<I", 4) + struct.pack("<I", 1)

    return b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv(b"general.x") + kv(b"general.x")


@pytest.mark.parametrize(
    "content",
    [b"GGUF\x03\x00\x00\x00" + b"\xff" * 20, _gguf_with_duplicate_key(), b"not a model at all"],
    ids=["truncated-header", "duplicate-key", "not-gguf"],
)
def test_malformed_model_is_one_line_and_keeps_the_model(window, qtbot, tmp_path, content: bytes) -> None:
    bad = tmp_path / f"{LONG}.gguf"
    bad.write_bytes(content)
    assert not window.open_path(bad)
    _one_line_error(window, qtbot, bad.name)
    assert window.session.model.path == DEMO_MODEL


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe{}", json.dumps({"options": {"pure": "false"}}).encode(), b"[" * 100_000],
    ids=["invalid-json", "not-utf8", "wrong-type", "absurd-nesting"],
)
def test_bad_recipe_is_one_line_and_changes_nothing(window, qtbot, tmp_path, content: bytes) -> None:
    recipe = tmp_path / f"{LONG}.json"
    recipe.write_bytes(content)
    before = window.session.state
    assert not window.session.load_recipe(recipe)
    _one_line_error(window, qtbot)
    assert window.session.state == before


@pytest.mark.parametrize(
    "content", [b"\x00" * 3, b"\xff" * 64, b"GGUF\x03\x00\x00\x00" + b"\x01" * 40], ids=["short", "garbage", "bad-gguf"]
)
def test_bad_imatrix_is_one_line_and_changes_nothing(window, qtbot, tmp_path, content: bytes) -> None:
    imatrix = tmp_path / f"{LONG}.imatrix"
    imatrix.write_bytes(content)
    before = window.session.state
    window.session.set_imatrix(str(imatrix))
    _one_line_error(window, qtbot)
    qtbot.waitUntil(lambda: window.session.busy_text == "", timeout=30_000)
    assert window.session.state == before and window.session.imatrix is None


@pytest.mark.parametrize("rule", ["(a+)+b=q8_0", "(" * 5000 + "a" + ")" * 5000 + "=q8_0", ".*.*.*.*.*x=q8_0", "[=q8_0"])
def test_refused_rule_is_one_line_in_the_rules_editor(window, qtbot, rule: str) -> None:
    editor = window.plan_panel.rules
    before = window.session.state
    editor.edit.setPlainText(rule)
    text = editor.status.text()
    assert text.startswith("line 1: ") and "\n" not in text and "Traceback" not in text, text
    assert len(text) < 400
    assert not editor.apply() and not editor.apply_button.isEnabled()
    qtbot.wait(50)
    assert window.session.state == before
    assert (window.width(), window.height()) == window.size_before


def test_export_dialog_refuses_an_output_over_the_recipe_or_the_imatrix(qtbot, show, session, tmp_path) -> None:
    names = [tp.name for tp in session.plan.tensors if tp.quantizable]
    imatrix = tmp_path / "m.imatrix.dat"
    sums = {n: np.ones(session.plan.tensor(n).source.shape[0], np.float32) for n in names}
    write_imatrix_dat(imatrix, sums, {n: np.array([512]) for n in names}, chunk_size=512)
    with qtbot.waitSignal(session.imatrix_changed, timeout=WAIT_MS):
        assert session.set_imatrix(str(imatrix))
    recipe = tmp_path / "plan.recipe.json"
    assert session.save_recipe(recipe)
    dialog = show(ExportDialog(session))
    for given in (imatrix, recipe, tmp_path / "." / recipe.name):
        before = given.read_bytes()
        dialog.path_edit.setText(str(given))
        assert "input file" in dialog.path_note.text() and dialog.path_note.isVisibleTo(dialog)
        qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
        assert dialog.worker is None and "input file" in dialog.result_label.text()
        assert given.read_bytes() == before
    loaded = tmp_path / "other.recipe.json"
    loaded.write_bytes(recipe.read_bytes())
    assert session.set_preset("Q6_K") and session.load_recipe(loaded)
    dialog.path_edit.setText(str(loaded))
    assert "input file" in dialog.path_note.text()
    dialog.path_edit.setText(str(tmp_path / "out.gguf"))
    assert dialog.path_note.text() == ""
