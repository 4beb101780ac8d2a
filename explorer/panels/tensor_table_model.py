"""Item model, sort/filter proxy and type editor behind the tensor table.

``TensorTableModel`` is a thin view of ``session.plan`` plus the session's statistics; a change
of type goes back through ``session.set_types`` (undoable). The proxy sorts with tuple keys so
ties stay grouped by (layer, name), and filters with a case-insensitive regular expression.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from quant_core.plan import TensorPlan, type_problem

from ..colors import text_color, type_color, type_tooltip
from ..session import ExplorerSession
from .tensor_text import (
    ALIGN_RIGHT,
    ALIGNMENT,
    BACKGROUND,
    DISPLAY,
    EDIT,
    FONT,
    FOREGROUND,
    TOOLTIP,
    USER,
    error_detail,
    error_text,
    format_bytes,
    has_importance,
    is_explicit,
    is_fallback,
    ordered_types,
    tensor_tooltip,
    type_icon,
)

Index = QModelIndex | QPersistentModelIndex

COLUMNS = (
    "Layer",
    "Name",
    "Category",
    "Shape",
    "Parameters",
    "Source",
    "Type",
    "Encoder",
    "Why",
    "Size",
    "Bits/weight",
    "Rel. error",
)
(
    COL_LAYER,
    COL_NAME,
    COL_CATEGORY,
    COL_SHAPE,
    COL_PARAMS,
    COL_SOURCE,
    COL_TYPE,
    COL_ENCODER,
    COL_WHY,
    COL_SIZE,
    COL_BPW,
    COL_ERROR,
) = range(len(COLUMNS))
HEADER_TIPS = {
    COL_LAYER: "Transformer block (blank for the token embedding, output and other global tensors)",
    COL_NAME: "Tensor name in the GGUF file",
    COL_CATEGORY: "llama.cpp's tensor category (what the preset rules look at)",
    COL_SHAPE: "ggml shape: row length first",
    COL_PARAMS: "Number of weights",
    COL_SOURCE: "Type in the source file",
    COL_TYPE: "Planned type (double-click or F2 to change; bold = chosen by hand, italic = shape fallback)",
    COL_ENCODER: "Who chooses the blocks' scales: ggml (llama-quantize's bytes) or HQQ (same type and size)",
    COL_WHY: "Which llama-quantize rule chose the type",
    COL_SIZE: "Bytes this tensor takes in the output file",
    COL_BPW: "Bits per weight of this tensor in the output file",
    COL_ERROR: "Relative RMSE ||W − Ŵ|| / ||W|| at the planned type; '~' = measured on a row sample",
}
SORT_KEY_ROLE = USER + 1
NAME_ROLE = USER + 2
PLAN_ROLE = USER + 3
_RIGHT = int(ALIGN_RIGHT.value) if hasattr(ALIGN_RIGHT, "value") else int(ALIGN_RIGHT)
_NUMERIC = (COL_LAYER, COL_PARAMS, COL_SIZE, COL_BPW, COL_ERROR)
_GROUP_SHADE = QColor(0, 0, 0, 16)
_KEPT_TEXT = QColor("#707070")


class TensorTableModel(QAbstractTableModel):
    """Rows are ``session.plan.tensors`` in plan order; columns are :data:`COLUMNS`.

    On ``plan_changed`` with the same tensors the rows are refreshed in place (dataChanged), so
    views keep their selection, current index and scroll position.
    """

    def __init__(self, session: ExplorerSession, parent: Any = None) -> None:
        super().__init__(parent)
        self.session = session
        self._rows: list[TensorPlan] = []
        self._row_of: dict[str, int] = {}
        session.model_changed.connect(self._on_model_changed)
        session.plan_changed.connect(self._on_plan_changed)
        session.stats_updated.connect(self._on_stats_updated)
        self._on_model_changed()

    # ----- following the session ----------------------------------------------------------
    def _on_model_changed(self) -> None:
        self.beginResetModel()
        self._take_rows()
        self.endResetModel()

    def _take_rows(self) -> None:
        plan = self.session.plan
        self._rows = list(plan.tensors) if plan is not None else []
        self._row_of = {tp.name: i for i, tp in enumerate(self._rows)}

    def _on_plan_changed(self) -> None:
        plan = self.session.plan
        if plan is None or [tp.name for tp in plan.tensors] != [tp.name for tp in self._rows]:
            self._on_model_changed()  # other tensors (new model, pruned layers): rebuild
            return
        self._take_rows()
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1))

    def _on_stats_updated(self, names: list[str]) -> None:
        for name in names:
            row = self._row_of.get(name)
            if row is not None:
                idx = self.index(row, COL_ERROR)
                self.dataChanged.emit(idx, idx)

    # ----- access -------------------------------------------------------------------------
    def tensor_plan(self, row: int) -> TensorPlan:
        return self._rows[row]

    def row_of(self, name: str) -> int | None:
        return self._row_of.get(name)

    def evaluation(self, tp: TensorPlan) -> Any:
        """The session's statistics for ``tp`` (from its cache: one copy, one invalidation rule)."""
        return self.session.evaluation(tp.name) if tp.quantizable else None

    # ----- Qt model interface ---------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:  # noqa: N802
        if orientation == Qt.Horizontal and role == DISPLAY:
            return COLUMNS[section]
        if orientation == Qt.Horizontal and role == TOOLTIP:
            return HEADER_TIPS.get(section)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == COL_TYPE and self._rows[index.row()].quantizable:
            flags |= Qt.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        tp, col = self._rows[index.row()], index.column()
        if role == DISPLAY:
            return self._display(tp, col)
        if role == BACKGROUND:
            if col == COL_TYPE and tp.quantizable:
                return type_color(tp.type)
            layer = tp.source.layer
            return _GROUP_SHADE if layer is not None and layer % 2 == 0 else None
        if role == FOREGROUND:
            if col != COL_TYPE:
                return None
            return text_color(type_color(tp.type)) if tp.quantizable else _KEPT_TEXT
        if role == ALIGNMENT:
            return _RIGHT if col in _NUMERIC else None
        if role == FONT:
            if col == COL_TYPE and (is_explicit(tp) or is_fallback(tp)):
                font = QFont()
                font.setBold(is_explicit(tp))
                font.setItalic(is_fallback(tp))
                return font
            return None
        if role == EDIT:
            return tp.type
        if role == TOOLTIP:
            return self._tooltip(tp, col)
        if role == SORT_KEY_ROLE:
            return self.sort_key(tp, col)
        if role == NAME_ROLE:
            return tp.name
        if role == PLAN_ROLE:
            return tp
        return None

    def _tooltip(self, tp: TensorPlan, col: int) -> str:
        if col == COL_ERROR:
            return error_detail(self.evaluation(tp)) if tp.quantizable else "not quantized"
        if col == COL_ENCODER:
            return f"{self._display(tp, col) or 'copied'}: {tp.encoder_why}"
        text = tensor_tooltip(tp, self.evaluation(tp))
        if col == COL_TYPE:
            text += "<hr>" + type_tooltip(tp.type)
            if tp.quantizable:
                text += "<br><i>Double-click or F2 to change.</i>"
        return text

    def _display(self, tp: TensorPlan, col: int) -> str:
        src = tp.source
        if col == COL_LAYER:
            return "" if src.layer is None else str(src.layer)
        if col == COL_NAME:
            return tp.name
        if col == COL_CATEGORY:
            return src.category
        if col == COL_SHAPE:
            return " × ".join(str(d) for d in src.shape)
        if col == COL_PARAMS:
            return f"{src.n_elements:,}"
        if col == COL_SOURCE:
            return src.src_type
        if col == COL_TYPE:
            return tp.type
        if col == COL_ENCODER:
            return "HQQ" if tp.encoder == "hqq" else ("ggml" if tp.quantizable and tp.converts else "")
        if col == COL_WHY:
            return tp.reason
        if col == COL_SIZE:
            return format_bytes(tp.n_bytes)
        if col == COL_BPW:
            return f"{8.0 * tp.n_bytes / max(1, src.n_elements):.3f}"
        return error_text(self.evaluation(tp))

    def sort_key(self, tp: TensorPlan, col: int) -> tuple:
        """Sort value of a cell, then (layer, name) so that ties stay grouped by layer."""
        src = tp.source
        group = (-1 if src.layer is None else src.layer, tp.name)
        value: Any
        if col == COL_LAYER:
            return group
        if col == COL_SHAPE:
            value = tuple(src.shape)
        elif col == COL_PARAMS:
            value = src.n_elements
        elif col == COL_SIZE:
            value = tp.n_bytes
        elif col == COL_BPW:
            value = tp.n_bytes / max(1, src.n_elements)
        elif col == COL_ERROR:
            ev = self.evaluation(tp)
            value = (0, ev.stats.rel_rmse) if ev is not None else (1, 0.0)  # unknown last
        else:
            value = self._display(tp, col)
        return (value, *group)

    def setData(self, index: Index, value: Any, role: int = Qt.EditRole) -> bool:  # noqa: N802
        if role != Qt.EditRole or not index.isValid() or index.column() != COL_TYPE:
            return False
        tp = self._rows[index.row()]
        if value == tp.type or type_problem(tp, str(value), has_importance(self.session, tp)) is not None:
            return False
        return self.session.set_types([tp.name], str(value))


