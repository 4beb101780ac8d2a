"""Keyboard use of the main window: Tab order, unique mnemonics, the shortcuts list, type-ahead."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QMenu, QMessageBox, QWidget

from explorer.main_window import MainWindow
from explorer.panels.mix_map import MixMap
from explorer.shortcuts_dialog import ShortcutsDialog, action_name
from tests.core.synthetic import write_llama_gguf

from .support import SMALL

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: None)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_path(write_llama_gguf(tmp_path / "small.gguf", **SMALL))
    yield w
    w.session.shutdown()


def mnemonic(text: str) -> str | None:
    """The letter after a single '&' ('&&' is a literal ampersand), lower-cased."""
    i = 0
    while i < len(text) - 1:
        if text[i] == "&":
            if text[i + 1] != "&":
                return text[i + 1].lower()
            i += 1
        i += 1
    return None


def duplicates(texts: list[str]) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = {}
    for text in texts:
        key = mnemonic(text)
        if key:
            by_key.setdefault(key, []).append(text)
    return {k: v for k, v in by_key.items() if len(v) > 1}


def window_level_texts(window: MainWindow) -> list[str]:
    """Menu bar titles plus every button and buddied label: all share the window's Alt+letter."""
    texts = [a.text() for a in window.menuBar().actions()]
    texts += [b.text() for b in window.findChildren(QAbstractButton) if b.window() is window]
    texts += [lab.text() for lab in window.findChildren(QLabel) if lab.buddy() is not None and lab.window() is window]
    return texts


def all_menus(window: MainWindow) -> list[QMenu]:
    found, todo = [], [a.menu() for a in window.menuBar().actions() if a.menu()]
    while todo:
        menu = todo.pop()
        found.append(menu)
        todo += [a.menu() for a in menu.actions() if a.menu()]
    return found


def test_mnemonics_are_unique_per_level(window) -> None:
    texts = window_level_texts(window)
    assert sum(1 for t in texts if mnemonic(t)) >= 10  # the walk sees the panels' controls
    assert duplicates(texts) == {}
    menus = all_menus(window)
    assert len(menus) >= 6
    for menu in menus:
        assert duplicates([a.text() for a in menu.actions()]) == {}, menu.title()


def test_shortcuts_dialog_lists_every_action_with_a_key(window, qtbot) -> None:
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    listed = dict(dialog.listed())
    keyed = [a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert len(keyed) >= 10
    for action in keyed:
        assert action_name(action) in listed, action.text()
    assert listed["Open model"] == "Ctrl+O" and listed["Select map column"] == "Ctrl+Space"
    assert listed["Redo"] == "Ctrl+Shift+Z, Ctrl+Y"
    # built from the actions: a new one appears without touching the dialog
    extra = QAction("Frobnicate", window)
    extra.setShortcut("Ctrl+Alt+F")
    assert dict(ShortcutsDialog(window).listed())["Frobnicate"] == "Ctrl+Alt+F"
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert "&Keyboard shortcuts" in [a.text() for a in help_menu.actions()]


def focus_owner(window: MainWindow) -> QWidget | None:
    owners = [window.mix_map, window.tensor_table, *[d.widget() for d in window.docks.values()]]
    focus = QApplication.focusWidget()
    return next((o for o in owners if focus is not None and (focus is o or o.isAncestorOf(focus))), None)


def test_tab_leaves_the_map_and_the_inspector_table_and_visits_the_panels(window, qtbot) -> None:
    window.activateWindow()
    qtbot.waitActive(window)
    view = window.mix_map.view
    view.setFocus()
    view.setCurrentIndex(window.mix_map.model.index(1, 0))
    qtbot.waitUntil(view.hasFocus)
    qtbot.keyClick(view, Qt.Key_Tab)
    assert not view.hasFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Backtab)
    assert view.hasFocus()
    qtbot.keyClick(view, Qt.Key_Backtab)
    assert not view.hasFocus()

    table = window.inspector.table
    table.setFocus()
    table.setCurrentCell(0, 0)
    qtbot.waitUntil(table.hasFocus)
    qtbot.keyClick(table, Qt.Key_Tab)
    assert not table.hasFocus() and table.currentRow() == 0 and table.currentColumn() == 0

    view.setFocus()
    visited = set()
    for _ in range(150):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)
        owner = focus_owner(window)
        if owner is not None:
            visited.add(owner)
    shown = {window.mix_map, *[d.widget() for d in window.docks.values() if not d.visibleRegion().isEmpty()]}
    assert shown - visited == set()


@pytest.fixture
def mix(show, session):
    return show(MixMap(session), 1100, 500)


def open_type_menu(mix: MixMap, layer: int, kind: str) -> QMenu:
    idx = mix.model.index(mix.model.row_labels.index(f"blk.{layer}"), mix.model.kinds.index(kind))
    mix._on_context_menu(mix.view.visualRect(idx).center())
    sub = mix.menu.actions()[0].menu()
    sub.popup(mix.mapToGlobal(QPoint(10, 10)))
    return sub


@pytest.mark.parametrize("typed", ["6", "q6", "Q6"])
def test_type_ahead_in_the_type_menu_reaches_q6_k(mix, session, qtbot, typed) -> None:
    sub = open_type_menu(mix, 1, "attn_q")
    qtbot.waitExposed(sub)
    assert sub.activeAction() is None or sub.activeAction().text() != "Q6_K"
    qtbot.keyClicks(sub, typed)
    assert sub.activeAction() is not None and sub.activeAction().text() == "Q6_K"
    qtbot.keyClick(sub, Qt.Key_Return)
    assert session.plan.tensor("blk.1.attn_q.weight").type == "Q6_K"


def test_type_ahead_starts_over_when_the_menu_closes(mix, qtbot) -> None:
    sub = open_type_menu(mix, 1, "attn_q")
    qtbot.keyClicks(sub, "q8")
    assert sub.activeAction().text() == "Q8_0"
    sub.hide()
    sub.popup(mix.mapToGlobal(QPoint(10, 10)))
    qtbot.keyClicks(sub, "f16")
    assert sub.activeAction().text() == "F16"


@pytest.mark.parametrize(("keys", "axis"), [(Qt.ControlModifier, "column"), (Qt.ShiftModifier, "row")])
def test_space_shortcuts_select_the_current_column_or_row(mix, session, qtbot, keys, axis) -> None:
    mix.activateWindow()
    qtbot.waitActive(mix)
    m = mix.model
    start = m.index(1, m.kinds.index("attn_v"))
    mix.view.setFocus()
    mix.view.setCurrentIndex(start)
    assert session.selected == ["blk.0.attn_v.weight"]
    qtbot.keyClick(mix.view, Qt.Key_Space, keys)
    if axis == "column":
        expected = {f"blk.{i}.attn_v.weight" for i in range(SMALL["n_layer"])}
    else:
        expected = {f"blk.0.{k}.weight" for k in m.kinds if k}
    assert set(session.selected) == expected
