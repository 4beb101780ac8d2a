"""The Compare panel: a reference GGUF beside the plan, tensor by tensor, and "Clone this mix".

Tables show :class:`~quant_core.compare.Comparison` (computed by
:class:`~explorer.reference.ReferenceTracker`, which reads the reference off the GUI thread):
every tensor with the reference's type and bits per weight next to the plan's, the totals per
category and per layer, and the one-line summary. Selecting tensor rows selects them in the
session (the inspector and the map follow). "Clone this mix" applies the reference's types as
one undoable step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from quant_core.compare import Comparison, TensorRow, Total

from ..colors import text_color, type_color
from ..reference import ReferenceTracker
from ..session import ExplorerSession

SORT_ROLE = Qt.UserRole + 1
TENSOR_HEADERS = ("Tensor", "Ref type", "Ref bpw", "Plan type", "Plan bpw", "Differs")
TOTAL_HEADERS = ("Plan MiB", "Plan bpw", "Ref MiB", "Ref bpw", "Differ")
_TYPE_COLUMNS = (1, 3)
_DIFFERS = "≠"
AnyIndex = QModelIndex | QPersistentModelIndex


class RowsModel(QAbstractTableModel):
    """A read-only table of rows; each cell is (shown text, sort value)."""

    def __init__(self, headers: Sequence[str], parent: Any = None) -> None:
        super().__init__(parent)
        self.headers = tuple(headers)
        self.rows: list[tuple[tuple[str, Any], ...]] = []
        self.colored: tuple[int, ...] = ()

    def set_rows(self, rows: list[tuple[tuple[str, Any], ...]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802 (Qt's API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return self.headers[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid():
            return None
        text, value = self.rows[index.row()][index.column()]
        if role == Qt.DisplayRole:
            return text
        if role == SORT_ROLE:
            return value
        if index.column() in self.colored and text and text != "—":
            if role == Qt.BackgroundRole:
                return type_color(text)
            if role == Qt.ForegroundRole:
                return text_color(type_color(text))
        if role == Qt.TextAlignmentRole and isinstance(value, (int, float)) and index.column() > 0:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None


def tensor_cells(r: TensorRow) -> tuple[tuple[str, Any], ...]:
    """One tensor row of the table: name, reference type and bpw, plan type and bpw, differs."""
    ref_bpw = r.ref_bpw
    return (
        (r.name, r.name),
        (r.ref_type or "—", r.ref_type or ""),
        ("—" if ref_bpw is None else f"{ref_bpw:.2f}", -1.0 if ref_bpw is None else ref_bpw),
        (r.plan_type, r.plan_type),
        (f"{r.plan_bpw:.2f}", r.plan_bpw),
        (_DIFFERS if r.differs else ("missing" if r.ref_type is None else ""), int(r.differs)),
    )


def total_cells(t: Total, order: int) -> tuple[tuple[str, Any], ...]:
    """One totals row (``order``: its place in the comparison): key, MiB and bpw on both sides."""
    key = t.key if t.ref_key is None else f"{t.key} (ref {t.ref_key})"
    return (
        (key, order),
        (f"{t.plan_bytes / 1024**2:.3f}", t.plan_bytes),
        (f"{t.plan_bpw:.2f}", t.plan_bpw),
        (f"{t.ref_bytes / 1024**2:.3f}", t.ref_bytes),
        (f"{t.ref_bpw:.2f}", t.ref_bpw),
        (str(t.differing), t.differing),
    )


def _table(model: RowsModel, proxy: QSortFilterProxyModel) -> QTableView:
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(-1, Qt.AscendingOrder)  # the comparison's own order until a header is clicked
    view.setSelectionBehavior(QAbstractItemView.SelectRows)
    view.setEditTriggers(QAbstractItemView.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.Stretch)  # the names get the room left
    return view


class ComparePanel(QWidget):
    """A reference GGUF beside the plan: tensor table, totals, summary, and cloning its mix."""

    reference_changed = Signal()

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tracker = ReferenceTracker(session, self)
        self.open_button = QPushButton("Open reference…")
        self.open_button.setToolTip("Open a second GGUF (a published quant) to compare with the plan")
        self.clone_button = QPushButton("Clone this mix")
        self.clone_button.setToolTip(
            "Give the plan the reference's type per tensor kind and relative depth (one undoable step)"
        )
        self.only_differing = QCheckBox("Only differences")
        self.title = QLabel("No reference: File ▸ Compare with…")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.tensors = RowsModel(TENSOR_HEADERS, self)
        self.tensors.colored = _TYPE_COLUMNS
        self.tensor_proxy = QSortFilterProxyModel(self)
        self.tensor_proxy.setFilterKeyColumn(len(TENSOR_HEADERS) - 1)  # "Differs": ≠ or missing
        self.tensor_view = _table(self.tensors, self.tensor_proxy)
        self.categories = RowsModel(("Category", *TOTAL_HEADERS), self)
        self.layers = RowsModel(("Layer", *TOTAL_HEADERS), self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.tensor_view, "Tensors")
        self.tabs.addTab(_table(self.categories, QSortFilterProxyModel(self)), "Categories")
        self.tabs.addTab(_table(self.layers, QSortFilterProxyModel(self)), "Layers")
        self._layout()
        self.open_button.clicked.connect(self.open_dialog)
        self.clone_button.clicked.connect(self.tracker.clone)
        self.only_differing.toggled.connect(self._on_filter)
        self.tracker.changed.connect(self._on_changed)
        self.tracker.loading.connect(self._on_loading)
        self.tracker.failed.connect(self._on_failed)
        self.tensor_view.selectionModel().selectionChanged.connect(self._on_selection)
        self._on_changed()

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.clone_button)
        buttons.addStretch(1)
        buttons.addWidget(self.only_differing)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)

    def open_reference(self, path: str | Path) -> None:
        """Read ``path`` in the background and compare it with the plan."""
        self.tracker.open(path)

    def open_dialog(self) -> None:
        model = self.session.model
        start = str(model.path.parent) if model else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Compare with", start, "GGUF models (*.gguf);;All files (*)")
        if path:
            self.open_reference(path)

    def _on_changed(self) -> None:
        c = self.tracker.comparison
        ref = self.tracker.reference
        self.clone_button.setEnabled(c is not None)
        if ref is None or c is None:
            self.summary.setText("")
            for model in (self.tensors, self.categories, self.layers):
                model.set_rows([])
            self.reference_changed.emit()
            return
        self.title.setText(self._title(c))
        self.title.setToolTip(str(ref.path))
        self.summary.setText(c.summary())
        self.tensors.set_rows([tensor_cells(r) for r in c.rows])
        self.categories.set_rows([total_cells(t, i) for i, t in enumerate(c.by_category)])
        self.layers.set_rows([total_cells(t, i) for i, t in enumerate(c.by_layer)])
        self.reference_changed.emit()

    @staticmethod
    def _title(c: Comparison) -> str:
        return (
            f"{c.reference}: {c.ref_file_bytes / 1024**2:,.2f} MiB, {c.total.ref_bpw:.2f} bpw, "
            f"{c.n_ref_layers} layers — plan {c.plan_file_bytes / 1024**2:,.2f} MiB, {c.total.plan_bpw:.2f} bpw"
        )

    def _on_loading(self, name: str) -> None:
        if name:
            self.title.setText(f"Reading {name}…")
        self.open_button.setEnabled(not name)

    def _on_failed(self, message: str) -> None:
        self.title.setText(message.splitlines()[0] if message else "cannot open the reference")
        self.title.setToolTip(message)

    def _on_filter(self, checked: bool) -> None:
        self.tensor_proxy.setFilterRegularExpression("." if checked else "")

    def _on_selection(self, *_: Any) -> None:
        rows = self.tensor_view.selectionModel().selectedRows(0)
        names = [self.tensor_proxy.data(i) for i in rows]
        if names:
            self.session.select(names)

    def shutdown(self) -> None:
        self.tracker.shutdown()
