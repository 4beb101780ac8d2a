"""The Quality panel: measuring mixes with llama.cpp in the background, the table, the size–KLD plot.

Tests marked ``runtime`` need llama-cpp-python and the trained demo model; they measure only a
few chunks of the held-out text so that each mix takes seconds.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt, QTimer

from explorer import quality as quality_module
from explorer.main_window import MainWindow
from explorer.panels.quality_panel import QualityPanel
from explorer.panels.quality_plot import PP_KLD, SIZE_KLD, SIZE_KLD_TG, TG_KLD
from explorer.quality import REFERENCE_PRESETS
from explorer.quality_store import MIX, PRESET, describe, preset_state
from explorer.session import ExplorerSession, PlanState
from quant_core.assets import DEMO_EVAL_TEXT, DEMO_MODEL
from quant_core.plan import QuantOptions
from quant_core.quality import INSTALL_HINT, SpeedSettings, cache_dir
from quant_core.quality.logits_file import scored_per_chunk

pytestmark = pytest.mark.gui
CHUNKS = 2
MEASURE_MS = 300_000  # the first export compiles the kernels it needs


@pytest.fixture
def quality_cache(tmp_path, monkeypatch) -> Path:
    """A private quality cache folder (base passes, temporary exports, stored measurements)."""
    folder = tmp_path / "quality-cache"
    monkeypatch.setenv("QUANT_EXPLORER_QUALITY_CACHE", str(folder))
    return folder


def _runtime_session() -> ExplorerSession:
    pytest.importorskip("llama_cpp")
    if not (DEMO_MODEL.is_file() and DEMO_EVAL_TEXT.is_file()):
        pytest.skip("the trained demo model and its held-out text are not in assets/")
    s = ExplorerSession()
    assert s.open_model(DEMO_MODEL)
    s.quality.set_chunks(CHUNKS)
    return s


@pytest.fixture
def demo(quality_cache):
    """A session on the trained demo model measuring two chunks of the held-out text."""
    s = _runtime_session()
    yield s
    s.quality.shutdown()
    s.shutdown()


@pytest.fixture
def panel(show, demo) -> QualityPanel:
    return show(QualityPanel(demo), 1000, 500)


def _wait_done(qtbot, tracker, timeout: int = MEASURE_MS) -> None:
    qtbot.waitUntil(lambda: not tracker.running, timeout=timeout)
    tracker.runner.wait(10_000)


def _leftovers(folder: Path) -> list[Path]:
    """Temporary exports and partial files anywhere in the cache folder."""
    return [p for p in folder.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".gguf")]


def _click_point(qtbot, panel: QualityPanel, key: str) -> None:
    """A real mouse click on the plotted point of ``key`` (the y axis is log10)."""
    import numpy as np

    x, y = panel.points[key]
    vb = panel.plot.getPlotItem().getViewBox()
    scene = vb.mapViewToScene(QPointF(x, float(np.log10(y))))
    pos = panel.plot.mapFromScene(scene)
    qtbot.mouseClick(panel.plot.viewport(), Qt.LeftButton, pos=pos)


# ----- without llama.cpp ---------------------------------------------------------------------------
def test_without_runtime_buttons_are_disabled_with_one_line_saying_how_to_add_it(show, session, monkeypatch):
    monkeypatch.setattr(quality_module, "runtime_available", lambda: False)
    panel = show(QualityPanel(session), 800, 400)
    assert not panel.measure_button.isEnabled() and not panel.presets_button.isEnabled()
    assert not panel.cancel_button.isEnabled()
    assert panel.hint_label.isVisible() and INSTALL_HINT in panel.hint_label.text()
    assert "\n" not in panel.hint_label.text()
    failures: list[str] = []
    session.quality.failed.connect(failures.append)
    assert not session.quality.measure_current()
    assert not session.quality.running and failures and session.quality.measurements == []
    monkeypatch.setattr(quality_module, "runtime_available", lambda: True)
    assert panel.refresh_runtime()
    assert panel.measure_button.isEnabled() and panel.presets_button.isEnabled()
    assert not panel.hint_label.isVisible()


def test_mix_names_say_preset_or_what_was_changed():
    base = PlanState(QuantOptions(preset="Q4_K_M"))
    assert describe(base) == ("Q4_K_M", PRESET)
    assert describe(preset_state("Q6_K", QuantOptions(imatrix="x.dat"))) == ("Q6_K (imatrix)", PRESET)
    ruled = PlanState(replace(base.options, tensor_types=(("attn_v", "Q8_0"),)))
    assert describe(ruled) == ("Q4_K_M + attn_v=Q8_0", MIX)
    picked = PlanState(
        base.options,
        (("blk.0.ffn_down.weight", "Q6_K"), ("blk.1.ffn_down.weight", "Q6_K"), ("token_embd.weight", "Q8_0")),
    )
    assert describe(picked) == ("Q4_K_M + 2 ffn_down → Q6_K, token_embd → Q8_0", MIX)
    many = tuple((f"blk.0.{k}.weight", "Q5_K") for k in ("attn_q", "attn_k", "attn_v", "ffn_up"))
    assert describe(PlanState(base.options, many)) == ("Q4_K_M + 4 tensors → Q5_K", MIX)
    assert describe(PlanState(replace(base.options, pure=True)))[1] == MIX


def test_tools_menu_measures_with_a_shortcut(qtbot, monkeypatch, tmp_path, quality_cache):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(quality_module, "runtime_available", lambda: False)
    w = MainWindow()
    qtbot.addWidget(w)
    try:
        assert w.measure_action.shortcut().toString() == "Ctrl+M"
        assert w.measure_action.toolTip()
        w.measure_action.trigger()
        assert w.docks["Quality"].isVisibleTo(w)
        assert not w.session.quality.running  # no model, no runtime: nothing starts
    finally:
        w.session.quality.shutdown()
        w.session.shutdown()


# ----- with llama.cpp on the trained demo model ----------------------------------------------------
def test_measure_adds_a_row_and_a_point_restorable_in_one_undo_step(qtbot, panel, demo, quality_cache):
    s, t = demo, demo.quality
    attn_v = [tp.name for tp in s.plan.tensors if tp.source.category == "attn_v"]
    assert s.set_types(attn_v, "Q8_0")
    mix_state, mix_bytes = s.state, s.size.file_bytes

    ticks: list[float] = []
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    qtbot.mouseClick(panel.measure_button, Qt.LeftButton)
    assert time.perf_counter() - started < 1.0  # the work runs off the GUI thread
    assert t.running and panel.progress.isVisible() and panel.cancel_button.isEnabled()
    _wait_done(qtbot, t)
    timer.stop()
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 2.0  # the event loop kept running
    assert not panel.progress.isVisible() and panel.error_label.text() == ""

    assert panel.table.rowCount() == 1 and len(t.measurements) == 1
    m = t.measurements[0]
    assert m.kind == MIX and m.state == mix_state and m.name == f"Q4_K_M + {len(attn_v)} attn_v → Q8_0"
    assert m.file_bytes == mix_bytes  # the measured file is the projected one
    r = m.report
    assert r.kld_mean >= 0 and r.kld_p99 >= r.kld_median >= 0
    assert r.ppl > 1 and r.ppl_base > 1 and 0 <= r.same_top_p <= 1
    assert r.tokens == CHUNKS * scored_per_chunk(512)
    assert panel.table.item(0, 0).text() == m.name
    assert panel.table.item(0, 4).text() == f"{r.kld_mean:.6f}"
    xs, _ = panel.mix_item.getData()
    assert len(xs) == 1 and panel.points[m.key][0] == pytest.approx(mix_bytes / 1024**2)
    assert DEMO_EVAL_TEXT.name in panel.info_label.text() and f"{r.tokens:,} tokens" in panel.info_label.text()
    assert _leftovers(quality_cache) == []

    # measuring it again is instant and adds nothing; a new session finds it on disk
    started = time.perf_counter()
    assert t.measure_current()
    assert time.perf_counter() - started < 0.5 and not t.running and len(t.measurements) == 1
    other = _runtime_session()
    try:
        assert [x.key for x in other.quality.measurements] == [m.key]
    finally:
        other.quality.shutdown()
        other.shutdown()

    # another plan, then a click on the measured point brings the mix back as one undo step
    assert s.set_preset("Q8_0")
    q8_state, depth = s.state, s.undo_stack.count()
    _click_point(qtbot, panel, m.key)
    assert s.state == mix_state and s.undo_stack.count() == depth + 1
    assert panel.table.item(0, 0).font().bold()
    s.undo_stack.undo()
    assert s.state == q8_state
    panel.table.cellDoubleClicked.emit(0, 0)
    assert s.state == mix_state and s.undo_stack.count() == depth + 1


def test_cancel_leaves_no_temporary_file_and_no_row(qtbot, panel, demo, quality_cache):
    t = demo.quality
    ended: list[bool] = []
    t.running_changed.connect(ended.append)
    assert t.measure_current()
    qtbot.waitUntil(
        lambda: "export" in panel.progress_label.text() or "candidate" in panel.progress_label.text(),
        timeout=MEASURE_MS,
    )
    qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    assert not t.running and ended == [True, False]
    assert not panel.progress.isVisible() and not panel.cancel_button.isEnabled()
    t.runner.wait(60_000)
    qtbot.wait(50)  # late signals of the cancelled job
    assert t.measurements == [] and panel.table.rowCount() == 0
    assert _leftovers(quality_cache) == []
    assert list((cache_dir() / "tmp").iterdir()) == []


def test_presets_appear_as_labelled_reference_points(qtbot, panel, demo, quality_cache):
    t = demo.quality
    fractions: list[float] = []
    t.progress.connect(lambda f, _text: fractions.append(f))
    qtbot.mouseClick(panel.presets_button, Qt.LeftButton)
    _wait_done(qtbot, t, timeout=2 * MEASURE_MS)
    assert panel.error_label.text() == ""
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] <= 1  # one bar for the batch
    by_name = {m.name: m for m in t.measurements}
    assert set(by_name) == set(REFERENCE_PRESETS) and all(m.kind == PRESET for m in t.measurements)
    assert sorted(label.toPlainText() for label in panel.labels) == sorted(REFERENCE_PRESETS)
    xs, _ = panel.preset_item.getData()
    assert len(xs) == len(REFERENCE_PRESETS)
    assert [m.name for m in panel.measurements()] == list(REFERENCE_PRESETS)  # size order = preset order
    kld = {name: m.report.kld_mean for name, m in by_name.items()}
    assert kld["Q2_K"] > kld["Q4_K_M"] > kld["Q8_0"] >= 0
    assert panel.table.rowCount() == len(REFERENCE_PRESETS)
    # the current plan is Q4_K_M: its row is bold and ringed on the plot
    assert t.current_key() == by_name["Q4_K_M"].key
    assert panel.current_item.getData()[0] is not None and len(panel.current_item.getData()[0]) == 1


def test_plan_changes_during_a_measurement_do_not_cancel_it(qtbot, panel, demo):
    s, t = demo, demo.quality
    measured = s.state
    assert t.measure_current()
    assert s.set_preset("Q8_0") and s.set_preset("Q6_K")  # each change restarts the statistics jobs
    assert t.running
    _wait_done(qtbot, t)
    assert [m.state for m in t.measurements] == [measured] and panel.error_label.text() == ""
    ring, _ = panel.current_item.getData()  # the current plan (Q6_K) is not measured: no ring
    assert t.current_key() != t.measurements[0].key and (ring is None or len(ring) == 0)


def test_measurements_belong_to_their_text_and_chunks(qtbot, panel, demo, tmp_path):
    t = demo.quality
    assert t.measure_current()
    _wait_done(qtbot, t)
    measured = [m.key for m in t.measurements]
    assert len(measured) == 1
    t.set_chunks(CHUNKS + 1)  # another setup: other numbers, not shown with these
    assert t.measurements == [] and panel.table.rowCount() == 0 and "at most 3 chunks" in panel.info_label.text()
    t.set_chunks(CHUNKS)  # back: read from the disk cache, nothing measured again
    assert [m.key for m in t.measurements] == measured and not t.running and panel.table.rowCount() == 1

    failures: list[str] = []
    t.failed.connect(failures.append)
    assert not t.set_text(tmp_path / "missing.txt")
    assert failures and "missing.txt" in failures[0] and t.text_path == DEMO_EVAL_TEXT
    other = tmp_path / "other.txt"
    other.write_bytes(DEMO_EVAL_TEXT.read_bytes()[: len(DEMO_EVAL_TEXT.read_bytes()) // 2])
    assert t.set_text(other)
    assert t.measurements == [] and "other.txt" in panel.info_label.text()


# ----- speed ------------------------------------------------------------------------------------------
SMALL_SPEED = SpeedSettings(n_prompt=32, n_gen=8, repetitions=2, threads=1)


def _column(panel: QualityPanel, title: str) -> int:
    headers = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    return headers.index(title)


def test_speed_fills_pp_and_tg_columns_and_the_speed_plots(qtbot, panel, demo, quality_cache):
    t = demo.quality
    t.speed_settings = SMALL_SPEED
    assert t.measure_current()  # quality only first
    _wait_done(qtbot, t)
    (m,) = t.measurements
    pp_col, tg_col = _column(panel, "pp t/s"), _column(panel, "tg t/s")
    assert m.speed is None and panel.table.item(0, pp_col).text() == panel.table.item(0, tg_col).text() == ""

    labels: list[str] = []
    t.progress.connect(lambda _f, text: labels.append(text))
    panel.speed_check.setChecked(True)
    assert t.measure_speed
    qtbot.mouseClick(panel.measure_button, Qt.LeftButton)
    assert t.running and not panel.speed_check.isEnabled()
    _wait_done(qtbot, t)
    assert panel.error_label.text() == ""
    assert not any("candidate" in text or "base model" in text for text in labels)  # quality was known
    assert any("generation speed" in text for text in labels)
    (m2,) = t.measurements
    assert m2.report == m.report and m2.speed is not None
    sp = m2.speed
    assert sp.settings == SMALL_SPEED and len(sp.pp_samples) == len(sp.tg_samples) == 2
    assert sp.pp_tps > 0 and sp.tg_tps > 0 and sp.pp_tps_std >= 0 and sp.tg_tps_std >= 0
    assert panel.table.item(0, pp_col).text() == f"{sp.pp_tps:.1f}"
    assert panel.table.item(0, tg_col).text() == f"{sp.tg_tps:.1f}"
    assert "tg8" in panel.table.item(0, tg_col).toolTip()
    assert _leftovers(quality_cache) == []

    # the speed is stored with the mix, and measuring again costs nothing
    assert t.measure_current() and not t.running
    other = _runtime_session()
    try:
        assert [x.speed for x in other.quality.measurements] == [sp]
    finally:
        other.quality.shutdown()
        other.shutdown()

    # the plot puts speed on an axis
    panel.view_combo.setCurrentIndex(panel.view_combo.findData(TG_KLD))
    assert panel.points[m2.key] == (pytest.approx(sp.tg_tps), pytest.approx(max(m2.report.kld_mean, 1e-6)))
    assert "tg" in panel.plot.getPlotItem().getAxis("bottom").labelText
    panel.view_combo.setCurrentIndex(panel.view_combo.findData(SIZE_KLD_TG))
    assert panel.points[m2.key][0] == pytest.approx(m2.file_bytes / 1024**2)
    assert "tg" in panel.plot.getPlotItem().titleLabel.text


def test_speed_views_leave_out_mixes_without_speed(qtbot, panel, demo):
    t = demo.quality
    assert t.measure_current()
    _wait_done(qtbot, t)
    panel.view_combo.setCurrentIndex(panel.view_combo.findData(PP_KLD))
    assert panel.points == {} and "without speed" in panel.plot.getPlotItem().titleLabel.text
    xs, _ = panel.mix_item.getData()
    assert xs is None or len(xs) == 0
    panel.view_combo.setCurrentIndex(panel.view_combo.findData(SIZE_KLD))
    assert len(panel.points) == 1
