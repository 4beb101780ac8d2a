"""Shared wording and widgets about one tensor's plan: text, tooltips, type icons and type menus.

Used by the tensor table and the mix map so both describe a tensor the same way. Nothing here
computes statistics: it only formats what the session already holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from html import escape
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QWidget

from quant_core.imatrix import has_importance as tensor_has_importance
from quant_core.plan import TensorPlan, type_problem
from quant_core.qtypes import QTYPES
from quant_core.reasons import ReasonKind

from ..colors import type_color, type_tooltip


def ordered_types() -> list[str]:
    """Every type the planner knows, from fewest to most bits per weight."""
    return [q.name for q in sorted(QTYPES.values(), key=lambda q: (q.bpw, q.name))]


def is_explicit(tp: TensorPlan) -> bool:
    """The type was chosen for this tensor: by hand (map, table or recipe), by an auto-mix or a clone."""
    return tp.why.kind in (ReasonKind.EXPLICIT, ReasonKind.AUTO_MIX, ReasonKind.CLONED)


def is_auto_mixed(tp: TensorPlan) -> bool:
    """An auto-mix chose this tensor's type (marked like a hand-chosen one, not pinned)."""
    return tp.why.kind is ReasonKind.AUTO_MIX


def is_rule_chosen(tp: TensorPlan) -> bool:
    """A ``--tensor-type`` rule gave this tensor its type (marked on the map with its own frame)."""
    return tp.why.kind is ReasonKind.USER_RULE


def is_fallback(tp: TensorPlan) -> bool:
    """The rules wanted another type (``tp.why.fallback_from``) but the row length forced a fallback."""
    return tp.why.kind is ReasonKind.SHAPE_FALLBACK


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def error_text(evaluation: object | None) -> str:
    """Relative RMSE in percent; '~' marks a value measured on a row sample."""
    if evaluation is None:
        return ""
    rel = evaluation.stats.rel_rmse  # type: ignore[attr-defined]
    mark = "~" if evaluation.sampled else ""  # type: ignore[attr-defined]
    return f"{mark}{100.0 * rel:.2f} %"


def error_detail(evaluation: object | None) -> str:
    """One line saying how the error was measured."""
    if evaluation is None:
        return "relative error: not measured yet"
    ev = evaluation
    how = f"sampled {ev.rows_used} of {ev.n_rows} rows" if ev.sampled else "all rows"  # type: ignore[attr-defined]
    return f"relative error {error_text(ev).lstrip('~')} ({how})"


def tensor_tooltip(tp: TensorPlan, evaluation: object | None) -> str:
    """HTML tooltip: name, shape, type, why, size, error."""
    src = tp.source
    shape = " × ".join(str(d) for d in src.shape)
    mark = ""
    if is_auto_mixed(tp):
        mark = " (chosen by auto-mix)"
    elif is_explicit(tp):
        mark = " (chosen by hand)"
    elif is_rule_chosen(tp):
        mark = " (set by a rule)"
    elif is_fallback(tp):
        mark = f" (fallback from {tp.why.fallback_from})"
    lines = [
        f"<b>{escape(tp.name)}</b>",
        f"shape {shape}, {src.n_elements:,} parameters, source {src.src_type}",
        f"type <b>{tp.type}</b>{mark}",
        f"why: {escape(tp.reason)}",
    ]
    if is_explicit(tp):
        lines.append(f"preset would choose {tp.preset_type}: {escape(tp.preset_reason)}")
    if tp.encoder == "hqq" or tp.encoder_why != "default":
        lines.append(f"encoder <b>{'HQQ' if tp.encoder == 'hqq' else 'ggml'}</b>: {escape(tp.encoder_why)}")
    lines.append(f"size {format_bytes(tp.n_bytes)} ({8.0 * tp.n_bytes / max(1, src.n_elements):.3g} bits per weight)")
    if tp.quantizable:
        lines.append(escape(error_detail(evaluation)))
    return "<br>".join(lines)


@cache
def _icon_pixmap(type_name: str, size: int) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(type_color(type_name))
    painter = QPainter(pix)
    painter.setPen(QColor("#555555"))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return pix


def type_icon(type_name: str, size: int = 12) -> QIcon:
    """A small square in the type's colour (for combo boxes and menus)."""
    return QIcon(_icon_pixmap(type_name, size))


def has_importance(session: Any, tp: TensorPlan) -> bool:
    """Whether the session's importance matrix has a usable entry for this tensor."""
    return tensor_has_importance(session.imatrix, tp.source)


Representative = tuple[TensorPlan, bool | None]


def representatives(
    plans: Iterable[TensorPlan], importance: Callable[[TensorPlan], bool] | None = None
) -> list[Representative]:
    """One tensor per (quantizable, row length, has importance): all :func:`type_problem` depends on.

    ``importance`` tells whether a tensor has an importance entry; without it that is unknown.
    """
    seen: dict[tuple[bool, int, bool | None], Representative] = {}
    for tp in plans:
        flag = importance(tp) if importance is not None else None
        seen.setdefault((tp.quantizable, tp.source.n_per_row, flag), (tp, flag))
    return list(seen.values())


def first_problem(distinct: Iterable[Representative], type_name: str) -> str | None:
    """None if ``type_name`` applies to at least one tensor, else the first tensor's reason."""
    reason = None
    for tp, flag in distinct:
        problem = type_problem(tp, type_name, flag)
        if problem is None:
            return None
        reason = reason or f"{tp.name}: {problem}"
    return reason or "nothing selected"


def build_type_menu(
    parent: QWidget,
    plans: list[TensorPlan],
    assign: Callable[[str], None],
    reset: Callable[[], None],
    importance: Callable[[TensorPlan], bool] | None = None,
) -> QMenu:
    """Context menu: 'Set type' (types that fit no selected tensor disabled, with why) + reset."""
    menu = QMenu(parent)
    menu.setToolTipsVisible(True)
    sub = menu.addMenu(f"Set type of {len(plans)} tensor(s)")
    sub.setToolTipsVisible(True)
    distinct = representatives(plans, importance)
    for name in ordered_types():
        act = sub.addAction(type_icon(name), name)
        problem = first_problem(distinct, name)
        act.setEnabled(problem is None)
        act.setToolTip(type_tooltip(name) if problem is None else f"cannot apply: {problem}")
        act.triggered.connect(lambda _=False, n=name: assign(n))
    menu.addSeparator()
    act = menu.addAction("Reset to preset")
    act.setToolTip("Drop the hand-chosen types: back to what the preset and rules decide")
    act.setEnabled(any(is_explicit(tp) for tp in plans))
    act.triggered.connect(lambda _=False: reset())
    return menu


ALIGN_RIGHT = Qt.AlignRight | Qt.AlignVCenter

# Item roles as plain ints: data() is called for every painted cell and comparing an int with
# a PySide enum member costs microseconds each.
DISPLAY, EDIT, TOOLTIP, FONT, ALIGNMENT, BACKGROUND, FOREGROUND, USER = (
    int(r.value)
    for r in (
        Qt.DisplayRole,
        Qt.EditRole,
        Qt.ToolTipRole,
        Qt.FontRole,
        Qt.TextAlignmentRole,
        Qt.BackgroundRole,
        Qt.ForegroundRole,
        Qt.UserRole,
    )
)
