"""The tensor table drives and follows the session: sort, regex filter, selection, type edits."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QComboBox

from explorer.panels.tensor_table import TensorTable
from explorer.panels.tensor_table_model import COL_ERROR, COL_LAYER, COL_NAME, COL_SIZE, COL_TYPE, COL_WHY
from quant_core.qtypes import qtype

from .support import ODD_FF, reword_reasons

pytestmark = pytest.mark.gui
GUI_MODEL = ODD_FF  # ffn_down rows of 544: K-quants disabled there, fallbacks shown


@pytest.fixture
def table(show, session):
    return show(TensorTable(session), 1200, 700)


def shown_column(table: TensorTable, column: int) -> list[str]:
    p = table.proxy
    return [p.index(r, column).data() for r in range(p.rowCount())]


def row_of(table: TensorTable, name: str) -> int:
    return shown_column(table, COL_NAME).index(name)


def click_row(qtbot, table: TensorTable, name: str, modifier=Qt.NoModifier) -> None:
    idx = table.proxy.index(row_of(table, name), COL_NAME)
    table.view.scrollTo(idx)
    qtbot.mouseClick(table.view.viewport(), Qt.LeftButton, modifier, table.view.visualRect(idx).center())


def test_rows_grouped_by_layer_then_sorted_by_any_column(qtbot, table, session):
    names = shown_column(table, COL_NAME)
    assert len(names) == len(session.plan.tensors)
    layers = shown_column(table, COL_LAYER)
    # global tensors first (blank layer), then blk.0, blk.1; names sorted within a layer
    assert layers == sorted(layers, key=lambda x: -1 if x == "" else int(x))
    assert names[:3] == ["output.weight", "output_norm.weight", "token_embd.weight"]
    assert names.index("blk.0.attn_k.weight") < names.index("blk.0.ffn_up.weight") < names.index("blk.1.attn_k.weight")
    # layer groups are shaded alternately
    assert table.proxy.index(names.index("blk.0.attn_k.weight"), COL_NAME).data(Qt.BackgroundRole) is not None
    assert table.proxy.index(names.index("blk.1.attn_k.weight"), COL_NAME).data(Qt.BackgroundRole) is None

    header = table.view.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(header.sectionViewportPosition(COL_SIZE) + 5, 5))
    sizes = [session.size.by_tensor[n] for n in shown_column(table, COL_NAME)]
    assert sizes == sorted(sizes) and sizes != [session.size.by_tensor[n] for n in names]
    table.view.sortByColumn(COL_LAYER, Qt.AscendingOrder)
    assert shown_column(table, COL_NAME) == names


def test_regex_filter_and_invalid_regex(qtbot, table):
    total = table.proxy.rowCount()
    qtbot.keyClicks(table.filter_edit, "ffn_(down|up)")
    assert sorted(shown_column(table, COL_NAME)) == [
        "blk.0.ffn_down.weight",
        "blk.0.ffn_up.weight",
        "blk.1.ffn_down.weight",
        "blk.1.ffn_up.weight",
    ]
    assert table.filter_edit.styleSheet() == ""
    assert "4 of" in table.count_label.text()
    qtbot.keyClicks(table.filter_edit, "[")  # now "ffn_(down|up)[": invalid, keeps the last valid filter
    assert "background" in table.filter_edit.styleSheet()
    assert "Invalid" in table.filter_edit.toolTip()
    assert table.proxy.rowCount() == 4
    table.filter_edit.clear()
    assert table.proxy.rowCount() == total and table.filter_edit.styleSheet() == ""
    qtbot.keyClicks(table.filter_edit, "q8_0")  # types match too (case-insensitive)
    assert shown_column(table, COL_NAME) == ["blk.1.ffn_down.weight"]


def test_type_editor_disables_types_that_cannot_apply_and_assigns(qtbot, table, session):
    name = "blk.0.ffn_down.weight"  # rows of 544: no K-quants
    idx = table.proxy.index(row_of(table, name), COL_TYPE)
    assert idx.data() == "Q5_0" and idx.data(Qt.FontRole).italic()  # fallback from Q4_K is marked
    table.view.setCurrentIndex(idx)
    qtbot.keyClick(table.view, Qt.Key_F2)
    combo = table.view.indexWidget(idx) or table.view.findChild(QComboBox)
    assert isinstance(combo, QComboBox) and combo.currentText() == "Q5_0"
    items = combo.model()
    q4k = items.item(combo.findText("Q4_K"))
    assert not q4k.isEnabled() and "row length 544" in q4k.toolTip()
    assert items.item(combo.findText("Q8_0")).isEnabled()

    # a disabled type cannot be committed
    before = session.size.file_bytes
    combo.setCurrentIndex(combo.findText("Q4_K"))
    table.view.itemDelegateForColumn(COL_TYPE).setModelData(combo, table.proxy, idx)
    assert session.plan.tensor(name).type == "Q5_0" and session.size.file_bytes == before

    # keyboard on the combo: End jumps to the last enabled type and commits it
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.keyClick(combo, Qt.Key_End)
    chosen = session.plan.tensor(name).type
    assert chosen == "F32"
    tensor = session.plan.tensor(name).source
    delta = qtype("F32").tensor_bytes(tensor.shape) - qtype("Q5_0").tensor_bytes(tensor.shape)
    assert session.size.file_bytes - before == delta
    idx = table.proxy.index(row_of(table, name), COL_TYPE)
    assert idx.data() == "F32" and idx.data(Qt.FontRole).bold()
    assert "explicit" in table.proxy.index(idx.row(), COL_WHY).data()

    session.undo_stack.undo()
    assert table.proxy.index(row_of(table, name), COL_TYPE).data() == "Q5_0"
    assert session.size.file_bytes == before
    session.undo_stack.redo()
    assert table.proxy.index(row_of(table, name), COL_TYPE).data() == "F32"


def test_bold_and_italic_follow_the_reason_kind_not_its_words(qtbot, table, session):
    def cell(name: str, col: int = COL_TYPE):
        return table.proxy.index(row_of(table, name), col)

    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_rules((("attn_q|fallback from", "Q8_0"),))
    assert "fallback from" in cell("blk.0.attn_q.weight", COL_WHY).data()
    assert cell("blk.0.attn_q.weight").data(Qt.FontRole) is None  # a rule, not a fallback

    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_types(["blk.1.attn_k.weight"], "Q8_0")
    reword_reasons(session, "by the way")
    assert cell("blk.1.ffn_down.weight", COL_WHY).data() == "by the way"
    explicit, fallback = cell("blk.1.attn_k.weight").data(Qt.FontRole), cell("blk.1.ffn_down.weight").data(Qt.FontRole)
    assert explicit.bold() and not explicit.italic()
    assert fallback.italic() and not fallback.bold()
    assert "fallback from Q6_K" in cell("blk.1.ffn_down.weight").data(Qt.ToolTipRole)  # use_more_bits: Q6_K
    assert cell("blk.0.attn_q.weight").data(Qt.FontRole) is None
    assert table.reset_button.isEnabled() is False  # nothing selected
    session.select(["blk.1.attn_k.weight"])
    assert table.reset_button.isEnabled()  # the reset button reads the kind too


def test_not_quantized_rows_are_not_editable(table):
    idx = table.proxy.index(row_of(table, "output_norm.weight"), COL_TYPE)
    assert not (idx.flags() & Qt.ItemIsEditable)
    assert table.proxy.index(row_of(table, "output.weight"), COL_TYPE).flags() & Qt.ItemIsEditable


def test_multi_select_set_type_and_context_menu_reset(qtbot, table, session):
    click_row(qtbot, table, "blk.0.attn_q.weight")
    click_row(qtbot, table, "blk.1.attn_q.weight", Qt.ControlModifier)
    click_row(qtbot, table, "blk.0.ffn_down.weight", Qt.ControlModifier)
    assert session.selected[0] == "blk.0.ffn_down.weight"  # the current row comes first
    assert set(session.selected) == {"blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.0.ffn_down.weight"}
    assert "3 selected" in table.count_label.text()
    assert not table.reset_button.isEnabled()

    # Q4_K fits the attn_q tensors, so it stays enabled; F16 applies to all
    table.type_combo.setCurrentText("IQ4_XS")
    assert table.set_button.isEnabled()
    before = session.size.file_bytes
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        qtbot.mouseClick(table.set_button, Qt.LeftButton)
    types = {n: session.plan.tensor(n).type for n in session.selected}
    assert types == {
        "blk.0.attn_q.weight": "IQ4_XS",
        "blk.1.attn_q.weight": "IQ4_XS",
        "blk.0.ffn_down.weight": "Q5_0",
    }  # IQ4_XS cannot fit rows of 544: skipped
    assert session.size.file_bytes < before
    assert table.reset_button.isEnabled()

    # context menu: types fitting none of the selection are disabled; reset goes back to the preset
    rect = table.view.visualRect(table.proxy.index(row_of(table, "blk.0.attn_q.weight"), COL_NAME))
    table.view.customContextMenuRequested.emit(rect.center())
    menu = table.menu
    assert menu is not None
    set_menu = menu.actions()[0].menu()
    by_text = {a.text(): a for a in set_menu.actions()}
    assert by_text["Q8_0"].isEnabled() and by_text["Q4_K"].isEnabled()
    reset = next(a for a in menu.actions() if a.text() == "Reset to preset")
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        reset.trigger()
    menu.close()
    assert session.size.file_bytes == before
    assert not session.state.explicit

    # selecting only the 544-wide tensor disables K-quants and IQ types in the toolbar combo
    click_row(qtbot, table, "blk.0.ffn_down.weight")
    items = table.type_combo.model()
    assert not items.item(table.type_combo.findText("Q6_K")).isEnabled()
    assert items.item(table.type_combo.findText("Q8_0")).isEnabled()


def test_follows_session_selection_plan_and_statistics_keeping_selection(qtbot, table, session):
    table.resize(900, 220)  # small enough to scroll
    qtbot.wait(10)
    session.select(["blk.1.ffn_up.weight", "blk.1.ffn_gate.weight"])
    sm = table.view.selectionModel()
    rows = {table.proxy.index(i.row(), COL_NAME).data() for i in sm.selectedRows()}
    assert rows == {"blk.1.ffn_up.weight", "blk.1.ffn_gate.weight"}
    bar = table.view.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum())
    scroll = bar.value()

    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_preset("Q8_0")
    assert table.proxy.index(row_of(table, "blk.1.ffn_up.weight"), COL_TYPE).data() == "Q8_0"
    rows = {table.proxy.index(i.row(), COL_NAME).data() for i in sm.selectedRows()}
    assert rows == {"blk.1.ffn_up.weight", "blk.1.ffn_gate.weight"}
    assert bar.value() == scroll

    # relative error appears once the session has measured the tensor
    name = "blk.0.attn_q.weight"
    idx = table.proxy.index(row_of(table, name), COL_ERROR)
    qtbot.waitUntil(lambda: session.evaluation(name) is not None, timeout=120000)
    text = table.proxy.index(row_of(table, name), COL_ERROR).data()
    assert text.endswith("%") and text.startswith("~")  # 64 of 256 rows: a sample
    rel = session.evaluation(name).stats.rel_rmse
    assert float(text.strip("~ %")) == pytest.approx(100 * rel, abs=0.006)
    assert table.proxy.index(row_of(table, "output_norm.weight"), COL_ERROR).data() == ""
    assert idx.isValid() and rows == {table.proxy.index(i.row(), COL_NAME).data() for i in sm.selectedRows()}
