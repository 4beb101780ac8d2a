"""Budget options (``--target-size``, ``--target-bpw``, ``--target-memory``) shared by quantize, plan
and eval: the preset's plan becomes the auto-mix for the budget before anything else uses it.

The costs come from ``--costs FILE`` (a JSON cost table, or ``quant-explorer sensitivity --json``
output), else from the measured sensitivity table (``quant_core.sensitivity``, needs the
``quality`` extra), else from the interim weight-error table, with a note on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..automix import Budget, BudgetError, MixSpace, parse_bpw, parse_size
from ..automix.candidates import AutoMixError, CostTable
from ..errors import QuantError
from ..model import MetaField, Model
from ..plan import Plan, parse_type


def add_target_options(parser: argparse.ArgumentParser, ctx_flag: str = "--ctx") -> None:
    """Add the budget flags; ``ctx_flag`` names the KV context option (eval already has --ctx)."""
    g = parser.add_argument_group("auto-mix (least predicted KLD within a budget)")
    g.add_argument("--target-size", metavar="N[b|k|m|g]", help="file size budget (k = 1024 bytes)")
    g.add_argument("--target-bpw", metavar="X", help="bits per weight budget (llama-quantize's bpw)")
    g.add_argument(
        "--target-memory",
        metavar="N[b|k|m|g]",
        help="memory budget for the model plus its KV cache at --ctx (a device size)",
    )
    g.add_argument(ctx_flag, dest="target_ctx", type=int, metavar="C", help="context length the KV cache holds")
    g.add_argument(
        "--memory-reserve",
        metavar="N[b|k|m|g]",
        default="0",
        help="memory kept free for compute buffers and the rest (default 0)",
    )
    g.add_argument("--cache-type-k", default="F16", metavar="TYPE", help="KV cache type of K (default f16)")
    g.add_argument("--cache-type-v", default="F16", metavar="TYPE", help="KV cache type of V (default f16)")
    g.add_argument("--swa-full", action="store_true", help="full-size sliding-window cache (llama.cpp --swa-full)")
    g.add_argument("--costs", metavar="FILE", help="cost table JSON (tensor -> type -> predicted ΔKLD)")


def budget_from_args(args: argparse.Namespace) -> Budget | None:
    """The budget the flags describe, or None when no target flag is given."""
    if args.target_size is None and args.target_bpw is None and args.target_memory is None:
        if args.target_ctx is not None:
            raise BudgetError("--ctx sizes the KV cache of --target-memory; give --target-memory too")
        return None
    return Budget(
        file_bytes=parse_size(args.target_size) if args.target_size is not None else None,
        bpw=parse_bpw(args.target_bpw) if args.target_bpw is not None else None,
        memory_bytes=parse_size(args.target_memory, "--target-memory") if args.target_memory is not None else None,
        n_ctx=args.target_ctx,
        reserve_bytes=parse_size(args.memory_reserve, "--memory-reserve") if args.memory_reserve != "0" else 0,
        cache_type_k=parse_type(args.cache_type_k, "--cache-type-k"),
        cache_type_v=parse_type(args.cache_type_v, "--cache-type-v"),
        swa_full=args.swa_full,
    )


def apply_target(
    args: argparse.Namespace, model: Model, plan: Plan, imatrix: Any | None, keys: list[MetaField]
) -> Plan:
    """The auto-mix of ``plan`` for the budget on the command line (``plan`` itself without one)."""
    if not hasattr(args, "target_size"):
        return plan
    budget = budget_from_args(args)
    if budget is None:
        return plan
    costs, source = _costs(args, model, plan, imatrix, keys)
    result = MixSpace(model, plan, costs, imatrix=imatrix, imatrix_keys=keys).solve(budget)
    n = sum(1 for tp in result.plan.tensors if tp.why.kind.value == "auto_mix")
    proof = "optimal" if result.exact else f"within {result.solution.gap:.3g} of optimal"
    kv = f", KV cache {result.kv_bytes} bytes" if budget.memory_bytes is not None else ""
    print(
        f"auto-mix: {n} tensors for {budget.describe()}: {result.file_bytes} bytes, {result.bpw:.4f} bpw{kv}; "
        f"predicted {source} {result.predicted_kld:.6g} ({proof})",
        file=sys.stderr,
    )
    return result.plan


def _costs(
    args: argparse.Namespace, model: Model, plan: Plan, imatrix: Any | None, keys: list[MetaField]
) -> tuple[CostTable, str]:
    if args.costs:
        return read_cost_table(args.costs), "ΔKLD"
    try:
        return _sensitivity_costs(model, plan, imatrix, keys), "ΔKLD"
    except QuantError as err:
        why = str(err)
    from ..automix.interim import weight_error_costs

    print(
        f"auto-mix: no measured sensitivity ({why}); costs are relative weight error energy, "
        "every tensor equally sensitive",
        file=sys.stderr,
    )
    return weight_error_costs(model, plan, imatrix), "weight error"


def _sensitivity_costs(model: Model, plan: Plan, imatrix: Any | None, keys: list[MetaField]) -> CostTable:
    """The measured sensitivity table's costs (QuantError when it cannot be computed here)."""
    try:
        from ..quality import runtime_available
        from ..sensitivity import SensitivityTable, iter_sensitivity
    except ImportError:
        raise QuantError("the sensitivity package is not available") from None
    if not runtime_available():
        raise QuantError("llama.cpp's runtime, the quality extra, is not installed")
    table = None
    tty = sys.stderr.isatty()
    print("auto-mix: sensitivity of every tensor (measured once, cached)...", file=sys.stderr, flush=True)
    for item in iter_sensitivity(model, plan, imatrix=imatrix, imatrix_keys=keys):
        if isinstance(item, SensitivityTable):
            table = item
        elif tty:
            print(f"\r  {item.stage}: {100 * item.fraction:5.1f}%   ", end="", file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)
    if table is None:
        raise AutoMixError("the sensitivity computation produced no table")
    return table.costs


def read_cost_table(path: str) -> CostTable:
    """A cost table from JSON: ``{tensor: {type: cost}}`` or a ``sensitivity --json`` document."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise AutoMixError(f"cannot read cost table {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise AutoMixError(f"cost table {path} is not JSON: {err.msg} at line {err.lineno}") from None
    if isinstance(doc, dict) and isinstance(doc.get("tensors"), list):
        doc = {t.get("name"): t.get("costs") for t in doc["tensors"] if isinstance(t, dict)}
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in doc.items()):
        raise AutoMixError(f"cost table {path}: expected {{tensor: {{type: cost}}}}")
    return doc
