"""Which tensors matter: predicted KLD cost per layer × category, as a heat map on the mix map's grid.

"Compute" runs :func:`quant_core.sensitivity.iter_sensitivity` for the session's model, plan,
importance matrix and the calibration text in the background (one progress bar, cancellable;
results are cached on disk, so a second compute is instant and a cancelled one resumes). Each
cell shows the predicted increase of mean KL divergence if that tensor alone took the chosen
type (or its sensitivity S), on a log colour scale: bright cells are where bits pay.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from quant_core.assets import DEMO_CALIBRATION_TEXT
from quant_core.quality import read_text_file, runtime_available
from quant_core.quality.errors import INSTALL_HINT
from quant_core.sensitivity import SensitivityProgress, SensitivitySettings, SensitivityTable, iter_sensitivity

from .colors import error_color, text_color
from .panels.mix_map_model import GLOBAL_ROW_LABEL, STANDARD_KINDS, tensor_kind
from .session import ExplorerSession
from .workers import GeneratorWorker, JobRunner

SENSITIVITY = "S (sensitivity)"
DEFAULT_TYPES = ("Q4_K", "Q2_K", "Q3_K", "Q5_K", "Q6_K", "Q8_0", "Q4_0", "IQ4_NL")
PROGRESS_STEPS = 1000
_EMPTY = QColor("#f0f0f0")


class SensitivityJob(QObject):
    """One background computation of the session's table; emits the table or an error line."""

    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, session: ExplorerSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = JobRunner(self)
        self.worker: GeneratorWorker | None = None
        self.text_path: Path = DEMO_CALIBRATION_TEXT
        self.settings: SensitivitySettings | None = None  # None: scaled to the model

    def start(self) -> bool:
        s = self.session
        if s.model is None or s.plan is None or self.running:
            return False
        model, plan, imatrix, keys = s.model, s.plan, s.imatrix, list(s.imatrix_keys)
        text_path, settings = self.text_path, self.settings

        def factory() -> Iterator[SensitivityProgress | SensitivityTable]:
            return iter_sensitivity(model, plan, read_text_file(text_path), imatrix, True, settings, keys)

        self.worker = GeneratorWorker(factory)
        self.worker.signals.yielded.connect(self._on_item)
        self.worker.signals.errored.connect(self.failed)
        self.worker.signals.finished.connect(self._on_finished)
        self.runner.start(self.worker)
        self.running_changed.emit(True)
        return True

    @property
    def running(self) -> bool:
        return self.worker is not None

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_item(self, item: object) -> None:
        if isinstance(item, SensitivityTable):
            self.finished.emit(item)
        elif isinstance(item, SensitivityProgress):
            self.progress.emit(item.fraction, f"{item.stage}: {item.detail}")

    def _on_finished(self) -> None:
        self.worker = None
        self.running_changed.emit(False)

    def shutdown(self) -> None:
        self.cancel()
        self.runner.wait(10000)


def heat_color(value: float, low: float, high: float) -> QColor:
    """Colour of a value on the log scale from ``low`` to ``high`` (grey when not positive)."""
    if value <= 0 or high <= 0:
        return QColor(_EMPTY)
    lo = math.log10(max(low, high * 1e-6))
    span = max(math.log10(high) - lo, 1e-9)
    return error_color(min(max((math.log10(value) - lo) / span, 0.0), 1.0), 1.0)


