"""Units of measurement: the tensors that one real KLD run quantizes together.

A small model gets one unit per tensor. A bigger one gets one unit per (category, depth bucket):
the layers of a category are cut into contiguous buckets, and tensors outside the layers
(token embedding, output) stay alone. A tensor's sensitivity is then read from its bucket,
interpolated along the depth between bucket centres (see :func:`interpolate`), so the number of
runs depends on the number of categories and buckets, not on the number of layers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..plan import TensorPlan


@dataclass(frozen=True)
class Unit:
    """Tensors measured together; ``key`` names the unit in the cache and in reports."""

    key: str
    category: str
    names: tuple[str, ...]
    layers: tuple[int, ...]

    @property
    def centre(self) -> float | None:
        return sum(self.layers) / len(self.layers) if self.layers else None


def make_units(tensors: Sequence[TensorPlan], max_units: int) -> list[Unit]:
    """One unit per tensor if there are at most ``max_units`` tensors, else depth buckets."""
    if len(tensors) <= max_units:
        return [_single(tp) for tp in tensors]
    loose = [tp for tp in tensors if tp.source.layer is None]
    by_cat: dict[str, list[TensorPlan]] = {}
    for tp in tensors:
        if tp.source.layer is not None:
            by_cat.setdefault(tp.source.category, []).append(tp)
    buckets = max(1, (max_units - len(loose)) // max(1, len(by_cat)))
    units = [_single(tp) for tp in loose]
    for cat, members in by_cat.items():
        units.extend(_bucketed(cat, members, buckets))
    return units


def _single(tp: TensorPlan) -> Unit:
    layer = tp.source.layer
    return Unit(tp.name, tp.source.category, (tp.name,), () if layer is None else (layer,))


def _bucketed(category: str, members: list[TensorPlan], buckets: int) -> list[Unit]:
    layers = sorted({tp.source.layer for tp in members if tp.source.layer is not None})
    n = min(buckets, len(layers))
    units = []
    for b in range(n):
        chosen = set(layers[b * len(layers) // n : (b + 1) * len(layers) // n])
        names = tuple(tp.name for tp in members if tp.source.layer in chosen)
        key = f"{category}@{min(chosen)}-{max(chosen)}"
        units.append(Unit(key, category, names, tuple(sorted(chosen))))
    return units


def interpolate(units: Sequence[Unit], values: dict[str, float], category: str, layer: int) -> float:
    """A category's value at ``layer``: linear in log between the centres of its buckets."""
    points = sorted((u.centre, values[u.key]) for u in units if u.category == category and u.layers)
    if not points:
        raise KeyError(category)
    if layer <= points[0][0]:
        return points[0][1]
    if layer >= points[-1][0]:
        return points[-1][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= layer <= x1:
            f = (layer - x0) / (x1 - x0) if x1 > x0 else 0.0
            return math.exp((1 - f) * math.log(y0) + f * math.log(y1))
    return points[-1][1]
