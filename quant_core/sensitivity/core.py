"""``iter_sensitivity``: the cost table of a plan, measured, cached and resumable.

1. Weight errors: every quantizable tensor at every candidate type, on sampled rows.
2. Real runs: per unit (a tensor, or a category's depth bucket), the model with only that unit
   quantized to a probe type, scored by llama.cpp against the unchanged model; a few units again
   at a second probe for the exponent; one run of the unchanged model for the floor.
3. Fit (see :mod:`.fit`) and the table.

Every result is stored as soon as it is known; a later call with the same inputs skips it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..assets import DEMO_CALIBRATION_TEXT
from ..errors import QuantError
from ..model import MetaField, Model
from ..plan import Plan, QuantOptions, build_plan
from ..qtypes import is_float_type
from ..quality import QualityProgress, read_text_file
from ..quality.runtime import load_runtime
from . import fit
from .candidates import candidate_types, probe_choices
from .proxy import tensor_errors
from .runs import RunSettings, iter_kld
from .store import Store, store_key
from .table import SensitivityProgress, SensitivitySettings, SensitivityTable
from .units import Unit, make_units

FLOOR_RUN = "floor"


class SensitivityError(QuantError):
    """Inputs a sensitivity table cannot be computed for."""


def run_id(unit_key: str, type_name: str) -> str:
    return f"{unit_key}|{type_name}"


def _plan_for(model: Model, options: QuantOptions | Plan, imatrix: Any | None) -> Plan:
    plan = options if isinstance(options, Plan) else build_plan(model, options, has_imatrix=imatrix is not None)
    if plan.options.prune_layers:
        raise SensitivityError("sensitivity is measured on the whole model: drop --prune-layers")
    quantized = [tp.name for tp in plan.tensors if tp.quantizable and not is_float_type(tp.source.src_type)]
    if quantized and not plan.options.allow_requantize:
        raise SensitivityError(f"{quantized[0]} is already quantized: sensitivity needs --allow-requantize")
    return plan


def _mean_error(unit: Unit, errors: Mapping[str, Mapping[str, float]], type_name: str) -> float:
    return float(np.mean([errors[n][type_name] for n in unit.names]))


def choose_probes(
    unit: Unit, plan: Plan, errors: Mapping[str, Mapping[str, float]], target: float, second: bool
) -> list[str]:
    """The probe type whose error is nearest ``target / len(unit)``, and optionally a milder one."""
    common: set[str] | None = None
    for name in unit.names:
        tp = plan.tensor(name)
        choices = set(probe_choices(errors[name], tp.source.src_type))
        common = choices if common is None else common & choices
    usable = [t for t in sorted(common or ()) if _mean_error(unit, errors, t) > 0]
    if not usable:
        return []
    aim = target / len(unit.names)

    def distance(t: str, goal: float) -> float:
        return abs(math.log(_mean_error(unit, errors, t) / goal))

    first = min(usable, key=lambda t: distance(t, aim))
    if not second:
        return [first]
    e1 = _mean_error(unit, errors, first)
    milder = [t for t in usable if _mean_error(unit, errors, t) <= e1 / 2.5]
    return [first] + ([min(milder, key=lambda t: distance(t, e1 / 6))] if milder else [])


def _slope_units(units: list[Unit], count: int) -> set[str]:
    """Units measured at two probes: evenly spread over the list (so over categories and depth)."""
    if count <= 0 or not units:
        return set()
    picks = np.unique(np.linspace(0, len(units) - 1, min(count, len(units))).round().astype(int))
    return {units[i].key for i in picks}


def open_store(
    model: Model, plan: Plan, imatrix: Any | None, text: bytes, settings: SensitivitySettings, purpose: str = "table"
) -> Store:
    """The cache record of these inputs (``purpose`` separates the table from validation runs)."""
    names = sorted(tp.name for tp in plan.tensors if tp.quantizable)
    key_doc = {**settings.key_fields(), "tensors": names, "purpose": purpose}
    return Store.for_key(store_key(model.path, imatrix, text, key_doc))


def iter_sensitivity(
    model: Model,
    options: QuantOptions | Plan,
    text: bytes | None = None,
    imatrix: Any | None = None,
    cache: bool = True,
    settings: SensitivitySettings | None = None,
    imatrix_keys: list[MetaField] | None = None,
) -> Iterator[SensitivityProgress | SensitivityTable]:
    """Yield :class:`SensitivityProgress`, then the :class:`SensitivityTable`; stop iterating to cancel.

    ``options`` (or a built plan) selects the quantizable tensors; ``text`` defaults to the demo's
    calibration text (disjoint from the held-out text quality is measured on); ``imatrix`` weights
    the errors and enables the types that need one. With ``cache`` the results are kept in the
    quality cache folder and reused.
    """
    settings = settings or SensitivitySettings.for_model(model)
    plan = _plan_for(model, options, imatrix)
    load_runtime()  # without llama.cpp, say so before minutes of weight errors
    text = read_text_file(DEMO_CALIBRATION_TEXT) if text is None else text
    tensors = [tp for tp in plan.tensors if tp.quantizable]
    if not tensors:
        raise SensitivityError("the plan has no quantizable tensor")
    store = open_store(model, plan, imatrix, text, settings) if cache else Store(None)

    errors: dict[str, dict[str, float]] = {}
    for i, tp in enumerate(tensors):
        yield SensitivityProgress("errors", i, len(tensors), tp.name)
        found = store.get("errors", tp.name)
        if found is None:
            types = candidate_types(tp, imatrix, settings.types)
            found = tensor_errors(model, tp.source, types, imatrix, settings.sample_elements, settings.threads)
            store.put("errors", tp.name, found)
        errors[tp.name] = found

    units = make_units(tensors, settings.max_units)
    slope = _slope_units(units, settings.slope_units)
    probes = {u.key: choose_probes(u, plan, errors, settings.probe_error, u.key in slope) for u in units}
    todo: list[tuple[str, dict[str, str]]] = [(FLOOR_RUN, {})]
    for u in units:
        todo += [(run_id(u.key, t), dict.fromkeys(u.names, t)) for t in probes[u.key]]
    rs = RunSettings(settings.n_ctx, settings.chunks, settings.threads)
    for i, (rid, changes) in enumerate(todo):
        if store.get("runs", rid) is not None:
            continue
        for item in iter_kld(model, plan, changes, text, rs, imatrix, imatrix_keys):
            if isinstance(item, QualityProgress):
                yield SensitivityProgress("measure", i + item.fraction, len(todo), rid)
            else:
                store.put("runs", rid, item)
    yield SensitivityProgress("measure", len(todo), len(todo))
    yield _table(plan, units, probes, errors, store)


def _table(
    plan: Plan, units: list[Unit], probes: Mapping[str, list[str]], errors: dict[str, dict[str, float]], store: Store
) -> SensitivityTable:
    floor = float(store.get("runs", FLOOR_RUN))
    deltas = {
        u.key: {t: max(float(store.get("runs", run_id(u.key, t))) - floor, 0.0) for t in probes[u.key]} for u in units
    }
    beta = fit.fit_beta(units, errors, deltas)
    unit_s = fit.unit_sensitivity(units, errors, deltas, beta)
    layers = {tp.name: tp.source.layer for tp in plan.tensors if tp.name in errors}
    sens = fit.tensor_sensitivity(units, unit_s, layers)
    unit_of = {n: u.key for u in units for n in u.names}
    return SensitivityTable(
        costs=fit.costs(errors, sens, beta),
        sensitivity=sens,
        errors=errors,
        beta=beta,
        unit_of=unit_of,
        probes={n: tuple(probes[unit_of[n]]) for n in errors},
        measured={run_id(u.key, t): d for u in units for t, d in deltas[u.key].items()},
        floor=floor,
        layers=layers,
        categories={tp.name: tp.source.category for tp in plan.tensors if tp.name in errors},
    )
