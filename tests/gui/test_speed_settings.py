"""The Quality panel's speed settings: the dialog, its persistence, and what it changes in a measurement.

The test marked by needing llama.cpp's runtime measures the trained demo model with a tiny
llama-bench setup (-p 16 -n 4) on two chunks of its held-out text, so it takes seconds.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialogButtonBox

from explorer.dialogs import speed_settings as speed_settings_module
from explorer.dialogs.speed_settings import SpeedSettingsDialog, load_speed_settings
from explorer.panels.quality_panel import COLUMNS, QualityPanel
from explorer.quality import speed_measured_with
from explorer.session import ExplorerSession
from quant_core.assets import DEMO_EVAL_TEXT, DEMO_MODEL
from quant_core.quality import SpeedReport, SpeedSettings, bench_default_threads

pytestmark = pytest.mark.gui
MEASURE_MS = 300_000
PP, TG = COLUMNS.index("pp t/s"), COLUMNS.index("tg t/s")
TINY = SpeedSettings(n_prompt=16, n_gen=4, repetitions=2, threads=1)


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch) -> QSettings:
    """A private settings file in place of the user's (also for panels made by the test)."""
    path = str(tmp_path / "settings.ini")
    monkeypatch.setattr(speed_settings_module, "settings_store", lambda: QSettings(path, QSettings.IniFormat))
    return speed_settings_module.settings_store()


def _fill(dialog: SpeedSettingsDialog, p: int, n: int, r: int, t: int) -> None:
    for key, value in zip(("n_prompt", "n_gen", "repetitions", "threads"), (p, n, r, t), strict=True):
        dialog.spins[key].setValue(value)


def _ok(qtbot, dialog: SpeedSettingsDialog) -> None:
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.Ok), Qt.LeftButton)


def test_dialog_values_reach_the_tracker_and_the_next_panel(qtbot, show, session):
    panel = show(QualityPanel(session))
    assert session.quality.speed_settings == SpeedSettings()  # nothing stored: llama-bench's defaults
    assert panel.speed_settings_button.isEnabled()
    dialog = panel.open_speed_settings()
    assert dialog.isVisible() and dialog.settings() == SpeedSettings()
    for key, flag in (("n_prompt", "-p"), ("n_gen", "-n"), ("repetitions", "-r"), ("threads", "-t")):
        assert f"llama-bench {flag}," in dialog.spins[key].toolTip()
    assert dialog.spins["threads"].text() == "auto"
    _fill(dialog, 16, 4, 2, 1)
    _ok(qtbot, dialog)
    assert not dialog.isVisible()
    assert session.quality.speed_settings == TINY
    assert "pp16 tg4, 2 repetitions, 1 thread)" in panel.speed_settings_button.toolTip()

    other = ExplorerSession()
    try:
        assert other.quality.speed_settings == SpeedSettings()  # a panel reads the stored choice
        QualityPanel(other).deleteLater()
        assert other.quality.speed_settings == TINY
    finally:
        other.shutdown()

    # cancelling changes nothing
    dialog = panel.open_speed_settings()
    assert dialog.settings() == TINY
    _fill(dialog, 64, 8, 3, 0)
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.Cancel), Qt.LeftButton)
    assert session.quality.speed_settings == TINY and load_speed_settings() == TINY


def test_restore_defaults_and_impossible_settings(qtbot, show, session):
    panel = show(QualityPanel(session))
    panel.set_speed_settings(TINY)
    dialog = panel.open_speed_settings()
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.RestoreDefaults), Qt.LeftButton)
    assert [dialog.spins[k].value() for k in ("n_prompt", "n_gen", "repetitions", "threads")] == [512, 128, 5, 0]
    assert dialog.settings() == SpeedSettings()

    ok = dialog.buttons.button(QDialogButtonBox.Ok)
    _fill(dialog, 0, 0, 5, 0)
    assert not ok.isEnabled() and "nothing to measure" in dialog.error_label.text()
    _fill(dialog, 0, 32, 5, 0)  # generation only is allowed, as llama-bench -p 0
    assert ok.isEnabled() and dialog.error_label.text() == ""
    _fill(dialog, 512, 128, 5, 0)
    _ok(qtbot, dialog)
    assert session.quality.speed_settings == SpeedSettings() and load_speed_settings() == SpeedSettings()


