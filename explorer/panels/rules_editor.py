"""Editor of llama-quantize ``--tensor-type`` rules, one ``PATTERN=TYPE`` per line, live-validated.

Each line is parsed with :func:`quant_core.plan.parse_tensor_type` as the user types; bad lines
are highlighted and the first problem is shown in one line. Valid text is applied after a short
pause (or at once with Apply) through ``session.set_rules``. When the session's rules change
from elsewhere (undo, recipe) the text is replaced; otherwise the user's text is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from quant_core.errors import QuantError
from quant_core.plan import parse_tensor_type

from ..session import ExplorerSession

Rules = tuple[tuple[str, str], ...]
APPLY_DELAY_MS = 700
_BAD_LINE = QColor("#f8d0d0")
RULES_HELP = (
    "llama-quantize --tensor-type rules, one per line: PATTERN=TYPE.<br>"
    "PATTERN is a regular expression searched in the tensor name (lower-cased); the first rule that "
    "matches wins, before the preset's own choices.<br>"
    "Examples: <tt>ffn_down=q6_k</tt>, <tt>blk\\.[0-3]\\.attn_v=q8_0</tt>, <tt>output=q8_0</tt>.<br>"
    "Lines starting with # are comments. Valid text is applied after a short pause, or with Apply."
)


def parse_rules(text: str) -> tuple[Rules, list[tuple[int, str]]]:
    """(rules, [(line index, error)]) of the editor's text; blank and # lines are skipped."""
    rules: list[tuple[str, str]] = []
    errors: list[tuple[int, str]] = []
    for i, line in enumerate(text.splitlines()):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            rules.append(parse_tensor_type(entry))
        except QuantError as err:
            errors.append((i, str(err)))
    return tuple(rules), errors


def rule_reach(rules: Rules, names: Sequence[str]) -> list[list[str]]:
    """For each rule, the tensor names its pattern finds (llama.cpp's regex search, not a full match).

    Every rule's reach is listed, even where an earlier rule wins the tensor (first match wins).
    """
    return [[n for n in names if re.search(pattern, n)] for pattern, _ in rules]


REACH_TIP_NAMES = 40  # names listed in a reach tooltip before "+N more"


def reach_tooltip(names: Sequence[str]) -> str:
    """The names a rule matches, one per line (clipped), for a tooltip."""
    if not names:
        return "matches no tensor of this model"
    shown = [escape(n) for n in names[:REACH_TIP_NAMES]]
    if len(names) > REACH_TIP_NAMES:
        shown.append(f"+{len(names) - REACH_TIP_NAMES} more")
    return "<br>".join(shown)


def format_rules(rules: Rules) -> str:
    return "\n".join(f"{pattern}={type_name}" for pattern, type_name in rules)


