"""Model quality of measured mixes: KL divergence and perplexity against the unquantized model.

"Measure" evaluates the current plan with llama.cpp in the background (temporary export, then
the ``llama-perplexity --kl-divergence`` statistics), "Measure presets" adds llama.cpp's presets
as labelled reference points. Every measured mix is a row of the table and a point of the
size–KLD plot; clicking a point (or double-clicking a row) restores that mix as one undoable step.
With "Measure speed" on, each mix's prompt and generation speed (llama-bench's pp and tg) fills two
more columns, and the plot can show speed (:mod:`.quality_plot`).
"""

from __future__ import annotations

from html import escape

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from quant_core.quality import SpeedSettings

from ..dialogs.speed_settings import (
    SpeedSettingsDialog,
    describe_speed_settings,
    load_speed_settings,
    save_speed_settings,
)
from ..quality import REFERENCE_PRESETS, QualityTracker, speed_measured_with
from ..quality_store import Measurement
from ..session import ExplorerSession
from .plot_common import format_bytes
from .quality_plot import PLOT_VIEWS, QualityPlot

PROGRESS_STEPS = 1000
COLUMNS = ("Mix", "Size", "bpw", "PPL", "Mean KLD", "99 % KLD", "Same top p", "pp t/s", "tg t/s")
COLUMN_TIPS = (
    "The preset, or the preset plus your changes (tooltip: the whole recipe)",
    "Size of the measured file",
    "Bits per weight of the tensor data",
    "Perplexity of the quantized model on the text (base model's in the tooltip)",
    "Mean KL divergence of the next-token distribution from the unquantized model's (lower is better)",
    "99th percentile of the per-token KL divergence: how bad the worst tokens get",
    "How often the quantized model's most likely token is the unquantized model's",
    "Prompt processing: tokens per second decoding one batch of prompt tokens, as llama-bench's pp "
    "(filled when the speed was measured)",
    "Generation: tokens per second decoding one token at a time, as llama-bench's tg "
    "(filled when the speed was measured)",
)
MEASURE_TIP = (
    "Measure the current plan: export it to a temporary file and compare its next-token "
    "predictions with the unquantized model's on the evaluation text (llama.cpp, in the background)"
)
PRESETS_TIP = (
    f"Measure llama.cpp's presets {', '.join(REFERENCE_PRESETS)} with the loaded importance matrix; "
    "they appear as labelled reference points"
)
SPEED_TIP = (
    "Also measure each mix's speed on this machine, as llama-bench does: prompt processing (pp) and "
    "generation (tg) tokens per second, warm-up then repetitions (in a separate process)"
)


