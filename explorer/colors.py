"""One colour per quant type, the same in every widget.

Types are ordered by bits per weight and spread along cividis, a colour map designed to be
read by people with colour-vision deficiencies (dark = few bits, bright = many bits). The
type name is always written on the colour too, so colour is never the only cue.
"""

from __future__ import annotations

from functools import lru_cache

import pyqtgraph as pg
from PySide6.QtGui import QColor

from quant_core.qtypes import QTYPES, qtype

_COLORMAP = "cividis"
_NOT_QUANTIZED = QColor("#d9d9d9")


@lru_cache(maxsize=1)
def _table() -> dict[str, QColor]:
    cmap = pg.colormap.get(_COLORMAP)
    ordered = sorted(QTYPES.values(), key=lambda q: (q.bpw, q.name))
    n = len(ordered)
    return {q.name: cmap.map(0.04 + 0.92 * i / (n - 1), mode="qcolor") for i, q in enumerate(ordered)}


def type_color(type_name: str) -> QColor:
    """Background colour of a type (grey for types outside the table, e.g. I32)."""
    return QColor(_table().get(type_name.upper(), _NOT_QUANTIZED))


def text_color(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background``."""
    r, g, b = background.redF(), background.greenF(), background.blueF()
    return QColor("black") if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else QColor("white")


def type_tooltip(type_name: str) -> str:
    """What a type is: bits per weight, block, what it is good for."""
    try:
        q = qtype(type_name)
    except Exception:  # noqa: BLE001  types outside our table (I32, ...) are just named
        return type_name
    block = "no blocks" if q.is_float else f"blocks of {q.block_size} weights, {q.type_size} bytes"
    need = " Needs an importance matrix." if q.llama_requires_imatrix else ""
    return f"<b>{q.name}</b>: {q.bpw:.4g} bits per weight, {block}.<br>{q.description}.{need}"


def error_color(rel_rmse: float | None, worst: float) -> QColor:
    """Colour for 'colour by error' views: inferno from 0 to ``worst`` (grey when unknown)."""
    if rel_rmse is None or worst <= 0:
        return QColor(_NOT_QUANTIZED)
    return pg.colormap.get("inferno").map(min(1.0, 0.1 + 0.85 * rel_rmse / worst), mode="qcolor")
