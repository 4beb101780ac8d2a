"""Compare a plan with a reference GGUF (a published quant), tensor by tensor.

Only the reference's header is read. Each tensor of the plan is paired with its *counterpart* in
the reference (:func:`counterparts`): the tensor of the same name outside the blocks
(``token_embd``, ``output``), and inside them the tensor of the same kind (the name without its
``blk.N.`` prefix) at the same relative depth. Layer ``i`` of a plan with ``n`` layers maps to
reference layer ``round(i * (m - 1) / (n - 1))`` of ``m`` (halves rounded up), so the first and
last layers map onto each other and, when ``n == m``, every layer onto itself. When the reference
has no tensor of that kind at that layer, the largest tensor of the same llama.cpp category
stands in (e.g. ``ffn_down_exps`` for ``ffn_down``).

Plan bytes come from :func:`~quant_core.size.project_size` (the exact sizes export writes);
reference bytes are the tensor sizes in its header.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .model import CATEGORIES, Model, ModelError, TensorInfo, open_model
from .plan import Plan
from .size import SizeReport, layer_key, project_size

_SUMMARY_GROUPS = 4


def depth_map(i: int, n: int, m: int) -> int:
    """Reference layer of layer ``i`` of ``n`` when the reference has ``m`` layers (nearest, halves up)."""
    if n <= 1 or m <= 1:
        return 0
    return (2 * i * (m - 1) + (n - 1)) // (2 * (n - 1))


def tensor_kind(name: str) -> str:
    """``blk.3.attn_q.weight`` -> ``attn_q.weight``; names outside the blocks are their own kind."""
    parts = name.split(".", 2)
    if parts[0] == "blk" and len(parts) == 3 and parts[1].isdigit():
        return parts[2]
    return name


def open_reference(path: str) -> Model:
    """Open a reference GGUF (header only); one-line :class:`ModelError` for a bad file."""
    ref = open_model(path)
    if not any(len(t.shape) >= 2 for t in ref.tensors):
        raise ModelError(f"{ref.path.name} has no weight matrices to compare with")
    return ref


def _n_blocks(names: Iterable[str]) -> int:
    layers = [int(n.split(".")[1]) for n in names if n.startswith("blk.") and n.split(".")[1].isdigit()]
    return max(layers) + 1 if layers else 0


@dataclass(frozen=True)
class Counterparts:
    """Which reference tensor stands for each plan tensor (plan name -> reference tensor)."""

    matched: dict[str, TensorInfo]
    by_category: frozenset[str]
    """Plan tensors matched through the category fallback (no tensor of their kind there)."""
    plan_only: tuple[str, ...]
    """Plan tensors with no counterpart in the reference."""
    ref_only: tuple[str, ...]
    """Reference tensors no plan tensor maps to, at layers the depth map reaches."""
    n_plan_layers: int
    n_ref_layers: int


def counterparts(plan: Plan, ref: Model) -> Counterparts:
    """Pair each plan tensor with the reference tensor of the same kind at the same relative depth."""
    n = _n_blocks(tp.name for tp in plan.tensors)
    m = _n_blocks(t.name for t in ref.tensors)
    by_name = {t.name: t for t in ref.tensors}
    matched: dict[str, TensorInfo] = {}
    via_category: set[str] = set()
    for tp in plan.tensors:
        layer = _layer_of(tp.name)  # the output name: --prune-layers renumbers the blocks
        if layer is None:
            found = by_name.get(tp.name)
        else:
            j = depth_map(layer, n, m)
            found = by_name.get(f"blk.{j}.{tensor_kind(tp.name)}")
            if found is None:
                found = _same_category(ref, j, tp.source.category)
                if found is not None:
                    via_category.add(tp.name)
        if found is not None:
            matched[tp.name] = found
    reached = {depth_map(i, n, m) for i in range(n)}
    used = {t.name for t in matched.values()}
    ref_only = tuple(t.name for t in ref.tensors if t.name not in used and (t.layer is None or t.layer in reached))
    plan_only = tuple(tp.name for tp in plan.tensors if tp.name not in matched)
    return Counterparts(matched, frozenset(via_category), plan_only, ref_only, n, m)


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "blk" and len(parts) > 2 and parts[1].isdigit() else None


def _same_category(ref: Model, layer: int, category: str) -> TensorInfo | None:
    """The largest reference tensor of ``category`` in ``layer`` (None for category "other")."""
    if category == "other":
        return None
    found = [t for t in ref.tensors if t.layer == layer and t.category == category]
    return max(found, key=lambda t: (t.n_elements, t.name), default=None)


@dataclass(frozen=True)
class TensorRow:
    """One plan tensor beside its reference counterpart (``ref_*`` None when it has none)."""

    name: str
    category: str
    plan_type: str
    plan_bytes: int
    n_elements: int
    ref_name: str | None = None
    ref_type: str | None = None
    ref_bytes: int | None = None
    ref_elements: int | None = None

    @property
    def plan_bpw(self) -> float:
        return _bpw(self.plan_bytes, self.n_elements)

    @property
    def ref_bpw(self) -> float | None:
        return None if self.ref_bytes is None or not self.ref_elements else _bpw(self.ref_bytes, self.ref_elements)

    @property
    def differs(self) -> bool:
        """True when the reference has a counterpart of another type."""
        return self.ref_type is not None and self.ref_type != self.plan_type


@dataclass(frozen=True)
class Total:
    """Bytes and elements of a group of tensors (a category or a layer) on both sides."""

    key: str
    plan_bytes: int
    plan_elements: int
    ref_bytes: int
    ref_elements: int
    differing: int
    ref_key: str | None = None
    """The reference's group these totals come from, when it is named otherwise (a mapped layer)."""

    @property
    def plan_bpw(self) -> float:
        return _bpw(self.plan_bytes, self.plan_elements)

    @property
    def ref_bpw(self) -> float:
        return _bpw(self.ref_bytes, self.ref_elements)