class RulesEditor(QWidget):
    """Text editor for ``--tensor-type`` rules bound to ``session.state.options.tensor_types``."""

    applied = Signal(tuple)

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._applied: Rules = ()
        self.edit = QPlainTextEdit()
        self.edit.setPlaceholderText("PATTERN=TYPE, one per line, e.g.\nffn_down=q6_k\nblk\\.[0-3]\\.attn_v=q8_0")
        self.edit.setToolTip(RULES_HELP)
        self.edit.setTabChangesFocus(True)
        self.edit.setMinimumHeight(4 * self.fontMetrics().height())
        self.edit.textChanged.connect(self._on_text_changed)
        self.status = QLabel()
        # one line that clips (the whole text is its tooltip): a long error neither widens nor heightens the window
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.apply_button = QPushButton("&Apply rules")
        self.apply_button.setToolTip("Apply the rules now (they also apply by themselves after a short pause)")
        self.apply_button.clicked.connect(self.apply)
        self.timer = QTimer(self, singleShot=True, interval=APPLY_DELAY_MS)
        self.timer.timeout.connect(self.apply)
        self.reach = QListWidget()
        self.reach.setObjectName("rules_reach")
        self.reach.setToolTip("How many tensors each rule's pattern finds; hover a line for their names")
        self.reach.setMaximumHeight(5 * self.fontMetrics().height())
        self.reach.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.reach)
        layout.addLayout(row)
        self._show_status([])

    # ----- session -> editor ------------------------------------------------------------------
    def sync_from_session(self) -> None:
        """Show the session's rules if they changed from elsewhere (undo, recipe, new model)."""
        rules = self.session.state.options.tensor_types
        if rules != self._applied:
            self._applied = rules
            self.timer.stop()
            self.edit.blockSignals(True)
            self.edit.setPlainText(format_rules(rules))
            self.edit.blockSignals(False)
            self._on_text_changed(start_timer=False)
        else:
            self._update_apply_button()
            self._show_reach()  # the same rules may reach other tensors (another model)

    # ----- editor -> session ------------------------------------------------------------------
    def _on_text_changed(self, start_timer: bool = True) -> None:
        rules, errors = parse_rules(self.edit.toPlainText())
        self._highlight(errors)
        self._show_status(errors)
        self._update_apply_button()
        if start_timer and not errors and rules != self.session.state.options.tensor_types:
            self.timer.start()
        elif errors:
            self.timer.stop()

    def apply(self) -> bool:
        """Send the rules to the session if they are valid and differ from its rules."""
        self.timer.stop()
        rules, errors = parse_rules(self.edit.toPlainText())
        if errors or self.session.model is None or rules == self.session.state.options.tensor_types:
            return False
        messages: list[str] = []
        self.session.error.connect(messages.append)
        try:
            self._applied = rules
            ok = self.session.set_rules(rules)
        finally:
            self.session.error.disconnect(messages.append)
        if not ok:
            self._applied = self.session.state.options.tensor_types
            self._set_status(f"not applied: {messages[0]}" if messages else "not applied", error=True)
        else:
            self.applied.emit(rules)
        self._update_apply_button()
        return ok

    # ----- display ----------------------------------------------------------------------------
    def _highlight(self, errors: list[tuple[int, str]]) -> None:
        selections = []
        doc = self.edit.document()
        for line, _message in errors:
            fmt = QTextCharFormat()
            fmt.setBackground(_BAD_LINE)
            fmt.setProperty(QTextFormat.FullWidthSelection, True)
            sel = QTextEdit.ExtraSelection()
            sel.format = fmt
            sel.cursor = QTextCursor(doc.findBlockByNumber(line))
            selections.append(sel)
        self.edit.setExtraSelections(selections)

    def _show_status(self, errors: list[tuple[int, str]]) -> None:
        if errors:
            line, message = errors[0]
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            self._set_status(f"line {line + 1}: {message}{more}", error=True)
            self.status.setToolTip("<br>".join(escape(f"line {i + 1}: {m}") for i, m in errors))
        else:
            n = len(parse_rules(self.edit.toPlainText())[0])
            self._set_status(f"{n} rule(s)" if n else "no rules: the preset decides", error=False)
        self._show_reach()

    def _show_reach(self) -> None:
        """One line per valid rule: how many tensors it matches, their names on hover."""
        rules, _errors = parse_rules(self.edit.toPlainText())
        names = self._tensor_names()
        self.reach.clear()
        for (pattern, type_name), found in zip(rules, rule_reach(rules, names), strict=True):
            count = f"{len(found)} tensor" + ("" if len(found) == 1 else "s")
            item = QListWidgetItem(f"{pattern}={type_name.lower()}: matches {count}")
            item.setToolTip(reach_tooltip(found))
            self.reach.addItem(item)
        self.reach.setVisible(bool(rules) and bool(names))

    def _tensor_names(self) -> list[str]:
        plan = self.session.plan
        return [tp.name for tp in plan.tensors] if plan is not None else []

    def _set_status(self, text: str, error: bool) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "color: palette(mid);")
        self.status.setToolTip(escape(text))

    def _update_apply_button(self) -> None:
        rules, errors = parse_rules(self.edit.toPlainText())
        self.apply_button.setEnabled(
            not errors and self.session.model is not None and rules != self.session.state.options.tensor_types
        )

    @property
    def has_errors(self) -> bool:
        return bool(parse_rules(self.edit.toPlainText())[1])
