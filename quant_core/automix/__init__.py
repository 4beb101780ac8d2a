"""Auto-mix: the plan with the least predicted ΔKLD that fits a budget.

* :mod:`.budget` — file bytes, bits per weight, or memory (model + KV cache at a context).
* :mod:`.kv` — the KV-cache bytes llama.cpp allocates for an architecture.
* :mod:`.candidates` — which tensors are optimised and which types each may take.
* :mod:`.solver` — the multiple-choice knapsack (hull + Lagrangian bound + exact search).
* :mod:`.mix` — :class:`MixSpace` / :func:`auto_mix`: cost table + plan + budget -> plan.

The cost table maps tensor name -> {type name -> predicted ΔKLD (>= 0, additive over tensors)}.
"""

from __future__ import annotations

from .budget import Budget, BudgetError, parse_bpw, parse_size
from .candidates import AutoMixError, CostTable
from .kv import KVError, kv_cache_bytes, kv_layout
from .mix import MixResult, MixSpace, auto_mix, predicted_kld

__all__ = [
    "AutoMixError",
    "Budget",
    "BudgetError",
    "CostTable",
    "KVError",
    "MixResult",
    "MixSpace",
    "auto_mix",
    "kv_cache_bytes",
    "kv_layout",
    "parse_bpw",
    "parse_size",
    "predicted_kld",
]
