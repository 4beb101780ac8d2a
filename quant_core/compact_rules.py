"""The shortest ``--tensor-type`` rules that reproduce a plan's per-tensor choices.

A mix made by hand is a map from tensor names to types. Written as one anchored rule per tensor
it is long and unreadable; here tensors of one kind (``blk.N.attn_v.weight``) that share a type
become one rule: ``\\d+`` when every layer of that kind has the type, an alternation of layer
numbers (``blk\\.(0|3|7)\\.attn_v``) otherwise, and kinds with the same layers and type share one
alternation of names. Each rule's reach (the tensors its regex *search* finds, as
llama.cpp matches) must be exactly the tensors it is meant for, so ``attn_v`` never silently
covers ``attn_v_b``; the shortest spelling with that reach is kept.

The result is verified by re-resolving the plan from the rules: a pattern match skips llama.cpp's
mixture rules and their layer counters, so tensors whose type would change are pinned as well,
until the re-resolved plan equals the wanted one. If that does not settle, :func:`compact_rules`
falls back to one anchored rule per tensor.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace

from .model import Model
from .plan import Plan, build_plan
from .regex_guard import check_pattern

Rule = tuple[str, str]

_LAYER_NAME = re.compile(r"^blk\.(\d+)\.(.+)$")


def compact_rules(model: Model, plan: Plan) -> tuple[Rule, ...]:
    """Tensor-type rules (placed before the plan's own) under which llama-quantize makes ``plan``.

    The returned tuple ends with ``plan.options.tensor_types``; re-resolving the plan's options
    with it gives the plan's types for every tensor.
    """
    want = plan.types()
    pins = dict(plan.explicit)
    hard: dict[str, str] = {}  # tensors only an anchored rule of their own reproduces
    reach = _Reach([tp.name for tp in plan.tensors])
    for _ in range(2 * len(plan.tensors) + 2):
        soft = {n: t for n, t in pins.items() if n not in hard}
        rules = _anchored(hard) + _rules_for(soft, want, reach) + plan.options.tensor_types
        diff = _differences(model, plan, rules, want)
        if not diff:
            return rules
        stuck = {n: t for n, t in diff.items() if pins.get(n) == t}
        if stuck:
            hard.update(stuck)
        else:
            pins.update(diff)
    return _pinned_rules(model, plan)


def _anchored(pins: Mapping[str, str]) -> tuple[Rule, ...]:
    return tuple((f"^{re.escape(n)}$", t) for n, t in pins.items())


def _differences(model: Model, plan: Plan, rules: tuple[Rule, ...], want: Mapping[str, str]) -> dict[str, str]:
    """Tensors whose re-resolved type differs from the wanted one, with the wanted type."""
    options = replace(plan.options, tensor_types=rules)
    got = build_plan(model, options, has_imatrix=plan.has_imatrix).types()
    return {name: t for name, t in want.items() if got[name] != t}


def _pinned_rules(model: Model, plan: Plan) -> tuple[Rule, ...]:
    """One anchored rule per tensor, pinning until the re-resolved plan equals ``plan``."""
    want = plan.types()
    pins = dict(plan.explicit)
    rules = plan.options.tensor_types
    for _ in range(len(plan.tensors) + 1):
        rules = _anchored(pins) + plan.options.tensor_types
        diff = _differences(model, plan, rules, want)
        if not diff:
            break
        pins.update(diff)
    return rules


class _Reach:
    """Which tensor names a pattern finds (regex search, as llama.cpp); all names, so a person
    reading the rule is not misled by tensors it would find but that are never quantized."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)

    def of(self, pattern: str) -> frozenset[str]:
        regex = re.compile(pattern)
        return frozenset(n for n in self.names if regex.search(n))


def _rules_for(pins: Mapping[str, str], want: Mapping[str, str], reach: _Reach) -> tuple[Rule, ...]:
    """Compact rules giving each pinned tensor its type (and no other tensor a rule)."""
    layers_of: dict[str, set[int]] = defaultdict(set)  # kind -> every layer that has it
    for name in want:
        split = _split(name)
        if split:
            layers_of[split[1]].add(split[0])
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)  # (layer part, type) -> kinds
    rules: list[Rule] = []
    by_kind: dict[tuple[str, str], set[int]] = defaultdict(set)
    for name, t in pins.items():
        split = _split(name)
        if split is None:
            rules.append((_shortest([name], {name}, reach), t))
        else:
            by_kind[(split[1], t)].add(split[0])
    catch_all: dict[tuple[str, str], list[str]] = defaultdict(list)
    for kind, types in sorted(_types_by_kind(by_kind).items()):
        every = layers_of[kind]
        covered = set().union(*types.values()) == every
        majority = max(types, key=lambda t: (len(types[t]), t)) if covered else None
        for t, layers in sorted(types.items()):
            if t == majority or all(want[f"blk.{i}.{kind}"] == t for i in every):
                catch_all[(r"\d+", t)].append(kind)  # after the exceptions: first match wins
            else:
                groups[(_alternation(str(i) for i in sorted(layers)), t)].append(kind)
    for (layer_part, t), kinds in [*groups.items(), *catch_all.items()]:
        rules.append(_layer_rule(layer_part, t, kinds, layers_of, want, reach))
    return tuple(rules)


def _types_by_kind(by_kind: Mapping[tuple[str, str], set[int]]) -> dict[str, dict[str, set[int]]]:
    out: dict[str, dict[str, set[int]]] = defaultdict(dict)
    for (kind, t), layers in by_kind.items():
        out[kind][t] = layers
    return out


def _layer_rule(
    layer_part: str, t: str, kinds: list[str], layers_of: Mapping[str, set[int]], want: Mapping[str, str], reach: _Reach
) -> Rule:
    """One rule for ``kinds`` at the layers ``layer_part`` names, in its shortest exact spelling."""
    targets = set()
    for kind in kinds:
        for i in layers_of[kind]:
            name = f"blk.{i}.{kind}"
            if layer_part == r"\d+" or re.fullmatch(layer_part, str(i)):
                targets.add(name)
    stems = sorted(kinds)
    bodies = [_stem_alternation([k.removesuffix(".weight") for k in stems]), _stem_alternation(stems)]
    candidates = [rf"blk\.{layer_part}\.{body}" for body in bodies]
    return _best(candidates, targets, reach), t


def _shortest(names: list[str], targets: set[str], reach: _Reach) -> str:
    candidates = [re.escape(n.removesuffix(".weight")) for n in names if len(names) == 1]
    return _best(candidates, targets, reach)


def _best(candidates: list[str], targets: set[str], reach: _Reach) -> str:
    """The first candidate (shortest first), bare or anchored, whose reach is exactly ``targets``."""
    wanted = targets & set(reach.names)
    for candidate in candidates:
        for pattern in (candidate, f"^{candidate}", f"^{candidate}$", f"^{candidate}\\.weight$"):
            if _safe(pattern) and reach.of(pattern) == wanted:
                return pattern
    names = sorted(targets)
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def _safe(pattern: str) -> bool:
    try:
        check_pattern(pattern)
    except Exception:  # noqa: BLE001 - any refusal just means: try the next spelling
        return False
    return True


def _split(name: str) -> tuple[int, str] | None:
    match = _LAYER_NAME.match(name)
    return (int(match.group(1)), match.group(2)) if match else None


def _alternation(parts: Iterable[str]) -> str:
    items = list(parts)
    return items[0] if len(items) == 1 else "(" + "|".join(items) + ")"


def _stem_alternation(stems: list[str]) -> str:
    return _alternation(re.escape(s) for s in stems)
