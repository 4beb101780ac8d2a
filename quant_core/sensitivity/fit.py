"""From weight errors and measured KLD to a cost per (tensor, type).

Model (ExLlamaV3's ``kld(t, K) = S_t * rfn_t(K)^alpha`` written on error energy e = rfn^2):

    cost(t, K) = S_t * e_t(K) ** beta        (beta = alpha / 2)

A unit measured at probe type P gives ``dKLD_u(P) = S_u * sum_t e_t(P) ** beta``. Units measured at
two probes give the exponent: ``beta_u = ln(dKLD1 / dKLD2) / ln(E1 / E2)``; beta is their median,
clipped to a sane range (1 without such units, the second-order expansion of KLD).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .units import Unit, interpolate

BETA_RANGE = (0.5, 1.5)
TINY = 1e-9  # a measured change at or below the floor still ranks, just lowest


def unit_error(unit: Unit, errors: Mapping[str, Mapping[str, float]], type_name: str, beta: float) -> float:
    """``sum_t e_t(type) ** beta`` over the unit's tensors."""
    return float(sum(errors[n][type_name] ** beta for n in unit.names))


def fit_beta(
    units: Sequence[Unit], errors: Mapping[str, Mapping[str, float]], deltas: Mapping[str, Mapping[str, float]]
) -> float:
    """The exponent from units measured at two probe types (see the module docstring)."""
    slopes = []
    for u in units:
        pairs = [(unit_error(u, errors, t, 1.0), d) for t, d in deltas.get(u.key, {}).items()]
        if len(pairs) < 2:
            continue
        (e1, d1), (e2, d2) = sorted(pairs)[-1], sorted(pairs)[0]
        if e1 > 1.5 * e2 > 0 and d1 > TINY and d2 > TINY:
            slopes.append(math.log(d1 / d2) / math.log(e1 / e2))
    if not slopes:
        return 1.0
    return float(np.clip(np.median(slopes), *BETA_RANGE))


def unit_sensitivity(
    units: Sequence[Unit],
    errors: Mapping[str, Mapping[str, float]],
    deltas: Mapping[str, Mapping[str, float]],
    beta: float,
) -> dict[str, float]:
    """S per unit: geometric mean over its probes of ``dKLD / sum_t e_t ** beta``."""
    out = {}
    for u in units:
        logs = []
        for t, d in deltas.get(u.key, {}).items():
            e = unit_error(u, errors, t, beta)
            if e > 0:
                logs.append(math.log(max(d, TINY) / e))
        out[u.key] = math.exp(sum(logs) / len(logs)) if logs else TINY
    return out


def tensor_sensitivity(
    units: Sequence[Unit], unit_s: Mapping[str, float], layers: Mapping[str, int | None]
) -> dict[str, float]:
    """S per tensor: its unit's, interpolated along the depth when units are buckets of layers."""
    out = {}
    for u in units:
        bucketed = len(u.names) > 1 and u.layers
        for name in u.names:
            layer = layers[name]
            out[name] = (
                interpolate(units, unit_s, u.category, layer) if bucketed and layer is not None else unit_s[u.key]
            )
    return out


def costs(
    errors: Mapping[str, Mapping[str, float]], sensitivity: Mapping[str, float], beta: float
) -> dict[str, dict[str, float]]:
    """The table: ``S_t * e_t(K) ** beta`` for every tensor and candidate type."""
    return {
        name: {t: (sensitivity[name] * e**beta if e > 0 else 0.0) for t, e in per_type.items()}
        for name, per_type in errors.items()
    }
