"""The installed Qt binding keeps Python's reference counts straight.

PySide6 6.12.0 drops a reference to None on every void C++ call, and Python 3.11 aborts after
some tens of thousands of them (a few minutes of repaints). pyproject pins PySide6 below 6.12 on
Python < 3.12; this test fails if an install ever picks a binding with that bug.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject

pytestmark = pytest.mark.gui


def test_void_qt_calls_keep_none_references(qapp) -> None:
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(5000):
        probe.setObjectName("probe")
    assert sys.getrefcount(None) >= before - 100
