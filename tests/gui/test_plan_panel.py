"""The plan panel drives the session (preset, rules, options, history, recipes, command) and follows it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QFileDialog

from explorer.panels.mix_map import MixMap
from explorer.panels.plan_panel import PRESET_DEFAULT, PlanPanel
from explorer.panels.rules_editor import APPLY_DELAY_MS
from explorer.panels.tensor_table import TensorTable
from explorer.panels.tensor_table_model import COL_NAME, COL_TYPE
from quant_core.ftypes import FILE_TYPES
from quant_core.imatrix import write_imatrix_dat
from quant_core.reasons import ReasonKind

from .support import ODD_FF

pytestmark = pytest.mark.gui
GUI_MODEL = ODD_FF  # ffn_down rows of 544: K-quants disabled there, fallbacks shown


@pytest.fixture
def panel(show, session):
    return show(PlanPanel(session), 360, 900)


def choose(qtbot, combo: QComboBox, text: str) -> None:
    """Pick ``text`` in the combo's popup list with the mouse, as a user does."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    row = combo.findText(text)
    assert row >= 0
    idx = view.model().index(row, 0)
    view.scrollTo(idx)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.visualRect(idx).center())
    qtbot.waitUntil(lambda: not view.isVisible())


def table_type(table: TensorTable, name: str) -> str:
    p = table.proxy
    row = next(r for r in range(p.rowCount()) if p.index(r, COL_NAME).data() == name)
    return p.index(row, COL_TYPE).data()


def test_preset_picker_lists_every_preset_and_updates_table_and_map(qtbot, panel, session):
    combo = panel.preset_combo
    assert [combo.itemText(i) for i in range(combo.count())] == list(FILE_TYPES)
    assert "Llama-3-8B" in combo.itemData(combo.findText("Q4_K_M"), Qt.ToolTipRole)
    assert combo.currentText() == "Q4_K_M"
    table, mix = TensorTable(session), MixMap(session)
    qtbot.addWidget(table)
    qtbot.addWidget(mix)
    cell = mix.model.index(1, mix.model.kinds.index("attn_q"))
    assert cell.data() == "Q4_K" and table_type(table, "blk.0.attn_q.weight") == "Q4_K"
    before = session.size.file_bytes

    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        choose(qtbot, combo, "Q8_0")
    assert session.state.options.preset == "Q8_0" and session.undo_stack.count() == 1
    assert cell.data() == "Q8_0" and table_type(table, "blk.0.attn_q.weight") == "Q8_0"
    assert session.size.file_bytes > before
    assert "Q8_0" in panel.preset_info.text()
    qtbot.waitUntil(lambda: "Q8_0" in panel.command_text.toPlainText())  # refreshed after a short pause

    assert panel.undo_button.isEnabled() and not panel.redo_button.isEnabled()
    assert "preset Q8_0" in panel.undo_button.toolTip()
    qtbot.mouseClick(panel.undo_button, Qt.LeftButton)
    assert combo.currentText() == "Q4_K_M" and cell.data() == "Q4_K" and session.size.file_bytes == before
    assert panel.redo_button.isEnabled()
    qtbot.mouseClick(panel.redo_button, Qt.LeftButton)
    assert combo.currentText() == "Q8_0" and cell.data() == "Q8_0"
    assert session.undo_stack.count() == 1  # following the session never pushes commands


def test_widgets_follow_the_session_without_feedback(qtbot, panel, session):
    session.set_options("pure", pure=True)
    session.set_options("out", output_tensor_type="Q8_0", leave_output_tensor=False)
    session.set_preset("Q5_K_S")
    assert panel.pure_check.isChecked()
    assert panel.output_combo.currentText() == "Q8_0" and panel.embd_combo.currentText() == PRESET_DEFAULT
    assert panel.preset_combo.currentText() == "Q5_K_S"
    assert session.undo_stack.count() == 3
    session.undo_stack.undo()
    session.undo_stack.undo()
    assert panel.preset_combo.currentText() == "Q4_K_M" and panel.output_combo.currentText() == PRESET_DEFAULT
    assert panel.pure_check.isChecked()
    assert session.undo_stack.count() == 3 and session.undo_stack.index() == 1


