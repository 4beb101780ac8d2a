"""Settings, progress and result of a sensitivity computation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ..model import Model
from .candidates import CANDIDATE_TYPES

SMALL_MODEL = 60_000_000  # parameters: above this, fewer tokens and depth buckets keep the cost bounded


@dataclass(frozen=True)
class SensitivitySettings:
    """How the table is measured (everything but ``threads`` is part of the cache key).

    n_ctx, chunks : the text evaluated per run (llama-perplexity's chunking).
    sample_elements : weights per tensor quantized for its weight error.
    max_units : most KLD runs at the probe type; more tensors than this are grouped in buckets.
    slope_units : units measured again at a second probe type, for the exponent.
    probe_error : error energy a probe aims at (summed over a unit's tensors).
    types : candidate types considered.
    """

    n_ctx: int = 512
    chunks: int = 4
    sample_elements: int = 32768
    max_units: int = 40
    slope_units: int = 6
    probe_error: float = 0.02
    types: tuple[str, ...] = CANDIDATE_TYPES
    threads: int | None = None

    @classmethod
    def for_model(cls, model: Model, **changes: object) -> SensitivitySettings:
        """Defaults scaled to the model: a bigger one gets shorter runs and depth buckets."""
        base = cls() if model.n_parameters <= SMALL_MODEL else cls(n_ctx=256, chunks=2, max_units=16, slope_units=3)
        return cls(**{**asdict(base), **changes})

    def key_fields(self) -> dict[str, object]:
        doc = asdict(self)
        doc.pop("threads")
        doc["types"] = list(self.types)
        return doc


@dataclass(frozen=True)
class SensitivityProgress:
    """Where the computation stands: ``stage`` is "errors" (weight errors) or "measure" (KLD runs)."""

    stage: str
    done: float
    total: float
    detail: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class SensitivityTable:
    """Predicted quality cost of every candidate type of every quantizable tensor.

    costs : tensor -> {type -> predicted increase of mean KLD (>= 0)}, additive across tensors.
    sensitivity : S_t per tensor (KLD per unit of relative error energy raised to ``beta``).
    errors : tensor -> {type -> relative (importance-weighted) error energy on sampled rows}.
    beta : the fitted exponent on error energy.
    unit_of : tensor -> key of the unit it was measured with.
    probes : tensor -> probe types its unit was measured at (calibration points).
    measured : run id ("unit|TYPE") -> measured change of mean KLD.
    floor : mean KLD of the unchanged model against its stored base (the 16-bit record's floor).
    layers, categories : tensor -> layer (None outside the blocks) and llama.cpp category.
    """

    costs: Mapping[str, Mapping[str, float]]
    sensitivity: Mapping[str, float]
    errors: Mapping[str, Mapping[str, float]]
    beta: float
    unit_of: Mapping[str, str]
    probes: Mapping[str, tuple[str, ...]]
    measured: Mapping[str, float]
    floor: float
    layers: Mapping[str, int | None] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)

    def cost(self, name: str, type_name: str) -> float:
        return float(self.costs[name][type_name])

    def as_json(self) -> dict[str, object]:
        """A JSON-ready document: exponent, floor and, per tensor, S, unit, probes and costs."""
        return {
            "beta": self.beta,
            "floor": self.floor,
            "runs": len(self.measured),
            "tensors": [
                {
                    "name": name,
                    "layer": self.layers.get(name),
                    "category": self.categories.get(name),
                    "sensitivity": self.sensitivity[name],
                    "unit": self.unit_of[name],
                    "probes": list(self.probes[name]),
                    "costs": dict(self.costs[name]),
                    "errors": dict(self.errors[name]),
                }
                for name in self.costs
            ],
        }
