"""Validate the sensitivity table: predicted against measured single-tensor KLD changes.

    python tools/validate_sensitivity.py [MODEL.gguf] [--text FILE] [--pairs N] [--seed S]
        [--imatrix FILE] [--allow-requantize] [--ctx N] [--chunks N] [--max-units N]

Computes (or reads from the cache) the table of MODEL (default: the demo model), draws N pairs
(tensor, type) that were not used for calibration, measures each with only that tensor changed,
and prints the Spearman rank correlation of predicted and measured changes of mean KLD, overall,
within each type, and the time taken. Measured pairs are cached too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import numpy as np

from quant_core.assets import DEMO_EVAL_TEXT, DEMO_MODEL
from quant_core.errors import QuantError
from quant_core.imatrix import load_for_quantize
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.quality import read_text_file
from quant_core.sensitivity import SensitivitySettings, SensitivityTable, iter_sensitivity, spearman
from quant_core.sensitivity.core import open_store
from quant_core.sensitivity.validate import iter_validation, validation_pairs


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default=str(DEMO_MODEL))
    p.add_argument("--text", default=str(DEMO_EVAL_TEXT))
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--imatrix")
    p.add_argument("--allow-requantize", action="store_true")
    p.add_argument("--ctx", type=int)
    p.add_argument("--chunks", type=int)
    p.add_argument("--max-units", type=int)
    p.add_argument("--threads", type=int)
    return p.parse_args(argv)


def _run(gen, label: str):
    result = None
    with closing(gen) as items:
        for item in items:
            if hasattr(item, "stage"):
                print(f"\r{label} {item.stage}: {100 * item.fraction:5.1f}%   ", end="", file=sys.stderr, flush=True)
            else:
                result = item
    print(file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    # llama.cpp's OpenMP threads otherwise spin between graphs: on a busy machine runs take 10x longer
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    a = _args(argv)
    model = open_model(a.model)
    text = read_text_file(a.text)
    imatrix, keys = load_for_quantize(a.imatrix, (), ()) if a.imatrix else (None, [])
    options = QuantOptions(allow_requantize=a.allow_requantize, imatrix=a.imatrix)
    plan = build_plan(model, options, has_imatrix=imatrix is not None)
    changes = {k: v for k, v in (("n_ctx", a.ctx), ("chunks", a.chunks), ("max_units", a.max_units)) if v}
    settings = replace(SensitivitySettings.for_model(model, **changes), threads=a.threads)

    t0, c0 = time.perf_counter(), time.process_time()
    table: SensitivityTable = _run(iter_sensitivity(model, plan, text, imatrix, True, settings, keys), "table")
    t_table, c_table = time.perf_counter() - t0, time.process_time() - c0
    pairs = validation_pairs(table, plan, a.pairs, a.seed)
    store = open_store(model, plan, imatrix, text, settings, purpose="validation")
    t1 = time.perf_counter()
    results = _run(iter_validation(model, plan, table, pairs, text, settings, imatrix, keys, store), "pairs")
    t_pairs = time.perf_counter() - t1

    predicted = [r.predicted for r in results]
    measured = [r.measured for r in results]
    by_type = defaultdict(list)
    for r in results:
        by_type[r.type].append(r)
    print(
        f"model {Path(a.model).name}: {len(table.costs)} tensors, {len(table.measured)} probe runs, "
        f"beta {table.beta:.3f}, table {t_table:.1f} s wall / {c_table:.1f} s CPU (cached parts skipped), "
        f"{len(results)} pairs {t_pairs:.1f} s"
    )
    for r in results:
        print(f"  {r.name:<32} {r.type:<8} predicted {r.predicted:.3e}  measured {r.measured:.3e}")
    within = [spearman([r.predicted for r in rs], [r.measured for r in rs]) for rs in by_type.values() if len(rs) >= 4]
    within = [w for w in within if np.isfinite(w)]
    print(f"Spearman (all pairs): {spearman(predicted, measured):.3f}  n={len(results)}")
    if within:
        print(f"Spearman within a type (mean over {len(within)} types with >= 4 pairs): {np.mean(within):.3f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except QuantError as err:
        print(f"validate_sensitivity: error: {err}", file=sys.stderr)
        sys.exit(1)