def test_switches_and_type_combos_change_the_plan(qtbot, panel, session):
    out = session.plan.tensor("output.weight")
    assert out.type == "Q6_K"
    before = session.size.file_bytes
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.mouseClick(panel.leave_output_check, Qt.LeftButton, pos=QPoint(5, panel.leave_output_check.height() // 2))
    assert session.state.options.leave_output_tensor
    assert session.plan.tensor("output.weight").type == "F16" and session.size.file_bytes > before
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        panel.leave_output_check.click()
    assert session.size.file_bytes == before

    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        choose(qtbot, panel.embd_combo, "Q8_0")
    tp = session.plan.tensor("token_embd.weight")
    assert tp.type == "Q8_0" and tp.why.kind is ReasonKind.TOKEN_EMBEDDING_TYPE
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        choose(qtbot, panel.embd_combo, PRESET_DEFAULT)
    assert session.plan.tensor("token_embd.weight").type == "Q4_K"

    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.mouseClick(panel.pure_check, Qt.LeftButton, pos=QPoint(5, panel.pure_check.height() // 2))
    assert session.plan.tensor("blk.1.attn_v.weight").type == "Q4_K"  # --pure: no mixture rules
    qtbot.waitUntil(lambda: "--pure" in panel.command_text.toPlainText())


def test_invalid_rules_show_an_error_and_do_not_change_the_plan(qtbot, panel, session):
    editor = panel.rules
    types = session.plan.types()
    qtbot.keyClicks(editor.edit, "ffn_up=q8_0")
    qtbot.keyClick(editor.edit, Qt.Key_Return)
    qtbot.keyClicks(editor.edit, "blk\\.(=q4_k")  # bad regular expression
    assert editor.has_errors and "line 2" in editor.status.text()
    assert "invalid regular expression" in editor.status.text()
    assert len(editor.edit.extraSelections()) == 1
    assert not editor.apply_button.isEnabled()
    qtbot.wait(APPLY_DELAY_MS + 300)
    assert session.plan.types() == types and session.undo_stack.count() == 0

    editor.edit.setPlainText("ffn_up=q8_0\nattn_q=q9_9")  # unknown type
    assert "invalid type" in editor.status.text() and "line 2" in editor.status.text()
    assert not editor.apply_button.isEnabled()
    qtbot.wait(APPLY_DELAY_MS + 300)
    assert session.plan.types() == types

    editor.edit.setPlainText("no equals sign")
    assert "PATTERN=TYPE" in editor.status.text()


def test_valid_rules_apply_after_a_pause_or_with_apply_and_undo_restores(qtbot, panel, session):
    editor = panel.rules
    before = session.size.file_bytes
    qtbot.keyClicks(editor.edit, "# comment")
    qtbot.keyClick(editor.edit, Qt.Key_Return)
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.keyClicks(editor.edit, "ffn_up=q8_0")
    assert session.state.options.tensor_types == (("ffn_up", "Q8_0"),)
    tp = session.plan.tensor("blk.0.ffn_up.weight")
    assert tp.type == "Q8_0" and tp.why.kind is ReasonKind.USER_RULE and "ffn_up=Q8_0" in tp.reason
    assert session.size.file_bytes > before
    assert editor.edit.toPlainText() == "# comment\nffn_up=q8_0"  # the user's text is kept
    assert editor.edit.extraSelections() == [] and "1 rule" in editor.status.text()
    qtbot.waitUntil(lambda: "ffn_up=q8_0" in panel.command_text.toPlainText())

    editor.edit.setPlainText("ffn_up=q8_0\nblk\\.1\\.attn_q=f16")
    assert editor.apply_button.isEnabled()
    with qtbot.waitSignal(session.plan_changed, timeout=1000):
        qtbot.mouseClick(editor.apply_button, Qt.LeftButton)
    assert session.plan.tensor("blk.1.attn_q.weight").type == "F16"
    assert not editor.apply_button.isEnabled()

    qtbot.mouseClick(panel.undo_button, Qt.LeftButton)
    assert editor.edit.toPlainText() == "ffn_up=Q8_0"  # the session's rules, shown again
    assert session.plan.tensor("blk.1.attn_q.weight").type == "Q4_K"
    qtbot.mouseClick(panel.undo_button, Qt.LeftButton)
    assert editor.edit.toPlainText() == "" and session.size.file_bytes == before


def test_recipes_save_and_load_through_dialogs(qtbot, panel, session, tmp_path, monkeypatch):
    session.set_preset("Q5_K_M")
    session.set_types(["blk.0.attn_q.weight"], "Q8_0")
    assert "1 tensor type" in panel.explicit_label.text() and panel.reset_all_button.isEnabled()
    path = tmp_path / "mix.recipe.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    qtbot.mouseClick(panel.save_button, Qt.LeftButton)
    assert path.exists() and session.undo_stack.isClean()
    saved, size = session.plan.types(), session.size.file_bytes

    qtbot.mouseClick(panel.reset_all_button, Qt.LeftButton)
    session.set_preset("Q3_K_S")
    assert session.plan.types() != saved and "no types" in panel.explicit_label.text()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.mouseClick(panel.load_button, Qt.LeftButton)
    assert session.plan.types() == saved and session.size.file_bytes == size
    assert panel.preset_combo.currentText() == "Q5_K_M"


def test_copy_command_and_imatrix_row(qtbot, panel, session, tmp_path, monkeypatch):
    qtbot.mouseClick(panel.copy_button, Qt.LeftButton)
    command = QGuiApplication.clipboard().text()
    assert command == session.llama_command()
    qtbot.waitUntil(lambda: panel.command_text.toPlainText() == command)
    assert command.startswith("llama-quantize") and "Q4_K_M" in command
    assert panel.command_text.isReadOnly()

    assert panel.imatrix_label.text() == "none" and not panel.imatrix_clear.isEnabled()
    sums, counts = {}, {}
    for tp in session.plan.tensors:
        if tp.quantizable:
            sums[tp.name] = np.full(tp.source.n_per_row, 3.0, np.float32)
            counts[tp.name] = np.array([512])
    path = tmp_path / "small.imatrix.dat"
    write_imatrix_dat(path, sums, counts, chunk_size=512)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(session.imatrix_changed, timeout=10000):
        qtbot.mouseClick(panel.imatrix_load, Qt.LeftButton)
    assert panel.imatrix_label.text() == "small.imatrix.dat" and panel.imatrix_clear.isEnabled()
    qtbot.waitUntil(lambda: "--imatrix" in panel.command_text.toPlainText())
    with qtbot.waitSignal(session.imatrix_changed, timeout=10000):
        qtbot.mouseClick(panel.imatrix_clear, Qt.LeftButton)
    assert panel.imatrix_label.text() == "none" and session.imatrix is None
