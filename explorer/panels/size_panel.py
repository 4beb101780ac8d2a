"""Projected file size of the current plan, compared with the source and the standard presets."""

from __future__ import annotations

from collections import defaultdict
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from quant_core.qtypes import QTYPES

from ..colors import text_color, type_color
from ..session import COMPARISON_PRESETS, ExplorerSession
from .plot_common import category_color, format_bytes, format_change, make_plot, ordered_categories

CURRENT_COLOR = "#4477AA"
SOURCE_COLOR = "#333333"
PRESET_COLOR = "#BB5566"
BREAK_RATIO = 2.0  # an outside bar this many times the largest layer gets a broken axis
CAP_OVER_LAYERS = 1.3  # the cut bars stop this far above the largest layer
EXACT_NOTE = "the exact size Export writes"
EXACT_TOOLTIP = (
    "Projected size of the output file: exactly the bytes Export writes (header, metadata, "
    "alignment padding and tensor data).\nBits per weight count tensor data only, as "
    "llama-quantize prints them."
)


def layer_position(layer: int | None, category: str, n_layer: int) -> int:
    """x position along the depth: blk.N at N, token embeddings at -1, other global tensors at n_layer."""
    if layer is not None:
        return layer
    return -1 if category == "token_embd" else n_layer


def depth_ticks(n_layer: int, max_labels: int = 16) -> list[tuple[float, str]]:
    """Axis ticks for layer positions: 'embd' at -1, every few layers, 'out' at n_layer."""
    step = max(1, int(np.ceil(n_layer / max_labels)))
    ticks = [(-1.0, "embd")] + [(float(i), str(i)) for i in range(0, n_layer, step)]
    return ticks + [(float(n_layer), "out")]


def broken_bars(totals: dict[int, int], n_layer: int, ratio: float = BREAK_RATIO) -> tuple[float | None, set[int]]:
    """Where the layer chart's axis breaks: (cap in bytes or None, positions of the bars cut there).

    A tensor outside the blocks (a large embedding or output) more than ``ratio`` times the
    largest layer would flatten every layer to a sliver: such bars are cut at a cap a little
    above the largest layer, and labelled with their true size.
    """
    layer_max = max((n for x, n in totals.items() if 0 <= x < n_layer), default=0)
    if layer_max <= 0:
        return None, set()
    cut = {x for x, n in totals.items() if not 0 <= x < n_layer and n > ratio * layer_max}
    return (CAP_OVER_LAYERS * layer_max, cut) if cut else (None, set())


def ordered_types_by_bits(names: set[str]) -> list[str]:
    """Type names from fewest to most bits per weight, as in the map's legend (unknown ones last)."""
    bpw = {q.name: q.bpw for q in QTYPES.values()}
    return sorted(names, key=lambda t: (bpw.get(t, 1e9), t))


def _unit(max_bytes: float) -> tuple[float, str]:
    """The binary unit in which ``max_bytes`` reads best on an axis."""
    for power, name in ((3, "GiB"), (2, "MiB")):
        if max_bytes >= 1024**power:
            return 1024.0**power, name
    return 1024.0, "KiB"


