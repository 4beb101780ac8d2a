"""Type-ahead for menus of quant types: typing "6" or "q6" makes Q6_K the active entry."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import QMenu

RESET_MS = 1200  # a pause this long starts a new search, as in file managers


def find_action(menu: QMenu, typed: str) -> QAction | None:
    """The first enabled entry whose name starts with ``typed``, else the first that contains it."""
    needle = typed.casefold()
    entries = [a for a in menu.actions() if a.isEnabled() and a.isVisible() and not a.isSeparator()]
    for test in (lambda t: t.startswith(needle), lambda t: needle in t):
        for act in entries:
            if test(act.text().replace("&", "").casefold()):
                return act
    return None


class TypeAhead(QObject):
    """Event filter on a menu: printable keys build a search text, the matching entry is activated.

    The text typed so far is kept in ``typed``; a pause of :data:`RESET_MS` or closing the menu
    starts over, Backspace takes back a character. Enter then triggers the entry as usual.
    """

    def __init__(self, menu: QMenu) -> None:
        super().__init__(menu)
        self.menu = menu
        self.typed = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RESET_MS)
        self._timer.timeout.connect(self.clear)
        menu.installEventFilter(self)
        menu.aboutToHide.connect(self.clear)

    def clear(self) -> None:
        self.typed = ""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is not self.menu or event.type() != QEvent.KeyPress:
            return False
        assert isinstance(event, QKeyEvent)
        text = event.text()
        if event.key() == Qt.Key_Backspace and self.typed:
            self.typed = self.typed[:-1]
        elif text and text.isprintable() and not text.isspace():
            self.typed += text
        else:
            return False
        self._timer.start()
        act = find_action(self.menu, self.typed) if self.typed else None
        if act is not None:
            self.menu.setActiveAction(act)
        return True


def add_type_ahead(menu: QMenu) -> TypeAhead:
    """Give ``menu`` type-ahead search over its entries' names."""
    return TypeAhead(menu)