def _bpw(n_bytes: int, n_elements: int) -> float:
    return n_bytes * 8.0 / n_elements if n_elements else 0.0


@dataclass(frozen=True)
class Comparison:
    """A plan and a reference GGUF, tensor by tensor, with totals and a one-line summary."""

    reference: str
    rows: tuple[TensorRow, ...]
    ref_only: tuple[str, ...]
    by_category: tuple[Total, ...]
    by_layer: tuple[Total, ...]
    total: Total
    plan_file_bytes: int
    ref_file_bytes: int
    n_plan_layers: int
    n_ref_layers: int

    @property
    def differing(self) -> tuple[TensorRow, ...]:
        return tuple(r for r in self.rows if r.differs)

    @property
    def plan_only(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rows if r.ref_type is None)

    def summary(self) -> str:
        """One line: how many tensors differ, grouped as "N category PLAN→REF", and what is missing."""
        diff = self.differing
        if diff:
            groups = Counter((r.category, r.plan_type, r.ref_type) for r in diff)
            parts = [f"{k} {cat} {a}→{b}" for (cat, a, b), k in groups.most_common(_SUMMARY_GROUPS)]
            more = ", …" if len(groups) > _SUMMARY_GROUPS else ""
            text = f"differs from {self.reference} in {len(diff)} tensors: " + ", ".join(parts) + more
        else:
            n = sum(1 for r in self.rows if r.ref_type is not None)
            text = f"same types as {self.reference} in all {n} matched tensors"
        missing = []
        if self.plan_only:
            missing.append(f"{len(self.plan_only)} only in the plan")
        if self.ref_only:
            missing.append(f"{len(self.ref_only)} only in the reference")
        return text + ("; " + ", ".join(missing) if missing else "")

    def as_json(self) -> dict:
        """The comparison as plain data (``compare --json``)."""

        def total(t: Total) -> dict:
            return {
                "key": t.key,
                "ref_key": t.ref_key or t.key,
                "plan_bytes": t.plan_bytes,
                "plan_bpw": t.plan_bpw,
                "ref_bytes": t.ref_bytes,
                "ref_bpw": t.ref_bpw,
                "differing": t.differing,
            }

        return {
            "reference": self.reference,
            "summary": self.summary(),
            "plan_file_bytes": self.plan_file_bytes,
            "ref_file_bytes": self.ref_file_bytes,
            "layers": {"plan": self.n_plan_layers, "reference": self.n_ref_layers},
            "total": total(self.total),
            "by_category": [total(t) for t in self.by_category],
            "by_layer": [total(t) for t in self.by_layer],
            "tensors": [
                {
                    "name": r.name,
                    "ref_name": r.ref_name,
                    "plan_type": r.plan_type,
                    "plan_bytes": r.plan_bytes,
                    "plan_bpw": r.plan_bpw,
                    "ref_type": r.ref_type,
                    "ref_bytes": r.ref_bytes,
                    "ref_bpw": r.ref_bpw,
                    "differs": r.differs,
                }
                for r in self.rows
            ],
            "plan_only": list(self.plan_only),
            "ref_only": list(self.ref_only),
        }