class TensorFilterProxy(QSortFilterProxyModel):
    """Sorts by :meth:`TensorTableModel.sort_key`; keeps rows whose name, category or planned type match."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._regex: re.Pattern[str] | None = None
        self.setDynamicSortFilter(True)

    def set_pattern(self, text: str) -> str | None:
        """Filter by the regular expression ``text``; returns the error if it does not compile."""
        try:
            regex = re.compile(text, re.IGNORECASE) if text else None
        except (re.error, RecursionError, OverflowError) as err:
            return str(err)
        self.beginFilterChange()
        self._regex = regex
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        return None

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802
        if self._regex is None:
            return True
        tp = self.sourceModel().tensor_plan(row)
        return any(self._regex.search(s) for s in (tp.name, tp.source.category, tp.type))

    def lessThan(self, left: Index, right: Index) -> bool:  # noqa: N802
        m = self.sourceModel()
        col = left.column()
        return m.sort_key(m.tensor_plan(left.row()), col) < m.sort_key(m.tensor_plan(right.row()), col)


class TypeDelegate(QStyledItemDelegate):
    """Combo-box editor listing every type; those that cannot apply are disabled, with why."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:  # noqa: N802
        combo = QComboBox(parent)
        combo.setToolTip("Type for this tensor (greyed types cannot apply: hover them for why)")
        tp: TensorPlan | None = index.data(PLAN_ROLE)
        source = index.model().sourceModel() if hasattr(index.model(), "sourceModel") else index.model()
        importance = has_importance(source.session, tp) if tp is not None else None
        items = QStandardItemModel(combo)
        for name in ordered_types():
            item = QStandardItem(type_icon(name), name)
            problem = type_problem(tp, name, importance) if tp is not None else None
            item.setEnabled(problem is None)
            item.setToolTip(f"{name} cannot apply: {problem}" if problem else type_tooltip(name))
            items.appendRow(item)
        combo.setModel(items)
        combo.activated.connect(lambda _row, c=combo: self._commit(c))
        return combo

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        """Keep the type colour visible on selected rows: a highlight frame instead of a fill."""
        selected = bool(option.state & QStyle.State_Selected) and index.data(Qt.BackgroundRole) is not None
        if not selected:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        opt.state &= ~QStyle.State_Selected
        super().paint(painter, opt, index)
        painter.save()
        painter.setPen(QPen(option.palette.highlight().color(), 3))
        painter.drawRect(option.rect.adjusted(1, 1, -2, -2))
        painter.restore()

    def _commit(self, combo: QComboBox) -> None:
        self.commitData.emit(combo)
        self.closeEditor.emit(combo, QStyledItemDelegate.EndEditHint.NoHint)

    def setEditorData(self, editor: QWidget, index: Index) -> None:  # noqa: N802
        assert isinstance(editor, QComboBox)
        editor.setCurrentIndex(max(0, editor.findText(index.data(Qt.EditRole))))

    def setModelData(self, editor: QWidget, model: Any, index: Index) -> None:  # noqa: N802
        assert isinstance(editor, QComboBox)
        item = editor.model().item(editor.currentIndex())
        if item is not None and item.isEnabled() and item.text() != index.data(Qt.EditRole):
            model.setData(index, item.text(), Qt.EditRole)
