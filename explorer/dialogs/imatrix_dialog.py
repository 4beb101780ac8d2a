"""Compute an importance matrix from a text (as llama-imatrix does) and load it, one undoable step.

The dialog asks for the text, the context and the number of chunks, and where to write the file
(by default a new file in the cache folder). The computation runs on its own one-thread pool
(llama.cpp through :func:`quant_core.imatrix_calc.iter_imatrix`) with a progress bar; Cancel
stops it between two batches of chunks and nothing is written. When the file is complete the
dialog loads it exactly as *Load…* does (``ExplorerSession.set_imatrix``) and closes.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from quant_core.assets import DEMO_CALIBRATION_TEXT
from quant_core.errors import QuantError
from quant_core.imatrix_calc import ImatrixProgress, ImatrixResult, iter_imatrix
from quant_core.quality import read_text_file, runtime_available
from quant_core.quality.cache import cache_dir

from ..session import ExplorerSession
from ..workers import GeneratorWorker, JobRunner

TEXT_FILTER = "Text files (*.txt);;All files (*)"
OUTPUT_FILTER = "GGUF importance matrix (*.gguf);;Legacy llama.cpp imatrix (*.dat)"
TEMPORARY = "a new file in the cache folder"


def cache_output(model_path: Path, n_ctx: int) -> Path:
    """A new file name in the cache folder for the matrix of ``model_path`` (never reused)."""
    folder = cache_dir() / "imatrix"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{model_path.stem}-c{n_ctx}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9}.gguf"


class ImatrixDialog(QDialog):
    """Text, context, chunks and output of an importance matrix computation; progress; cancel.

    ``worker`` is the running (or last) computation; ``result`` the written file once loaded.
    """

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: GeneratorWorker | None = None
        self.result: ImatrixResult | None = None
        self.runner = JobRunner(self)
        self.setWindowTitle("Compute importance matrix")
        layout = QVBoxLayout(self)
        model = session.model
        intro = QLabel(
            f"Evaluate <b>{model.path.name if model else '—'}</b> on a text with llama.cpp and collect, per "
            "weight matrix, the mean squared activation of each input column (as llama-imatrix)."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(self._build_form())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox()
        self.compute_button = self.buttons.addButton("&Compute", QDialogButtonBox.AcceptRole)
        self.compute_button.setDefault(True)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.Cancel)
        self.compute_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.reject)
        layout.addWidget(self.buttons)
        if not runtime_available():
            self._fail("llama.cpp is not installed (the quality extra): pip install 'quant-explorer[quality]'")
            self.compute_button.setEnabled(False)

    def _build_form(self) -> QFormLayout:
        form = QFormLayout()
        self.text_edit = QLineEdit(str(DEMO_CALIBRATION_TEXT))
        self.text_edit.setToolTip("Calibration text (plain UTF-8); the demo's calibration text by default")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_text)
        row = QHBoxLayout()
        row.addWidget(self.text_edit, 1)
        row.addWidget(browse)
        form.addRow("&Text:", row)
        self.ctx_spin = QSpinBox()
        self.ctx_spin.setRange(16, 131072)
        self.ctx_spin.setValue(512)
        self.ctx_spin.setToolTip("Tokens per chunk (llama-imatrix -c)")
        form.addRow("C&ontext:", self.ctx_spin)
        self.chunks_spin = QSpinBox()
        self.chunks_spin.setRange(0, 1_000_000)
        self.chunks_spin.setSpecialValueText("all")
        self.chunks_spin.setToolTip("Evaluate at most this many chunks (llama-imatrix --chunks); all by default")
        form.addRow("C&hunks:", self.chunks_spin)
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText(TEMPORARY)
        self.output_edit.setToolTip("Where to write the matrix (.dat: llama.cpp's legacy format, else GGUF)")
        save_as = QPushButton("Save &as…")
        save_as.clicked.connect(self._browse_output)
        row = QHBoxLayout()
        row.addWidget(self.output_edit, 1)
        row.addWidget(save_as)
        form.addRow("O&utput:", row)
        return form

    def _browse_text(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Calibration text", self.text_edit.text(), TEXT_FILTER)
        if path:
            self.text_edit.setText(path)

    def _browse_output(self) -> None:
        m = self.session.model
        start = str(m.path.with_suffix(".imatrix.gguf")) if m is not None else ""
        path, _ = QFileDialog.getSaveFileName(self, "Save importance matrix", start, OUTPUT_FILTER)
        if path:
            self.output_edit.setText(path)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def output_path(self) -> Path:
        """The chosen output, or a new file in the cache folder."""
        text = self.output_edit.text().strip()
        m = self.session.model
        assert m is not None
        return Path(text).expanduser() if text else cache_output(m.path, self.ctx_spin.value())

    def start(self) -> bool:
        """Start the computation (False, with the reason shown, when refused)."""
        m = self.session.model
        if m is None or self.worker is not None:
            return False
        try:
            text_path = Path(self.text_edit.text().strip()).expanduser()
            text = read_text_file(text_path)
            out = self.output_path()
        except QuantError as err:
            return self._fail(str(err))
        if self.session.state.options.imatrix and Path(self.session.state.options.imatrix) == out:
            return self._fail("that file is the importance matrix in use: choose another name")
        self.session.forget_imatrix(str(out))  # a file written again must be read again
        ctx, chunks = self.ctx_spin.value(), self.chunks_spin.value() or None
        worker = GeneratorWorker(
            lambda: iter_imatrix(m.path, text, out, n_ctx=ctx, chunks=chunks, dataset=str(text_path))
        )
        worker.signals.yielded.connect(self._on_item)
        worker.signals.errored.connect(self._on_error)
        worker.signals.cancelled.connect(self._on_cancelled)
        self.worker = worker
        self._set_busy(True)
        self.status.setStyleSheet("")
        self.status.setText("Loading the model…")
        self.runner.start(worker)
        return True

    def _set_busy(self, busy: bool) -> None:
        self.compute_button.setEnabled(not busy)
        for w in (self.text_edit, self.ctx_spin, self.chunks_spin, self.output_edit):
            w.setEnabled(not busy)

    def _fail(self, message: str) -> bool:
        self.status.setStyleSheet("color: #b00020;")
        self.status.setText(message)
        return False

    # ----- worker -> view ---------------------------------------------------------------------
    def _on_item(self, item: object) -> None:
        if isinstance(item, ImatrixProgress):
            self.progress.setRange(0, max(1, item.total))
            self.progress.setValue(item.done)
            self.status.setText(f"{item.done} of {item.total} chunks of {self.ctx_spin.value()} tokens")
        elif isinstance(item, ImatrixResult):
            self.result = item
            self.session.set_imatrix(str(item.path))
            self.accept()

    def _on_error(self, message: str) -> None:
        self.worker = None
        self._set_busy(False)
        self._fail(message)

    def reject(self) -> None:
        """Cancel a running computation (the dialog stays until it has stopped), else close."""
        if self.worker is not None and self.result is None:
            self.worker.cancel()  # stops after the current batch of chunks; ``cancelled`` follows
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling…")
            return
        super().reject()

    def _on_cancelled(self) -> None:
        self.worker = None
        self._set_busy(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText("Cancelled: no file was written")
