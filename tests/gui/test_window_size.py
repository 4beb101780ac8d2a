"""The main window fits a small laptop screen: no panel's content forces a minimum size beyond it."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel, QToolButton, QWidget

from explorer.flow_layout import FlowLayout
from explorer.main_window import MainWindow
from explorer.resources import DEMO_MODEL

pytestmark = pytest.mark.gui

SMALL_SCREEN = (1366, 768)


def test_the_window_with_every_panel_fits_a_small_screen(qtbot, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_path(DEMO_MODEL)
    window.docks["Compare"].show()
    qtbot.wait(100)
    hint = window.minimumSizeHint()
    assert hint.width() <= SMALL_SCREEN[0] and hint.height() <= SMALL_SCREEN[1], hint
    assert (window.width(), window.height()) == (1000, 700)
    window.session.shutdown()


def test_flow_layout_wraps_its_buttons_on_a_narrow_width(qtbot) -> None:
    box = QWidget()
    qtbot.addWidget(box)
    flow = FlowLayout(box)
    flow.addWidget(QLabel("Assign:"))
    buttons = [QToolButton(text=f"IQ{i}_XXS") for i in range(12)]
    for b in buttons:
        flow.addWidget(b)
    one_line = flow.heightForWidth(flow.sizeHint().width() + 10)
    assert flow.heightForWidth(200) > 2 * one_line  # several lines
    assert flow.minimumSize().width() < 200
    box.resize(200, flow.heightForWidth(200))
    box.show()
    qtbot.waitExposed(box)
    assert all(b.geometry().right() <= 200 for b in buttons)
    assert len({b.geometry().y() for b in buttons}) > 2
