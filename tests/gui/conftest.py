"""Fixtures for the GUI tests: a session on a small real model, and showing a widget."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QMessageBox, QWidget

from explorer.session import ExplorerSession
from tests.core.synthetic import write_llama_gguf

from .support import SMALL


@pytest.fixture(autouse=True)
def discard_unsaved(monkeypatch):
    """A window closed at teardown with a changed mix discards it instead of waiting on a prompt."""
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Discard)


@pytest.fixture
def session(tmp_path, request):
    """A session with a small model open; a test module may set ``GUI_MODEL`` to change its shape."""
    shape = getattr(request.module, "GUI_MODEL", SMALL)
    s = ExplorerSession()
    assert s.open_model(write_llama_gguf(tmp_path / "small.gguf", **shape))
    yield s
    s.shutdown()


@pytest.fixture
def show(qtbot) -> Callable[..., QWidget]:
    """Add a widget to qtbot, size it, show it and wait until it is exposed."""

    def _show(widget: QWidget, width: int | None = None, height: int | None = None) -> QWidget:
        qtbot.addWidget(widget)
        if width and height:
            widget.resize(width, height)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    return _show
