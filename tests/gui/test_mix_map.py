"""The mix map: grid layout, selecting cells with the mouse, palette and menu, error colouring."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, QPoint, Qt
from PySide6.QtWidgets import QLabel

from explorer.colors import error_color, type_color
from explorer.panels.mix_map import MixMap
from explorer.panels.mix_map_model import EXPLICIT_ROLE, FALLBACK_ROLE, GLOBAL_ROW_LABEL, STANDARD_KINDS
from explorer.panels.tensor_table import TensorTable
from quant_core.qtypes import qtype

from .support import ODD_FF, reword_reasons

pytestmark = pytest.mark.gui
GUI_MODEL = ODD_FF  # ffn_down rows of 544: K-quants disabled there, fallbacks shown


@pytest.fixture
def mix(show, session):
    return show(MixMap(session), 1100, 500)


def cell(mix: MixMap, layer: int | None, kind: str):
    m = mix.model
    row = 0 if layer is None else m.row_labels.index(f"blk.{layer}")
    return m.index(row, m.kinds.index(kind))


def center(mix: MixMap, idx) -> QPoint:
    return mix.view.visualRect(idx).center()


def test_grid_rows_columns_and_cells(mix, session):
    m = mix.model
    assert [m.headerData(r, Qt.Vertical) for r in range(m.rowCount())] == [GLOBAL_ROW_LABEL, "blk.0", "blk.1"]
    assert [m.headerData(c, Qt.Horizontal) for c in range(m.columnCount())] == list(STANDARD_KINDS)
    assert m.index(0, 0).data() == "token_embd\nQ4_K" and m.index(0, 1).data() == "output\nQ6_K"
    assert not m.index(0, 2).flags() & Qt.ItemIsSelectable  # empty cell
    down = cell(mix, 0, "ffn_down")
    assert down.data() == "Q5_0" and down.data(FALLBACK_ROLE)  # Q4_K fell back: rows of 544
    assert cell(mix, 1, "ffn_down").data() == "Q8_0"
    q = cell(mix, 1, "attn_v")
    assert q.data() == "Q6_K" and q.data(Qt.BackgroundRole) == type_color("Q6_K")
    assert not q.data(EXPLICIT_ROLE) and not q.data(FALLBACK_ROLE)
    tip = q.data(Qt.ToolTipRole)
    assert "blk.1.attn_v.weight" in tip and "256 × 64" in tip and "use_more_bits" in tip and "KiB" in tip
    legend = {w.text() for w in mix.legend_box.findChildren(QLabel)}
    assert legend == {"Q4_K ×12", "Q5_0 ×1", "Q6_K ×2", "Q8_0 ×1"}


def test_markers_follow_the_reason_kind_not_its_words(qtbot, mix, session):
    # a rule whose words say "fallback from" is a rule: no mark
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_rules((("attn_q|fallback from", "Q8_0"),))
    q = cell(mix, 0, "attn_q")
    assert "fallback from" in session.plan.tensor("blk.0.attn_q.weight").reason and q.data() == "Q8_0"
    assert not q.data(FALLBACK_ROLE) and not q.data(EXPLICIT_ROLE) and q.data(Qt.FontRole) is None

    # a hand-chosen type and a real fallback keep their marks whatever their words
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_types(["blk.1.attn_k.weight"], "Q8_0")
    reword_reasons(session, "by the way")
    k, down = cell(mix, 1, "attn_k"), cell(mix, 0, "ffn_down")
    assert {tp.reason for tp in session.plan.tensors} == {"by the way"}
    assert k.data(EXPLICIT_ROLE) and k.data(Qt.FontRole).bold() and not k.data(FALLBACK_ROLE)
    assert down.data(FALLBACK_ROLE) and not down.data(EXPLICIT_ROLE) and down.data(Qt.FontRole) is None
    assert "fallback from Q4_K" in down.data(Qt.ToolTipRole) and "chosen by hand" in k.data(Qt.ToolTipRole)
    assert not q.data(FALLBACK_ROLE) and not q.data(EXPLICIT_ROLE)

    # painted: the dark corner on the fallback cell only
    mix.view.clearSelection()
    image = mix.view.viewport().grab().toImage()
    for idx, marked in ((down, True), (q, False), (k, False)):
        r = mix.view.visualRect(idx).adjusted(1, 1, -1, -1)
        corner, bg = image.pixelColor(r.right() - 1, r.top() + 1), idx.data(Qt.BackgroundRole)
        distance = sum(abs(a - b) for a, b in zip(corner.getRgb()[:3], bg.getRgb()[:3]))
        assert (distance > 60) == marked, (idx.data(), corner.name(), bg.name())


def test_drag_select_then_palette_assigns_and_undo_restores(qtbot, mix, session):
    view = mix.view.viewport()
    a, b = cell(mix, 0, "attn_q"), cell(mix, 1, "attn_v")
    qtbot.mousePress(view, Qt.LeftButton, pos=center(mix, a))
    qtbot.mouseMove(view, center(mix, b))
    qtbot.mouseRelease(view, Qt.LeftButton, pos=center(mix, b))
    expected = {f"blk.{i}.attn_{k}.weight" for i in (0, 1) for k in "qkv"}
    assert set(session.selected) == expected and len(session.selected) == 6

    before = session.size.file_bytes
    delta = sum(
        qtype("Q8_0").tensor_bytes(session.plan.tensor(n).source.shape) - session.plan.tensor(n).n_bytes
        for n in expected
    )
    assert mix.type_buttons["Q8_0"].isEnabled()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.mouseClick(mix.type_buttons["Q8_0"], Qt.LeftButton)
    assert session.size.file_bytes - before == delta > 0
    for n in expected:
        assert session.plan.tensor(n).type == "Q8_0"
    assert b.data() == "Q8_0" and b.data(EXPLICIT_ROLE) and b.data(Qt.BackgroundRole) == type_color("Q8_0")
    assert set(session.selected) == expected  # selection kept across the plan change
    assert mix.reset_button.isEnabled()

    session.undo_stack.undo()
    assert session.size.file_bytes == before
    assert b.data() == "Q6_K" and not b.data(EXPLICIT_ROLE)
    session.undo_stack.redo()
    assert b.data() == "Q8_0" and session.size.file_bytes - before == delta


def test_click_shift_click_and_header_selection(qtbot, mix, session):
    view = mix.view.viewport()
    qtbot.mouseClick(view, Qt.LeftButton, pos=center(mix, cell(mix, 0, "ffn_gate")))
    assert session.selected == ["blk.0.ffn_gate.weight"]
    qtbot.mouseClick(view, Qt.LeftButton, Qt.ShiftModifier, center(mix, cell(mix, 1, "ffn_down")))
    assert set(session.selected) == {f"blk.{i}.ffn_{k}.weight" for i in (0, 1) for k in ("gate", "up", "down")}
    assert session.selected[0] == "blk.1.ffn_down.weight"  # the clicked cell comes first
    header = mix.view.verticalHeader()
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(5, header.sectionViewportPosition(2) + 5))
    assert set(session.selected) == {
        tp.name for tp in session.plan.tensors if tp.quantizable and tp.name.startswith("blk.1.")
    }


def test_types_that_cannot_apply_are_disabled_and_skipped(qtbot, mix, session):
    sm = mix.view.selectionModel()
    sm.select(cell(mix, 0, "ffn_down"), QItemSelectionModel.ClearAndSelect)
    sm.select(cell(mix, 1, "ffn_down"), QItemSelectionModel.Select)
    assert len(session.selected) == 2
    assert not mix.type_buttons["Q4_K"].isEnabled() and not mix.type_buttons["IQ4_XS"].isEnabled()
    assert "row length 544" in mix.type_buttons["Q4_K"].toolTip()
    assert mix.type_buttons["Q4_0"].isEnabled()
    before = dict(session.plan.types())
    mix.type_buttons["Q4_K"].click()  # disabled: nothing happens
    assert session.plan.types() == before

    sm.select(cell(mix, 1, "attn_q"), QItemSelectionModel.Select)
    assert mix.type_buttons["Q4_K"].isEnabled()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        mix.type_buttons["Q5_K"].click()
    assert cell(mix, 1, "attn_q").data() == "Q5_K"
    assert cell(mix, 0, "ffn_down").data() == "Q5_0"  # skipped by the session


def test_context_menu_assigns_and_resets(qtbot, mix, session):
    idx = cell(mix, 0, "attn_output")
    mix.view.customContextMenuRequested.emit(center(mix, idx))
    assert session.selected == ["blk.0.attn_output.weight"]  # right-click selects the cell
    menu = mix.menu
    types = {a.text(): a for a in menu.actions()[0].menu().actions()}
    reset = next(a for a in menu.actions() if a.text() == "Reset to preset")
    assert not reset.isEnabled()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        types["IQ3_S"].trigger()
    menu.close()
    assert idx.data() == "IQ3_S" and idx.data(Qt.FontRole).bold()
    assert {w.text() for w in mix.legend_box.findChildren(QLabel)} >= {"IQ3_S ×1", "Q4_K ×11"}

    mix.view.customContextMenuRequested.emit(center(mix, idx))
    reset = next(a for a in mix.menu.actions() if a.text() == "Reset to preset")
    assert reset.isEnabled()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        reset.trigger()
    mix.menu.close()
    assert idx.data() == "Q4_K" and not session.state.explicit


def test_selection_is_shared_with_the_table(qtbot, mix, session):
    table = TensorTable(session)
    qtbot.addWidget(table)
    session.select(["blk.1.ffn_up.weight", "output.weight"])
    assert {(i.row(), i.column()) for i in mix.view.selectionModel().selectedIndexes()} == {
        (2, STANDARD_KINDS.index("ffn_up")),
        (0, 1),
    }
    qtbot.mouseClick(mix.view.viewport(), Qt.LeftButton, pos=center(mix, cell(mix, 0, "attn_k")))
    assert table.selected_names() == ["blk.0.attn_k.weight"]
    table.view.selectRow(table.proxy.rowCount() - 1)  # a row of the table
    name = table.selected_names()[0]
    assert mix.selected_names() == ([name] if mix.model.cell_of(name) else [])


def test_preset_change_recolours_and_colour_by_error(qtbot, mix, session):
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_preset("Q3_K_M")
    assert cell(mix, 0, "attn_q").data() == "Q3_K"
    assert cell(mix, 0, "attn_q").data(Qt.BackgroundRole) == type_color("Q3_K")
    assert not mix.scale.isVisible()

    names = [tp.name for tp in session.plan.tensors if tp.quantizable]
    qtbot.waitUntil(lambda: all(session.evaluation(n) is not None for n in names), timeout=180000)
    qtbot.mouseClick(mix.error_toggle, Qt.LeftButton)
    assert mix.error_toggle.isChecked() and mix.scale.isVisible() and not mix.legend_box.isVisible()
    errors = {n: session.evaluation(n).stats.rel_rmse for n in names}
    worst = max(errors.values())
    assert mix.model.worst_error == pytest.approx(worst) and mix.scale.worst == pytest.approx(worst)
    idx = cell(mix, 1, "ffn_gate")
    assert idx.data(Qt.BackgroundRole) == error_color(errors["blk.1.ffn_gate.weight"], worst)
    assert idx.data().startswith("Q3_K") and idx.data().endswith("%")
    mix.error_toggle.setChecked(False)
    assert idx.data(Qt.BackgroundRole) == type_color("Q3_K") and idx.data() == "Q3_K"


def _menu_action(mix: MixMap, idx, type_name: str):
    mix.view.customContextMenuRequested.emit(center(mix, idx))
    action = next(a for a in mix.menu.actions()[0].menu().actions() if a.text() == type_name)
    mix.menu.close()
    return action


def test_types_needing_an_importance_matrix_follow_the_loaded_one(qtbot, mix, session, tmp_path):
    from quant_core.imatrix import write_imatrix_gguf

    name = "blk.0.attn_output.weight"
    with_entry, without = cell(mix, 0, "attn_output"), cell(mix, 1, "attn_output")
    sm = mix.view.selectionModel()
    sm.select(with_entry, QItemSelectionModel.ClearAndSelect)
    button, action = mix.type_buttons["IQ2_XXS"], _menu_action(mix, with_entry, "IQ2_XXS")
    assert not button.isEnabled() and "importance matrix" in button.toolTip()
    assert not action.isEnabled() and "importance matrix" in action.toolTip()
    assert mix.type_buttons["Q2_K"].isEnabled()

    n = session.plan.tensor(name).source.n_per_row
    path = tmp_path / "imatrix.gguf"
    write_imatrix_gguf(path, {name: np.ones(n, np.float32)}, {name: np.array([8])}, chunk_size=8)
    with qtbot.waitSignal(session.imatrix_changed, timeout=10000):
        assert session.set_imatrix(str(path))
    assert button.isEnabled() and "Cannot apply" not in button.toolTip()
    action = _menu_action(mix, with_entry, "IQ2_XXS")
    assert action.isEnabled() and "cannot apply" not in action.toolTip()

    sm.select(without, QItemSelectionModel.ClearAndSelect)  # no entry for blk.1: still disabled
    assert not mix.type_buttons["IQ2_XXS"].isEnabled()
    assert not _menu_action(mix, without, "IQ2_XXS").isEnabled()

    sm.select(with_entry, QItemSelectionModel.Select)  # applies to one of the two: only that one changes
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        mix.type_buttons["IQ2_XXS"].click()
    assert with_entry.data() == "IQ2_XXS" and without.data() != "IQ2_XXS"


def test_a_partial_assignment_names_the_cells_that_kept_their_type(qtbot, mix, session):
    notes: list[str] = []
    session.status.connect(notes.append)
    sm = mix.view.selectionModel()
    sm.select(cell(mix, 0, "ffn_down"), QItemSelectionModel.ClearAndSelect)
    sm.select(cell(mix, 1, "attn_q"), QItemSelectionModel.Select)
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        mix.type_buttons["Q4_K"].click()
    assert cell(mix, 1, "attn_q").data() == "Q4_K" and cell(mix, 0, "ffn_down").data() == "Q5_0"
    assert len(notes) == 1
    note = notes[0]
    assert note.startswith("Q4_K set on 1 tensor(s); 1 kept their type: blk.0.ffn_down.weight (")
    assert "row length 544" in note and "attn_q" not in note

    notes.clear()  # everything applies: no note
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_types(["blk.1.attn_q.weight"], "Q5_K")
    assert notes == []