class QualityPanel(QWidget):
    """Buttons, progress, the measured mixes as a table and as a size–KLD plot."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tracker: QualityTracker = session.quality
        self.runtime = False
        self.speed_dialog: SpeedSettingsDialog | None = None
        self.tracker.speed_settings = load_speed_settings()
        self._build()
        t = self.tracker
        t.measurements_changed.connect(self._refresh)
        t.progress.connect(self._on_progress)
        t.running_changed.connect(self._on_running_changed)
        t.failed.connect(self._on_failed)
        session.model_changed.connect(self._refresh)
        session.plan_changed.connect(self._mark_current)
        self.refresh_runtime()
        self._refresh()

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip(MEASURE_TIP)
        self.measure_button.clicked.connect(self.tracker.measure_current)
        self.presets_button = QPushButton("Measure presets")
        self.presets_button.setToolTip(PRESETS_TIP)
        self.presets_button.clicked.connect(lambda: self.tracker.measure_presets())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop measuring: nothing is added and no temporary file is left")
        self.cancel_button.clicked.connect(self.tracker.cancel)
        self.text_button = QPushButton("Text…")
        self.text_button.setToolTip("Choose the evaluation text (default: the demo model's held-out text)")
        self.text_button.clicked.connect(self._choose_text)
        self.chunks_spin = QSpinBox()
        self.chunks_spin.setRange(0, 100000)
        self.chunks_spin.setSpecialValueText("chunks: all")
        self.chunks_spin.setPrefix("chunks: ")
        self.chunks_spin.setToolTip(
            f"Evaluate at most this many chunks of {self.tracker.n_ctx} tokens "
            "(fewer: faster, less precise; 'all': the whole text)"
        )
        self.chunks_spin.setValue(self.tracker.chunks or 0)
        self.chunks_spin.editingFinished.connect(lambda: self.tracker.set_chunks(self.chunks_spin.value()))
        self.speed_check = QCheckBox("Measure speed")
        self.speed_check.setToolTip(SPEED_TIP)
        self.speed_check.setChecked(self.tracker.measure_speed)
        self.speed_check.toggled.connect(self._on_speed_toggled)
        self.speed_settings_button = QPushButton("Speed settings…")
        self.speed_settings_button.clicked.connect(self.open_speed_settings)
        self._update_speed_tip()
        self.view_combo = QComboBox()
        for view, title in PLOT_VIEWS.items():
            self.view_combo.addItem(title, view)
        self.view_combo.setToolTip("What the plot shows: KLD against file size or against speed")
        self.view_combo.currentIndexChanged.connect(self._on_view_changed)
        buttons = QHBoxLayout()
        for w in (
            self.measure_button,
            self.presets_button,
            self.cancel_button,
            self.speed_check,
            self.speed_settings_button,
        ):
            buttons.addWidget(w)
        buttons.addStretch(1)
        setup = QHBoxLayout()
        setup.addWidget(self.text_button)
        setup.addWidget(self.chunks_spin)
        setup.addStretch(1)
        setup.addWidget(QLabel("Plot:"))
        setup.addWidget(self.view_combo)
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(12)
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.info_label.setToolTip("The text the mixes are measured on, and how many tokens were scored")
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #AA3377")
        self.error_label.setWordWrap(True)

        self.plot_view = QualityPlot(self.tracker.restore)
        self.plot = self.plot_view.widget

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for i, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(i).setToolTip(tip)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.setToolTip("Every measured mix; double-click a row to restore that mix (undoable)")
        self.table.cellDoubleClicked.connect(self._on_row_double_clicked)

        self.splitter = splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.table)
        splitter.setSizes([420, 520])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.hint_label)
        layout.addLayout(buttons)
        layout.addLayout(setup)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.info_label)
        layout.addWidget(self.error_label)
        layout.addWidget(splitter, 1)
        self._on_running_changed(False)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        """Plot beside the table in a wide dock, above it in a tall one."""
        super().resizeEvent(event)
        size = event.size()
        wanted = Qt.Vertical if size.height() > 0.8 * size.width() else Qt.Horizontal
        if self.splitter.orientation() != wanted:
            self.splitter.setOrientation(wanted)

    # the plot's items, as the tests and the screenshot tool reach them
    @property
    def points(self) -> dict[str, tuple[float, float]]:
        return self.plot_view.points

    @property
    def labels(self) -> list[pg.TextItem]:
        return self.plot_view.labels

    @property
    def preset_item(self) -> pg.PlotDataItem:
        return self.plot_view.preset_item

    @property
    def mix_item(self) -> pg.PlotDataItem:
        return self.plot_view.mix_item

    @property
    def current_item(self) -> pg.PlotDataItem:
        return self.plot_view.current_item

    @property
    def prediction_item(self) -> pg.PlotDataItem | None:
        return self.plot_view.prediction_item

    # ----- state --------------------------------------------------------------------------------
    def refresh_runtime(self) -> bool:
        """Ask again whether llama.cpp's runtime is there; without it, say how to add it."""
        self.runtime = self.tracker.available()
        self.hint_label.setText("" if self.runtime else self.tracker.install_hint())
        self.hint_label.setVisible(not self.runtime)
        self._update_buttons()
        return self.runtime

    def _update_buttons(self) -> None:
        running = self.tracker.running
        can = self.runtime and self.session.model is not None
        self.measure_button.setEnabled(can)
        self.presets_button.setEnabled(can)
        self.cancel_button.setEnabled(running)
        self.text_button.setEnabled(not running)
        self.chunks_spin.setEnabled(not running)
        self.speed_check.setEnabled(not running)
        self.speed_settings_button.setEnabled(not running)

    def _on_speed_toggled(self, on: bool) -> None:
        self.tracker.measure_speed = on

    def open_speed_settings(self) -> SpeedSettingsDialog:
        """Show the speed settings dialog (window-modal); OK applies and keeps its values."""
        dialog = SpeedSettingsDialog(self.tracker.speed_settings, self)
        dialog.accepted.connect(lambda: self.set_speed_settings(dialog.settings()))
        self.speed_dialog = dialog
        dialog.open()
        return dialog

    def set_speed_settings(self, settings: SpeedSettings) -> None:
        """Measure speeds with ``settings`` from now on (and in the next window)."""
        self.tracker.speed_settings = settings
        save_speed_settings(settings)
        self._update_speed_tip()
        self._update_table(self.measurements())  # the speed tooltips say which settings are current

    def _update_speed_tip(self) -> None:
        now = describe_speed_settings(self.tracker.speed_settings)
        self.speed_settings_button.setToolTip(
            f"Prompt and generation tokens, repetitions and threads of the speed measurement, as "
            f"llama-bench's -p, -n, -r and -t (now: {now})"
        )
        self.speed_check.setToolTip(f"{SPEED_TIP}; now: {now}")

    def _on_view_changed(self, _index: int) -> None:
        self.plot_view.set_view(self.view_combo.currentData())
        self._update_plot(self.measurements())

    def _on_running_changed(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.progress_label.setVisible(running)
        if running:
            self.progress.setValue(0)
            self.error_label.clear()
        self._update_buttons()

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(round(fraction * PROGRESS_STEPS))
        self.progress_label.setText(text + "…")

    def _on_failed(self, message: str) -> None:
        self.error_label.setText(message)

    def _choose_text(self) -> None:
        start = str(self.tracker.text_path.parent) if self.tracker.text_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Evaluation text", start, "Text (*.txt *.raw);;All files (*)")
        if path:
            self.tracker.set_text(path)

    # ----- views --------------------------------------------------------------------------------
    def measurements(self) -> list[Measurement]:
        """The measured mixes in display order (by file size)."""
        return sorted(self.tracker.measurements, key=lambda m: (m.file_bytes, m.name))

    def _refresh(self) -> None:
        ms = self.measurements()
        self._update_info(ms)
        self._update_table(ms)
        self._update_plot(ms)
        self._update_buttons()

    def _update_info(self, ms: list[Measurement]) -> None:
        t = self.tracker
        if t.text_path is None:
            self.info_label.setText("No evaluation text: choose one with 'Text…'")
            return
        name = escape(t.text_path.name)
        setup = f"chunks of {t.n_ctx} tokens"
        if ms:
            r = ms[-1].report
            self.info_label.setText(
                f"Text <b>{name}</b>: {r.tokens:,} tokens scored ({r.n_chunk} {setup}) · "
                f"unquantized PPL {r.ppl_base:.3f}"
            )
        else:
            limit = f"at most {t.chunks}" if t.chunks else "all"
            self.info_label.setText(f"Text <b>{name}</b>: {limit} {setup}, nothing measured yet")

    def _update_table(self, ms: list[Measurement]) -> None:
        self.table.setRowCount(len(ms))
        for row, m in enumerate(ms):
            r = m.report
            cells = [
                (m.name, m.recipe_text),
                (format_bytes(m.file_bytes), f"{m.file_bytes:,} bytes"),
                (f"{m.bpw:.3f}", ""),
                (f"{r.ppl:.3f}", f"{r.ppl:.4f} ± {r.ppl_unc:.4f} (unquantized {r.ppl_base:.4f})"),
                (f"{r.kld_mean:.6f}", f"{r.kld_mean:.6f} ± {r.kld_unc:.6f}; median {r.kld_median:.6f}"),
                (f"{r.kld_p99:.6f}", f"maximum {r.kld_max:.6f}"),
                (f"{100 * r.same_top_p:.2f} %", f"{r.n_same_top:,} of {r.tokens:,} tokens"),
                *_speed_cells(m, self.tracker.speed_settings),
            ]
            for col, (text, tip) in enumerate(cells):
                cell = QTableWidgetItem(text)
                if tip:
                    cell.setToolTip(tip)
                if col:
                    cell.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                cell.setData(Qt.UserRole, m.key)
                self.table.setItem(row, col, cell)
        for col in range(1, len(COLUMNS)):
            self.table.resizeColumnToContents(col)
        self._mark_current()

    def _update_plot(self, ms: list[Measurement]) -> None:
        self.plot_view.update(ms, self.tracker.current_key())

    def _mark_current(self) -> None:
        key = self.tracker.current_key()
        self.plot_view.mark_current(key)
        for row in range(self.table.rowCount()):
            cell = self.table.item(row, 0)
            font = cell.font()
            font.setBold(cell.data(Qt.UserRole) == key)
            cell.setFont(font)

    def set_prediction(self, curve: object | None) -> None:
        """Draw a predicted size–KLD line (``curve.mib``, ``curve.kld``, ``curve.label``); None removes it."""
        self.plot_view.set_prediction(curve)

    # ----- restoring ------------------------------------------------------------------------------
    def _on_row_double_clicked(self, row: int, _col: int) -> None:
        cell = self.table.item(row, 0)
        if cell is not None:
            self.tracker.restore(cell.data(Qt.UserRole))


def _speed_cells(m: Measurement, current: SpeedSettings) -> list[tuple[str, str]]:
    """The pp and tg cells: mean t/s, with the spread and settings as tooltip ("" when not measured).

    A speed measured with other settings than ``current`` says so (measuring the mix again
    measures its speed with the current ones).
    """
    if m.speed is None:
        return [("", "speed not measured: check 'Measure speed' and measure again")] * 2
    s = m.speed.settings
    setup = f"{s.repetitions} repetitions, {s.threads} threads, batch {s.n_batch}/{s.n_ubatch}"
    if not speed_measured_with(m.speed, current):
        setup += "; other settings than the current ones: 'Measure' with 'Measure speed' measures it again"
    cells = []
    for test, mean, std in (
        (f"pp{s.n_prompt}", m.speed.pp_tps, m.speed.pp_tps_std),
        (f"tg{s.n_gen}", m.speed.tg_tps, m.speed.tg_tps_std),
    ):
        if mean is None:
            cells.append(("", f"{test}: not measured"))
        else:
            cells.append((f"{mean:.1f}", f"{test}: {mean:.2f} ± {std or 0.0:.2f} tokens/s ({setup})"))
    return cells
