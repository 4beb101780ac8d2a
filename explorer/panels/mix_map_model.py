"""Layer × tensor-kind grid behind the mix map, and the delegate that paints its cells.

Row 0 holds the quantizable tensors outside the blocks (token_embd, output, ...), each cell
naming its tensor; rows 1.. are blk.0 … blk.N. Columns are the tensor kinds (the name between
``blk.N.`` and ``.weight``): attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down,
then any other kind present in the blocks (attn_qkv, ffn_gate_exps, ...).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from quant_core.plan import TensorPlan

from ..colors import error_color, text_color, type_color
from ..session import ExplorerSession
from .tensor_text import (
    BACKGROUND,
    DISPLAY,
    FONT,
    FOREGROUND,
    TOOLTIP,
    USER,
    error_text,
    format_bytes,
    is_explicit,
    is_fallback,
    is_rule_chosen,
    tensor_tooltip,
)

Index = QModelIndex | QPersistentModelIndex

STANDARD_KINDS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
GLOBAL_ROW_LABEL = "token_embd / output"
NAMES_ROLE = USER + 1
EXPLICIT_ROLE = USER + 2
FALLBACK_ROLE = USER + 3
RULE_ROLE = USER + 4
HQQ_ROLE = USER + 5
_GLOBAL_ORDER = ("token_embd", "output")
_CELL_FLAGS = Qt.ItemIsEnabled | Qt.ItemIsSelectable
_NO_FLAGS = Qt.ItemFlag.NoItemFlags


def tensor_kind(name: str) -> str:
    """'blk.3.attn_q.weight' -> 'attn_q'; 'token_embd.weight' -> 'token_embd'."""
    parts = name.split(".")
    if parts[0] == "blk" and len(parts) > 2 and parts[1].isdigit():
        parts = parts[2:]
    if parts[-1] == "weight" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


class MixMapModel(QAbstractTableModel):
    """The grid of ``session.plan``; cells hold tensor names, coloured by type or by error."""

    def __init__(self, session: ExplorerSession, parent: Any = None) -> None:
        super().__init__(parent)
        self.session = session
        self.color_by_error = False
        self.worst_error = 0.0
        self.kinds: list[str] = []
        self.row_labels: list[str] = []
        self._cells: dict[tuple[int, int], list[str]] = {}
        self._plans: dict[str, TensorPlan] = {}
        self._where: dict[str, tuple[int, int]] = {}
        self.has_global_row = False
        session.model_changed.connect(self.rebuild)
        session.plan_changed.connect(self._on_plan_changed)
        session.stats_updated.connect(self._on_stats_updated)
        self.rebuild()

    # ----- layout of the grid ------------------------------------------------------------
    def rebuild(self) -> None:
        """Lay the grid out again (new model or other tensors)."""
        self.beginResetModel()
        self._layout()
        self.endResetModel()

    def _layout(self) -> None:
        plan = self.session.plan
        tensors = [tp for tp in plan.tensors if tp.quantizable] if plan is not None else []
        self._plans = {tp.name: tp for tp in tensors}
        in_blocks = [tp for tp in tensors if tp.name.startswith("blk.")]
        outside = [tp for tp in tensors if not tp.name.startswith("blk.")]
        present = {tensor_kind(tp.name) for tp in in_blocks}
        extra: list[str] = []
        for tp in in_blocks:
            kind = tensor_kind(tp.name)
            if kind not in STANDARD_KINDS and kind not in extra:
                extra.append(kind)
        self.kinds = [k for k in STANDARD_KINDS if k in present or not in_blocks] + extra
        outside.sort(
            key=lambda tp: (
                _GLOBAL_ORDER.index(tensor_kind(tp.name))
                if tensor_kind(tp.name) in _GLOBAL_ORDER
                else len(_GLOBAL_ORDER),
                tp.name,
            )
        )
        while len(self.kinds) < len(outside):
            self.kinds.append("")
        layers = sorted({int(tp.name.split(".")[1]) for tp in in_blocks})
        n_blocks = layers[-1] + 1 if layers else 0
        self.has_global_row = bool(outside)
        self.row_labels = ([GLOBAL_ROW_LABEL] if outside else []) + [f"blk.{i}" for i in range(n_blocks)]
        self._cells, self._where = {}, {}
        for col, tp in enumerate(outside):
            self._put(0, col, tp.name)
        offset = 1 if outside else 0
        column = {k: i for i, k in enumerate(self.kinds)}
        for tp in in_blocks:
            self._put(offset + int(tp.name.split(".")[1]), column[tensor_kind(tp.name)], tp.name)
        self._update_worst()

    def _put(self, row: int, col: int, name: str) -> None:
        self._cells.setdefault((row, col), []).append(name)
        self._where[name] = (row, col)

    # ----- following the session ----------------------------------------------------------
    def _on_plan_changed(self) -> None:
        plan = self.session.plan
        names = {tp.name for tp in plan.tensors if tp.quantizable} if plan is not None else set()
        if names != set(self._plans):
            self.rebuild()
            return
        assert plan is not None
        self._plans = {tp.name: tp for tp in plan.tensors if tp.quantizable}
        self._update_worst()
        self._emit_all()

    def _on_stats_updated(self, names: list[str]) -> None:
        if not self.color_by_error:
            for name in names:  # tooltips only
                if name in self._where:
                    idx = self.index(*self._where[name])
                    self.dataChanged.emit(idx, idx, [Qt.ToolTipRole])
            return
        old = self.worst_error
        self._update_worst()
        if old != self.worst_error:
            self._emit_all()
        else:
            for name in names:
                if name in self._where:
                    idx = self.index(*self._where[name])
                    self.dataChanged.emit(idx, idx)

    def set_color_by_error(self, on: bool) -> None:
        self.color_by_error = on
        self._update_worst()
        self._emit_all()

    def _emit_all(self) -> None:
        if self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))

    def _update_worst(self) -> None:
        if not self.color_by_error:
            return
        values = [e for n in self._plans if (e := self.rel_error(n)) is not None]
        self.worst_error = max(values, default=0.0)

    # ----- access -------------------------------------------------------------------------
    def evaluation(self, name: str) -> Any:
        return self.session.evaluation(name)  # the session's cache: one copy, one invalidation rule

    def rel_error(self, name: str) -> float | None:
        ev = self.evaluation(name)
        if ev is None or not math.isfinite(ev.stats.rel_rmse):
            return None
        return float(ev.stats.rel_rmse)

    def names_at(self, row: int, col: int) -> list[str]:
        return self._cells.get((row, col), [])

    def cell_of(self, name: str) -> tuple[int, int] | None:
        return self._where.get(name)

    def tensor_plan(self, name: str) -> TensorPlan:
        return self._plans[name]

    def used_types(self) -> dict[str, int]:
        """Types on the map with how many tensors have each, fewest bits first."""
        counts: dict[str, int] = {}
        for tp in self._plans.values():
            counts[tp.type] = counts.get(tp.type, 0) + 1
        return counts

    # ----- Qt model interface ---------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.row_labels)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.kinds)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:  # noqa: N802
        labels = self.kinds if orientation == Qt.Horizontal else self.row_labels
        if section >= len(labels):
            return None
        if role == DISPLAY:
            return labels[section]
        if role == TOOLTIP:
            return self._header_tip(section, orientation)
        return None

    def _header_tip(self, section: int, orientation: Qt.Orientation) -> str:
        size = self.session.size
        if orientation == Qt.Horizontal:
            kind = self.kinds[section]
            names = [
                n
                for (r, c), ns in self._cells.items()
                if c == section and (r > 0 or not self.has_global_row)
                for n in ns
            ]
            total = sum(size.by_tensor.get(n, 0) for n in names) if size else 0
            return f"{kind}: {len(names)} tensor(s) in the blocks, {format_bytes(total)}. Click to select the column."
        label = self.row_labels[section]
        if size is None:
            return label
        if label == GLOBAL_ROW_LABEL:
            names = [n for (r, _), ns in self._cells.items() if r == 0 for n in ns]
            return f"Tensors outside the blocks: {', '.join(names)}. Click to select the row."
        return f"{label}: {format_bytes(size.by_layer.get(label.split('.')[1], 0))}. Click to select the row."

    def flags(self, index: Index) -> Qt.ItemFlag:
        if index.isValid() and (index.row(), index.column()) in self._cells:
            return _CELL_FLAGS
        return _NO_FLAGS

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        names = self._cells.get((index.row(), index.column()))
        if not names:
            return None
        plans = [self._plans[n] for n in names]
        if role == DISPLAY:
            return self._text(plans, index.row())
        if role == BACKGROUND:
            return self._background(plans[0])
        if role == FOREGROUND:
            return text_color(self._background(plans[0]))
        if role == EXPLICIT_ROLE:
            return any(is_explicit(tp) for tp in plans)
        if role == FALLBACK_ROLE:
            return any(is_fallback(tp) for tp in plans)
        if role == RULE_ROLE:
            return any(is_rule_chosen(tp) for tp in plans)
        if role == HQQ_ROLE:
            return any(tp.encoder == "hqq" for tp in plans)
        if role == FONT:
            if any(is_explicit(tp) for tp in plans):
                font = QFont()
                font.setBold(True)
                return font
            return None
        if role == TOOLTIP:
            return "<hr>".join(tensor_tooltip(tp, self.evaluation(tp.name)) for tp in plans)
        if role == NAMES_ROLE:
            return list(names)
        return None

    def _text(self, plans: list[TensorPlan], row: int) -> str:
        types = "/".join(dict.fromkeys(tp.type for tp in plans))
        if self.color_by_error:
            err = error_text(self.evaluation(plans[0].name))
            types = f"{types} {err}" if err else types
        if self.has_global_row and row == 0:
            return f"{tensor_kind(plans[0].name)}\n{types}"
        return types

    def _background(self, tp: TensorPlan) -> QColor:
        if self.color_by_error:
            return error_color(self.rel_error(tp.name), self.worst_error)
        return type_color(tp.type)


def _draw_hqq_mark(painter: QPainter, rect: QRect, fg: QColor, bg: QColor, font: QFont) -> None:
    """A small "H" badge (text colour, cell colour inverted) at the left: the cell is HQQ-encoded."""
    small = QFont(font)
    small.setBold(True)
    small.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
    side = min(rect.height() - 4, QFontMetrics(small).height())
    badge = QRect(rect.left() + 3, rect.center().y() - side // 2, side, side)
    painter.setPen(Qt.NoPen)
    painter.setBrush(fg)
    painter.drawRect(badge)
    painter.setFont(small)
    painter.setPen(bg)
    painter.drawText(badge, Qt.AlignCenter, "H")


class MixCellDelegate(QStyledItemDelegate):
    """Paints a cell: type colour, type name, a frame when chosen by hand, a corner on fallback,
    and a thick highlight frame when selected (so the colour stays visible)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        background = index.data(Qt.BackgroundRole)
        if background is None:
            return
        rect: QRect = option.rect.adjusted(1, 1, -1, -1)
        fg = index.data(Qt.ForegroundRole) or QColor("black")
        explicit = bool(index.data(EXPLICIT_ROLE))
        painter.save()
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.fillRect(rect, background)
        font = QFont(option.font)
        font.setBold(explicit)
        painter.setFont(font)
        painter.setPen(fg)
        painter.drawText(rect, Qt.AlignCenter, str(index.data(Qt.DisplayRole)))
        if explicit:
            painter.setPen(QPen(fg, 2, Qt.DashLine))
            painter.drawRect(rect.adjusted(3, 3, -3, -3))
        elif index.data(RULE_ROLE):
            painter.setPen(QPen(fg, 1, Qt.DotLine))
            painter.drawRect(rect.adjusted(3, 3, -3, -3))
        if index.data(FALLBACK_ROLE):
            size = min(10, rect.height() // 2)
            corner = QPolygonF(
                [
                    QPointF(rect.right() - size, rect.top()),
                    QPointF(rect.right() + 1, rect.top()),
                    QPointF(rect.right() + 1, rect.top() + size),
                ]
            )
            painter.setPen(Qt.NoPen)
            painter.setBrush(fg)
            painter.drawPolygon(corner)
        if index.data(HQQ_ROLE):
            _draw_hqq_mark(painter, rect, fg, QColor(background), font)
        if option.state & QStyle.State_Selected:
            painter.setPen(QPen(option.palette.highlight().color(), 3))
            painter.setBrush(Qt.NoBrush)
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        painter.restore()
