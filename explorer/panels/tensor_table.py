"""The tensor table panel: every tensor of the plan, grouped by layer, with regex filter and types.

The view shows :class:`~.tensor_table_model.TensorTableModel` through a sort/filter proxy. Its row
selection drives ``session.select`` and follows ``selection_changed``; types are assigned through
the session (per cell with the combo-box editor, or to the whole selection from the toolbar or
the context menu), so every change is undoable and the size updates at once.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from quant_core.plan import TensorPlan

from ..colors import type_tooltip
from ..hqq_toggle import add_hqq_action
from ..session import ExplorerSession
from .tensor_table_model import (
    COL_LAYER,
    COL_NAME,
    COL_TYPE,
    COL_WHY,
    TensorFilterProxy,
    TensorTableModel,
    TypeDelegate,
)
from .tensor_text import (
    build_type_menu,
    first_problem,
    is_explicit,
    ordered_types,
    representatives,
    type_icon,
)

_INVALID_STYLE = "QLineEdit { background: #f8d0d0; }"
_DEFAULT_TYPE = "Q6_K"


class TensorTable(QWidget):
    """Tensor table: sort, filter by regex, multi-select, assign or reset types of the selection."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self._names: list[str] = []
        self.menu: QMenu | None = None
        self.model = TensorTableModel(session, self)
        self.proxy = TensorFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        session.model_changed.connect(self._on_model_changed)
        session.plan_changed.connect(self._update_controls)
        session.selection_changed.connect(self._on_session_selection)
        self._on_model_changed()

    # ----- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        self.filter_edit = QLineEdit()
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setPlaceholderText("Filter (regex on name, category or type), e.g. ffn_down|attn_v")
        self.filter_edit.setToolTip(
            "Regular expression matched (case-insensitive) against the tensor name, "
            "its category and its planned type. Red = not a valid expression."
        )
        self.filter_edit.textChanged.connect(self._on_filter_changed)
        self.count_label = QLabel()
        self.count_label.setToolTip("Tensors shown / all tensors; selected tensors")

        self.type_combo = QComboBox()
        self.type_combo.setToolTip("Type to give the selected tensors (greyed: fits none of them)")
        self.type_combo.setModel(QStandardItemModel(self.type_combo))
        for name in ordered_types():
            item = QStandardItem(type_icon(name), name)
            item.setToolTip(type_tooltip(name))
            self.type_combo.model().appendRow(item)
        self.type_combo.setCurrentText(_DEFAULT_TYPE)
        self.type_combo.currentIndexChanged.connect(lambda _i: self._update_controls())
        self.set_button = QPushButton("Set type")
        self.set_button.setToolTip(
            "Give the selected tensors the type on the left (tensors it cannot fit are skipped); undo with Ctrl+Z"
        )
        self.set_button.clicked.connect(self.assign_selected)
        self.reset_button = QPushButton("Reset to preset")
        self.reset_button.setToolTip("Drop the hand-chosen types of the selected tensors (Delete)")
        self.reset_button.clicked.connect(self.reset_selected)

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.count_label)
        bar.addSpacing(12)
        bar.addWidget(self.type_combo)
        bar.addWidget(self.set_button)
        bar.addWidget(self.reset_button)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setItemDelegateForColumn(COL_TYPE, TypeDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COL_LAYER, Qt.AscendingOrder)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.view.setWordWrap(False)
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setSectionResizeMode(COL_WHY, QHeaderView.Stretch)
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            signal.connect(self._on_rows_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    # ----- session -> widget ------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        self.setEnabled(self.session.plan is not None)
        self.view.resizeColumnsToContents()
        self.view.setColumnWidth(COL_NAME, max(self.view.columnWidth(COL_NAME), 160))
        self._on_session_selection(self.session.selected)
        self._update_controls()

    def _on_session_selection(self, names: list[str]) -> None:
        """Select the rows of ``names`` without sending the selection back to the session."""
        if names == self._names:
            return
        rows = []
        for name in names:
            row = self.model.row_of(name)
            if row is not None:
                idx = self.proxy.mapFromSource(self.model.index(row, 0))
                if idx.isValid():
                    rows.append(idx.row())
        last = self.proxy.columnCount() - 1
        selection = QItemSelection()
        for top, bottom in _runs(sorted(rows)):  # one range per run of adjacent rows
            selection.select(self.proxy.index(top, 0), self.proxy.index(bottom, last))
        sm = self.view.selectionModel()
        self._syncing = True
        try:
            sm.select(selection, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
            if rows:
                first = self.proxy.index(rows[0], COL_NAME)
                sm.setCurrentIndex(first, QItemSelectionModel.NoUpdate)
                self.view.scrollTo(first)
        finally:
            self._syncing = False
        self._names = self._read_selection()
        self._update_controls()

    def _update_controls(self) -> None:
        plans = self.selected_plans()
        distinct = representatives(plans)
        model = self.type_combo.model()
        assert isinstance(model, QStandardItemModel)
        for i in range(model.rowCount()):
            item = model.item(i)
            problem = first_problem(distinct, item.text()) if plans else None
            item.setEnabled(problem is None)
            item.setToolTip(f"cannot apply: {problem}" if problem else type_tooltip(item.text()))
        current = model.item(self.type_combo.currentIndex())
        self.set_button.setEnabled(bool(plans) and current is not None and current.isEnabled())
        self.reset_button.setEnabled(any(is_explicit(tp) for tp in plans))
        self._update_count()

    def _update_count(self, *_args: object) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        text = f"{shown} of {total} tensors" if shown != total else f"{total} tensors"
        self.count_label.setText(text + (f", {len(self._names)} selected" if self._names else ""))

    def _on_rows_moved(self, *_args: object) -> None:
        self._names = self._read_selection()
        self._update_count()

    # ----- widget -> session ------------------------------------------------------------------
    def _on_view_selection(self, *_args: object) -> None:
        self._names = self._read_selection()
        if not self._syncing:
            names = self._names
            if names != self.session.selected:
                self.session.select(names)
        self._update_controls()

    def _on_filter_changed(self, text: str) -> None:
        problem = self.proxy.set_pattern(text)
        self.filter_edit.setStyleSheet(_INVALID_STYLE if problem else "")
        self.filter_edit.setToolTip(
            f"Invalid regular expression: {problem}"
            if problem
            else "Regular expression matched (case-insensitive) against the tensor name, "
            "its category and its planned type."
        )
        self._update_count()

    def _on_context_menu(self, pos: QPoint) -> None:
        plans = self.selected_plans()
        if not plans:
            return
        self.menu = build_type_menu(self, plans, self.assign_selected, self.reset_selected)
        add_hqq_action(self.menu, self.session, plans)
        self.menu.popup(self.view.viewport().mapToGlobal(pos))

    def assign_selected(self, type_name: str | None = None) -> bool:
        """Give the selected tensors ``type_name`` (default: the toolbar combo's type)."""
        names = self.selected_names()
        if not names:
            return False
        return self.session.set_types(names, type_name or self.type_combo.currentText())

    def reset_selected(self) -> bool:
        """Back to the preset's choice for the selected tensors."""
        names = self.selected_names()
        return bool(names) and self.session.reset_types(names)

    # ----- selection helpers -------------------------------------------------------------------
    def selected_names(self) -> list[str]:
        """Names of the selected rows: the current row first, then in table order."""
        return list(self._names)

    def _read_selection(self) -> list[str]:
        sm = self.view.selectionModel()
        rows = sorted({r for rng in sm.selection() for r in range(rng.top(), rng.bottom() + 1)})
        names = [self.model.tensor_plan(self.proxy.mapToSource(self.proxy.index(r, 0)).row()).name for r in rows]
        current = sm.currentIndex()
        if current.isValid() and current.row() in rows:
            name = self.model.tensor_plan(self.proxy.mapToSource(current).row()).name
            names.remove(name)
            names.insert(0, name)
        return names

    def selected_plans(self) -> list[TensorPlan]:
        return [self.model.tensor_plan(row) for n in self._names if (row := self.model.row_of(n)) is not None]


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return runs
