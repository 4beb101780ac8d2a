"""The importance matrix's per-tensor statistics (``llama-imatrix --show-statistics``) as sortable tables.

One row per weight: Σ(Act²) and its share of the total over all weights, mean, max, min and
spread of the mean squared activations, the share of active columns, entropy, ZD and the cosine
similarity with the same weight one block earlier; below, the per-block averages. Click a header
to sort; the filter keeps the rows whose name matches a regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from quant_core.errors import QuantError
from quant_core.imatrix_calc.statistics import LayerStats, TensorStats, statistics_for_file

SORT_ROLE = Qt.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Column:
    """A table column: its title, tooltip, raw value (sorting) and its text."""

    title: str
    tip: str
    value: Callable[[Any], Any]
    text: Callable[[Any], str]


def _num(fmt: str, scale: float = 1.0) -> Callable[[float], str]:
    return lambda v: format(v * scale, fmt)


TENSOR_COLUMNS = (
    Column("Tensor", "Weight name", lambda s: s.name, str),
    Column("Layer", "Block number (- outside the blocks)", lambda s: s.block if s.block is not None else -1,
           lambda v: "-" if v < 0 else str(v)),
    Column("Kind", "Tensor kind", lambda s: s.kind, str),
    Column("Σ(Act²)", "Sum of the mean squared activations over the input columns", lambda s: s.total, _num(".2f")),
    Column("Share", "This tensor's Σ(Act²) as a share of the total over all tensors", lambda s: s.share,
           _num(".2f", 100)),
    Column("μ", "Mean squared activation per column", lambda s: s.mean, _num(".4g")),
    Column("Max", "Largest mean squared activation", lambda s: s.max, _num(".4f")),
    Column("Min", "Smallest mean squared activation", lambda s: s.min, _num(".4f")),
    Column("σ", "Standard deviation of the mean squared activations", lambda s: s.std, _num(".4g")),
    Column("% Active", "Columns whose mean squared activation is above 1e-5", lambda s: s.active, _num(".2f", 100)),
    Column("N", "Values (columns times experts with data)", lambda s: s.elements, str),
    Column("Entropy", "Entropy of the activations' distribution (bits)", lambda s: s.entropy, _num(".4f")),
    Column("E (norm) %", "Entropy as a percentage of log2 N (100: all columns alike)", lambda s: s.entropy_norm,
           _num(".2f")),
    Column("ZD %", "Columns more than one σ above the mean", lambda s: s.zd, _num(".2f", 100)),
    Column("CosSim", "Cosine similarity with the same tensor one block earlier", lambda s: s.cossim, _num(".4f")),
)  # fmt: skip

LAYER_COLUMNS = (
    Column("Layer", "Block number", lambda x: x.block, str),
    Column("μΣ(Act²)", "Σ(Act²) averaged over the block's tensors, weighted by N", lambda x: x.total, _num(".2f")),
    Column("μZD %", "ZD averaged over the block's tensors, weighted by N", lambda x: x.zd, _num(".4f", 100)),
    Column("μCosSim", "Cosine similarity averaged over the block's tensors, weighted by N", lambda x: x.cossim,
           _num(".4f")),
)  # fmt: skip


class RowsModel(QAbstractTableModel):
    """Read-only rows shown through :class:`Column` definitions; ``SORT_ROLE`` gives raw values."""

    def __init__(self, rows: list[Any], columns: tuple[Column, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows, self.columns = rows, columns

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 (Qt's API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: _Index, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid():
            return None
        col = self.columns[index.column()]
        value = col.value(self.rows[index.row()])
        if role == Qt.DisplayRole:
            return col.text(value)
        if role == SORT_ROLE:
            return value
        if role == Qt.TextAlignmentRole and not isinstance(value, str):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole) -> Any:  # noqa: N802
        if orientation != Qt.Horizontal:
            return None
        if role == Qt.DisplayRole:
            return self.columns[section].title
        if role == Qt.ToolTipRole:
            return self.columns[section].tip
        return None


def _table(model: RowsModel, parent: QWidget) -> tuple[QTableView, QSortFilterProxyModel]:
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setFilterKeyColumn(0)
    view = QTableView(parent)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QAbstractItemView.SelectRows)
    view.setEditTriggers(QAbstractItemView.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    return view, proxy


class ImatrixStatsDialog(QDialog):
    """Sortable tensor and block statistics of one importance matrix file."""

    def __init__(
        self, path: str | Path, tensors: list[TensorStats], layers: list[LayerStats], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Importance matrix statistics — {Path(path).name}")
        layout = QVBoxLayout(self)
        top = max(tensors, key=lambda s: s.total)
        summary = QLabel(
            f"{len(tensors)} tensors; the largest Σ(Act²) is {top.name} with {100 * top.share:.1f} % of the total. "
            "Click a header to sort."
        )
        summary.setWordWrap(True)
        layout.addWidget(summary)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter tensors (regular expression)")
        self.filter_edit.textChanged.connect(self._on_filter)
        layout.addWidget(self.filter_edit)
        self.tensor_model = RowsModel(tensors, TENSOR_COLUMNS, self)
        self.tensor_view, self.tensor_proxy = _table(self.tensor_model, self)
        self.tensor_view.sortByColumn(3, Qt.DescendingOrder)
        self.layer_model = RowsModel(layers, LAYER_COLUMNS, self)
        self.layer_view, self.layer_proxy = _table(self.layer_model, self)
        self.layer_view.sortByColumn(0, Qt.AscendingOrder)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.tensor_view)
        split.addWidget(self.layer_view)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout.addWidget(split, 1)
        self.resize(1100, 640)

    def _on_filter(self, text: str) -> None:
        try:
            re.compile(text)
        except re.error:
            self.filter_edit.setStyleSheet("color: #b00020;")
            return
        self.filter_edit.setStyleSheet("")
        self.tensor_proxy.setFilterRegularExpression(text)


def show_imatrix_statistics(parent: QWidget, path: str) -> ImatrixStatsDialog | None:
    """Compute the statistics of the file at ``path`` and show them (a one-line message if unreadable)."""
    try:
        tensors, layers = statistics_for_file(path)
    except QuantError as err:
        QMessageBox.warning(parent, "Importance matrix statistics", str(err))
        return None
    dialog = ImatrixStatsDialog(path, tensors, layers, parent)
    dialog.setAttribute(Qt.WA_DeleteOnClose)
    dialog.show()
    return dialog
