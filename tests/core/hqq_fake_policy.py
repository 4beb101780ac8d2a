"""A measured-data HQQ policy for tests: the KLD numbers are given, hqq_wins follows from them."""

from __future__ import annotations

import sys
import types

import pytest

Measured = dict[tuple[str, bool], tuple[float, float]]  # (type, with imatrix) -> (ggml KLD, HQQ KLD)


def use_policy(monkeypatch: pytest.MonkeyPatch, measured: Measured) -> None:
    """Install ``quant_core.hqq_policy`` answering from ``measured`` (one model, "demo")."""
    module = types.ModuleType("quant_core.hqq_policy")

    def kld_pairs(type_name: str, with_imatrix: bool) -> list[tuple[str, float, float]]:
        found = measured.get((type_name.upper(), with_imatrix))
        return [] if found is None else [("demo", *found)]

    def hqq_wins(type_name: str, with_imatrix: bool) -> bool:
        pairs = kld_pairs(type_name, with_imatrix)
        return bool(pairs) and all(h < g for _, g, h in pairs)

    def measured_configs() -> list[tuple[str, bool]]:
        return sorted(measured)

    module.kld_pairs = kld_pairs  # type: ignore[attr-defined]
    module.measured_configs = measured_configs  # type: ignore[attr-defined]
    module.hqq_wins = hqq_wins  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "quant_core.hqq_policy", module)
