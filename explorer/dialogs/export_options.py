"""The export dialog's output options: split into parts (with their projected sizes), model card.

Splitting follows llama-gguf-split: at most N megabytes (10^6 bytes) of tensor data or N tensors
per part, parts named ``NAME-00001-of-0000N.gguf``. The sizes shown are the core's exact
projection of every part. The model card is ``NAME.md`` beside the output and lists every export
of this model into the same folder made while the app runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QSpinBox, QWidget

from quant_core.card_data import card_path, entry_from_plan, quality_row, source_info, write_card
from quant_core.errors import QuantError
from quant_core.model import Model
from quant_core.model_card import QualityRow, SourceInfo, render_card
from quant_core.plan import Plan
from quant_core.size import project_parts, project_size
from quant_core.split import SplitSpec, part_paths

from ..export_log import record_export
from ..panels.plot_common import format_bytes
from ..session import ExplorerSession

BY_SIZE, BY_TENSORS = 0, 1
DEFAULT_MB = 4000
DEFAULT_TENSORS = 128  # llama-gguf-split's default
GUI_HASH_LIMIT = 512 * 1024**2  # hash the source for the card only when that is quick
_MAX_LISTED = 4


class ExportOptions(QWidget):
    """Split and model-card choices; ``changed`` when the split (hence the files written) changes."""

    changed = Signal()

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.error: str | None = None
        self.parts: list[int] | None = None
        self._out: Path | None = None
        self._source: tuple[Model, SourceInfo] | None = None  # the card's source facts, hashed off the GUI thread
        self.split_check = QCheckBox("&Split into parts")
        self.split_check.setToolTip("Write llama-gguf-split parts NAME-00001-of-0000N.gguf; llama.cpp loads the first")
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["of at most (MB)", "of at most (tensors)"])
        self.mode_combo.setToolTip("Limit each part's tensor data (megabytes, 10^6 bytes) or its tensor count")
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(1, 10_000_000)
        self.limit_spin.setValue(DEFAULT_MB)
        self.limit_spin.setToolTip("The limit per part, as --split-max-size NM or --split-max-tensors N")
        self.parts_label = QLabel()
        self.parts_label.setWordWrap(True)
        self.parts_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.card_check = QCheckBox("Write a model &card")
        self.card_check.setToolTip(
            "Write NAME.md beside the file: source, recipe and llama-quantize command, types per "
            "category, size, and the quality measured for this mix; it lists every export of this "
            "model into the same folder"
        )
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.split_check, 0, 0)
        grid.addWidget(self.mode_combo, 0, 1)
        grid.addWidget(self.limit_spin, 0, 2)
        grid.addWidget(self.parts_label, 1, 0, 1, 4)
        grid.addWidget(self.card_check, 2, 0, 1, 4)
        grid.setColumnStretch(3, 1)
        self.split_check.toggled.connect(self._on_split_changed)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.limit_spin.valueChanged.connect(self._on_split_changed)
        self._on_split_changed()

    # ----- split ------------------------------------------------------------------------------
    def spec(self) -> SplitSpec | None:
        """The split chosen, or None for one file."""
        if not self.split_check.isChecked():
            return None
        n = self.limit_spin.value()
        return (
            SplitSpec(max_bytes=n * 1000**2) if self.mode_combo.currentIndex() == BY_SIZE else SplitSpec(max_tensors=n)
        )

    def set_output(self, out: Path | None) -> None:
        """The output path typed in the dialog (part names are built on it)."""
        self._out = out
        self.update_projection()

    def files(self, out: Path) -> list[Path]:
        """The files an export to ``out`` writes with the current choice."""
        return [out] if self.parts is None else part_paths(out, len(self.parts))

    def _on_mode_changed(self) -> None:
        self.limit_spin.setValue(DEFAULT_MB if self.mode_combo.currentIndex() == BY_SIZE else DEFAULT_TENSORS)
        self._on_split_changed()

    def _on_split_changed(self) -> None:
        on = self.split_check.isChecked()
        self.mode_combo.setEnabled(on)
        self.limit_spin.setEnabled(on)
        self.update_projection()
        self.changed.emit()

    def update_projection(self) -> None:
        """Recompute the parts' exact sizes for the current plan and show them."""
        s, spec = self.session, self.spec()
        self.error, self.parts = None, None
        if spec is None or s.model is None or s.plan is None:
            self.parts_label.setVisible(False)
            return
        try:
            self.parts = project_parts(s.model, s.plan, spec, s.imatrix_keys)
        except QuantError as err:
            self.error = str(err)
            self.parts_label.setText(f"<span style='color:#b00020'>{self.error}</span>")
        else:
            self.parts_label.setText(self._parts_text(self.parts))
        self.parts_label.setVisible(True)

    def _parts_text(self, parts: list[int]) -> str:
        sizes = ", ".join(format_bytes(n) for n in parts[:_MAX_LISTED])
        more = f", … ({len(parts) - _MAX_LISTED} more)" if len(parts) > _MAX_LISTED else ""
        first = part_paths(self._out, len(parts))[0].name if self._out is not None else ""
        named = f"; open {first}" if first else ""
        return f"{len(parts)} part{'s' if len(parts) != 1 else ''}: {sizes}{more} ({sum(parts):,} bytes){named}"

    # ----- model card -------------------------------------------------------------------------
    def card_source_job(self) -> Callable[[], SourceInfo] | None:
        """When a card is wanted: the reading (and hashing) of the source's facts, to run in the export worker."""
        model = self.session.model
        if not self.card_check.isChecked() or model is None:
            return None
        return lambda: source_info(model, GUI_HASH_LIMIT)

    def set_source(self, info: SourceInfo) -> None:
        """The source's facts read by the export worker, for :meth:`write_card`."""
        self._source = (self.session.model, info)

    def write_card(self, out: Path, plan: Plan) -> Path:
        """Record the export of ``plan`` and write the card of its ladder beside it; QuantError on failure."""
        s = self.session
        assert s.model is not None
        size = project_size(s.model, plan, s.imatrix_keys)
        entry = entry_from_plan(s.model, plan, size, out, self.parts, self.spec(), self._quality())
        ladder = record_export(s, s.model.path, out.parent, entry)
        if self._source is not None and self._source[0] is s.model:
            source = self._source[1]
        else:
            source = source_info(s.model, hash_limit=0)  # not read by the export worker: no hash
        card = render_card(source, ladder)
        return write_card(card_path(out), card)

    def _quality(self) -> QualityRow | None:
        """The quality measured for the current mix on the Quality panel's text, if any."""
        tracker = self.session.quality
        key = tracker.current_key()
        measured = tracker.measurement(key) if key is not None else None
        if measured is None or tracker.text_path is None:
            return None
        row = quality_row(measured.report, tracker.text_path)
        if measured.speed is None:
            return row
        return replace(row, pp_tps=measured.speed.pp_tps, tg_tps=measured.speed.tg_tps)
