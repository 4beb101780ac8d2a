"""Projected output size: exact file bytes, bits per weight and breakdowns, from the layout."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .layout import compute_layout, compute_split_layout
from .model import MetaField, Model
from .plan import Plan
from .split import SplitSpec


@dataclass(frozen=True)
class SizeReport:
    """The size export will write, with llama-quantize's accounting next to it.

    ``file_bytes`` is the exact size of the output file. ``tensor_bytes`` and ``bpw`` are what
    llama-quantize prints as "quant size" (tensor data without padding, bits per weight over
    all elements).
    """

    file_bytes: int
    meta_bytes: int
    tensor_bytes: int
    n_elements: int
    source_tensor_bytes: int
    by_tensor: dict[str, int]
    by_layer: dict[str, int]
    by_category: dict[str, int]
    by_type: dict[str, int]

    @property
    def bpw(self) -> float:
        return self.tensor_bytes * 8.0 / self.n_elements if self.n_elements else 0.0

    @property
    def mib(self) -> float:
        return self.file_bytes / 1024**2

    @property
    def gib(self) -> float:
        return self.file_bytes / 1024**3


def layer_key(name: str) -> str:
    """The by-layer bucket of a tensor: its block number as text (``blk.N.``), or "other"."""
    return name.split(".")[1] if name.startswith("blk.") else "other"


def project_size(model: Model, plan: Plan, imatrix_keys: list[MetaField] | None = None) -> SizeReport:
    """Exact output size of exporting ``plan`` (the same layout the exporter writes)."""
    layout = compute_layout(model, plan, imatrix_keys)
    by_tensor: dict[str, int] = {}
    by_layer: dict[str, int] = defaultdict(int)
    by_category: dict[str, int] = defaultdict(int)
    by_type: dict[str, int] = defaultdict(int)
    n_elements = 0
    source = 0
    for tp in plan.tensors:
        n = tp.n_bytes
        by_tensor[tp.name] = n
        by_layer[layer_key(tp.name)] += n
        by_category[tp.source.category] += n
        by_type[tp.type] += n
        n_elements += tp.source.n_elements
        source += tp.source.n_bytes
    return SizeReport(
        file_bytes=layout.file_bytes,
        meta_bytes=layout.meta_bytes,
        tensor_bytes=sum(by_tensor.values()),
        n_elements=n_elements,
        source_tensor_bytes=source,
        by_tensor=by_tensor,
        by_layer=dict(by_layer),
        by_category=dict(by_category),
        by_type=dict(by_type),
    )


def project_parts(model: Model, plan: Plan, spec: SplitSpec, imatrix_keys: list[MetaField] | None = None) -> list[int]:
    """Exact size of every file of a split export, first part first (the layout export writes)."""
    return [part.layout.file_bytes for part in compute_split_layout(model, plan, spec, imatrix_keys)]
