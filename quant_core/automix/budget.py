"""Budgets of the auto-mix: file bytes, bits per weight, or memory (model + KV cache at a context).

Each budget becomes a capacity in bytes for the optimised tensors, computed exactly:

* file bytes: the budget minus the fixed part of the file, which the real layout code computes
  (header, metadata, tensor infos and alignment: they do not depend on the types) plus every
  tensor that is not optimised, padded as the exporter writes it; optimised tensors count padded.
* bits per weight: llama-quantize's definition (tensor bytes without padding × 8 / all
  elements, as ``SizeReport.bpw``): the largest tensor-byte total whose bpw is <= the target.
* memory: the whole file (llama.cpp maps it) plus the KV cache at ``n_ctx`` must fit in
  ``memory_bytes - reserve_bytes``.

Several budgets may be given at once; all must hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import QuantError
from ..model import Model
from .kv import kv_cache_bytes

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


class BudgetError(QuantError):
    """A budget that cannot be parsed or cannot be met."""


@dataclass(frozen=True)
class Budget:
    """What the mix must fit in. At least one of ``file_bytes``, ``bpw``, ``memory_bytes``."""

    file_bytes: int | None = None
    bpw: float | None = None
    memory_bytes: int | None = None
    n_ctx: int | None = None
    reserve_bytes: int = 0
    cache_type_k: str = "F16"
    cache_type_v: str = "F16"
    swa_full: bool = False

    def __post_init__(self) -> None:
        if self.file_bytes is None and self.bpw is None and self.memory_bytes is None:
            raise BudgetError("give a budget: --target-size, --target-bpw or --target-memory")
        if self.bpw is not None and not 0 < self.bpw <= 32:
            raise BudgetError(f"--target-bpw must be in (0, 32], got {self.bpw}")
        if self.memory_bytes is not None and not self.n_ctx:
            raise BudgetError("--target-memory needs --ctx (the context length the KV cache is sized for)")
        if self.n_ctx is not None and self.n_ctx <= 0:
            raise BudgetError(f"--ctx must be positive, got {self.n_ctx}")

    def describe(self) -> str:
        """The budget in one line, for messages."""
        parts = []
        if self.file_bytes is not None:
            parts.append(f"{self.file_bytes} bytes")
        if self.bpw is not None:
            parts.append(f"{self.bpw:g} bpw")
        if self.memory_bytes is not None:
            parts.append(f"{self.memory_bytes - self.reserve_bytes} bytes of memory at context {self.n_ctx}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Capacity:
    """The budget as a limit on the optimised tensors' bytes.

    ``padded`` says which bytes count: file bytes (padded to the alignment) or llama-quantize's
    tensor bytes (bits per weight alone). ``kv_bytes`` is the KV cache the memory budget holds.
    """

    limit: int
    padded: bool
    kv_bytes: int = 0


def parse_size(text: str, what: str = "--target-size") -> int:
    """``N[b|k|m|g|t]`` in bytes (binary units: k = 1024), as llama-quantize's --target-size."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise BudgetError(f"invalid {what} {text!r}: expected a number with an optional b, k, m, g or t suffix")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        raise BudgetError(f"{what} must be at least one byte, got {text!r}")
    return int(value)


def parse_bpw(text: str) -> float:
    """A bits-per-weight target."""
    try:
        value = float(text)
    except ValueError:
        raise BudgetError(f"invalid --target-bpw {text!r}: expected a number such as 4.5") from None
    if not 0 < value <= 32:
        raise BudgetError(f"--target-bpw must be in (0, 32], got {text}")
    return value


def capacity(budget: Budget, model: Model, fixed_padded: int, fixed_raw: int, n_elements: int) -> Capacity:
    """The optimised tensors' byte limit under every part of ``budget``.

    ``fixed_padded`` is the file's size without the optimised tensors' data (the layout's
    metadata bytes plus the padded data of every other tensor); ``fixed_raw`` the other tensors'
    unpadded bytes; ``n_elements`` the elements of all tensors (the bpw denominator).
    """
    limits: list[int] = []
    kv = 0
    if budget.file_bytes is not None:
        limits.append(budget.file_bytes - fixed_padded)
    if budget.memory_bytes is not None:
        assert budget.n_ctx is not None
        kv = kv_cache_bytes(
            model, budget.n_ctx, budget.cache_type_k, budget.cache_type_v, swa_full=budget.swa_full
        ).total
        limits.append(budget.memory_bytes - budget.reserve_bytes - kv - fixed_padded)
    raw_limit = None
    if budget.bpw is not None:
        raw_limit = max_bytes_for_bpw(budget.bpw, n_elements) - fixed_raw
    if not limits:
        assert raw_limit is not None
        return Capacity(raw_limit, padded=False)
    # padded bytes >= raw bytes: a padded total within the raw limit keeps the bpw too
    return Capacity(min(limits + ([raw_limit] if raw_limit is not None else [])), padded=True, kv_bytes=kv)


def max_bytes_for_bpw(bpw: float, n_elements: int) -> int:
    """The largest tensor-byte total whose ``bytes * 8 / n_elements`` (as SizeReport.bpw) <= ``bpw``."""
    n = int(bpw * n_elements / 8.0)
    while n > 0 and n * 8.0 / n_elements > bpw:
        n -= 1
    while (n + 1) * 8.0 / n_elements <= bpw:
        n += 1
    return n