def compare(model: Model, plan: Plan, ref: Model, size: SizeReport | None = None) -> Comparison:
    """Compare ``plan`` (of ``model``) with the reference file ``ref``.

    ``size`` is the plan's projected size when the caller has it (else it is computed).
    """
    size = size or project_size(model, plan)
    pairs = counterparts(plan, ref)
    rows = []
    for tp in plan.tensors:
        r = pairs.matched.get(tp.name)
        rows.append(
            TensorRow(
                tp.name,
                tp.source.category,
                tp.type,
                size.by_tensor[tp.name],
                tp.source.n_elements,
                *((r.name, r.src_type, r.n_bytes, r.n_elements) if r is not None else ()),
            )
        )
    layer_of_ref = {
        str(i): str(depth_map(i, pairs.n_plan_layers, pairs.n_ref_layers)) for i in range(pairs.n_plan_layers)
    }
    by_category = _totals(rows, ref, size.by_category, lambda r: r.category, lambda t: t.category, {})
    by_layer = _totals(rows, ref, size.by_layer, lambda r: layer_key(r.name), lambda t: layer_key(t.name), layer_of_ref)
    everything = _totals(rows, ref, {"all": size.tensor_bytes}, lambda r: "all", lambda t: "all", {})[0]
    return Comparison(
        reference=ref.path.name,
        rows=tuple(rows),
        ref_only=pairs.ref_only,
        by_category=by_category,
        by_layer=by_layer,
        total=everything,
        plan_file_bytes=size.file_bytes,
        ref_file_bytes=ref.file_size,
        n_plan_layers=pairs.n_plan_layers,
        n_ref_layers=pairs.n_ref_layers,
    )


def _totals(
    rows: list[TensorRow],
    ref: Model,
    plan_bytes: dict[str, int],
    row_key: Callable[[TensorRow], str],
    ref_key: Callable[[TensorInfo], str],
    ref_of: dict[str, str],
) -> tuple[Total, ...]:
    """Per group: the plan's bytes (from the size report) and elements, the reference group's own totals."""
    elements: dict[str, int] = defaultdict(int)
    differing: dict[str, int] = defaultdict(int)
    for r in rows:
        elements[row_key(r)] += r.n_elements
        differing[row_key(r)] += r.differs
    ref_bytes: dict[str, int] = defaultdict(int)
    ref_elements: dict[str, int] = defaultdict(int)
    for t in ref.tensors:
        ref_bytes[ref_key(t)] += t.n_bytes
        ref_elements[ref_key(t)] += t.n_elements
    out = []
    for key in _ordered(plan_bytes):
        rk = ref_of.get(key, key)
        out.append(
            Total(
                key,
                plan_bytes[key],
                elements[key],
                ref_bytes.get(rk, 0),
                ref_elements.get(rk, 0),
                differing[key],
                rk if rk != key else None,
            )
        )
    return tuple(out)


def _ordered(keys: Iterable[str]) -> list[str]:
    """Layers in numeric order after "other"; categories in llama.cpp's order (``CATEGORIES``)."""
    rank = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(keys, key=lambda k: (k.isdigit(), int(k) if k.isdigit() else rank.get(k, len(rank)), k))
