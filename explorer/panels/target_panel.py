"""Auto-mix to a target: the mix with the least predicted KLD within a size, bpw or memory budget.

The user picks what the budget limits (file size in MiB, bits per weight, or memory in MiB for
the model plus its KV cache at a context length and cache type), sets the value in a field or
with a slider, and presses "Propose": the mix is applied to the map as one undoable step (a
whole slider drag is one step too). The first proposal computes the cost table in the background
(progress, cancel); afterwards each proposal takes milliseconds, so the slider is followed live.
The predicted size–KLD curve is offered to the Quality panel's plot (``curve_changed``), where
"Measure" verifies a proposal with the real runtime.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from quant_core.automix import Budget, BudgetError, MixResult
from quant_core.automix.kv import KV_TYPES
from quant_core.errors import QuantError

from ..automix_jobs import MIB, AutoMixer, CostSource, Curve, format_kld
from ..session import ExplorerSession

SIZE, BPW, MEMORY = "File size (MiB)", "Bits per weight", "Memory at context (MiB)"
MODES = (SIZE, BPW, MEMORY)
SLIDER_STEPS = 1000
PROGRESS_STEPS = 1000
DEFAULT_CTX = 4096
_drags = itertools.count()


class TargetPanel(QWidget):
    """Mode, value, slider, Propose; the prediction and exact size of the proposal; cost progress."""

    curve_changed = Signal(object)  # a Curve, or None when there is none

    def __init__(
        self, session: ExplorerSession, cost_source: CostSource | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.mixer = AutoMixer(session, cost_source, self)
        self.last: MixResult | None = None
        self.curve: Curve | None = None
        self._pending = False  # propose once the costs arrive
        self._syncing = False  # value and slider set from code: no proposal
        self._drag: int | None = None
        self._curve_version = -1  # the mix space the drawn curve belongs to
        self._build()
        self.mixer.progress.connect(self._on_progress)
        self.mixer.running_changed.connect(self._on_running)
        self.mixer.failed.connect(self._show_message)
        self.mixer.costs_ready.connect(self._on_costs)
        session.model_changed.connect(self._on_model_changed)
        session.plan_changed.connect(self._on_plan_changed)
        self._on_model_changed()

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.mode_box = QComboBox()
        self.mode_box.addItems(MODES)
        self.mode_box.setToolTip(
            "What the budget limits: the file, llama-quantize's bits per weight, "
            "or the memory the model and its KV cache take at a context length"
        )
        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.value_spin = QDoubleSpinBox()
        self.value_spin.setKeyboardTracking(False)
        self.value_spin.setToolTip("The budget (the mix never exceeds it)")
        self.value_spin.valueChanged.connect(self._on_value_changed)
        self.ctx_spin = QSpinBox()
        self.ctx_spin.setRange(1, 1 << 24)
        self.ctx_spin.setValue(DEFAULT_CTX)
        self.ctx_spin.setPrefix("ctx ")
        self.ctx_spin.setKeyboardTracking(False)
        self.ctx_spin.setToolTip("Context length the KV cache is sized for (llama.cpp pads it to 256 cells)")
        self.ctx_spin.valueChanged.connect(lambda _v: self._update_range())
        self.kv_box = QComboBox()
        self.kv_box.addItems(KV_TYPES)
        self.kv_box.setToolTip("KV cache type of K and V (llama.cpp's --cache-type-k/-v)")
        self.kv_box.currentIndexChanged.connect(lambda _i: self._update_range())
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("Budget from the smallest to the largest achievable mix; the map follows")
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderPressed.connect(self._start_drag)
        self.slider.sliderReleased.connect(self._end_drag)
        self.propose_button = QPushButton("Propose")
        self.propose_button.setToolTip("Apply the mix with the least predicted KLD within the budget (undoable)")
        self.propose_button.clicked.connect(self.propose)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop computing the cost table (what is done is kept on disk)")
        self.cancel_button.clicked.connect(self.mixer.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(12)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #AA3377")

        grid = QGridLayout()
        grid.addWidget(QLabel("Target:"), 0, 0)
        grid.addWidget(self.mode_box, 0, 1)
        grid.addWidget(self.value_spin, 0, 2)
        grid.addWidget(self.ctx_spin, 1, 1)
        grid.addWidget(self.kv_box, 1, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.propose_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addLayout(grid)
        layout.addWidget(self.slider)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label)
        layout.addWidget(self.message_label)
        layout.addStretch(1)
        self._on_running(False)

    # ----- state --------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_box.currentText()

    def _on_mode_changed(self, _index: int = 0) -> None:
        memory = self.mode == MEMORY
        self.ctx_spin.setVisible(memory)
        self.kv_box.setVisible(memory)
        self.value_spin.setDecimals(3 if self.mode == BPW else 2)
        self.value_spin.setSuffix(" bpw" if self.mode == BPW else " MiB")
        self.value_spin.setRange(0.001, 32.0 if self.mode == BPW else 1e7)
        self._set_value_from_plan()

    def _on_model_changed(self) -> None:
        self.last, self._pending = None, False
        self.result_label.clear()
        self.message_label.clear()
        self._set_curve(None)
        has_model = self.session.model is not None
        self.propose_button.setEnabled(has_model)
        self._on_mode_changed()

    def _on_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setValue(0)
        elif not self.mixer.has_costs:
            self._pending = False

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(round(fraction * PROGRESS_STEPS))
        self.result_label.setText(text + "…")

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)

    def _on_costs(self) -> None:
        self.result_label.clear()
        self._update_range()
        self._update_curve()
        if self._pending:
            self._pending = False
            self.propose()

    def _on_plan_changed(self) -> None:
        self._update_range()  # builds a new mix space when the pins or options changed
        if self.mixer.has_costs and self.mixer.space_version != self._curve_version:
            self._update_curve()

    def _update_curve(self) -> None:
        try:
            self._set_curve(self.mixer.curve())
        except QuantError as err:
            self._set_curve(None)
            self._show_message(str(err))
        self._curve_version = self.mixer.space_version

    def _set_curve(self, curve: Curve | None) -> None:
        self.curve = curve
        self.curve_changed.emit(curve)

    # ----- budget range -------------------------------------------------------------------------
    def value_range(self) -> tuple[float, float] | None:
        """The achievable budget range in the current mode's unit (None before the costs exist)."""
        if not self.mixer.has_costs:
            return None
        try:
            if self.mode == BPW:
                return self.mixer.bpw_range()
            lo, hi = self.mixer.file_range()
            if self.mode == MEMORY:
                kv = self.kv_bytes()
                lo, hi = lo + kv, hi + kv
        except QuantError:
            return None
        return lo / MIB, hi / MIB

    def kv_bytes(self) -> int:
        """KV cache bytes at the chosen context and cache type (QuantError for unknown layouts)."""
        from quant_core.automix import kv_cache_bytes

        assert self.session.model is not None
        kv = self.kv_box.currentText()
        return kv_cache_bytes(self.session.model, self.ctx_spin.value(), kv, kv).total

    def _update_range(self) -> None:
        """Slider ends at the smallest and largest achievable budget; the field's range around them."""
        rng = self.value_range()
        self.slider.setEnabled(rng is not None)
        if rng is not None:
            self._syncing = True
            try:
                self.slider.setValue(self._slider_pos(self.value_spin.value(), rng))
            finally:
                self._syncing = False

    def _set_value_from_plan(self) -> None:
        """Start from the current plan's size (memory: plus the KV cache)."""
        size = self.session.size
        if size is None:
            return
        value = size.bpw if self.mode == BPW else size.file_bytes / MIB
        if self.mode == MEMORY:
            try:
                value += self.kv_bytes() / MIB
            except QuantError as err:
                self._show_message(str(err))
        self.set_value(value)
        self._update_range()

    @staticmethod
    def _slider_pos(value: float, rng: tuple[float, float]) -> int:
        lo, hi = rng
        if hi <= lo:
            return SLIDER_STEPS
        return round(min(max((value - lo) / (hi - lo), 0.0), 1.0) * SLIDER_STEPS)

    def set_value(self, value: float) -> None:
        """Set the budget in the current mode's unit (MiB or bpw) without proposing."""
        self._syncing = True
        try:
            self.value_spin.setValue(value)
            rng = self.value_range()
            if rng is not None:
                self.slider.setValue(self._slider_pos(value, rng))
        finally:
            self._syncing = False

    def _on_value_changed(self, _value: float) -> None:
        if not self._syncing and self.mixer.has_costs:
            self.set_value(self.value_spin.value())
            self.propose()

    def _on_slider(self, pos: int) -> None:
        rng = self.value_range()
        if self._syncing or rng is None:
            return
        lo, hi = rng
        self._syncing = True
        try:
            self.value_spin.setValue(lo + (hi - lo) * pos / SLIDER_STEPS)
        finally:
            self._syncing = False
        self.propose(merge_key=self._drag)

    def _start_drag(self) -> None:
        self._drag = next(_drags)

    def _end_drag(self) -> None:
        self._drag = None

    # ----- proposing ------------------------------------------------------------------------------
    def budget(self) -> Budget:
        """The budget the controls describe (BudgetError when it is not valid)."""
        value = self.value_spin.value()
        if self.mode == BPW:
            return Budget(bpw=value)
        limit = int(value * MIB)
        if self.mode == SIZE:
            return Budget(file_bytes=limit)
        kv = self.kv_box.currentText()
        return Budget(memory_bytes=limit, n_ctx=self.ctx_spin.value(), cache_type_k=kv, cache_type_v=kv)

    def describe(self) -> str:
        value = self.value_spin.value()
        if self.mode == BPW:
            return f"{value:.3f} bpw"
        if self.mode == SIZE:
            return f"{value:.2f} MiB"
        return f"{value:.2f} MiB of memory at context {self.ctx_spin.value()} ({self.kv_box.currentText()} cache)"

    def propose(self, _checked: bool = False, merge_key: object = None) -> bool:
        """Apply the best mix for the budget (computing the costs first if needed)."""
        if self.session.model is None:
            return False
        self.message_label.clear()
        if not self.mixer.has_costs:
            self._pending = True
            self.mixer.compute()
            return False
        try:
            result = self.mixer.solve(self.budget())
        except BudgetError as err:
            self._show_message(self._too_small() or str(err))
            return False
        except QuantError as err:
            self._show_message(str(err))
            return False
        self.last = result
        self._show_result(result)
        return self.mixer.apply(result, f"Auto-mix for {self.describe()}", merge_key)

    def _too_small(self) -> str | None:
        """The unmet budget in the panel's words (None when the range is unknown)."""
        rng = self.value_range()
        if rng is None:
            return None
        unit = "bpw" if self.mode == BPW else "MiB"
        digits = 3 if self.mode == BPW else 2
        return f"{self.describe()} cannot be met: the smallest achievable mix needs {rng[0]:.{digits}f} {unit}"

    def _show_result(self, r: MixResult) -> None:
        costs = self.mixer.costs
        assert costs is not None
        n = sum(1 for tp in r.plan.tensors if tp.why.kind.value == "auto_mix")
        what = "predicted mean KLD" if costs.is_kld else "weight error (interim, not KLD)"
        proof = "optimal" if r.exact else f"within {r.solution.gap:.2g} of optimal"
        kv = f" + KV cache {r.kv_bytes / MIB:.2f} MiB" if self.mode == MEMORY else ""
        self.result_label.setText(
            f"{what} <b>{format_kld(self.mixer.predicted(r))}</b> ({proof})<br>"
            f"{r.file_bytes:,} bytes ({r.file_bytes / MIB:.3f} MiB){kv}, {r.bpw:.4f} bpw; {n} tensors chosen"
        )

    def shutdown(self) -> None:
        self.mixer.shutdown()
