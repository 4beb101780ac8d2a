"""Export dialog: output path and threads, progress with throughput and time left, cancel, verify.

The export runs in the session's worker; the dialog only starts it, shows its progress and, once
the file is written, has the core verify it (re-opened, header only: tensor count, types, size).
Output-path problems are the core's (``check_output_path``), shown as they are.
"""

from __future__ import annotations

import os
import re
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from quant_core.encoders import identity_note
from quant_core.errors import QuantError
from quant_core.export import ExportError, ExportProgress, check_output_path
from quant_core.model_card import SourceInfo
from quant_core.plan import Plan
from quant_core.qtypes import is_float_type
from quant_core.verify import verify_written

from ..panels.plot_common import format_bytes
from ..session import ExplorerSession
from ..workers import GeneratorWorker
from .export_options import ExportOptions

PROGRESS_STEPS = 1000
_SOURCE_SUFFIX = re.compile(r"[-_.](f16|bf16|f32|fp16|fp32)$", re.IGNORECASE)


def default_output(model_path: Path, preset: str) -> Path:
    """``<stem>-<PRESET>.gguf`` next to the model (a trailing -F16/-BF16/-F32 is replaced)."""
    stem = _SOURCE_SUFFIX.sub("", model_path.stem)
    return model_path.with_name(f"{stem}-{preset}.gguf")


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min 05 s', '1 h 02 min' ('' when unknown)."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class ExportDialog(QDialog):
    """Write the current plan to a GGUF file without blocking the GUI.

    ``worker`` is the running (or last) export worker and ``finished_ok`` becomes True once the
    file has been written and verified.
    """

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: GeneratorWorker | None = None
        self.finished_ok = False
        self.last_progress: ExportProgress | None = None
        self._error: str | None = None
        self._close_when_done = False
        self._plan: Plan | None = None
        self._projected = 0
        self._out: Path | None = None
        self._parts: list[int] | None = None
        self._finished = True
        self.setWindowTitle("Export GGUF")
        self.setMinimumWidth(560)
        self._build()
        self._update_projection()
        self._update_path_note()

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        s = self.session
        assert s.model is not None
        self.path_edit = QLineEdit(str(default_output(s.model.path, s.state.options.preset)))
        self.path_edit.setToolTip(
            "Where the quantized GGUF is written (written to a temporary file first, renamed when complete)"
        )
        self.path_edit.textChanged.connect(self._update_path_note)
        self.output_options = ExportOptions(s)
        self.output_options.changed.connect(self._update_path_note)
        self.browse_button = QPushButton("&Browse…")
        self.browse_button.setToolTip("Choose the output file")
        self.browse_button.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        self.path_note = QLabel()
        self.path_note.setStyleSheet("color: #8a5a00;")

        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.threads_spin.setValue(self.threads_spin.maximum())
        self.threads_spin.setToolTip("Threads used by the quantization kernels (default: all cores)")
        self.projected_label = QLabel()
        self.projected_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.projected_label.setToolTip("The exact size the size panel shows for this plan")

        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setToolTip("Share of the output's tensor bytes written")
        self.progress_label = QLabel(" ")
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("&Export", QDialogButtonBox.AcceptRole)
        self.export_button.setToolTip("Quantize and write the file (Enter)")
        self.export_button.setDefault(True)
        self.cancel_button = self.buttons.addButton("&Cancel", QDialogButtonBox.RejectRole)
        self.cancel_button.setToolTip("Stop the export (no partial file is left) or close the dialog (Esc)")
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)

        form = QFormLayout()
        for text, field, buddy in (
            ("&Output file:", path_row, self.path_edit),
            ("", self.path_note, None),
            ("&Threads:", self.threads_spin, self.threads_spin),
            ("Projected size:", self.projected_label, None),
        ):
            label = QLabel(text)
            if buddy is not None:
                label.setBuddy(buddy)
            form.addRow(label, field)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.output_options)
        requantized = sorted(
            {
                tp.source.src_type
                for tp in (s.plan.tensors if s.plan else ())
                if tp.converts and not is_float_type(tp.source.src_type)
            }
        )
        if requantized:
            note = QLabel(
                f"The source is already quantized ({', '.join(requantized)}): those tensors are "
                "dequantized and quantized again, which costs more quality than starting from "
                "F16/BF16."
            )
            note.setWordWrap(True)
            note.setStyleSheet("color: #8a5a00;")
            layout.addWidget(note)
        identity = identity_note(s.plan) if s.plan is not None else None
        if identity:  # ggml's encoder everywhere writes llama-quantize's bytes; HQQ does not
            self.identity_label = QLabel(f"This file will be {identity}.")
            self.identity_label.setWordWrap(True)
            self.identity_label.setStyleSheet("color: #8a5a00;")
            layout.addWidget(self.identity_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

    def _update_projection(self) -> None:
        size = self.session.size
        assert size is not None
        self._projected = size.file_bytes
        self.projected_label.setText(
            f"<b>{format_bytes(size.file_bytes)}</b> ({size.file_bytes:,} bytes), "
            f"{size.bpw:.3f} bits per weight, preset {self.session.state.options.preset}"
        )

    def _update_path_note(self) -> None:
        """Say at once what export would refuse (the core's check), or that a file is replaced."""
        text = self.path_edit.text().strip()
        note = ""
        if text:
            try:
                out = check_output_path(self.session.model.path, text, self.session.input_paths())  # type: ignore[union-attr]
            except ExportError as err:
                note = _sentence(str(err))
            else:
                self.output_options.set_output(out)
                existing = [f for f in self.output_options.files(out) if f.exists()]
                note = _replaced_note(existing) if existing else ""
        self.path_note.setText(note)
        self.path_note.setVisible(bool(note))

    # ----- actions ----------------------------------------------------------------------------
    def browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export GGUF", self.path_edit.text(), "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)

    @property
    def running(self) -> bool:
        return self.worker is not None and not self._finished

    def start(self) -> bool:
        """Check the output path and start the export worker (returns False when refused)."""
        if self.running:
            return False
        s = self.session
        try:
            out = check_output_path(s.model.path, self.path_edit.text(), s.input_paths())  # type: ignore[union-attr]
        except ExportError as err:
            return self._refuse(_sentence(str(err)))
        self._update_projection()
        self.output_options.set_output(out)
        if self.output_options.error:
            return self._refuse(_sentence(self.output_options.error))
        existing = [f for f in self.output_options.files(out) if f.exists()]
        if existing and not self._confirm_overwrite(existing):
            return False
        self._plan, self._out, self._error = s.plan, out, None
        self._parts = self.output_options.parts
        self.finished_ok = False
        self.last_progress = None
        self._finished = False
        worker = s.export_worker(
            out, self.threads_spin.value(), self.output_options.spec(), self.output_options.card_source_job()
        )
        worker.signals.yielded.connect(self._on_progress)
        worker.signals.errored.connect(self._on_error)
        worker.signals.finished.connect(self._on_finished)
        self.worker = worker
        self._set_running(True)
        self.result_label.clear()
        self.progress.setValue(0)
        self.progress_label.setText("starting…")
        s.start_export(worker)
        return True

    def _confirm_overwrite(self, existing: list[Path]) -> bool:
        answer = QMessageBox.question(
            self,
            "Replace file?",
            f"{_existing_text(existing)} in {existing[0].parent}.\nReplace?",
            QMessageBox.Yes | QMessageBox.No,
            QMessageBox.No,
        )
        return answer == QMessageBox.Yes

    def _refuse(self, message: str) -> bool:
        self.result_label.setText(f"<span style='color:#b00020'>{escape(message)}</span>")
        return False

    def _set_running(self, on: bool) -> None:
        for w in (self.path_edit, self.browse_button, self.threads_spin, self.export_button, self.output_options):
            w.setEnabled(not on)
        self.cancel_button.setText("&Cancel export" if on else "&Close")

    def _on_cancel_clicked(self) -> None:
        if self.running:
            self.cancel()  # stay open to show that nothing was written
        else:
            self.reject()

    def cancel(self) -> None:
        """Ask the running export to stop; the core removes the partial file."""
        if self.running:
            assert self.worker is not None
            self.worker.cancel()
            self.progress_label.setText("cancelling…")

    def reject(self) -> None:
        """Esc / Cancel / closing the window: cancel a running export first, then close."""
        if self.running:
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.running:
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    # ----- worker -> view ---------------------------------------------------------------------
    def _on_progress(self, p: ExportProgress | SourceInfo) -> None:
        if isinstance(p, SourceInfo):  # the card's source facts, read after the file was written
            self.output_options.set_source(p)
            return
        self.last_progress = p
        self.progress.setValue(round(PROGRESS_STEPS * p.fraction))
        if p.done:
            self.progress_label.setText(f"{p.n_tensors} tensors written, {p.mb_per_s:.1f} MB/s")
            return
        eta = format_duration(p.eta_s)
        left = f" · {eta} left" if eta else ""
        self.progress_label.setText(
            f"tensor {p.tensor_index + 1}/{p.n_tensors} {p.tensor_name} · {p.mb_per_s:.1f} MB/s{left}"
        )

    def _on_error(self, message: str) -> None:
        self._error = message.splitlines()[0] if message else "export failed"

    def _on_finished(self) -> None:
        self._finished = True
        worker = self.worker
        assert worker is not None
        self._set_running(False)
        done = self.last_progress is not None and self.last_progress.done
        if self._error is not None:
            self.progress_label.setText(" ")
            self._refuse(f"Export failed: {self._error}")
        elif worker.cancel_requested or not done:
            self.progress_label.setText("Export cancelled; no file was written.")
            self.progress.setValue(0)
        else:
            self._verify()
        if self._close_when_done:
            super().reject()

    def _verify(self) -> None:
        assert self._out is not None and self._plan is not None
        parts = self._parts
        first = self.output_options.files(self._out)[0]
        projected = self._projected if parts is None else sum(parts)
        try:
            result = verify_written(first, self._plan, projected, parts)
        except QuantError as err:
            self._refuse(f"Verification failed: {err}")
            return
        self.finished_ok = True
        where = escape(first.name) + (f" and {len(parts) - 1} more part(s)" if parts and len(parts) > 1 else "")
        self.result_label.setText(
            f"<span style='color:#1b7837'>✔ Written and verified</span>: {where}, "
            f"{result.n_tensors} tensors with the planned types.<br>"
            f"File size <b>{result.file_bytes:,}</b> bytes = projected <b>{projected:,}</b> bytes "
            f"({format_bytes(result.file_bytes)})." + self._card_note()
        )

    def _card_note(self) -> str:
        """Write the model card when asked; what to add to the result (or why it failed)."""
        if not self.output_options.card_check.isChecked():
            return ""
        assert self._out is not None and self._plan is not None
        try:
            card = self.output_options.write_card(self._out, self._plan)
        except QuantError as err:
            return f"<br><span style='color:#b00020'>Model card not written: {escape(str(err))}</span>"
        return f"<br>Model card: {escape(card.name)}."


def _replaced_note(files: list[Path]) -> str:
    if len(files) == 1:
        return "This file exists and will be replaced."
    return f"{len(files)} of the parts exist and will be replaced."


def _existing_text(files: list[Path]) -> str:
    """'x.gguf already exists' or 'x-00001-of-00003.gguf and 2 more already exist' (split parts)."""
    if len(files) == 1:
        return f"{files[0].name} already exists"
    return f"{files[0].name} and {len(files) - 1} more already exist"


def _sentence(message: str) -> str:
    """A core message as a sentence: capitalised, with a full stop."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
