"""The error overview plots every tensor's error along the depth and selects a tensor on click."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from explorer.panels.error_overview import ErrorOverview
from explorer.panels.plot_common import category_color

from .support import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui


@pytest.fixture
def overview(show, session):
    return show(ErrorOverview(session), 900, 400)


def shown_points(overview: ErrorOverview, cat: str) -> dict[str, tuple[float, float]]:
    pts = overview.points[cat]
    return {str(p.data()): (p.pos().x(), p.pos().y()) for p in pts.points()}


def test_every_tensor_plotted_by_layer_and_category(qtbot, overview, session):
    wait_idle(qtbot, session)
    quantizable = [tp for tp in session.plan.tensors if tp.quantizable]
    assert "all" in overview.count_label.text() and str(len(quantizable)) in overview.count_label.text()
    seen = {}
    for cat in overview.series:
        seen.update(shown_points(overview, cat))
    assert set(seen) == {tp.name for tp in quantizable}
    for tp in quantizable:
        x, y = seen[tp.name]
        assert y == pytest.approx(100 * session.evaluation(tp.name).stats.rel_rmse)
        expected_x = {"token_embd": -1, "output": session.model.n_layer}.get(tp.source.category, tp.source.layer)
        assert abs(x - expected_x) < 0.25, tp.name
    # one series per category, in its colour, with a legend entry each
    labels = [label.text for _sample, label in overview.legend.items]
    assert labels == [
        "token_embd",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
        "output",
    ]
    assert overview.points["ffn_up"].opts["brush"].color().name() == category_color("ffn_up").name()
    assert not overview.points["attn_qkv"].isVisible()
    ticks = dict(overview.plot_item.getAxis("bottom")._tickLevels[0])
    assert ticks[-1.0] == "embd" and ticks[2.0] == "out"


def test_incremental_update_keeps_items_and_follows_plan(qtbot, overview, session):
    wait_idle(qtbot, session)
    items = {cat: id(overview.points[cat]) for cat in overview.series}
    name = "blk.1.attn_k.weight"
    old = shown_points(overview, "attn_k")[name][1]
    with qtbot.waitSignal(session.stats_updated, timeout=WAIT_MS, check_params_cb=lambda names: name in names):
        assert session.set_types([name], "Q8_0")
        # at once: the old type's error is gone, the point waits for the new measurement
        assert name not in shown_points(overview, "attn_k")
        assert "of" in overview.count_label.text()
    new = shown_points(overview, "attn_k")[name][1]
    assert new == pytest.approx(100 * session.evaluation(name).stats.rel_rmse)
    assert new < old / 2  # Q8_0 is far more precise than Q4_K
    assert {cat: id(overview.points[cat]) for cat in overview.series} == items


def test_click_selects_tensor_and_marks_it(qtbot, overview, session):
    wait_idle(qtbot, session)
    name = "blk.0.ffn_down.weight"
    x, y = shown_points(overview, "ffn_down")[name]
    view = overview.plot
    scene_pos = overview.plot_item.vb.mapViewToScene(QPointF(x, y))
    pos = view.mapFromScene(scene_pos)
    with qtbot.waitSignal(session.selection_changed, timeout=2000):
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=pos)
    assert session.selected == [name]
    mx, my = overview.marker.getData()
    assert (mx[0], my[0]) == pytest.approx((x, y))


def test_log_scale(qtbot, overview, session):
    wait_idle(qtbot, session)
    lin = shown_points(overview, "attn_q")
    qtbot.mouseClick(overview.log_box, Qt.LeftButton)
    assert overview.log_box.isChecked()
    log = shown_points(overview, "attn_q")
    for name, (_x, y) in lin.items():
        assert log[name][1] == pytest.approx(np.log10(y))
    assert overview.plot_item.getAxis("left").logMode
    qtbot.mouseClick(overview.lines_box, Qt.LeftButton)
    assert not overview.lines["attn_q"].isVisible()
