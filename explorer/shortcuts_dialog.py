"""Help ▸ Keyboard shortcuts: every action of a window that has a key, read from the actions."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def action_name(action: QAction) -> str:
    """The action's text without mnemonic marks and trailing ellipsis."""
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(action, keys) for every action under ``window`` with a shortcut, sorted by name, no repeats."""
    rows: set[tuple[str, str]] = set()
    for action in window.findChildren(QAction):
        keys = ", ".join(k.toString(QKeySequence.NativeText) for k in action.shortcuts() if not k.isEmpty())
        if keys and action_name(action):
            rows.add((action_name(action), keys))
    return sorted(rows, key=lambda r: r[0].casefold())


class ShortcutsDialog(QDialog):
    """A two-column table of actions and their keys, built when opened so it never goes stale."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        for r, (name, keys) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(name))
            self.table.setItem(r, 1, QTableWidgetItem(keys))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(460, 420)

    def listed(self) -> list[tuple[str, str]]:
        """The rows as shown: (action, keys)."""
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text()) for r in range(self.table.rowCount())]
