"""Which tensors matter: the predicted quality cost of every candidate type of every tensor.

Entry point :func:`iter_sensitivity` (a generator: progress, then a :class:`SensitivityTable`;
stop iterating to cancel). ``table.costs[name][TYPE]`` is the predicted increase of mean KL
divergence when that tensor alone takes that type, additive across tensors: what an optimiser
minimises. A weight-space error from the real quantizer is scaled by a per-tensor sensitivity
measured with llama.cpp (needs the ``quality`` extra); results are cached and resumable.
"""

from __future__ import annotations

from .candidates import CANDIDATE_TYPES, PROBE_TYPES, candidate_types
from .core import SensitivityError, iter_sensitivity
from .table import SensitivityProgress, SensitivitySettings, SensitivityTable
from .validate import spearman

__all__ = [
    "CANDIDATE_TYPES",
    "PROBE_TYPES",
    "SensitivityError",
    "SensitivityProgress",
    "SensitivitySettings",
    "SensitivityTable",
    "candidate_types",
    "iter_sensitivity",
    "spearman",
]
