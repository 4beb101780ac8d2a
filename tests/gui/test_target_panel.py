"""The Target panel: auto-mix to a size, bpw or memory budget as one undoable step, and the curve.

Most tests inject a constructed cost table (per-tensor sensitivity × an error falling with bits
per weight) so that they do not wait for llama.cpp; one uses the real interim weight-error table,
and one the measured sensitivity table of the trained demo model when llama.cpp is installed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import numpy as np
import pytest

from explorer.automix_jobs import MIB, Costs, interim_costs
from explorer.panels.mix_map_model import EXPLICIT_ROLE, MixMapModel
from explorer.panels.quality_panel import QualityPanel
from explorer.panels.target_panel import BPW, MEMORY, SIZE, TargetPanel
from explorer.session import ExplorerSession
from quant_core.automix import kv_cache_bytes, predicted_kld
from quant_core.qtypes import qtype
from quant_core.reasons import ReasonKind
from quant_core.size import project_size

from .support import WAIT_MS

pytestmark = pytest.mark.gui
TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0", "F16")
OFFSET = 0.001


def constructed_costs(model, plan, imatrix, keys) -> Iterator[tuple[float, str] | Costs]:
    """A cost source: two progress steps, then a seeded table of sensitivity × 2^(-1.7 bpw)."""
    rng = random.Random(7)
    yield 0.0, "constructing"
    table = {}
    for tp in plan.tensors:
        if tp.quantizable:
            s = rng.uniform(0.2, 5.0)
            table[tp.name] = {t: s * 2 ** (-1.7 * qtype(t).bpw) for t in TYPES}
    yield 0.5, "constructed"
    yield Costs(table, OFFSET, "ΔKLD")


@pytest.fixture
def panel(session: ExplorerSession, qtbot) -> TargetPanel:
    p = TargetPanel(session, constructed_costs)
    qtbot.addWidget(p)
    return p


def _ready(qtbot, p: TargetPanel) -> None:
    """Compute the costs (the first Propose does) and wait for them."""
    with qtbot.waitSignal(p.mixer.costs_ready, timeout=WAIT_MS):
        assert not p.propose()  # no costs yet: computing first
    qtbot.waitUntil(lambda: not p.mixer.running, timeout=WAIT_MS)


def _auto_mixed(session: ExplorerSession) -> list[str]:
    return [tp.name for tp in session.plan.tensors if tp.why.kind is ReasonKind.AUTO_MIX]


def test_size_budget_applies_one_undoable_step(session, panel, qtbot) -> None:
    before_state, before_types = session.state, session.plan.types()
    start = session.undo_stack.count()
    _ready(qtbot, panel)
    assert session.undo_stack.count() == start + 1  # the pending proposal ran once the costs came
    lo, hi = panel.value_range()
    target = lo + 0.4 * (hi - lo)
    panel.set_value(target)
    assert panel.propose()
    assert session.undo_stack.count() == start + 2
    budget = int(panel.value_spin.value() * MIB)
    size = project_size(session.model, session.plan, session.imatrix_keys)
    assert size.file_bytes == session.size.file_bytes == panel.last.file_bytes <= budget
    assert session.undo_stack.text(session.undo_stack.index() - 1) == f"Auto-mix for {target:.2f} MiB"
    assert _auto_mixed(session) and session.plan.types() != before_types
    table = list(constructed_costs(None, session.plan, None, []))[-1].table
    predicted = OFFSET + predicted_kld(session.plan, table)
    assert f"{predicted:.4g}" in panel.result_label.text()
    assert f"{size.file_bytes:,} bytes" in panel.result_label.text()
    session.undo_stack.undo()
    session.undo_stack.undo()
    assert session.state == before_state and session.plan.types() == before_types
    assert not _auto_mixed(session)


def test_auto_mixed_cells_are_marked_and_hand_choice_pins(session, panel, qtbot) -> None:
    _ready(qtbot, panel)
    model = MixMapModel(session)
    cells = [model.index(r, c) for r in range(model.rowCount()) for c in range(model.columnCount())]
    assert any(cell.data(EXPLICIT_ROLE) for cell in cells)
    name = _auto_mixed(session)[0]
    curve = panel.curve
    assert session.set_types([name], "Q8_0")
    assert panel.curve is not curve and panel.curve.mib[0] > curve.mib[0]  # the pin changes what can be reached
    assert session.plan.tensor(name).why.kind is ReasonKind.EXPLICIT
    assert name not in _auto_mixed(session)
    assert panel.propose()
    assert session.plan.tensor(name).type == "Q8_0"  # pinned by hand: the auto-mix keeps it


def test_slider_follows_and_one_drag_is_one_step(session, panel, qtbot) -> None:
    _ready(qtbot, panel)
    start = session.undo_stack.count()
    sizes = []
    panel.slider.sliderPressed.emit()
    for pos in (100, 300, 600, 900):
        panel.slider.setValue(pos)
        sizes.append(session.size.file_bytes)
    panel.slider.sliderReleased.emit()
    assert session.undo_stack.count() == start + 1
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert session.size.file_bytes <= int(panel.value_spin.value() * MIB)
    panel.slider.setValue(200)  # a click outside a drag: a step of its own
    assert session.undo_stack.count() == start + 2


def test_bpw_budget(session, panel, qtbot) -> None:
    _ready(qtbot, panel)
    panel.mode_box.setCurrentText(BPW)
    lo, hi = panel.value_range()
    assert 0 < lo < hi <= 16.5
    target = round(lo + 0.5 * (hi - lo), 3)
    panel.set_value(target)
    assert panel.propose()
    assert session.size.bpw <= target
    assert session.undo_stack.text(session.undo_stack.index() - 1) == f"Auto-mix for {target:.3f} bpw"


def test_memory_budget_counts_the_kv_cache(session, panel, qtbot) -> None:
    _ready(qtbot, panel)
    panel.mode_box.setCurrentText(MEMORY)
    assert panel.ctx_spin.isVisibleTo(panel) and panel.kv_box.isVisibleTo(panel)
    panel.ctx_spin.setValue(2048)
    panel.kv_box.setCurrentText("Q8_0")
    kv = kv_cache_bytes(session.model, 2048, "Q8_0", "Q8_0").total
    lo, hi = panel.value_range()
    assert lo * MIB == pytest.approx(panel.mixer.file_range()[0] + kv)
    panel.set_value(lo + 0.5 * (hi - lo))
    assert panel.propose()
    assert session.size.file_bytes + kv <= int(panel.value_spin.value() * MIB)
    assert panel.last.kv_bytes == kv


def test_impossible_budget_is_one_line(session, panel, qtbot) -> None:
    _ready(qtbot, panel)
    state, count = session.state, session.undo_stack.count()
    panel.mode_box.setCurrentText(SIZE)
    panel.set_value(0.01)
    assert not panel.propose()
    message = panel.message_label.text()
    lo = panel.value_range()[0]
    assert message == f"0.01 MiB cannot be met: the smallest achievable mix needs {lo:.2f} MiB"
    assert session.state == state and session.undo_stack.count() == count


def test_curve_on_the_quality_plot(session, panel, qtbot) -> None:
    quality = QualityPanel(session)
    qtbot.addWidget(quality)
    panel.curve_changed.connect(quality.set_prediction)
    _ready(qtbot, panel)
    item = quality.prediction_item
    assert item is not None and item in quality.plot.getPlotItem().items
    xs, ys = panel.curve.mib, panel.curve.kld
    assert len(xs) >= 10 and np.allclose(item.xData, xs) and np.allclose(item.yData, ys)
    lo, hi = panel.mixer.file_range()
    assert xs[0] == pytest.approx(lo / MIB) and xs[-1] <= hi / MIB
    assert np.all(np.diff(ys) <= 1e-12 * ys[:-1])  # more bytes never predict worse
    assert ys[-1] < ys[0]
    session.open_model(session.model.path)  # a new model: its curve is not known yet
    assert quality.prediction_item is None


def test_cancel_keeps_the_plan(session, qtbot) -> None:
    def slow(model, plan, imatrix, keys):
        for i in range(1000):
            time.sleep(0.01)
            yield i / 1000, "slow"
        yield from constructed_costs(model, plan, imatrix, keys)

    p = TargetPanel(session, slow)
    qtbot.addWidget(p)
    state = session.state
    assert not p.propose()
    qtbot.waitUntil(lambda: p.progress.value() > 0, timeout=WAIT_MS)
    assert p.cancel_button.isEnabled()
    p.cancel_button.click()
    qtbot.waitUntil(lambda: not p.mixer.running, timeout=WAIT_MS)
    assert not p.mixer.has_costs and session.state == state and not p.progress.isVisible()


def test_interim_costs(session, qtbot) -> None:
    """The real weight-error table: the proposal fits and the curve is labelled as not KLD."""
    p = TargetPanel(session, interim_costs)
    qtbot.addWidget(p)
    _ready(qtbot, p)
    assert not p.mixer.costs.is_kld and "not KLD" in p.curve.label
    lo, hi = p.value_range()
    p.set_value(lo + 0.3 * (hi - lo))
    assert p.propose()
    assert session.size.file_bytes <= int(p.value_spin.value() * MIB)
    assert "weight error" in p.result_label.text()


def test_measured_sensitivity_on_the_demo_model(qtbot) -> None:
    """With llama.cpp, the default source is the measured sensitivity table (cached after the first run)."""
    pytest.importorskip("llama_cpp")
    from quant_core.assets import DEMO_EVAL_TEXT, DEMO_MODEL

    if not (DEMO_MODEL.is_file() and DEMO_EVAL_TEXT.is_file()):
        pytest.skip("the trained demo model is not in assets/")
    s = ExplorerSession()
    try:
        assert s.open_model(DEMO_MODEL)
        p = TargetPanel(s)
        qtbot.addWidget(p)
        with qtbot.waitSignal(p.mixer.costs_ready, timeout=600_000):
            p.propose()
        costs = p.mixer.costs
        assert costs.is_kld and costs.offset > -1e-6  # the floor: the unchanged model's KLD, ~0
        qtbot.waitUntil(lambda: not p.mixer.running, timeout=WAIT_MS)
        q4 = s.preset_sizes["Q4_K_M"]
        p.set_value(q4 / MIB)
        assert p.propose()
        assert s.size.file_bytes <= int(p.value_spin.value() * MIB)
        predicted = costs.offset + predicted_kld(s.plan, costs.table)
        assert f"predicted mean KLD <b>{predicted:.4g}</b>" in p.result_label.text()
    finally:
        p.shutdown()
        s.shutdown()


def test_menu_action_shows_the_target_dock(qtbot) -> None:
    from explorer.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    try:
        assert w.automix_action.shortcut().toString() == "Ctrl+Shift+A"
        w.docks["Target"].hide()
        w.automix_action.trigger()
        assert w.docks["Target"].isVisibleTo(w)
        assert w.target_panel.curve_changed is not None
    finally:
        w.close()