def test_unreadable_stored_settings_fall_back_to_the_defaults(store):
    store.setValue("speed/n_prompt", "many")
    store.setValue("speed/repetitions", 0)
    assert load_speed_settings() == SpeedSettings()


def test_a_speed_counts_as_measured_only_with_the_same_settings():
    auto = SpeedReport(SpeedSettings().resolved(), 1, (1.0,), (1.0,))
    assert auto.settings.threads == bench_default_threads()
    assert speed_measured_with(auto, SpeedSettings())  # 'auto' means this machine's default
    assert not speed_measured_with(auto, SpeedSettings(repetitions=2))
    assert not speed_measured_with(auto, SpeedSettings(threads=bench_default_threads() + 1))
    assert not speed_measured_with(None, SpeedSettings())


# ----- a real measurement -------------------------------------------------------------------------------
@pytest.fixture
def demo(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    if not (DEMO_MODEL.is_file() and DEMO_EVAL_TEXT.is_file()):
        pytest.skip("the trained demo model and its held-out text are not in assets/")
    monkeypatch.setenv("QUANT_EXPLORER_QUALITY_CACHE", str(tmp_path / "quality-cache"))
    s = ExplorerSession()
    assert s.open_model(DEMO_MODEL)
    s.quality.set_chunks(2)
    yield s
    s.quality.shutdown()
    s.shutdown()


def _measure(qtbot, panel: QualityPanel) -> list[str]:
    t, labels = panel.tracker, []

    def note(_fraction: float, text: str) -> None:
        labels.append(text)

    t.progress.connect(note)
    qtbot.mouseClick(panel.measure_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not t.running, timeout=MEASURE_MS)
    t.runner.wait(10_000)
    t.progress.disconnect(note)
    assert panel.error_label.text() == ""
    return labels


def test_the_dialogs_settings_are_measured_and_other_settings_measure_again(qtbot, show, demo):
    panel = show(QualityPanel(demo), 1000, 500)
    panel.speed_check.setChecked(True)
    dialog = panel.open_speed_settings()
    _fill(dialog, 16, 4, 2, 1)
    _ok(qtbot, dialog)
    labels = _measure(qtbot, panel)
    assert any("run 2/2" in text for text in labels)
    (m,) = demo.quality.measurements
    assert m.speed.settings == TINY and len(m.speed.pp_samples) == len(m.speed.tg_samples) == 2
    pp_tip = panel.table.item(0, PP).toolTip()
    assert "pp16:" in pp_tip and "2 repetitions, 1 threads" in pp_tip
    assert "tg4:" in panel.table.item(0, TG).toolTip() and "other settings" not in pp_tip

    # the same settings: nothing to do; other settings: only the speed is measured again
    assert demo.quality.measure_current() and not demo.quality.running
    dialog = panel.open_speed_settings()
    dialog.spins["repetitions"].setValue(3)
    _ok(qtbot, dialog)
    assert "other settings than the current ones" in panel.table.item(0, PP).toolTip()
    labels = _measure(qtbot, panel)
    assert labels and not any("candidate" in text or "base model" in text for text in labels)
    (m2,) = demo.quality.measurements
    assert m2.report == m.report
    assert m2.speed.settings.repetitions == 3 and len(m2.speed.pp_samples) == len(m2.speed.tg_samples) == 3
    assert "3 repetitions" in panel.table.item(0, TG).toolTip()
    assert "other settings" not in panel.table.item(0, TG).toolTip()
