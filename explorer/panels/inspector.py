"""Tensor inspector: error and weight histograms of the selected tensor, and its error statistics.

Everything shown comes from the session's :class:`~quant_core.inspect.Inspection` (a row sample
first, then the whole tensor), kept in the session's statistics cache; the panel never computes
and keeps no copies.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from quant_core.hqq_native import SCHEMES, is_scheme, scheme_label
from quant_core.hqq_preview import scheme_problem
from quant_core.inspect import Inspection
from quant_core.plan import TensorPlan, type_problem
from quant_core.qtypes import QTYPES, qtype
from quant_core.stats import ErrorStats

from ..colors import text_color, type_color, type_tooltip
from ..session import ExplorerSession
from .plot_common import LEVEL_COLOR, style_plot

HQQ_COLOR = "#AA3377"  # the HQQ schemes' curve: not a GGUF type, so outside the type colours
_SCHEME_TIP = (
    "<b>HQQ's own format</b> (not GGUF, for comparison at equal bits): affine groups of 64 along the "
    "row, min-max start then HQQ's proximal solver on the zero, float16 scale and zero "
    "(b + 0.5 bits per weight). No importance matrix."
)
TAIL = 0.001  # share of counts left out on each side of a linear-scale histogram
_NONE = "none"
METRICS: tuple[tuple[str, str], ...] = (
    ("RMSE", "Root mean square of x − x̂"),
    ("relative RMSE", "‖x − x̂‖ / ‖x‖ (the relative Frobenius error)"),
    ("max |error|", "Largest absolute error of any weight"),
    ("SNR", "10·log10(Σx² / Σ(x − x̂)²), higher is better"),
    ("cosine", "Cosine similarity of x and x̂ (1 = same direction)"),
    (
        "weighted MSE",
        "Importance-weighted MSE Σ w·(x − x̂)² / Σ w, what llama.cpp's quantizers minimise (needs an importance matrix)",
    ),
)


def metric_texts(stats: ErrorStats | None) -> list[str]:
    """The statistics column of one type, in :data:`METRICS` order."""
    if stats is None:
        return [""] * len(METRICS)
    wmse = "no imatrix" if stats.weighted_mse is None else f"{stats.weighted_mse:.4g}"
    return [
        f"{stats.rmse:.4g}",
        f"{100 * stats.rel_rmse:.3f} %",
        f"{stats.max_abs:.4g}",
        f"{stats.snr_db:.2f} dB",
        f"{stats.cosine:.6f}",
        wmse,
    ]


def shown_range(edges: np.ndarray, counts: np.ndarray, tail: float) -> tuple[float, float] | None:
    """x range holding all but ``tail`` of the counts on each side (all non-empty bins for tail 0)."""
    total = counts.sum()
    if total <= 0:
        return None
    cum = np.cumsum(counts)
    lo = int(np.searchsorted(cum, tail * total, side="right"))
    hi = int(np.searchsorted(cum, (1.0 - tail) * total, side="left"))
    return float(edges[lo]), float(edges[min(hi, len(counts) - 1) + 1])


def _union(*ranges: tuple[float, float] | None) -> tuple[float, float] | None:
    found = [r for r in ranges if r is not None]
    return (min(r[0] for r in found), max(r[1] for r in found)) if found else None


def planned_label(insp: Inspection) -> str:
    """'Q4_K (planned)', or 'Q4_K (planned, HQQ)' for an HQQ-encoded tensor."""
    return f"{insp.type} (planned, HQQ)" if insp.encoder == "hqq" else f"{insp.type} (planned)"


def compare_label(insp: Inspection) -> str | None:
    """The compared type; '(ggml)' added when the planned tensor is HQQ-encoded."""
    c = insp.compare_type
    return f"{c} (ggml)" if c and insp.encoder == "hqq" and not is_scheme(c) else c


def short_name(tensor: str) -> str:
    """``blk.0.attn_q.weight`` → ``blk.0.attn_q``: the name as titles show it."""
    return tensor.removesuffix(".weight")


def levels_words(type_name: str, n_levels: int) -> str:
    """What the level marks of the weight plot are, in plain words."""
    q = qtype(type_name)
    if q.is_float:
        return f"{q.name} keeps every weight as a float: no blocks, no levels"
    return (
        f"▲ the distinct values one {q.name} block of {q.block_size} weights can take "
        f"after quantization: {n_levels} here"
    )


def _swatch(type_name: str) -> QIcon:
    return _swatch_color(type_color(type_name))


def _swatch_color(color: QColor | str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(color))
    return QIcon(pix)


def _fill(colour: QColor, alpha: int) -> QColor:
    c = QColor(colour)
    c.setAlpha(alpha)
    return c


class Inspector(QWidget):
    """Histograms and statistics of the selected tensor at its planned type and a compared type."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.shown: Inspection | None = None
        self._level_lines: list[pg.InfiniteLine] = []
        self._build()
        session.selection_changed.connect(lambda _names: self._refresh())
        session.plan_changed.connect(self._refresh)
        session.inspection_ready.connect(self._on_inspection)
        session.inspection_failed.connect(lambda _message: self._refresh())
        session.model_changed.connect(self._on_model_changed)
        session.imatrix_changed.connect(self._on_model_changed)
        self._refresh()

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.title_label = QLabel()
        self.title_label.setWordWrap(True)
        self.title_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.rows_label = QLabel()
        self.rows_label.setToolTip("The first answer comes from a sample of rows; the whole tensor follows")
        self.compare_combo = QComboBox()
        self.compare_combo.setToolTip("Overlay the error of a second type on the same tensor")
        self.compare_combo.addItem(_NONE, None)
        for q in sorted(QTYPES.values(), key=lambda q: (q.bpw, q.name)):
            self.compare_combo.addItem(_swatch(q.name), f"{q.name}  ({q.bpw:.3g} bpw)", q.name)
            self.compare_combo.setItemData(self.compare_combo.count() - 1, type_tooltip(q.name), Qt.ToolTipRole)
        for name in SCHEMES:  # HQQ's own format at equal bits, beside the GGUF types
            self.compare_combo.addItem(_swatch_color(HQQ_COLOR), scheme_label(name), name)
            self.compare_combo.setItemData(self.compare_combo.count() - 1, _SCHEME_TIP, Qt.ToolTipRole)
        self.compare_combo.currentIndexChanged.connect(self._on_compare_chosen)
        compare_label = QLabel("Compare &with:")
        compare_label.setBuddy(self.compare_combo)
        self.log_box = QCheckBox("Lo&g scale")
        self.log_box.setToolTip("Logarithmic counts, to see the tails of the distributions")
        self.log_box.toggled.connect(self._on_log_toggled)

        self.error_plot = pg.GraphicsLayoutWidget()
        self.error_plot.setBackground("w")
        self.error_item = style_plot(self.error_plot.addPlot(0, 0), "Error: weight − dequantized weight", "count")
        self.error_legend = self.error_item.addLegend(
            offset=(-4, 4), labelTextColor="#222222", brush=(255, 255, 255, 200), labelTextSize="8pt"
        )
        self.error_curve = self.error_item.plot(stepMode="center", fillLevel=0)
        self.compare_curve = self.error_item.plot(stepMode="center")
        self.error_plot.setToolTip(
            "Histogram of the quantization error of every weight (filled: planned type, "
            "dashed: the compared type); each type has its own bins"
        )

        self.weight_plot = pg.GraphicsLayoutWidget()
        self.weight_plot.setBackground("w")
        self.weight_item = style_plot(self.weight_plot.addPlot(0, 0), "Weights", "count")
        self.weight_curve = self.weight_item.plot(
            stepMode="center", fillLevel=0, pen=pg.mkPen("#4477AA"), brush=(68, 119, 170, 90)
        )
        self.level_points = pg.ScatterPlotItem(symbol="t1", size=9, pen=None, brush=pg.mkBrush(LEVEL_COLOR))
        self.weight_item.addItem(self.level_points)
        self.weight_plot.setToolTip(
            "Histogram of the weights of the sampled rows; red marks and lines: the distinct "
            "values one block (the one holding the largest weight) can take after quantization"
        )

        self.table = QTableWidget(len(METRICS), 2)
        self.table.setVerticalHeaderLabels([m for m, _ in METRICS])
        for row, (_name, tip) in enumerate(METRICS):
            self.table.verticalHeaderItem(row).setToolTip(tip)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next widget
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("Error statistics of the planned type and the compared type")
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setFixedHeight(20 * len(METRICS) + self.table.horizontalHeader().sizeHint().height() + 6)

        controls = QHBoxLayout()
        controls.addWidget(compare_label)
        controls.addWidget(self.compare_combo, 1)
        controls.addWidget(self.log_box)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.error_plot)
        split.addWidget(self.weight_plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.rows_label)
        layout.addLayout(controls)
        layout.addWidget(split, 1)
        layout.addWidget(self.table)

    # ----- session -> view --------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        self.shown = None
        self._refresh()

    def current(self) -> TensorPlan | None:
        """The plan of the inspected tensor (the first selected one), or None."""
        s = self.session
        if not s.selected or s.plan is None:
            return None
        try:
            return s.plan.tensor(s.selected[0])
        except Exception:  # noqa: BLE001  a selection from a previous model
            return None

    def _on_inspection(self, insp: Inspection) -> None:
        if (insp.name, insp.type, insp.compare_type, insp.encoder) == self.session.inspection_key():
            self._show(insp)

    def _refresh(self) -> None:
        """Show what the session holds for the current selection, plan and compared type."""
        tp = self.current()
        self._update_compare_combo(tp)
        if tp is None:
            self._clear("Select a tensor in the map or the table to inspect its quantization error.")
            return
        shape = " × ".join(str(d) for d in tp.source.shape)
        if not tp.quantizable:
            self._clear(
                f"<b>{escape(tp.name)}</b> ({shape}, {tp.source.src_type}) is not quantized: {escape(tp.reason)}."
            )
            return
        bg = type_color(tp.type)
        same = self.shown is not None and (self.shown.name, self.shown.type) == (tp.name, tp.type)
        self._set_titles(tp.name, tp.type, len(self.shown.levels) if same else None)  # type: ignore[union-attr]
        self.title_label.setText(
            f"<b>{escape(tp.name)}</b> &nbsp;{shape}, {tp.source.src_type} → "
            f"<span style='background:{bg.name()}; color:{text_color(bg).name()}'>"
            f"&nbsp;{tp.type}&nbsp;</span> <span style='color:#555'>({escape(tp.reason)})</span>"
        )
        s = self.session
        insp = s.stats.inspection(s.inspection_key())  # type: ignore[arg-type]
        problem = s.inspection_problem()
        if problem is not None:
            self._clear_plots()
            self.rows_label.setText(f"<span style='color:#b00020'>{escape(problem)}</span>")
        elif insp is not None:
            self._show(insp)
        elif self.shown is not None and (self.shown.name, self.shown.type) == (tp.name, tp.type):
            self.rows_label.setText(f"measuring {s.compare_type or 'without comparison'}…")
        else:
            self._clear_plots()
            self.rows_label.setText("measuring…")

    def _set_titles(self, name: str, type_name: str, n_levels: int | None) -> None:
        """Plot titles for ``name`` at once (the levels' count once measured), never a previous tensor's."""
        short = escape(short_name(name))
        self._title(self.error_item, f"Error of {short} at {type_name}: weight − dequantized weight")
        words = "measuring…" if n_levels is None else escape(levels_words(type_name, n_levels))
        self._title(self.weight_item, f"Weights of {short}<br>{words}")

    @staticmethod
    def _title(item: pg.PlotItem, text: str) -> None:
        item.setTitle(text, color="#222222", size="9pt")

    def _clear(self, message: str) -> None:
        self.title_label.setText(message)
        self._title(self.error_item, "Error: weight − dequantized weight")
        self._title(self.weight_item, "Weights")
        self.rows_label.clear()
        self._clear_plots()

    def _clear_plots(self) -> None:
        self.shown = None
        self._rename(self.error_curve, None)
        self._rename(self.compare_curve, None)
        for curve in (self.error_curve, self.compare_curve, self.weight_curve):
            curve.setData([], [])
        self.level_points.setData(x=[], y=[])
        self._set_levels(np.zeros(0))
        self._fill_table(None)

    def _show(self, insp: Inspection) -> None:
        self.shown = insp
        planned = type_color(insp.type)
        self.error_curve.setData(
            insp.stats.hist_edges,
            insp.stats.hist_counts,
            pen=pg.mkPen(planned.darker(120), width=1.5),
            brush=_fill(planned, 110),
        )
        self._rename(self.error_curve, planned_label(insp))
        other = insp.compare_stats
        if other is not None and insp.compare_type:
            c = QColor(HQQ_COLOR) if is_scheme(insp.compare_type) else type_color(insp.compare_type)
            self.compare_curve.setData(
                other.hist_edges, other.hist_counts, pen=pg.mkPen(c.darker(110), width=2, style=Qt.DashLine)
            )
            self._rename(self.compare_curve, compare_label(insp))
        else:
            self.compare_curve.setData([], [])
            self._rename(self.compare_curve, None)
        self.compare_curve.setVisible(other is not None)
        self.weight_curve.setData(insp.weight_edges, insp.weight_counts)
        self._set_levels(insp.levels)
        top = float(insp.weight_counts.max()) if len(insp.weight_counts) else 1.0
        self.level_points.setData(x=insp.levels, y=np.full(len(insp.levels), self._level_y(top)))
        self._set_titles(insp.name, insp.type, len(insp.levels))
        self._fit_ranges(insp)
        if insp.full:
            self.rows_label.setText(f"all {insp.n_rows:,} rows")
        else:
            self.rows_label.setText(f"sampled {insp.rows_used:,} of {insp.n_rows:,} rows (refining…)")
        self._fill_table(insp)

    def _fit_ranges(self, insp: Inspection) -> None:
        """Linear scale: the central 99.8 % of the weights and errors; log scale: every non-empty bin."""
        tail = 0.0 if self.log_box.isChecked() else TAIL
        other = insp.compare_stats
        err = _union(
            shown_range(insp.stats.hist_edges, insp.stats.hist_counts, tail),
            None if other is None else shown_range(other.hist_edges, other.hist_counts, tail),
        )
        levels = (float(insp.levels.min()), float(insp.levels.max())) if len(insp.levels) else None
        weights = _union(shown_range(insp.weight_edges, insp.weight_counts, tail), levels)
        for item, rng in ((self.error_item, err), (self.weight_item, weights)):
            if rng is not None and rng[1] > rng[0]:
                item.setXRange(*rng, padding=0.03)
            item.enableAutoRange(axis="y")

    def _rename(self, curve: pg.PlotDataItem, name: str | None) -> None:
        """Name a curve in the legend (None: take it out of the legend)."""
        label = self.error_legend.getLabel(curve)
        if name is None:
            if label is not None:
                self.error_legend.removeItem(curve)
        elif label is None:
            self.error_legend.addItem(curve, name)
        else:
            label.setText(name)

    def _level_y(self, top: float) -> float:
        return np.log10(max(top, 1.0)) if self.log_box.isChecked() else top

    def _set_levels(self, levels: np.ndarray) -> None:
        while len(self._level_lines) < len(levels):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(_fill(QColor(LEVEL_COLOR), 150), width=1))
            line.setZValue(-1)
            self.weight_item.addItem(line, ignoreBounds=True)
            self._level_lines.append(line)
        for i, line in enumerate(self._level_lines):
            line.setVisible(i < len(levels))
            if i < len(levels):
                line.setValue(float(levels[i]))

    def _fill_table(self, insp: Inspection | None) -> None:
        columns = [("", None), ("", None)]
        if insp is not None:
            columns = [
                (planned_label(insp), insp.stats),
                (compare_label(insp) or "compare: none", insp.compare_stats),
            ]
        self.table.setHorizontalHeaderLabels([c for c, _ in columns])
        for col, (_title, stats) in enumerate(columns):
            texts = metric_texts(stats) if stats is not None or insp is None else ["—"] * len(METRICS)
            for row, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(row, col, item)

    def _update_compare_combo(self, tp: TensorPlan | None) -> None:
        combo, s = self.compare_combo, self.session
        combo.blockSignals(True)
        try:
            combo.setEnabled(tp is not None and tp.quantizable)
            model = combo.model()
            for i in range(1, combo.count()):
                name = combo.itemData(i)
                problem = None
                if tp is not None and tp.quantizable and is_scheme(name):
                    problem = scheme_problem(tp.source)
                elif tp is not None and tp.quantizable:
                    problem = type_problem(tp, name)
                    if problem is None and name == tp.type and tp.encoder == "ggml":
                        problem = "this is the planned type"
                    elif problem is None and QTYPES[name].ggml_requires_imatrix and s.imatrix is None:
                        problem = "needs an importance matrix (File > Load importance matrix)"
                model.item(i).setEnabled(problem is None)
                tip = _SCHEME_TIP if is_scheme(name) else type_tooltip(name)
                combo.setItemData(
                    i, tip + (f"<br><i>Not available: {escape(problem)}</i>" if problem else ""), Qt.ToolTipRole
                )
            index = combo.findData(s.compare_type) if s.compare_type else 0
            combo.setCurrentIndex(max(0, index))
        finally:
            combo.blockSignals(False)

    # ----- view -> session --------------------------------------------------------------------
    def _on_compare_chosen(self, index: int) -> None:
        self.session.set_compare_type(self.compare_combo.itemData(index))
        self._refresh()

    def _on_log_toggled(self, on: bool) -> None:
        self.error_item.setLogMode(y=on)
        self.weight_item.setLogMode(y=on)
        if self.shown is not None:
            self._show(self.shown)