class SensitivityView(QWidget):
    """A dock: compute button, progress, type chooser and the layer × category heat map."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.table: SensitivityTable | None = None
        self.job = SensitivityJob(session, self)
        self._build()
        self.job.progress.connect(self._on_progress)
        self.job.finished.connect(self.set_table)
        self.job.failed.connect(self._on_failed)
        self.job.running_changed.connect(self._on_running)
        session.model_changed.connect(self._on_model_changed)
        session.imatrix_changed.connect(self._on_model_changed)  # costs depend on the importance matrix
        self._on_model_changed()

    def _build(self) -> None:
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip(
            "Measure how much each tensor's quantization costs in mean KL divergence (llama.cpp, in the "
            "background; cached and resumable)"
        )
        self.compute_button.clicked.connect(self.job.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.job.cancel)
        self.type_box = QComboBox()
        self.type_box.setToolTip("Show the predicted KLD increase at this type, or the sensitivity S itself")
        self.type_box.currentTextChanged.connect(lambda _text: self._fill())
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        for w in (self.compute_button, self.cancel_button, QLabel("Cost at:"), self.type_box):
            top.addWidget(w)
        top.addWidget(self.progress, 1)
        self.grid = QTableWidget()
        self.grid.setEditTriggers(QTableWidget.NoEditTriggers)
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.grid.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.grid, 1)

    # ----- session and job -> widget -----------------------------------------------------
    def _on_model_changed(self) -> None:
        self.job.cancel()
        self.table = None
        available = runtime_available()
        self.compute_button.setEnabled(available and self.session.plan is not None)
        self.status.setText("" if available else f"Needs llama.cpp's runtime: {INSTALL_HINT}")
        self._fill()

    def _on_running(self, running: bool) -> None:
        self.compute_button.setEnabled(not running and self.session.plan is not None)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        if not running and self.table is None and not self.status.text().startswith("Failed"):
            self.status.setText("Cancelled: computing again resumes where it stopped")

    def _on_progress(self, fraction: float, what: str) -> None:
        self.progress.setValue(round(fraction * PROGRESS_STEPS))
        self.status.setText(what)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Failed: {message}")

    def set_table(self, table: SensitivityTable) -> None:
        """Show ``table`` (also used directly by tests and by callers that computed it)."""
        self.table = table
        types = sorted({t for per in table.costs.values() for t in per})
        current = self.type_box.currentText()
        self.type_box.blockSignals(True)
        self.type_box.clear()
        self.type_box.addItems([t for t in DEFAULT_TYPES if t in types] + [SENSITIVITY])
        self.type_box.setCurrentText(
            current if current in types or current == SENSITIVITY else self.type_box.itemText(0)
        )
        self.type_box.blockSignals(False)
        self.status.setText(
            f"{len(table.costs)} tensors, {len(table.measured)} probe runs, exponent {table.beta:.2f}: "
            "predicted mean-KLD increase if the tensor alone takes the type"
        )
        self._fill()

    # ----- the heat map ------------------------------------------------------------------
    def value(self, name: str) -> float | None:
        """The shown value of a tensor (None if the chosen type is not one of its candidates)."""
        if self.table is None:
            return None
        choice = self.type_box.currentText()
        if choice == SENSITIVITY:
            return self.table.sensitivity[name]
        return self.table.costs[name].get(choice)

    def cells(self) -> dict[tuple[int, int], str]:
        """(row, column) -> tensor name, laid out like the mix map (row 0: tensors outside blocks)."""
        names = list(self.table.costs) if self.table else []
        outside = [n for n in names if not n.startswith("blk.")]
        layers = sorted({int(n.split(".")[1]) for n in names if n.startswith("blk.")})
        kinds = [k for k in STANDARD_KINDS if any(tensor_kind(n) == k for n in names)]
        kinds += sorted({tensor_kind(n) for n in names if n.startswith("blk.")} - set(kinds))
        self._kinds = kinds + [""] * max(0, len(outside) - len(kinds))
        self._rows = ([GLOBAL_ROW_LABEL] if outside else []) + [
            f"blk.{i}" for i in range(layers[-1] + 1 if layers else 0)
        ]
        out = {(0, c): n for c, n in enumerate(outside)}
        offset = 1 if outside else 0
        for n in names:
            if n.startswith("blk."):
                out[(offset + int(n.split(".")[1]), self._kinds.index(tensor_kind(n)))] = n
        return out

    def _fill(self) -> None:
        cells = self.cells()
        self.grid.clear()
        self.grid.setRowCount(len(self._rows))
        self.grid.setColumnCount(len(self._kinds))
        self.grid.setHorizontalHeaderLabels(self._kinds)
        self.grid.setVerticalHeaderLabels(self._rows)
        values = {n: self.value(n) for n in cells.values()}
        positive = [v for v in values.values() if v is not None and v > 0]
        low, high = (min(positive), max(positive)) if positive else (0.0, 0.0)
        for (row, col), name in cells.items():
            v = values[name]
            item = QTableWidgetItem("–" if v is None else f"{v:.2g}")
            bg = heat_color(v or 0.0, low, high)
            item.setBackground(bg)
            item.setForeground(text_color(bg))
            item.setTextAlignment(Qt.AlignCenter)
            item.setToolTip(self._tooltip(name))
            item.setData(Qt.UserRole, name)
            self.grid.setItem(row, col, item)

    def _tooltip(self, name: str) -> str:
        t = self.table
        assert t is not None
        costs = sorted(t.costs[name].items(), key=lambda kv: -kv[1])
        lines = "<br>".join(f"{k}: {v:.3g}" for k, v in costs)
        return f"<b>{name}</b><br>S = {t.sensitivity[name]:.3g} (unit {t.unit_of[name]})<br>{lines}"

    def shutdown(self) -> None:
        self.job.shutdown()
