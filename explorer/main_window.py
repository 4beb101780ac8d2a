"""The main window: composition of the panels around one session, menus, shortcuts, drops."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QTabWidget,
    QWidget,
)

from .dialogs.export_dialog import ExportDialog
from .panels.compare_panel import ComparePanel
from .panels.error_overview import ErrorOverview
from .panels.inspector import Inspector
from .panels.mix_map import MixMap
from .panels.plan_panel import PlanPanel
from .panels.quality_panel import QualityPanel
from .panels.size_panel import SizePanel
from .panels.target_panel import TargetPanel
from .panels.tensor_table import TensorTable
from .problems import ProblemsButton, SourceNote
from .sensitivity_view import SensitivityView
from .session import ExplorerSession
from .shortcuts_dialog import ShortcutsDialog

MAX_RECENT = 8
STATUS_NOTE_MS = 15000
GGUF_FILTER = "GGUF models (*.gguf);;All files (*)"


class MainWindow(QMainWindow):
    """Quant Explorer's window. All state lives in ``self.session``."""

    def __init__(self, session: ExplorerSession | None = None) -> None:
        super().__init__()
        self.session = session or ExplorerSession(self)
        self.settings = QSettings("QuantExplorer", "QuantExplorer")
        self.setWindowTitle("Quant Explorer")
        self.setAcceptDrops(True)
        self.resize(1500, 950)
        self._build_panels()
        self._build_menus()
        self._build_status_bar()
        s = self.session
        s.error.connect(self.show_error)
        s.model_changed.connect(self._on_model_changed)
        s.busy_changed.connect(self._on_busy_changed)
        # shown over the status label for a while: the busy/ready text would replace it at once
        s.status.connect(lambda text: self.statusBar().showMessage(text, STATUS_NOTE_MS))
        s.undo_stack.cleanChanged.connect(self._on_clean_changed)
        s.plan_changed.connect(self._update_title)

    # ----- layout -----------------------------------------------------------------------
    def _build_panels(self) -> None:
        s = self.session
        self.mix_map = MixMap(s)
        self.tensor_table = TensorTable(s)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.mix_map, "Mix map")
        self.tabs.addTab(self.tensor_table, "Tensors")
        self.setCentralWidget(self.tabs)
        self.plan_panel = PlanPanel(s)
        self.inspector = Inspector(s)
        self.size_panel = SizePanel(s)
        self.error_overview = ErrorOverview(s)
        self.sensitivity_view = SensitivityView(s)
        self.quality_panel = QualityPanel(s)
        self.docks = {
            "Plan": self._dock("Plan", self.plan_panel, Qt.LeftDockWidgetArea),
            "Inspector": self._dock("Inspector", self.inspector, Qt.RightDockWidgetArea),
            "Size": self._dock("Size", self.size_panel, Qt.BottomDockWidgetArea),
            "Error overview": self._dock("Error overview", self.error_overview, Qt.BottomDockWidgetArea),
            "Sensitivity": self._dock("Sensitivity", self.sensitivity_view, Qt.BottomDockWidgetArea),
            "Quality": self._dock("Quality", self.quality_panel, Qt.RightDockWidgetArea),
        }
        self.splitDockWidget(self.docks["Size"], self.docks["Error overview"], Qt.Horizontal)
        bottom = [self.docks["Size"], self.docks["Error overview"]]
        self.resizeDocks(bottom, [300, 300], Qt.Vertical)
        self.tabifyDockWidget(self.docks["Error overview"], self.docks["Sensitivity"])
        self.docks["Error overview"].raise_()
        self.tabifyDockWidget(self.docks["Inspector"], self.docks["Quality"])  # tall: plot above table
        self.docks["Inspector"].raise_()
        # the panels scroll when squeezed; start them at the width their content asks for
        side = [min(self.plan_panel.sizeHint().width(), 420), 430]
        self.resizeDocks([self.docks["Plan"], self.docks["Inspector"]], side, Qt.Horizontal)
        self.resizeDocks([self.docks["Size"]], [min(self.size_panel.sizeHint().width(), 860)], Qt.Horizontal)
        self.target_panel = TargetPanel(s)
        self.docks["Target"] = self._dock("Target", self.target_panel, Qt.LeftDockWidgetArea)
        self.splitDockWidget(self.docks["Plan"], self.docks["Target"], Qt.Vertical)
        self.target_panel.curve_changed.connect(self.quality_panel.set_prediction)
        self.compare_panel = ComparePanel(s)
        self.docks["Compare"] = self._dock("Compare", self.compare_panel, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["Quality"], self.docks["Compare"])
        self.docks["Compare"].hide()  # shown by File ▸ Compare with…
        self.docks["Inspector"].raise_()  # tabifying the Compare dock brought the Quality tab up

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(_scrolling(widget))
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setStatusTip(tip)
        act.setToolTip(tip or text)
        act.triggered.connect(slot)
        return act

    def _build_menus(self) -> None:
        s = self.session
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action("&Open model…", self.open_dialog, QKeySequence.Open, "Open a GGUF model")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._refresh_recent()
        file_menu.addAction(
            self._action(
                "Load &importance matrix…",
                self.imatrix_dialog,
                None,
                "Load an imatrix (.dat or GGUF) made by llama-imatrix",
            )
        )
        file_menu.addAction(self._action("Drop importance matrix", lambda: s.set_imatrix(None)))
        file_menu.addAction(
            self._action(
                "Compute importance &matrix…",
                self.plan_panel.compute_imatrix_dialog,
                None,
                "Compute an importance matrix from a text with llama.cpp (as llama-imatrix), then load it",
            )
        )
        file_menu.addAction(
            self._action(
                "Importance matrix s&tatistics…",
                self.plan_panel.show_imatrix_statistics,
                None,
                "Which tensors carry the activations (as llama-imatrix --show-statistics)",
            )
        )
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Load recipe…", self.load_recipe_dialog, "Ctrl+L"))
        self.save_action = self._action(
            "&Save recipe…",
            self.save_recipe_dialog,
            QKeySequence.Save,
            "Save preset, rules and per-tensor choices as JSON",
        )
        file_menu.addAction(self.save_action)
        file_menu.addSeparator()
        self.compare_action = self._action(
            "&Compare with…",
            self.compare_dialog,
            None,
            "Open a second GGUF beside the model: compare and clone its mix",
        )
        file_menu.addAction(self.compare_action)
        file_menu.addSeparator()
        self.export_action = self._action("&Export GGUF…", self.export_dialog, "Ctrl+E", "Quantize and write the GGUF")
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.Quit))

        edit = bar.addMenu("&Edit")
        self.undo_action = s.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.redo_action = s.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        edit.addSeparator()
        self.reset_action = self._action(
            "Reset selection to preset",
            lambda: s.reset_types(s.selected),
            None,
            "Give the selected tensors the preset's type again",
        )
        self.reset_action.setShortcuts([QKeySequence(Qt.Key_Delete), QKeySequence(Qt.Key_Backspace)])
        edit.addAction(self.reset_action)
        edit.addAction(
            self._action(
                "Copy llama-quantize command",
                self.copy_command,
                "Ctrl+Shift+C",
                "Copy the equivalent llama-quantize command line",
            )
        )

        tools = bar.addMenu("&Tools")
        self.measure_action = self._action(
            "&Measure quality",
            self.measure_quality,
            "Ctrl+M",
            "Measure KL divergence and perplexity of the current plan with llama.cpp",
        )
        tools.addAction(self.measure_action)
        tools.addAction(
            self._action(
                "Measure &presets",
                self.measure_presets,
                None,
                "Measure llama.cpp's presets Q2_K … Q8_0 as reference points",
            )
        )
        self.automix_action = self._action(
            "&Auto-mix to target…",
            self.auto_mix_target,
            "Ctrl+Shift+A",
            "Propose the mix with the least predicted KLD within a size, bpw or memory budget",
        )
        tools.addAction(self.automix_action)

        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(
            self._action("&Keyboard shortcuts", self.show_shortcuts, "Ctrl+/", "List every action that has a key")
        )
        help_menu.addAction(self._action("&About Quant Explorer", self.about))

    def _build_status_bar(self) -> None:
        self.status_label = QLabel("Open a GGUF model (Ctrl+O) or drop one here")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.statusBar().addWidget(self.status_label, 1)
        self.problems_button = ProblemsButton(self.session.problems, self)
        self.source_note = SourceNote(self.session, self)
        self.statusBar().addPermanentWidget(self.source_note)
        self.statusBar().addPermanentWidget(self.problems_button)
        self.statusBar().addPermanentWidget(self.progress)

    # ----- actions ----------------------------------------------------------------------
    def confirm_discard(self) -> bool:
        """True when the current mix may be replaced: unchanged, saved as a recipe now, or discarded."""
        if self.session.model is None or self.session.undo_stack.isClean():
            return True
        buttons = QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            f"The mix for {self.session.model.path.name} has changes that are not saved.\nSave them as a recipe first?",
            buttons,
            QMessageBox.Cancel,
        )
        if answer == QMessageBox.Save:
            self.save_recipe_dialog()
            return self.session.undo_stack.isClean()  # the save dialog was not cancelled
        return answer == QMessageBox.Discard

    def open_path(self, path: str | Path) -> bool:
        """Open a model (File ▸ Open, recent files, drops); asks first when the mix is unsaved."""
        if not self.confirm_discard():
            return False
        ok = self.session.open_model(path)
        if ok:
            self._remember(str(Path(path).resolve()))
        return ok

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open GGUF model", self._last_dir(), GGUF_FILTER)
        if path:
            self.open_path(path)

    def imatrix_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Load importance matrix",
            self._last_dir(),
            "Importance matrices (*.dat *.gguf *.imatrix);;All files (*)",
        )
        if path:
            self.session.set_imatrix(path)

    def load_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load recipe", self._last_dir(), "Recipes (*.json)")
        if path:
            self.session.load_recipe(path)

    def save_recipe_dialog(self) -> None:
        if self.session.model is None:
            return
        default = str(self.session.model.path.with_suffix(".recipe.json"))
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", default, "Recipes (*.json)")
        if path and self.session.save_recipe(path):
            self.session.undo_stack.setClean()
            self.status_label.setText(f"Saved recipe {path}")

    def compare_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with", self._last_dir(), GGUF_FILTER)
        if path:
            self.compare_with(path)

    def compare_with(self, path: str | Path) -> None:
        """Show the Compare panel and open ``path`` there as the reference (File ▸ Compare with…, Shift+drop)."""
        self.docks["Compare"].show()
        self.docks["Compare"].raise_()
        self.compare_panel.open_reference(path)

    def export_dialog(self) -> None:
        if self.session.model is not None:
            ExportDialog(self.session, self).exec()

    def measure_quality(self) -> None:
        """Show the Quality panel and measure the current plan there."""
        self.docks["Quality"].show()
        self.docks["Quality"].raise_()
        if self.quality_panel.measure_button.isEnabled():
            self.session.quality.measure_current()

    def auto_mix_target(self) -> None:
        """Show the Target panel with its budget field focused."""
        self.docks["Target"].show()
        self.docks["Target"].raise_()
        self.target_panel.value_spin.setFocus()
        self.target_panel.value_spin.selectAll()

    def measure_presets(self) -> None:
        self.docks["Quality"].show()
        self.docks["Quality"].raise_()
        if self.quality_panel.presets_button.isEnabled():
            self.session.quality.measure_presets()

    def copy_command(self) -> None:
        if self.session.model is not None:
            QGuiApplication.clipboard().setText(self.session.llama_command())
            self.status_label.setText("Copied the llama-quantize command line")

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About Quant Explorer",
            "Quant Explorer designs mixed-precision GGUF quantizations, shows their "
            "error and size before writing, and exports files byte-identical to "
            "llama.cpp's llama-quantize (with ggml's encoder, the default; tensors encoded "
            "with HQQ have the same types and size but other bytes).",
        )

    def show_error(self, message: str) -> None:
        self.status_label.setText(message)
        self.status_label.setToolTip(message)
        QMessageBox.warning(self, "Quant Explorer", message)

    # ----- drag and drop ----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if event.modifiers() & Qt.ShiftModifier:  # Shift+drop: a reference to compare with
                self.compare_with(url.toLocalFile())
            else:
                self.open_dropped(url.toLocalFile())
            break

    def open_dropped(self, path: str) -> None:
        """A dropped .json is a recipe, a .dat/.imatrix an importance matrix, anything else a model."""
        lower = path.lower()
        if lower.endswith(".json"):
            self.session.load_recipe(path)
        elif lower.endswith((".dat", ".imatrix")) or ".imatrix." in lower:
            self.session.set_imatrix(path)
        else:
            self.open_path(path)

    # ----- state reflected in the chrome ------------------------------------------------
    def _on_model_changed(self) -> None:
        m = self.session.model
        if m is not None:
            params = m.n_parameters / 1e6
            self.status_label.setText(f"{m.path.name}: {m.arch}, {m.n_layer} layers, {params:.1f} M parameters")
        self._update_title()

    def _on_clean_changed(self, _clean: bool) -> None:
        self._update_title()

    def _update_title(self) -> None:
        m = self.session.model
        name = m.path.name if m else "no model"
        dirty = "" if self.session.undo_stack.isClean() else " *"
        preset = f" [{self.session.state.options.preset}]" if m else ""
        self.setWindowTitle(f"{name}{preset}{dirty} — Quant Explorer")

    def _on_busy_changed(self, text: str) -> None:
        self.progress.setVisible(bool(text))
        if text:
            self.status_label.setText(text + "…")
        elif self.session.size is not None:
            size = self.session.size
            self.status_label.setText(f"Ready: {size.file_bytes / 1024**2:,.2f} MiB, {size.bpw:.2f} bits per weight")

    def _remember(self, path: str) -> None:
        recent = [p for p in self.settings.value("recent", [], list) if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.value("recent", [], list):
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_path(p)).setToolTip(p)
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def _last_dir(self) -> str:
        m = self.session.model
        return str(m.path.parent) if m else str(Path.home())

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.confirm_discard():
            event.ignore()
            return
        self.sensitivity_view.shutdown()
        self.target_panel.shutdown()
        self.compare_panel.shutdown()
        self.session.quality.shutdown()
        self.session.shutdown()
        super().closeEvent(event)


def _scrolling(panel: QWidget) -> QScrollArea:
    """``panel`` in a frameless scroll area: a dock never forces the window beyond a small screen."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setFocusPolicy(Qt.NoFocus)  # Tab goes straight to the panel's widgets
    return area
