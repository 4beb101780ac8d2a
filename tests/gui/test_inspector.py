"""The inspector shows the session's inspection of the selected tensor, and never blocks the GUI."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

import explorer.session as session_module
from explorer.panels.inspector import METRICS, Inspector

from .support import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui
TENSOR = "blk.0.ffn_up.weight"  # 512 rows: sampled (64 rows) first, then all


@pytest.fixture
def inspector(show, session):
    return show(Inspector(session), 450, 850)


def wait_full(qtbot, session, name: str = TENSOR, compare: str | None = None):
    def ready() -> bool:
        i = session.inspection
        return (
            i is not None
            and i.full
            and i.name == name
            and i.compare_type == compare
            and i.type == session.plan.tensor(name).type
        )

    qtbot.waitUntil(ready, timeout=WAIT_MS)
    return session.inspection


def table_column(inspector: Inspector, col: int) -> list[str]:
    return [inspector.table.item(r, col).text() for r in range(len(METRICS))]


def test_select_fills_histograms_sampled_then_full(qtbot, inspector, session):
    texts = []
    session.inspection_ready.connect(lambda _i: texts.append(inspector.rows_label.text()))
    session.select([TENSOR])
    insp = wait_full(qtbot, session)
    assert texts[0] == "sampled 64 of 512 rows (refining…)"
    assert texts[-1] == "all 512 rows"
    tp = session.plan.tensor(TENSOR)
    assert TENSOR in inspector.title_label.text() and tp.type in inspector.title_label.text()
    x, y = inspector.error_curve.getData()
    assert np.array_equal(x, insp.stats.hist_edges) and np.array_equal(y, insp.stats.hist_counts)
    assert y.sum() == 512 * 256  # every weight's error
    wx, wy = inspector.weight_curve.getData()
    assert np.array_equal(wx, insp.weight_edges) and np.array_equal(wy, insp.weight_counts)
    shown = [line.value() for line in inspector._level_lines if line.isVisible()]
    assert shown == pytest.approx(list(insp.levels)) and len(shown) > 1
    assert inspector.compare_curve.getData()[0] is None or len(inspector.compare_curve.getData()[0]) == 0
    col = table_column(inspector, 0)
    assert col[0] == f"{insp.stats.rmse:.4g}" and col[1] == f"{100 * insp.stats.rel_rmse:.3f} %"
    assert col[5] == "no imatrix"
    assert inspector.table.horizontalHeaderItem(0).text() == f"{tp.type} (planned)"


def test_compare_type_overlaid_with_its_own_bins(qtbot, inspector, session):
    session.select([TENSOR])
    wait_full(qtbot, session)
    combo = inspector.compare_combo
    assert combo.currentData() is None  # default: no comparison
    combo.setFocus()
    combo.setCurrentIndex(combo.findData("Q8_0"))
    assert session.compare_type == "Q8_0"
    insp = wait_full(qtbot, session, compare="Q8_0")
    cx, cy = inspector.compare_curve.getData()
    assert np.array_equal(cx, insp.compare_stats.hist_edges) and np.array_equal(cy, insp.compare_stats.hist_counts)
    px, _ = inspector.error_curve.getData()
    assert not np.array_equal(px, cx)  # Q8_0's errors are smaller: other bin edges
    assert inspector.table.horizontalHeaderItem(1).text() == "Q8_0"
    assert table_column(inspector, 1)[0] == f"{insp.compare_stats.rmse:.4g}"
    assert insp.compare_stats.rmse < insp.stats.rmse
    combo.setCurrentIndex(0)
    assert session.compare_type is None
    wait_full(qtbot, session)
    assert inspector.table.horizontalHeaderItem(1).text() == "compare: none"


def test_combo_disables_types_that_cannot_apply(qtbot, inspector, session):
    session.select([TENSOR])
    combo = inspector.compare_combo
    model = combo.model()
    planned = session.plan.tensor(TENSOR).type
    assert not model.item(combo.findData(planned)).isEnabled()
    assert not model.item(combo.findData("IQ2_XXS")).isEnabled()  # needs an importance matrix
    assert "importance matrix" in combo.itemData(combo.findData("IQ2_XXS"), Qt.ToolTipRole)
    assert model.item(combo.findData("Q6_K")).isEnabled()


def test_log_scale(qtbot, inspector, session):
    session.select([TENSOR])
    wait_full(qtbot, session)
    qtbot.mouseClick(inspector.log_box, Qt.LeftButton)
    assert inspector.error_curve.opts["logMode"] == [False, True]
    assert inspector.weight_curve.opts["logMode"] == [False, True]
    top = inspector.level_points.getData()[1][0]
    assert top == pytest.approx(np.log10(session.inspection.weight_counts.max()))


def test_cleared_for_nothing_or_non_quantized_and_restored(qtbot, inspector, session):
    session.select([TENSOR])
    insp = wait_full(qtbot, session)
    session.select(["blk.0.attn_norm.weight"])
    assert "not quantized" in inspector.title_label.text()
    x, _ = inspector.error_curve.getData()
    assert x is None or len(x) == 0
    assert inspector.table.item(0, 0).text() == ""
    assert not inspector.compare_combo.isEnabled()
    # back to the same tensor: the finished inspection is shown again without a new job
    session.select([TENSOR])
    x, y = inspector.error_curve.getData()
    assert np.array_equal(y, insp.stats.hist_counts)
    assert inspector.rows_label.text() == "all 512 rows"
    session.select([])
    assert "Select a tensor" in inspector.title_label.text()
    assert inspector.weight_curve.getData()[0] is None or len(inspector.weight_curve.getData()[0]) == 0


def test_plan_change_shows_the_new_type(qtbot, inspector, session):
    session.select([TENSOR])
    first = wait_full(qtbot, session)
    assert session.set_types([TENSOR], "Q8_0")
    assert "Q8_0" in inspector.title_label.text()
    assert inspector.rows_label.text() == "measuring…"  # the Q4_K histogram is not shown as Q8_0's
    assert inspector.error_curve.getData()[0] is None or len(inspector.error_curve.getData()[0]) == 0
    insp = wait_full(qtbot, session)
    assert insp.type == "Q8_0" and insp.stats.rmse < first.stats.rmse
    assert np.array_equal(inspector.error_curve.getData()[1], insp.stats.hist_counts)


def test_gui_thread_keeps_processing_events_during_a_slow_job(qtbot, inspector, session, monkeypatch):
    wait_idle(qtbot, session)
    real = session_module.iter_inspect

    def slow_inspect(*args, **kwargs):
        for item in real(*args, **kwargs):
            time.sleep(1.0)  # a long statistics job in the worker thread
            yield item

    monkeypatch.setattr(session_module, "iter_inspect", slow_inspect)
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    start = time.monotonic()
    session.select([TENSOR])
    wait_full(qtbot, session)
    timer.stop()
    elapsed = time.monotonic() - start
    assert elapsed > 2.0
    assert len(ticks) > 0.5 * elapsed / 0.020  # the event loop ran throughout
    assert max(np.diff([start, *ticks])) < 0.5  # never frozen for long


def test_imatrix_weighted_mse_when_available(qtbot, inspector, session, tmp_path):
    from quant_core.imatrix import write_imatrix_gguf

    rng = np.random.default_rng(1)
    path = tmp_path / "imatrix.gguf"
    write_imatrix_gguf(
        path, {TENSOR: rng.uniform(0.1, 4.0, 256).astype(np.float32) * 512}, {TENSOR: np.array([512])}, chunk_size=512
    )
    session.select([TENSOR])
    wait_full(qtbot, session)
    assert table_column(inspector, 0)[5] == "no imatrix"
    with qtbot.waitSignal(session.inspection_ready, timeout=WAIT_MS, check_params_cb=lambda i: i.full) as blocker:
        assert session.set_imatrix(str(path))
    insp = blocker.args[0]
    assert insp.stats.weighted_mse is not None
    assert table_column(inspector, 0)[5] == f"{insp.stats.weighted_mse:.4g}"


def test_legend_names_the_shown_types(qtbot, inspector, session):
    def legend() -> list[str]:
        return [label.text for _sample, label in inspector.error_legend.items]

    assert legend() == []
    session.select([TENSOR])
    wait_full(qtbot, session)
    planned = session.plan.tensor(TENSOR).type
    assert legend() == [f"{planned} (planned)"]
    inspector.compare_combo.setCurrentIndex(inspector.compare_combo.findData("Q6_K"))
    wait_full(qtbot, session, compare="Q6_K")
    assert legend() == [f"{planned} (planned)", "Q6_K"]
    session.select(["output_norm.weight"])
    assert legend() == []


def test_a_bad_imatrix_entry_is_refused_in_one_line_when_loaded(qtbot, inspector, session, tmp_path):
    from quant_core.imatrix import write_imatrix_gguf

    path = tmp_path / "short.imatrix.gguf"  # 100 values for a tensor with 256 columns
    write_imatrix_gguf(path, {TENSOR: np.ones(100, np.float32)}, {TENSOR: np.array([8])}, chunk_size=8)
    with qtbot.waitSignal(session.error, timeout=WAIT_MS) as blocker:
        assert session.set_imatrix(str(path))
    message = blocker.args[0]
    assert f"importance matrix entry {TENSOR} has 100 values" in message and "\n" not in message
    assert session.imatrix is None and session.state.options.imatrix is None
    session.select([TENSOR])
    wait_idle(qtbot, session)
    assert session.inspection_problem() is None and session.inspection is not None


def titles(inspector: Inspector) -> tuple[str, str]:
    return inspector.error_item.titleLabel.text, inspector.weight_item.titleLabel.text


def test_block_plot_says_in_words_what_the_levels_are(qtbot, inspector, session):
    session.set_types([TENSOR], "Q6_K")
    session.select([TENSOR])
    insp = wait_full(qtbot, session)
    error_title, weight_title = titles(inspector)
    assert "blk.0.ffn_up at Q6_K" in error_title
    n = len(insp.levels)
    assert n > 1
    assert "blk.0.ffn_up" in weight_title
    assert f"distinct values one Q6_K block of 256 weights can take after quantization: {n} here" in weight_title


def test_titles_follow_the_selection_at_once_not_after_measuring(qtbot, inspector, session):
    session.select([TENSOR])
    wait_full(qtbot, session)
    other = "blk.1.attn_q.weight"
    other_type = session.plan.tensor(other).type
    shown: list[tuple[str, str]] = []
    session.selection_changed.connect(lambda _names: shown.append(titles(inspector)))
    session.select([other])
    error_title, weight_title = shown[0] if shown else titles(inspector)
    assert session.inspection is None or session.inspection.name != other  # not measured yet
    assert f"blk.1.attn_q at {other_type}" in error_title and "blk.0.ffn_up" not in error_title
    assert "blk.1.attn_q" in weight_title and "measuring" in weight_title and "blk.0.ffn_up" not in weight_title
    wait_full(qtbot, session, name=other)
    assert "distinct values" in titles(inspector)[1]
