"""Per-tensor problems are one summary and one list, not a dialog each; an importance matrix made
for another model is refused with one message; types needing an imatrix are disabled with why."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QMessageBox

from explorer.main_window import MainWindow
from explorer.panels.tensor_table import TensorTable
from explorer.panels.tensor_table_model import COL_NAME, COL_TYPE
from explorer.resources import DEMO_MODEL
from quant_core.imatrix import write_imatrix_dat
from quant_core.model import open_model
from quant_core.plan import QuantOptions
from quant_core.provenance import WARNING
from quant_core.recipe import Recipe
from tests.core.synthetic import write_llama_gguf

from .support import SMALL, WAIT_MS, wait_idle

pytestmark = pytest.mark.gui


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
    yield w
    w.session.shutdown()


def _imatrix(path, entries: dict[str, int]):
    sums = {name: np.ones(n, np.float32) for name, n in entries.items()}
    write_imatrix_dat(path, sums, {name: np.array([512]) for name in entries}, chunk_size=512)
    return str(path)


def _refused_once(window, qtbot, path: str, *needles: str) -> None:
    before = window.session.state
    depth = window.session.undo_stack.count()
    window.session.set_imatrix(path)
    qtbot.waitUntil(lambda: bool(window.messages), timeout=WAIT_MS)
    wait_idle(qtbot, window.session)
    assert len(window.messages) == 1, window.messages
    assert all(n in window.messages[0] for n in needles), window.messages[0]
    assert window.session.state == before and window.session.imatrix is None
    assert window.session.undo_stack.count() == depth
    window.messages.clear()


def test_imatrix_of_another_model_is_refused_with_one_message(window, qtbot, tmp_path) -> None:
    other = open_model(write_llama_gguf(tmp_path / "other.gguf", **SMALL))
    demo = window.session.model
    assert any(t.name in demo._by_name and t.shape != demo.tensor(t.name).shape for t in other.tensors)
    lengths = {t.name: t.shape[0] for t in other.tensors if len(t.shape) >= 2}
    _refused_once(window, qtbot, _imatrix(tmp_path / "other.imatrix", lengths), "does not fit", "values")
    foreign = {f"model.layers.{i}.mlp.weight": 64 for i in range(3)}
    _refused_once(window, qtbot, _imatrix(tmp_path / "foreign.imatrix", foreign), "not made for")


def test_imatrix_of_the_model_is_applied(window, qtbot, tmp_path) -> None:
    lengths = {t.name: t.shape[0] for t in window.session.model.tensors if len(t.shape) >= 2}
    with qtbot.waitSignal(window.session.imatrix_changed, timeout=WAIT_MS):
        window.session.set_imatrix(_imatrix(tmp_path / "demo.imatrix", lengths))
    assert window.session.imatrix is not None and not window.messages


def test_tensors_that_cannot_be_measured_are_one_summary_and_one_list(window, qtbot, tmp_path) -> None:
    s = window.session
    names = [tp.name for tp in s.plan.tensors if tp.quantizable and tp.name.startswith("blk.")]
    # clicks cannot assign IQ2_XXS without an importance matrix (it is disabled); a recipe can
    recipe = tmp_path / "iq2.json"
    Recipe(options=QuantOptions(preset="Q4_K_M"), explicit=dict.fromkeys(names, "IQ2_XXS")).save(recipe)
    assert s.load_recipe(recipe)
    wait_idle(qtbot, s)
    qtbot.waitUntil(lambda: len(s.problems.items) == len(names), timeout=WAIT_MS)
    assert window.messages == []  # no dialog at all, let alone one per tensor
    button = window.problems_button
    assert button.isVisible() and button.text().startswith(f"{len(names)} tensors cannot be measured: ")
    assert names[0] in button.text()
    dialog = button.open_list()
    assert dialog.list.count() == len(names)
    assert all(dialog.list.item(i).text().startswith(names[i] + ": ") for i in range(len(names)))
    s.undo_stack.undo()  # the plan changes: the problems go with it
    qtbot.waitUntil(lambda: not button.isVisible(), timeout=WAIT_MS)
    assert dialog.list.count() == 0 and window.messages == []


def test_iq2_types_disabled_without_an_imatrix_with_the_reason(qtbot, show, session, tmp_path) -> None:
    table = show(TensorTable(session), 1200, 700)
    p = table.proxy
    names = [p.index(r, COL_NAME).data() for r in range(p.rowCount())]

    def type_items(name: str) -> tuple[QStandardItemModel, QComboBox]:
        idx = p.index(names.index(name), COL_TYPE)
        table.view.setCurrentIndex(idx)
        qtbot.keyClick(table.view, Qt.Key_F2)
        combo = table.view.indexWidget(idx) or table.view.findChild(QComboBox)
        items = combo.model()
        qtbot.keyClick(combo, Qt.Key_Escape)
        return items, combo

    items, combo = type_items("blk.0.attn_q.weight")
    for name in ("IQ2_XXS", "IQ2_XS", "IQ1_S"):
        item = items.item(combo.findText(name))
        assert not item.isEnabled() and "needs an importance matrix" in item.toolTip()
    assert items.item(combo.findText("Q4_K")).isEnabled()
    items, combo = type_items("output.weight")  # exempt, as in llama-quantize
    assert items.item(combo.findText("IQ2_XXS")).isEnabled()

    lengths = {tp.name: tp.source.shape[0] for tp in session.plan.tensors if tp.quantizable}
    with qtbot.waitSignal(session.imatrix_changed, timeout=WAIT_MS):
        session.set_imatrix(_imatrix(tmp_path / "m.imatrix", lengths))
    items, combo = type_items("blk.0.attn_q.weight")
    assert items.item(combo.findText("IQ2_XXS")).isEnabled()


def test_dequantized_source_is_flagged_in_the_status_bar(window, qtbot, tmp_path) -> None:
    assert not window.source_note.isVisible()  # the demo model is a real F16 model
    from tests.core.test_provenance import _write_dequantized

    assert window.open_path(_write_dequantized(tmp_path / "deq.gguf", "Q4_K"))
    qtbot.waitUntil(window.source_note.isVisible, timeout=WAIT_MS)
    assert window.source_note.text() == WARNING
