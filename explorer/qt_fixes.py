"""Work-arounds for bugs of the Qt binding, applied once when ``explorer`` is imported.

PySide6/shiboken6 6.12.0 returns ``None`` from every C++ method without a result (``setText``,
``QPainter.save`` ...) without taking a reference to it. That is harmless on Python >= 3.12,
where None is immortal, but on 3.11 each such call takes one reference away from None, and
after some tens of thousands of calls (a few hundred repaints of a table) the interpreter
aborts with "Fatal Python error: none_dealloc". :func:`keep_none_alive` detects the bug by
measuring it and gives None the same kind of immortality 3.12 has. Pinning ``PySide6<6.12``
on Python 3.11, or running Python >= 3.12, makes it unnecessary.
"""
from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 50  # references; at a million lost per second that lasts 35 years
_PROBE_CALLS = 64


def void_call_loses_none() -> bool:
    """True when calling a void Qt method from Python drops a reference to None."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    return sys.getrefcount(None) <= before - _PROBE_CALLS // 2


def keep_none_alive() -> bool:
    """Give None enough references to outlive the binding's leak; returns True if applied."""
    if sys.version_info >= (3, 12) or not void_call_loses_none():
        return False
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt: the first field of PyObject
    if abs(refcount.value - sys.getrefcount(None)) > 8:
        return False  # not the object layout we expect (debug build?): leave it alone
    refcount.value += _HEADROOM
    return True
