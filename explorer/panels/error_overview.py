"""Relative error of every tensor along the depth of the model, one series per category."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from quant_core.model import CATEGORIES

from ..session import ExplorerSession
from .plot_common import category_color, category_symbol, ordered_categories, style_plot
from .size_panel import depth_ticks, layer_position

SELECTED_COLOR = "#EE3377"
_OFFSET = 0.18  # categories side by side within a layer, so points do not hide each other


@dataclass
class _Series:
    """The tensors of one category and their current error (nan = not known yet)."""

    names: list[str] = field(default_factory=list)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))


class ErrorOverview(QWidget):
    """Relative RMSE ‖W − Ŵ‖/‖W‖ of every quantized tensor against its layer.

    Points arrive as the session's statistics do (``stats_updated``); only the touched series are
    redrawn. Clicking a point selects that tensor in the session.
    """

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.series: dict[str, _Series] = {}
        self._where: dict[str, tuple[str, int]] = {}
        self._build()
        session.model_changed.connect(self._on_model_changed)
        session.plan_changed.connect(self._on_plan_changed)
        session.stats_updated.connect(self._on_stats_updated)
        session.selection_changed.connect(lambda _names: self._update_selected())
        self._on_model_changed()

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground("w")
        self.plot_item = style_plot(self.plot.addPlot(0, 0), left="relative RMSE (%)", bottom="layer")
        self.plot.setToolTip(
            "Relative error of each tensor at its planned type, along the depth of the model.\n"
            "Click a point to inspect that tensor. 'embd' = token embedding, 'out' = output."
        )
        item = self.plot_item
        item.setMouseEnabled(x=True, y=False)
        self.legend = pg.LegendItem(labelTextColor="#222222", labelTextSize="8pt")
        self.plot.addItem(self.legend, 0, 1)  # beside the plot, never over the points
        self.points: dict[str, pg.ScatterPlotItem] = {}
        self.lines: dict[str, pg.PlotCurveItem] = {}
        for cat in ordered_categories(CATEGORIES):
            colour = category_color(cat)
            line = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1), connect="finite")
            pts = pg.ScatterPlotItem(
                symbol=category_symbol(cat),
                size=9,
                pen=pg.mkPen(colour.darker(130)),
                brush=pg.mkBrush(colour),
                hoverable=True,
                hoverSize=12,
                tip=self._tip,
                name=cat,
            )
            pts.sigClicked.connect(self._on_points_clicked)
            for it in (line, pts):
                it.setVisible(False)
                item.addItem(it)
            self.points[cat], self.lines[cat] = pts, line
        self.marker = pg.ScatterPlotItem(symbol="o", size=18, pen=pg.mkPen(SELECTED_COLOR, width=2.5), brush=None)
        self.marker.setZValue(10)
        item.addItem(self.marker)

        self.log_box = QCheckBox("Log scale")
        self.log_box.setToolTip("Logarithmic error axis (tensors copied unchanged, error 0, are then hidden)")
        self.log_box.toggled.connect(self._on_log_toggled)
        self.lines_box = QCheckBox("Lines")
        self.lines_box.setChecked(True)
        self.lines_box.setToolTip("Connect the tensors of one category along the depth")
        self.lines_box.toggled.connect(self._on_lines_toggled)
        self.count_label = QLabel()
        self.count_label.setToolTip(
            "Errors are measured on a sample of rows per tensor; the inspector refines the selected one on all rows"
        )
        bar = QHBoxLayout()
        bar.addWidget(self.count_label, 1)
        bar.addWidget(self.lines_box)
        bar.addWidget(self.log_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_legend()

    def _fit_legend(self) -> None:
        """Two legend columns when the panel is too short for one."""
        rows_fit = max(1, (self.plot.height() - 20) // 20)
        columns = 1 if len(self.legend.items) <= rows_fit else 2
        if columns != self.legend.columnCount:
            self.legend.setColumnCount(columns)

    def _tip(self, x: float, y: float, data: object) -> str:
        value = 10.0**y if self.log_box.isChecked() else y
        return f"{data}\nrelative RMSE {value:.3f} %"

    # ----- model and plan ---------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        """Lay the model's quantizable tensors out by category (the only time series change shape)."""
        s = self.session
        self.series.clear()
        self._where.clear()
        if s.plan is not None and s.model is not None:
            cats = {tp.source.category for tp in s.plan.tensors if tp.quantizable}
            order = ordered_categories(cats)
            shift = {c: (i - (len(order) - 1) / 2) * _OFFSET / max(1, len(order) - 1) * 2 for i, c in enumerate(order)}
            for tp in s.plan.tensors:
                if not tp.quantizable:
                    continue
                cat = tp.source.category
                ser = self.series.setdefault(cat, _Series())
                self._where[tp.name] = (cat, len(ser.names))
                ser.names.append(tp.name)
            for cat, ser in self.series.items():
                infos = [s.plan.tensor(n).source for n in ser.names]
                ser.x = np.array([layer_position(t.layer, t.category, s.model.n_layer) + shift[cat] for t in infos])
                ser.y = np.full(len(ser.names), np.nan)
            self.plot_item.getAxis("bottom").setTicks([depth_ticks(s.model.n_layer)])
        self.legend.clear()
        for cat in ordered_categories(CATEGORIES):
            present = cat in self.series
            self.points[cat].setVisible(present)
            self.lines[cat].setVisible(present and self.lines_box.isChecked())
            if present:
                self.legend.addItem(self.points[cat], cat)
        self._fit_legend()
        self._on_plan_changed()

    def _on_plan_changed(self) -> None:
        """Types may have changed: take every tensor's error for its new type from the session."""
        for cat, ser in self.series.items():
            for i, name in enumerate(ser.names):
                ser.y[i] = self._value(name)
            self._redraw(cat)
        self._update_selected()
        self._update_count()

    def _value(self, name: str) -> float:
        ev = self.session.evaluation(name)
        return float("nan") if ev is None else 100.0 * ev.stats.rel_rmse

    # ----- statistics -------------------------------------------------------------------------
    def _on_stats_updated(self, names: list[str]) -> None:
        touched = set()
        for name in names:
            where = self._where.get(name)
            if where is None:
                continue
            cat, i = where
            self.series[cat].y[i] = self._value(name)
            touched.add(cat)
        for cat in touched:
            self._redraw(cat)
        if touched:
            self._update_count()
            if self.session.selected and self.session.selected[0] in names:
                self._update_selected()

    def _shown(self, y: np.ndarray) -> np.ndarray:
        if not self.log_box.isChecked():
            return y
        out = np.full_like(y, np.nan)
        positive = y > 0
        out[positive] = np.log10(y[positive])
        return out

    def _redraw(self, cat: str) -> None:
        ser = self.series[cat]
        y = self._shown(ser.y)
        known = np.isfinite(y)
        self.points[cat].setData(x=ser.x[known], y=y[known], data=np.array(ser.names, dtype=object)[known])
        self.lines[cat].setData(x=ser.x, y=y)

    def _update_count(self) -> None:
        total = sum(len(ser.names) for ser in self.series.values())
        known = sum(int(np.isfinite(ser.y).sum()) for ser in self.series.values())
        text = f"{known} of {total} tensors measured" if known < total else f"all {total} tensors measured"
        self.count_label.setText(f"Relative error at the planned type: {text} (row samples)")

    def _update_selected(self) -> None:
        sel = self.session.selected
        where = self._where.get(sel[0]) if sel else None
        if where is None:
            self.marker.setData(x=[], y=[])
            return
        cat, i = where
        ser = self.series[cat]
        y = self._shown(ser.y[i : i + 1])
        if np.isfinite(y[0]):
            self.marker.setData(x=[ser.x[i]], y=[y[0]])
        else:
            self.marker.setData(x=[], y=[])

    # ----- interaction ------------------------------------------------------------------------
    def _on_points_clicked(self, _item: pg.ScatterPlotItem, points: list, _event: object) -> None:
        if len(points):
            self.session.select([str(points[0].data())])

    def _on_log_toggled(self, on: bool) -> None:
        item = self.plot_item
        item.getAxis("left").setLogMode(on)
        for cat in self.series:
            self._redraw(cat)
        self._update_selected()
        item.enableAutoRange(axis="y")

    def _on_lines_toggled(self, on: bool) -> None:
        for cat in self.series:
            self.lines[cat].setVisible(on)

    def series_data(self, category: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, x, relative RMSE in %) of one category as stored (nan where not yet measured)."""
        ser = self.series[category]
        return list(ser.names), ser.x.copy(), ser.y.copy()
