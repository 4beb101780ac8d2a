"""ExportDialog (placeholder until the dialog is built)."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QWidget

from ..session import ExplorerSession


class ExportDialog(QDialog):
    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
