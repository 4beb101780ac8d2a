"""The Compare panel: a reference GGUF beside the plan, and cloning its mix as one undo step."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from explorer.main_window import MainWindow
from explorer.panels.compare_panel import ComparePanel
from quant_core.clone import clone_mix
from quant_core.compare import compare, open_reference
from quant_core.plan import QuantOptions, build_plan
from quant_core.reasons import ReasonKind
from tests.core.plan_header import write_plan_header
from tests.core.synthetic import write_llama_gguf

from .support import SMALL, WAIT_MS


def _reference(session, tmp_path: Path, preset: str = "Q3_K_M", **changes: str) -> Path:
    plan = build_plan(session.model, QuantOptions(preset=preset))
    return write_plan_header(tmp_path / f"ref-{preset}.gguf", session.model, plan, changes)


def _opened(qtbot, panel: ComparePanel, path: Path) -> None:
    panel.open_reference(path)
    qtbot.waitUntil(lambda: panel.tracker.comparison is not None, timeout=WAIT_MS)


def test_tables_and_summary_follow_the_plan(qtbot, session, tmp_path: Path) -> None:
    panel = ComparePanel(session)
    qtbot.addWidget(panel)
    ref_path = _reference(session, tmp_path, **{"blk.1.ffn_up.weight": "Q8_0"})
    _opened(qtbot, panel, ref_path)
    expected = compare(session.model, session.plan, open_reference(str(ref_path)))
    assert panel.summary.text() == expected.summary() and expected.differing
    assert panel.tensors.rowCount() == len(session.plan.tensors)
    assert panel.categories.rowCount() == len(expected.by_category)
    assert panel.layers.rowCount() == len(expected.by_layer)
    shown = {
        panel.tensors.data(panel.tensors.index(i, 0))
        for i in range(panel.tensors.rowCount())
        if panel.tensors.data(panel.tensors.index(i, 5))
    }
    assert shown == {r.name for r in expected.differing}
    panel.only_differing.setChecked(True)
    assert panel.tensor_proxy.rowCount() == len(expected.differing)
    session.set_types(["blk.0.attn_q.weight"], "Q8_0")  # the comparison follows the plan
    assert panel.summary.text() == compare(session.model, session.plan, open_reference(str(ref_path))).summary()
    assert panel.summary.text() != expected.summary()


def test_clone_is_one_undoable_step(qtbot, session, tmp_path: Path) -> None:
    panel = ComparePanel(session)
    qtbot.addWidget(panel)
    ref_path = _reference(session, tmp_path, **{"blk.0.ffn_down.weight": "Q8_0"})
    _opened(qtbot, panel, ref_path)
    before = session.plan.types()
    ref = open_reference(str(ref_path))
    wanted = {**before, **clone_mix(session.plan, ref).types}
    steps = session.undo_stack.count()
    panel.clone_button.click()
    assert session.plan.types() == wanted != before
    assert session.undo_stack.count() == steps + 1
    assert session.plan.tensor("blk.0.ffn_down.weight").why.kind is ReasonKind.CLONED
    assert panel.summary.text().startswith("same types as ref-Q3_K_M.gguf")
    session.undo_stack.undo()
    assert session.plan.types() == before
    session.undo_stack.redo()
    assert session.plan.types() == wanted
    session.set_types(["blk.0.ffn_down.weight"], "Q6_K")  # a hand choice replaces the cloned reason
    assert session.plan.tensor("blk.0.ffn_down.weight").why.kind is ReasonKind.EXPLICIT


def test_clone_across_depth(qtbot, session, tmp_path: Path) -> None:
    from quant_core.model import open_model

    deep = open_model(write_llama_gguf(tmp_path / "deep.gguf", **dict(SMALL, n_layer=5)))
    ladder = {f"blk.{j}.ffn_down.weight": t for j, t in enumerate(["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])}
    ref_path = write_plan_header(tmp_path / "deep-mix.gguf", deep, build_plan(deep, QuantOptions(), ladder))
    panel = ComparePanel(session)
    qtbot.addWidget(panel)
    _opened(qtbot, panel, ref_path)
    layers = [panel.layers.data(panel.layers.index(i, 0)) for i in range(panel.layers.rowCount())]
    assert layers == ["other", "0", "1 (ref 4)"]  # 2 layers onto 5: first to first, last to last
    panel.clone_button.click()
    assert [session.plan.tensor(f"blk.{i}.ffn_down.weight").type for i in range(2)] == ["Q2_K", "Q6_K"]


def test_bad_reference_is_one_line_and_changes_nothing(qtbot, session, tmp_path: Path) -> None:
    panel = ComparePanel(session)
    qtbot.addWidget(panel)
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    errors: list[str] = []
    session.error.connect(errors.append)
    with qtbot.waitSignal(panel.tracker.failed, timeout=WAIT_MS) as blocker:
        panel.open_reference(bad)
    assert blocker.args == ["notes.gguf is not a GGUF file"]
    assert panel.title.text() == "notes.gguf is not a GGUF file"
    assert panel.tracker.reference is None and not panel.clone_button.isEnabled() and not errors


def test_file_menu_opens_the_compare_panel(qtbot, session, tmp_path: Path) -> None:
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    assert window.compare_action.text() == "&Compare with…"
    assert window.docks["Compare"].isHidden()
    window.compare_with(str(_reference(session, tmp_path)))
    assert not window.docks["Compare"].isHidden()
    qtbot.waitUntil(lambda: window.compare_panel.tracker.comparison is not None, timeout=WAIT_MS)
    assert window.compare_panel.summary.text().startswith("differs from ref-Q3_K_M.gguf in ")


def test_shift_drop_compares_instead_of_opening(qtbot, session, tmp_path: Path) -> None:
    window = MainWindow(session)
    qtbot.addWidget(window)
    model_path = session.model.path
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(_reference(session, tmp_path)))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.CopyAction, data, Qt.LeftButton, Qt.ShiftModifier))
    qtbot.waitUntil(lambda: window.compare_panel.tracker.comparison is not None, timeout=WAIT_MS)
    assert session.model.path == model_path and window.compare_panel.tracker.reference.path.name == "ref-Q3_K_M.gguf"


def test_types_needing_a_missing_importance_matrix_are_kept(qtbot, session, tmp_path: Path) -> None:
    panel = ComparePanel(session)
    qtbot.addWidget(panel)
    _opened(qtbot, panel, _reference(session, tmp_path, **{"blk.0.ffn_up.weight": "IQ2_XXS"}))
    notes: list[str] = []
    session.status.connect(notes.append)
    before = session.plan.tensor("blk.0.ffn_up.weight").type
    panel.clone_button.click()
    assert session.plan.tensor("blk.0.ffn_up.weight").type == before
    assert session.plan.tensor("blk.1.ffn_up.weight").why.kind is ReasonKind.CLONED
    assert len(notes) == 1 and "1 kept their type: blk.0.ffn_up.weight (IQ2_XXS needs an importance matrix" in notes[0]
