"""The binding work-around keeps None alive however many void Qt calls the GUI makes."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QLabel

import explorer  # noqa: F401  (importing the package applies the work-around)
from explorer.qt_fixes import keep_none_alive, void_call_loses_none

pytestmark = pytest.mark.gui


def test_none_survives_many_void_calls(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    if void_call_loses_none():  # the buggy binding: the work-around must have given headroom
        assert sys.version_info < (3, 12)
        assert sys.getrefcount(None) > 1 << 40
    for _ in range(200_000):  # without the work-around this aborts the interpreter on PySide6 6.12/3.11
        label.setText("x")
    assert sys.getrefcount(None) > 10_000


def test_keep_none_alive_only_acts_where_needed():
    refs = sys.getrefcount(None)
    applied = keep_none_alive()
    assert applied == (sys.version_info < (3, 12) and void_call_loses_none())
    assert sys.getrefcount(None) >= refs - 64