class SizePanel(QWidget):
    """File size, bits per weight and breakdowns of the current plan; updates on every plan change.

    The horizontal bar shows this plan's file size with the source file and the standard presets
    (Q4_K_M, Q5_K_M, Q6_K, Q8_0) marked on the same axis.
    """

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._build()
        session.model_changed.connect(self._on_model_changed)
        session.plan_changed.connect(self._on_plan_changed)
        self._on_model_changed()

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.unit_div, self.unit = 1024.0**2, "MiB"
        self.category_values: dict[str, float] = {}  # in category_unit
        self.category_unit = self.layer_unit = (1024.0**2, "MiB")
        self.total_label = QLabel()
        self.total_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.total_label.setToolTip(EXACT_TOOLTIP)
        self.source_label = QLabel()
        self.source_label.setToolTip("Change against the source file you opened")
        self.presets_label = QLabel()
        self.presets_label.setToolTip("This plan's size against llama-quantize's standard presets for this model")
        self.types_label = QLabel()
        self.types_label.setToolTip("Bytes of tensor data per quantization type")
        self.types_label.setWordWrap(True)
        self.bar_plot = make_plot(height=80)
        self.bar_plot.setMaximumHeight(110)
        self.bar_plot.setToolTip("This plan (blue bar) against the source file and the standard presets")
        item = self.bar_plot.getPlotItem()
        item.hideAxis("left")
        item.showGrid(x=True, y=False, alpha=0.2)
        item.setMouseEnabled(x=False, y=False)
        item.setYRange(-0.6, 0.6, padding=0)
        self.bar = pg.BarGraphItem(
            x0=[0.0], y=[0.0], width=[0.0], height=0.5, brush=pg.mkBrush(CURRENT_COLOR), pen=pg.mkPen(CURRENT_COLOR)
        )
        item.addItem(self.bar)
        self.markers: dict[str, pg.InfiniteLine] = {}
        for i, name in enumerate(("source",) + COMPARISON_PRESETS):
            colour = SOURCE_COLOR if name == "source" else PRESET_COLOR
            anchor = (1.0, 0.5) if name == "source" else (0.0, 0.5)  # text left / right of the line
            line = pg.InfiniteLine(
                pos=0.0,
                angle=90,
                movable=False,
                pen=pg.mkPen(colour, width=1.5, style=Qt.DashLine),
                label=name,
                labelOpts={
                    "position": 0.14 if i % 2 else 0.86,
                    "color": colour,
                    "fill": (255, 255, 255, 210),
                    "anchors": [anchor, anchor],
                },
            )
            line.setVisible(False)
            item.addItem(line)
            self.markers[name] = line

        self.category_plot = make_plot("By category")
        self.category_plot.setToolTip("Bytes of tensor data per tensor category")
        cat_item = self.category_plot.getPlotItem()
        cat_item.showGrid(x=True, y=False, alpha=0.25)
        cat_item.setMouseEnabled(x=False, y=False)
        cat_item.getViewBox().invertY(True)
        self.category_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7)
        cat_item.addItem(self.category_bars)

        self.layer_plot = make_plot("By layer")
        self.layer_plot.setToolTip(
            "Bytes of tensor data per layer; 'embd' is the token embedding, "
            "'out' the output tensors; stacked by type in the map's colours, or by category in the "
            "colours of 'By category'. A bar far taller than the "
            "layers is cut (white gap) and labelled with its true size"
        )
        self.layer_plot.getPlotItem().setMouseEnabled(x=False, y=False)
        self.layer_bars = pg.BarGraphItem(x=[], y0=[], height=[], width=0.8)
        self.layer_plot.getPlotItem().addItem(self.layer_bars)
        self.break_marks = pg.BarGraphItem(x=[], y0=[], height=[], width=0.95, brush="w", pen=pg.mkPen(None))
        self.layer_plot.getPlotItem().addItem(self.break_marks)
        self.break_labels: dict[int, pg.TextItem] = {}  # x → label with the true size of a cut bar

        self.by_type_box = QCheckBox("Layers by type (map colours)")
        self.by_type_box.setToolTip("Stack the 'By layer' bars by quant type in the colours of the mix map")
        self.by_type_box.setChecked(True)
        self.by_type_box.toggled.connect(lambda _on: self._on_plan_changed())
        self.presets_label.setWordWrap(True)
        self.source_label.setWordWrap(True)
        summary = QVBoxLayout()
        summary.setSpacing(2)
        for w in (self.total_label, self.source_label, self.presets_label, self.types_label):
            summary.addWidget(w)
        summary.addWidget(self.bar_plot, 1)
        summary.addWidget(self.by_type_box)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(summary, 4)
        layout.addWidget(self.category_plot, 2)
        layout.addWidget(self.layer_plot, 3)
        for p in (self.category_plot, self.layer_plot):
            p.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
            p.setMinimumSize(160, 140)

    # ----- updates ----------------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        m = self.session.model
        if m is None:
            self.total_label.setText("<b>No model open</b>")
            for label in (self.source_label, self.presets_label, self.types_label):
                label.clear()
            return
        self.unit_div, self.unit = _unit(max([m.file_size, *self.session.preset_sizes.values()]))
        self.bar_plot.getPlotItem().getAxis("bottom").setLabel(f"file size ({self.unit})")
        self.layer_plot.getPlotItem().getAxis("bottom").setTicks([depth_ticks(m.n_layer)])
        self._on_plan_changed()

    def _on_plan_changed(self) -> None:
        s = self.session
        if s.model is None or s.size is None or s.plan is None:
            return
        size, source = s.size, s.model.file_size
        self.total_label.setText(
            f"<span style='font-size:13pt'><b>{format_bytes(size.file_bytes)}</b></span>"
            f" &nbsp;({size.file_bytes:,} bytes) &nbsp;·&nbsp; <b>{size.bpw:.3f}</b> bits per weight"
            f" &nbsp;<span style='color:#555555'>— {EXACT_NOTE}</span>"
        )
        self.source_label.setText(
            f"{format_change(size.file_bytes, source)} vs source {escape(s.model.path.name)} ({format_bytes(source)})"
        )
        self._update_presets()
        self._update_types()
        self._update_bar()
        self._update_categories()
        self._update_layers()

    def _update_presets(self) -> None:
        s = self.session
        assert s.size is not None
        current = s.state.options.preset
        parts = []
        for name in COMPARISON_PRESETS:
            bytes_ = s.preset_sizes.get(name)
            if not bytes_:
                continue
            pure_preset = name == current and not s.state.explicit and not s.state.options.tensor_types
            same = " (this preset)" if pure_preset else ""
            parts.append(f"{name} {format_bytes(bytes_)}: <b>{format_change(s.size.file_bytes, bytes_)}</b>{same}")
        self.presets_label.setText("vs presets: " + " &nbsp;· ".join(parts))

    def _update_types(self) -> None:
        size = self.session.size
        assert size is not None
        chips = []
        for name in ordered_types_by_bits(set(size.by_type)):
            n = size.by_type[name]
            bg = type_color(name)
            style = f"background:{bg.name()}; color:{text_color(bg).name()}"
            chips.append(f"<span style='{style}'>&nbsp;{name}&nbsp;</span> {format_bytes(n)}")
        self.types_label.setText(" &nbsp; ".join(chips))

    def _update_bar(self) -> None:
        s = self.session
        assert s.size is not None and s.model is not None
        div = self.unit_div
        self.bar.setOpts(x0=[0.0], y=[0.0], width=[s.size.file_bytes / div], height=0.5)
        positions = {"source": s.model.file_size, **s.preset_sizes}
        for name, line in self.markers.items():
            pos = positions.get(name)
            line.setVisible(bool(pos))
            if pos:
                line.setValue(pos / div)
        top = max([s.size.file_bytes, *positions.values()]) / div
        self.bar_plot.getPlotItem().setXRange(0, top, padding=0.04)

    def _update_categories(self) -> None:
        size = self.session.size
        assert size is not None
        cats = ordered_categories([c for c, n in size.by_category.items() if n > 0])
        div, unit = self.category_unit = _unit(max(size.by_category.values(), default=0))
        values = [size.by_category[c] / div for c in cats]
        self.category_bars.setOpts(
            x0=np.zeros(len(cats)),
            y=np.arange(len(cats), dtype=float),
            width=np.array(values),
            height=0.7,
            brushes=[pg.mkBrush(category_color(c)) for c in cats],
            pens=[pg.mkPen(None)] * len(cats),
        )
        item = self.category_plot.getPlotItem()
        item.getAxis("left").setTicks([[(float(i), c) for i, c in enumerate(cats)]])
        item.getAxis("bottom").setLabel(unit)
        item.setYRange(-0.6, len(cats) - 0.4, padding=0)
        item.setXRange(0, max(values, default=1.0), padding=0.05)
        self.category_values = dict(zip(cats, values))

    def stacked_layers(self, by_type: bool = False) -> tuple[list[int], list[str], list[int]]:
        """(x position, category or type, bytes) of every stacked segment of the layer chart, in drawing order."""
        s = self.session
        assert s.plan is not None and s.size is not None and s.model is not None
        cells: dict[tuple[int, str], int] = defaultdict(int)
        for tp in s.plan.tensors:
            x = layer_position(tp.source.layer, tp.source.category, s.model.n_layer)
            cells[(x, tp.type if by_type else tp.source.category)] += s.size.by_tensor[tp.name]
        keys_present = {c for _, c in cells}
        ranked = ordered_types_by_bits(keys_present) if by_type else ordered_categories(keys_present)
        order = {c: i for i, c in enumerate(ranked)}
        keys = sorted(cells, key=lambda k: (k[0], order[k[1]]))
        return [k[0] for k in keys], [k[1] for k in keys], [cells[k] for k in keys]

    def _update_layers(self) -> None:
        by_type = self.by_type_box.isChecked()
        xs, cats, sizes = self.stacked_layers(by_type)
        totals: dict[int, int] = defaultdict(int)
        for x, n in zip(xs, sizes):
            totals[x] += n
        assert self.session.model is not None
        cap, cut = broken_bars(totals, self.session.model.n_layer)
        top_bytes = cap if cap is not None else max(totals.values(), default=0)
        div, unit = self.layer_unit = _unit(top_bytes)
        y0, heights, acc = [], [], defaultdict(float)
        for x, n in zip(xs, sizes):
            start = acc[x]
            acc[x] += n / div
            end = min(acc[x], cap / div) if x in cut else acc[x]  # type: ignore[operator]
            y0.append(start)
            heights.append(max(0.0, end - start))
        self._mark_breaks(cut, totals, None if cap is None else cap / div)
        self.layer_bars.setOpts(
            x=np.array(xs, dtype=float),
            y0=np.array(y0),
            height=np.array(heights),
            width=0.8,
            brushes=[pg.mkBrush(type_color(c) if by_type else category_color(c)) for c in cats],
            pens=[pg.mkPen("w", width=0.5)] * len(cats),
        )
        item = self.layer_plot.getPlotItem()
        item.getAxis("left").setLabel(unit)
        if xs:
            item.setXRange(min(xs) - 0.6, max(xs) + 0.6, padding=0)
            top = top_bytes / div
            item.setYRange(0, top * (1.12 if cut else 1.0), padding=0.05)

    def _mark_breaks(self, cut: set[int], totals: dict[int, int], cap: float | None) -> None:
        """A white gap across each cut bar and, above it, the bar's true size."""
        item = self.layer_plot.getPlotItem()
        for label in self.break_labels.values():
            item.removeItem(label)
        self.break_labels = {}
        xs = sorted(cut)
        if cap is None:
            self.break_marks.setOpts(x=[], y0=[], height=[])
            return
        self.break_marks.setOpts(
            x=np.array(xs, dtype=float), y0=np.full(len(xs), 0.86 * cap), height=np.full(len(xs), 0.04 * cap)
        )
        for x in xs:
            label = pg.TextItem(f"{format_bytes(totals[x])} (cut)", color="#222222", anchor=(0.5, 1.0))
            label.setPos(float(x), cap)
            item.addItem(label)
            self.break_labels[x] = label
