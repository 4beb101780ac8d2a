"""What the plotting panels share: category colours and symbols, byte formatting, plot set-up.

Categories get Paul Tol's colour-blind-safe "muted" palette (plus two extra colours for rare
categories) and, in scatter plots, a symbol each, so colour is never the only cue.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

from quant_core.model import CATEGORIES

# order in legends and bar charts: along a transformer block, then the global tensors
CATEGORY_ORDER: tuple[str, ...] = (
    "token_embd",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_qkv",
    "attn_kv_b",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
    "output",
    "other",
)
_CATEGORY_COLORS = {
    "token_embd": "#332288",
    "attn_q": "#88CCEE",
    "attn_k": "#44AA99",
    "attn_v": "#117733",
    "attn_qkv": "#0077BB",
    "attn_kv_b": "#EE7733",
    "attn_output": "#999933",
    "ffn_gate": "#DDCC77",
    "ffn_up": "#CC6677",
    "ffn_down": "#882255",
    "output": "#AA4499",
    "other": "#777777",
}
_CATEGORY_SYMBOLS = {
    "token_embd": "star",
    "attn_q": "o",
    "attn_k": "s",
    "attn_v": "t",
    "attn_qkv": "t2",
    "attn_kv_b": "t3",
    "attn_output": "d",
    "ffn_gate": "t1",
    "ffn_up": "p",
    "ffn_down": "h",
    "output": "star",
    "other": "x",
}

LEVEL_COLOR = "#CC3311"  # quantization levels on the weight histogram
AXIS_PEN = "#444444"


def category_color(category: str) -> QColor:
    """The colour of a tensor category, the same in every panel."""
    return QColor(_CATEGORY_COLORS.get(category, _CATEGORY_COLORS["other"]))


def category_symbol(category: str) -> str:
    """A pyqtgraph scatter symbol per category."""
    return _CATEGORY_SYMBOLS.get(category, "x")


def ordered_categories(present: set[str] | list[str]) -> list[str]:
    """The categories in ``present`` in display order (unknown ones last, by name)."""
    known = set(CATEGORY_ORDER) | set(CATEGORIES)
    present = set(present)
    return (
        [c for c in CATEGORY_ORDER if c in present]
        + sorted(present - known)
        + sorted(c for c in present & set(CATEGORIES) if c not in CATEGORY_ORDER)
    )


def format_bytes(n: float) -> str:
    """Bytes in binary units: 1536 -> '1.50 KiB', 6565856 -> '6.26 MiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_change(new: float, old: float) -> str:
    """Signed relative change in percent ('−12.3 %'), or '' without a reference."""
    if old <= 0:
        return ""
    pct = 100.0 * (new - old) / old
    sign = "+" if pct > 0.05 else ("\u2212" if pct < -0.05 else "\u00b1")
    return f"{sign}{abs(pct):.1f} %"


def style_plot(item: pg.PlotItem, title: str = "", left: str = "", bottom: str = "") -> pg.PlotItem:
    """Readable axes, no context-menu clutter, a light horizontal grid."""
    item.hideButtons()
    item.setMenuEnabled(False)
    if title:
        item.setTitle(title, color="#222222", size="9pt")
    for name, label in (("left", left), ("bottom", bottom)):
        axis = item.getAxis(name)
        axis.setPen(AXIS_PEN)
        axis.setTextPen(AXIS_PEN)
        axis.enableAutoSIPrefix(False)
        if label:
            axis.setLabel(label, color="#222222")
    item.showGrid(x=False, y=True, alpha=0.25)
    return item


def make_plot(title: str = "", left: str = "", bottom: str = "", height: int | None = None) -> pg.PlotWidget:
    """A white PlotWidget styled by :func:`style_plot`."""
    w = pg.PlotWidget(background="w")
    style_plot(w.getPlotItem(), title, left, bottom)
    if height is not None:
        w.setMinimumHeight(height)
    return w
