"""The "Encode with HQQ" toggle: map palette and menu, table menu and column, marks, undo, export note."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from explorer.dialogs.export_dialog import ExportDialog
from explorer.hqq_toggle import ACTION_TEXT, hqq_choice
from explorer.panels.mix_map import MixMap
from explorer.panels.mix_map_model import HQQ_ROLE
from explorer.panels.tensor_table import TensorTable
from explorer.panels.tensor_table_model import COL_ENCODER
from tests.core.hqq_fake_policy import use_policy

pytestmark = pytest.mark.gui
LOSES = "Q5_K"  # the type the policy below says HQQ loses on


@pytest.fixture(autouse=True)
def policy(monkeypatch):
    """Measured numbers where HQQ wins on Q4_K and loses on Q5_K (without an importance matrix)."""
    use_policy(monkeypatch, {("Q4_K", False): (0.0005, 0.0004), (LOSES, False): (0.0002, 0.0003)})


@pytest.fixture
def mix(show, session):
    return show(MixMap(session), 1100, 500)


def cell(mix: MixMap, layer: int, kind: str):
    m = mix.model
    return m.index(m.row_labels.index(f"blk.{layer}"), m.kinds.index(kind))


def select(mix: MixMap, *indexes) -> None:
    sm = mix.view.selectionModel()
    sm.clearSelection()
    for idx in indexes:
        sm.select(idx, sm.SelectionFlag.Select)


def hqq_action(menu):
    return next(a for a in menu.actions() if a.text() == ACTION_TEXT)


def test_menu_toggle_encodes_marks_and_undoes(qtbot, mix, session):
    idx = cell(mix, 0, "attn_q")  # Q4_K in Q4_K_M
    mix.view.customContextMenuRequested.emit(mix.view.visualRect(idx).center())
    action = hqq_action(mix.menu)
    assert action.isEnabled() and action.isCheckable() and not action.isChecked()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        action.trigger()
    mix.menu.close()
    tp = session.plan.tensor("blk.0.attn_q.weight")
    assert tp.encoder == "hqq" and tp.type == "Q4_K"
    assert idx.data(HQQ_ROLE) and not cell(mix, 1, "attn_q").data(HQQ_ROLE)
    assert "encoder <b>HQQ</b>" in idx.data(Qt.ToolTipRole)
    assert mix.hqq_button.isChecked()
    assert "H = HQQ-encoded" in mix.marks.text().replace("<b>", "").replace("</b>", "")
    session.undo_stack.undo()
    assert session.plan.tensor("blk.0.attn_q.weight").encoder == "ggml" and not idx.data(HQQ_ROLE)
    session.undo_stack.redo()
    assert session.plan.tensor("blk.0.attn_q.weight").encoder == "hqq"


def test_palette_button_is_disabled_where_hqq_cannot_encode_or_lost(qtbot, mix, session):
    select(mix, cell(mix, 1, "attn_v"))  # Q6_K in Q4_K_M: HQQ cannot encode it
    assert session.plan.tensor("blk.1.attn_v.weight").type == "Q6_K"
    assert not mix.hqq_button.isEnabled() and "HQQ encodes" in mix.hqq_button.toolTip()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_types(["blk.1.attn_v.weight"], LOSES)
    select(mix, cell(mix, 1, "attn_q"), cell(mix, 1, "attn_v"))
    assert mix.hqq_button.isEnabled()  # offered for the Q4_K cell only
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        mix.hqq_button.click()
    assert session.plan.tensor("blk.1.attn_q.weight").encoder == "hqq"
    assert session.plan.tensor("blk.1.attn_v.weight").encoder == "ggml"  # Q5_K: HQQ lost there
    select(mix, cell(mix, 1, "attn_v"))
    assert not mix.hqq_button.isEnabled()
    tip = mix.hqq_button.toolTip()
    assert "did not win on KLD for Q5_K without an importance matrix" in tip
    assert "measured mean KLD" in tip and "demo: 0.000300 vs 0.000200" in tip  # HQQ's, then ggml's
    # nothing is measured with an importance matrix: nothing offered, and it says so
    assert hqq_choice(session.plan.tensors, True).problem.startswith("HQQ is not measured against ggml")


def test_unchecking_under_a_global_hqq_default_pins_ggml(qtbot, mix, session):
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_options("HQQ default", encoder="hqq")
    idx = cell(mix, 1, "ffn_up")
    assert idx.data(HQQ_ROLE)
    select(mix, idx)
    assert mix.hqq_button.isChecked()
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        mix.hqq_button.click()
    assert dict(session.state.options.encoders) == {"blk.1.ffn_up.weight": "ggml"}
    assert not idx.data(HQQ_ROLE) and cell(mix, 0, "ffn_up").data(HQQ_ROLE)


def test_table_menu_and_encoder_column(qtbot, show, session):
    table = show(TensorTable(session), 1100, 500)
    row = table.model.row_of("blk.1.ffn_gate.weight")
    assert table.model.index(row, COL_ENCODER).data() == "ggml"
    assert table.model.index(table.model.row_of("blk.0.attn_norm.weight"), COL_ENCODER).data() == ""
    session.select(["blk.1.ffn_gate.weight"])
    qtbot.waitUntil(lambda: table.selected_names() == ["blk.1.ffn_gate.weight"], timeout=5000)
    table.view.customContextMenuRequested.emit(table.view.visualRect(table.proxy.index(0, 0)).center())
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        hqq_action(table.menu).trigger()
    table.menu.close()
    index = table.model.index(row, COL_ENCODER)
    assert index.data() == "HQQ" and "HQQ chosen for this tensor" in index.data(Qt.ToolTipRole)


def test_export_dialog_says_not_byte_identical_with_hqq(qtbot, show, session):
    plain = show(ExportDialog(session))
    assert not hasattr(plain, "identity_label")
    plain.close()
    names = ["blk.0.ffn_up.weight", "blk.1.ffn_up.weight"]
    options = replace(session.state.options, encoders=tuple((n, "hqq") for n in names))
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_state(replace(session.state, options=options), "HQQ")
    dialog = show(ExportDialog(session))
    assert "not byte-identical to llama-quantize (HQQ-encoded tensors: 2)" in dialog.identity_label.text()


def test_quality_measurements_of_hqq_mixes_are_named_and_keyed_apart():
    from explorer.plan_state import PlanState
    from explorer.quality_store import MIX, describe, mix_key
    from quant_core.plan import QuantOptions

    plain = PlanState(QuantOptions())
    hqq = PlanState(QuantOptions(encoders=(("blk.0.ffn_up.weight", "hqq"),)))
    assert describe(hqq) == ("Q4_K_M + HQQ encoder", MIX)
    assert mix_key("ctx", hqq) != mix_key("ctx", plain)


def test_a_saved_recipe_keeps_the_encoders(qtbot, mix, session, tmp_path):
    select(mix, cell(mix, 0, "ffn_up"))
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        mix.hqq_button.click()
    path = tmp_path / "mix.json"
    assert session.save_recipe(path)
    with qtbot.waitSignal(session.plan_changed, timeout=10000):
        session.set_state(replace(session.state, options=replace(session.state.options, encoders=())), "drop")
    assert session.plan.tensor("blk.0.ffn_up.weight").encoder == "ggml"
    assert session.load_recipe(path)
    assert session.plan.tensor("blk.0.ffn_up.weight").encoder == "hqq"
