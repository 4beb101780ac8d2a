"""The Quality panel's plot: measured mixes as points, quality against size or speed.

Views (:data:`PLOT_VIEWS`): file size against mean KLD (the default); the same with each point's
size and colour showing its generation speed; or KLD against generation or prompt speed. The y
axis is always mean KLD on a log scale. Presets are labelled diamonds (joined in size order on
the size views), hand-made mixes dots, and a ring marks the current plan. Mixes without a measured
speed are left out of the speed views (and drawn small and grey in the coloured one).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from ..quality_store import PRESET, Measurement
from .plot_common import make_plot

PRESET_COLOR = "#BB5566"
MIX_COLOR = "#4477AA"
CURRENT_COLOR = "#222222"
PREDICTED_COLOR = "#228833"
NO_SPEED_COLOR = "#BBBBBB"
KLD_FLOOR = 1e-6  # a lossless mix has KLD 0, which a log axis cannot show
SPEED_SIZES = (12.0, 26.0)  # symbol sizes of the slowest and fastest mix in the coloured view
SPEED_COLORMAP = "viridis"

SIZE_KLD, SIZE_KLD_TG, TG_KLD, PP_KLD = "size_kld", "size_kld_tg", "tg_kld", "pp_kld"
PLOT_VIEWS: dict[str, str] = {
    SIZE_KLD: "Size – KLD",
    SIZE_KLD_TG: "Size – KLD, generation speed as colour",
    TG_KLD: "Generation speed – KLD",
    PP_KLD: "Prompt speed – KLD",
}
_X_LABELS = {
    SIZE_KLD: "file size (MiB)",
    SIZE_KLD_TG: "file size (MiB)",
    TG_KLD: "generation speed tg (tokens/s)",
    PP_KLD: "prompt speed pp (tokens/s)",
}
PLOT_TIP = (
    "Mean KL divergence (log scale) against file size or speed: presets are red diamonds, your "
    "mixes blue dots; the ring marks the current plan. Click a point to restore that mix (undoable). "
    "Speeds appear once measured with 'Measure speed'."
)


def kld_value(value: float) -> float:
    return max(value, KLD_FLOOR)


def _x_value(m: Measurement, view: str) -> float | None:
    if view in (SIZE_KLD, SIZE_KLD_TG):
        return m.file_bytes / 1024**2
    if m.speed is None:
        return None
    return m.speed.tg_tps if view == TG_KLD else m.speed.pp_tps


class QualityPlot:
    """The plot widget (``widget``) and its items; ``on_click(key)`` is called for a clicked point."""

    def __init__(self, on_click: Callable[[str], object]) -> None:
        self.view = SIZE_KLD
        self.on_click = on_click
        self.labels: list[pg.TextItem] = []
        self.points: dict[str, tuple[float, float]] = {}  # key -> (x, mean KLD) as plotted
        self.prediction_item: pg.PlotDataItem | None = None
        self.widget = make_plot(left="mean KLD", bottom=_X_LABELS[SIZE_KLD])
        self.widget.setToolTip(PLOT_TIP)
        item = self.widget.getPlotItem()
        item.setLogMode(x=False, y=True)
        item.showGrid(x=True, y=True, alpha=0.2)
        item.getViewBox().setDefaultPadding(0.08)  # room for the preset labels
        item.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.preset_pen = pg.mkPen(PRESET_COLOR, width=1, style=Qt.DashLine)
        self.preset_item = pg.PlotDataItem(
            pen=self.preset_pen,
            symbol="d",
            symbolSize=12,
            name="llama.cpp presets",
            symbolBrush=PRESET_COLOR,
            symbolPen="w",
        )
        self.mix_item = pg.PlotDataItem(
            pen=None, symbol="o", symbolSize=10, symbolBrush=MIX_COLOR, symbolPen="w", name="your mixes"
        )
        ring = pg.mkPen(CURRENT_COLOR, width=1.5)
        self.current_item = pg.PlotDataItem(
            pen=None, symbol="o", symbolSize=20, symbolBrush=pg.mkBrush(0, 0, 0, 0), symbolPen=ring, name="current plan"
        )
        for it in (self.preset_item, self.mix_item, self.current_item):
            item.addItem(it)
        self.preset_item.sigPointsClicked.connect(self._on_points_clicked)
        self.mix_item.sigPointsClicked.connect(self._on_points_clicked)
        self._prediction: object | None = None

    def set_view(self, view: str) -> None:
        """Switch the axes (one of :data:`PLOT_VIEWS`); call :meth:`update` afterwards."""
        if view not in PLOT_VIEWS:
            raise ValueError(f"unknown plot view {view!r}")
        self.view = view
        self.widget.getPlotItem().setLabel("bottom", _X_LABELS[view])
        # presets are joined in size order, which zigzags along a speed axis
        self.preset_item.setPen(self.preset_pen if view in (SIZE_KLD, SIZE_KLD_TG) else None)

    def update(self, ms: list[Measurement], current_key: str | None) -> None:
        """Draw ``ms`` (in size order) in the current view and ring ``current_key``."""
        item = self.widget.getPlotItem()
        for label in self.labels:
            item.removeItem(label)
        self.labels = []
        self.points = {}
        for m in ms:
            x = _x_value(m, self.view)
            if x is not None:
                self.points[m.key] = (x, kld_value(m.report.kld_mean))
        styles = self._speed_styles(ms) if self.view == SIZE_KLD_TG else {}
        for kind_item, is_preset in ((self.preset_item, True), (self.mix_item, False)):
            chosen = [m for m in ms if (m.kind == PRESET) == is_preset and m.key in self.points]
            xs = np.array([self.points[m.key][0] for m in chosen], dtype=float)
            ys = np.array([self.points[m.key][1] for m in chosen], dtype=float)
            color = PRESET_COLOR if is_preset else MIX_COLOR
            default = (12.0 if is_preset else 10.0, color)
            sizes = [styles.get(m.key, default)[0] for m in chosen]
            brushes = [pg.mkBrush(styles.get(m.key, default)[1]) for m in chosen]
            kind_item.setData(xs, ys, data=[m.key for m in chosen], symbolSize=sizes, symbolBrush=brushes)
        for m in ms:
            if m.kind == PRESET and m.key in self.points:
                x, y = self.points[m.key]
                label = pg.TextItem(m.name, color=PRESET_COLOR, anchor=(0.5, 1.3))
                label.setPos(x, float(np.log10(y)))  # text items sit in the view's (log) coordinates
                item.addItem(label)
                self.labels.append(label)
        item.setTitle(self._title(ms), size="8pt")
        self._draw_prediction()
        self.mark_current(current_key)

    def _speed_styles(self, ms: list[Measurement]) -> dict[str, tuple[float, object]]:
        """Per mix: symbol size and colour by generation speed (grey and small without one)."""
        tg = {m.key: m.speed.tg_tps for m in ms if m.speed is not None and m.speed.tg_tps is not None}
        styles: dict[str, tuple[float, object]] = {m.key: (SPEED_SIZES[0], NO_SPEED_COLOR) for m in ms}
        if not tg:
            return styles
        lo, hi = min(tg.values()), max(tg.values())
        cmap = pg.colormap.get(SPEED_COLORMAP)
        for key, value in tg.items():
            f = (value - lo) / (hi - lo) if hi > lo else 1.0
            styles[key] = (SPEED_SIZES[0] + f * (SPEED_SIZES[1] - SPEED_SIZES[0]), cmap.map(f, mode="qcolor"))
        return styles

    def _title(self, ms: list[Measurement]) -> str:
        if self.view == SIZE_KLD:
            return ""
        speeds = [m.speed.tg_tps for m in ms if m.speed is not None and m.speed.tg_tps is not None]
        missing = sum(1 for m in ms if m.speed is None)
        note = f"; {missing} mix(es) without speed" if missing else ""
        if self.view == SIZE_KLD_TG and speeds:
            return f"point size and colour: tg {min(speeds):.0f} (small, dark) – {max(speeds):.0f} t/s{note}"
        return f"speed as llama-bench measures it{note}" if ms else ""

    def mark_current(self, key: str | None) -> None:
        point = self.points.get(key) if key else None
        if point is None:
            self.current_item.setData([], [])
        else:
            self.current_item.setData([point[0]], [point[1]])

    def set_prediction(self, curve: object | None) -> None:
        """A predicted size–KLD line (``curve.mib``, ``curve.kld``, ``curve.label``); None removes it."""
        self._prediction = curve
        self._draw_prediction()

    def _draw_prediction(self) -> None:
        item = self.widget.getPlotItem()
        if self.prediction_item is not None:
            item.removeItem(self.prediction_item)
            self.prediction_item = None
        curve = self._prediction
        if curve is None or not len(curve.mib) or self.view not in (SIZE_KLD, SIZE_KLD_TG):  # type: ignore[attr-defined]
            return
        pen = pg.mkPen(PREDICTED_COLOR, width=1.5)
        ys = np.maximum(np.asarray(curve.kld, dtype=float), KLD_FLOOR)  # type: ignore[attr-defined]
        self.prediction_item = pg.PlotDataItem(curve.mib, ys, pen=pen, name=curve.label)  # type: ignore[attr-defined]
        item.addItem(self.prediction_item)

    def _on_points_clicked(self, _item: object, points: list, _ev: object) -> None:
        if len(points):
            self.on_click(points[0].data())
