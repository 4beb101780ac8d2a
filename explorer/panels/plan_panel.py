"""Plan controls: preset, importance matrix, rules, llama-quantize switches, undo, recipes, command.

Every control writes through a session method (so each change is one undo step) and is
refreshed from the session on ``model_changed`` / ``plan_changed`` / ``imatrix_changed`` with
its signals blocked, so the two directions never feed back into each other.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from quant_core.ftypes import FILE_TYPES

from ..colors import type_tooltip
from ..dialogs.imatrix_dialog import ImatrixDialog
from ..flow_layout import FlowLayout
from ..session import ExplorerSession
from .imatrix_stats import show_imatrix_statistics
from .rules_editor import RulesEditor
from .tensor_text import ordered_types, type_icon

PRESET_DEFAULT = "(preset)"
COMMAND_DELAY_MS = 250
RECIPE_FILTER = "Recipes (*.json);;All files (*)"
IMATRIX_FILTER = "Importance matrices (*.dat *.gguf *.imatrix);;All files (*)"


def _preset_tooltip(name: str) -> str:
    ft = FILE_TYPES[name]
    return f"<b>{ft.name}</b>: {ft.description}<br>default tensor type {ft.default_type}"


class _HistoryButton(QPushButton):
    """Undo or redo button whose tooltip names the step (the stack talks to the button itself,
    so nothing dangles if the stack outlives the panel or dies first)."""

    def __init__(self, verb: str, shortcut: str) -> None:
        super().__init__(verb)
        self.verb, self.shortcut = verb, shortcut

    def show_command(self, text: str) -> None:
        self.setToolTip(f"{self.verb} {text} ({self.shortcut})" if text else f"Nothing to {self.verb.lower()}")


class PlanPanel(QWidget):
    """Preset picker, imatrix, rules editor, switches, undo/redo, recipes and the command line."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._command_stale = True
        self._command_timer = QTimer(self, singleShot=True, interval=COMMAND_DELAY_MS)
        self._command_timer.timeout.connect(self._refresh_command)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._build_preset())
        layout.addWidget(self._build_options())
        layout.addWidget(self._build_rules(), 1)
        layout.addWidget(self._build_history())
        layout.addWidget(self._build_command())
        session.model_changed.connect(self.sync_from_session)
        session.plan_changed.connect(self.sync_from_session)
        session.imatrix_changed.connect(self.sync_from_session)
        session.command_ready.connect(self.command_text.setPlainText)
        stack = session.undo_stack  # the signals carry the values: no calls back into the stack
        stack.canUndoChanged.connect(self.undo_button.setEnabled)
        stack.canRedoChanged.connect(self.redo_button.setEnabled)
        stack.undoTextChanged.connect(self.undo_button.show_command)
        stack.redoTextChanged.connect(self.redo_button.show_command)
        self.sync_from_session()

    # ----- construction ---------------------------------------------------------------------
    def _build_preset(self) -> QGroupBox:
        box = QGroupBox("Preset and importance matrix")
        form = QFormLayout(box)
        self.preset_combo = QComboBox()
        for i, name in enumerate(FILE_TYPES):
            self.preset_combo.addItem(name)
            self.preset_combo.setItemData(i, _preset_tooltip(name), Qt.ToolTipRole)
        self.preset_combo.setToolTip("llama-quantize preset (file type): the starting point of the mix")
        self.preset_combo.activated.connect(self._on_preset_activated)
        form.addRow("&Preset:", self.preset_combo)
        self.preset_info = QLabel()
        self.preset_info.setWordWrap(True)
        self.preset_info.setStyleSheet("color: palette(mid);")
        form.addRow(self.preset_info)

        self.imatrix_label = QLabel()
        self.imatrix_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.imatrix_load = QPushButton("Load…")
        self.imatrix_load.setToolTip(
            "Load an importance matrix made by llama-imatrix (.dat or GGUF): the "
            "K-quant and IQ encoders and the weighted error use it"
        )
        self.imatrix_load.clicked.connect(self.load_imatrix_dialog)
        self.imatrix_clear = QPushButton("Clear")
        self.imatrix_clear.setToolTip("Quantize without an importance matrix")
        self.imatrix_clear.clicked.connect(lambda: self.session.set_imatrix(None))
        self.imatrix_compute = QPushButton("Compute…")
        self.imatrix_compute.setToolTip(
            "Compute an importance matrix from a text with llama.cpp (as llama-imatrix), then load it"
        )
        self.imatrix_compute.clicked.connect(self.compute_imatrix_dialog)
        self.imatrix_stats = QPushButton("Statistics…")
        self.imatrix_stats.setToolTip(
            "Which tensors carry the activations: per-tensor statistics of the loaded importance matrix "
            "(as llama-imatrix --show-statistics)"
        )
        self.imatrix_stats.clicked.connect(self.show_imatrix_statistics)
        form.addRow("imatrix:", self.imatrix_label)
        buttons = QWidget()
        flow = FlowLayout(buttons)  # wraps on a narrow panel instead of widening it
        for button in (self.imatrix_load, self.imatrix_compute, self.imatrix_stats, self.imatrix_clear):
            flow.addWidget(button)
        form.addRow(buttons)
        return box

    def _build_options(self) -> QGroupBox:
        box = QGroupBox("Options")
        form = QFormLayout(box)
        self.pure_check = QCheckBox("P&ure (--pure)")
        self.pure_check.setToolTip("Give every tensor the preset's default type: no mixture rules")
        self.pure_check.toggled.connect(lambda on: self._set_option("pure" if on else "not pure", pure=on))
        self.leave_output_check = QCheckBox("&Leave output tensor (--leave-output-tensor)")
        self.leave_output_check.setToolTip("Keep output.weight as it is in the source file")
        self.leave_output_check.toggled.connect(
            lambda on: self._set_option(
                "leave output tensor" if on else "quantize output tensor", leave_output_tensor=on
            )
        )
        self.requantize_check = QCheckBox("Allow &requantize (--allow-requantize)")
        self.requantize_check.setToolTip(
            "Let export re-encode tensors that are already quantized in the source file "
            "(they are dequantized first; quality is lower than quantizing from F16/BF16)"
        )
        self.requantize_check.toggled.connect(
            lambda on: self._set_option("allow requantize" if on else "no requantize", allow_requantize=on)
        )
        form.addRow(self.pure_check)
        form.addRow(self.leave_output_check)
        form.addRow(self.requantize_check)
        self.output_combo = self._type_combo("--output-tensor-type: type of output.weight")
        self.output_combo.activated.connect(lambda _i: self._on_type_option("output_tensor_type", self.output_combo))
        self.embd_combo = self._type_combo("--token-embedding-type: type of token_embd.weight")
        self.embd_combo.activated.connect(lambda _i: self._on_type_option("token_embedding_type", self.embd_combo))
        form.addRow("&Output tensor:", self.output_combo)
        form.addRow("To&ken embedding:", self.embd_combo)
        return box

    def _type_combo(self, tip: str) -> QComboBox:
        combo = QComboBox()
        combo.addItem(PRESET_DEFAULT)
        combo.setItemData(0, "Whatever the preset decides", Qt.ToolTipRole)
        for name in ordered_types():
            combo.addItem(type_icon(name), name)
            combo.setItemData(combo.count() - 1, type_tooltip(name), Qt.ToolTipRole)
        combo.setToolTip(tip)
        return combo

    def _build_rules(self) -> QGroupBox:
        box = QGroupBox("Rules (--tensor-type PATTERN=TYPE)")
        self.rules = RulesEditor(self.session)
        QVBoxLayout(box).addWidget(self.rules)
        return box

    def _build_history(self) -> QGroupBox:
        box = QGroupBox("History and recipes")
        grid = QVBoxLayout(box)
        row = QHBoxLayout()
        self.undo_button = _HistoryButton("Undo", "Ctrl+Z")
        self.undo_button.clicked.connect(self.session.undo_stack.undo)
        self.redo_button = _HistoryButton("Redo", "Ctrl+Shift+Z")
        self.redo_button.clicked.connect(self.session.undo_stack.redo)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        grid.addLayout(row)
        row = QHBoxLayout()
        self.explicit_label = QLabel()
        self.explicit_label.setToolTip("Tensors whose type was chosen by hand on the map or in the table")
        self.reset_all_button = QPushButton("Reset all")
        self.reset_all_button.setToolTip("Drop every hand-chosen type: back to preset and rules")
        self.reset_all_button.clicked.connect(self._reset_all)
        row.addWidget(self.explicit_label, 1)
        row.addWidget(self.reset_all_button)
        grid.addLayout(row)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save recipe…")
        self.save_button.setToolTip(
            "Save preset, options and rules as a JSON recipe (hand-chosen types become the fewest equivalent rules)"
        )
        self.save_button.clicked.connect(self.save_recipe_dialog)
        self.load_button = QPushButton("Load recipe…")
        self.load_button.setToolTip("Load a JSON recipe (one undoable step)")
        self.load_button.clicked.connect(self.load_recipe_dialog)
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        grid.addLayout(row)
        return box

    def _build_command(self) -> QGroupBox:
        box = QGroupBox("llama-quantize command")
        layout = QVBoxLayout(box)
        self.command_text = QPlainTextEdit()
        self.command_text.setReadOnly(True)
        self.command_text.setToolTip(
            "The llama-quantize command line that produces the same file (with HQQ-encoded tensors only "
            "the same types and size: a first # line says so)"
        )
        self.command_text.setMaximumHeight(6 * self.fontMetrics().height())
        self.copy_button = QPushButton("&Copy command")
        self.copy_button.setToolTip("Copy the llama-quantize command line to the clipboard")
        self.copy_button.clicked.connect(self.copy_command)
        layout.addWidget(self.command_text)
        layout.addWidget(self.copy_button)
        return box

    # ----- session -> widgets -----------------------------------------------------------------
    def sync_from_session(self) -> None:
        """Show the session's state in every control (signals blocked: no echo back)."""
        s = self.session
        o = s.state.options
        has_model = s.model is not None and s.plan is not None
        for w in (
            self.preset_combo,
            self.imatrix_load,
            self.pure_check,
            self.leave_output_check,
            self.requantize_check,
            self.output_combo,
            self.embd_combo,
            self.rules,
            self.save_button,
            self.load_button,
            self.copy_button,
        ):
            w.setEnabled(has_model)
        self.imatrix_clear.setEnabled(has_model and s.imatrix is not None)
        self.imatrix_compute.setEnabled(has_model)
        self.imatrix_stats.setEnabled(has_model and bool(o.imatrix))
        with QSignalBlocker(self.preset_combo):
            self.preset_combo.setCurrentText(o.preset)
        ft = FILE_TYPES.get(o.preset)
        self.preset_info.setText(f"{ft.description}; default {ft.default_type}" if ft else "")
        with QSignalBlocker(self.pure_check):
            self.pure_check.setChecked(o.pure)
        with QSignalBlocker(self.leave_output_check):
            self.leave_output_check.setChecked(o.leave_output_tensor)
        with QSignalBlocker(self.requantize_check):
            self.requantize_check.setChecked(o.allow_requantize)
        for combo, value in ((self.output_combo, o.output_tensor_type), (self.embd_combo, o.token_embedding_type)):
            with QSignalBlocker(combo):
                combo.setCurrentText(value or PRESET_DEFAULT)
        if o.imatrix:
            self.imatrix_label.setText(Path(o.imatrix).name)
            self.imatrix_label.setToolTip(o.imatrix)
        else:
            self.imatrix_label.setText("none")
            self.imatrix_label.setToolTip("No importance matrix loaded")
        self.rules.sync_from_session()
        n = len(s.state.explicit)
        self.explicit_label.setText(f"{n} tensor type(s) chosen by hand" if n else "no types chosen by hand")
        self.reset_all_button.setEnabled(bool(n))
        self._command_timer.start()  # refresh once things settle (built off the GUI thread)
        self._update_history()

    def _refresh_command(self) -> None:
        """Show the current llama-quantize command (only while visible; again when shown)."""
        if not self.command_text.isVisible():
            self._command_stale = True
            return
        self._command_stale = False
        s = self.session
        if s.model is None or s.plan is None:
            self.command_text.setPlainText("")
        else:
            s.request_llama_command()  # command_ready fills the box

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self._command_stale:
            self._command_timer.start()

    def _update_history(self) -> None:
        stack = self.session.undo_stack
        self.undo_button.setEnabled(stack.canUndo())
        self.redo_button.setEnabled(stack.canRedo())
        self.undo_button.show_command(stack.undoText())
        self.redo_button.show_command(stack.redoText())

    # ----- widgets -> session -----------------------------------------------------------------
    def _on_preset_activated(self, index: int) -> None:
        self.session.set_preset(self.preset_combo.itemText(index))
        self.sync_from_session()  # a refused change puts the combo back

    def _set_option(self, text: str, **changes: object) -> None:
        self.session.set_options(text, **changes)
        self.sync_from_session()  # a refused change puts the control back

    def _on_type_option(self, field: str, combo: QComboBox) -> None:
        text = combo.currentText()
        value = None if text == PRESET_DEFAULT else text
        self._set_option(f"{field.replace('_', ' ')} {value or 'from preset'}", **{field: value})

    def _reset_all(self) -> None:
        names = [name for name, _ in self.session.state.explicit]
        if names:
            self.session.reset_types(names)

    def load_imatrix_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load importance matrix", self._directory(), IMATRIX_FILTER)
        if path:
            self.session.set_imatrix(path)

    def compute_imatrix_dialog(self) -> None:
        """Compute an importance matrix from a text; the result is loaded as *Load…* does."""
        if self.session.model is not None:
            ImatrixDialog(self.session, self).exec()

    def show_imatrix_statistics(self) -> None:
        path = self.session.state.options.imatrix
        if path:
            show_imatrix_statistics(self, path)

    def save_recipe_dialog(self) -> None:
        m = self.session.model
        if m is None:
            return
        default = str(m.path.with_suffix(".recipe.json"))
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", default, RECIPE_FILTER)
        if path and self.session.save_recipe(path):
            self.session.undo_stack.setClean()

    def load_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load recipe", self._directory(), RECIPE_FILTER)
        if path:
            self.session.load_recipe(path)

    def copy_command(self) -> None:
        if self.session.model is not None:
            QGuiApplication.clipboard().setText(self.session.llama_command())

    def _directory(self) -> str:
        m = self.session.model
        return str(m.path.parent) if m is not None else str(Path.home())
