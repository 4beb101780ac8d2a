"""Per-tensor problems of the current plan, collected in one list instead of one dialog each.

A tensor whose statistics cannot be computed (a type that needs an importance matrix it lacks,
an entry that does not fit) is recorded by the statistics jobs in the session's cache; this list
is the part of those failures that applies to the current plan, so it follows every plan change.
The window shows its :meth:`summary` on the status line and the list in a dialog on request;
the status line also notes a source whose weights look dequantized from a quantized file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from quant_core.errors import QuantError
from quant_core.provenance import WARNING, looks_dequantized

if TYPE_CHECKING:
    from .session import ExplorerSession

SHOWN_NAMES = 3  # names in the one-line summary; the dialog lists them all


class ProblemList(QObject):
    """``(tensor name, reason)`` for each tensor of the current plan that cannot be measured."""

    changed = Signal()

    def __init__(self, session: ExplorerSession) -> None:
        super().__init__(session)
        self._session = session
        self.items: list[tuple[str, str]] = []
        session.plan_changed.connect(self.refresh)
        session.model_changed.connect(self.refresh)

    def refresh(self) -> None:
        """Recompute the list from the plan and the recorded failures; emit ``changed`` if it differs."""
        s = self._session
        failures = s.stats.failures
        items = []
        if s.plan is not None and failures:
            keys = [(tp.name, tp.type, tp.encoder) for tp in s.plan.tensors]
            items = [(key[0], failures[key]) for key in keys if key in failures]
        if items != self.items:
            self.items = items
            self.changed.emit()

    def summary(self) -> str:
        """One line: how many tensors cannot be measured and the first names ('' when none)."""
        n = len(self.items)
        if n == 0:
            return ""
        names = ", ".join(name for name, _ in self.items[:SHOWN_NAMES])
        more = ", …" if n > SHOWN_NAMES else ""
        noun = "tensor cannot" if n == 1 else "tensors cannot"
        return f"{n} {noun} be measured: {names}{more} (Problems… lists why)"


class ProblemsDialog(QDialog):
    """The tensors that cannot be measured, one line each with the reason."""

    def __init__(self, problems: ProblemList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tensors that cannot be measured")
        self.list = QListWidget()
        self.list.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(640, 360)
        self._problems = problems
        problems.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for name, reason in self._problems.items:
            self.list.addItem(f"{name}: {reason}")


class ProblemsButton(QToolButton):
    """The status bar's one line about per-tensor problems; a click opens the list."""

    def __init__(self, problems: ProblemList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.problems = problems
        self.dialog: ProblemsDialog | None = None
        self.setAutoRaise(True)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # a long line never widens the window
        self.clicked.connect(self.open_list)
        problems.changed.connect(self._update)
        self._update()

    def _update(self) -> None:
        text = self.problems.summary()
        self.setText(text)
        self.setToolTip(text)
        self.setVisible(bool(text))

    def open_list(self) -> ProblemsDialog:
        """Show the list (one dialog, kept up to date while open)."""
        if self.dialog is None:
            self.dialog = ProblemsDialog(self.problems, self.window())
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog


class SourceNote(QLabel):
    """A status bar note when the model's float weights look dequantized from a quantized file."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.setStyleSheet("color: #b35900")
        session.model_changed.connect(self._update)
        self._update()

    def _update(self) -> None:
        model = self._session.model
        try:
            flagged = model is not None and looks_dequantized(model)
        except QuantError:  # an unreadable tensor is reported where it is used
            flagged = False
        self.setText(WARNING if flagged else "")
        self.setToolTip(
            "Few distinct values per block of 32 weights: this float model was made from a quantized "
            "file, so error figures compare one quantization with another."
            if flagged
            else ""
        )
        self.setVisible(flagged)
