"""Time the HQQ encoder against ggml's search, type by type, runs interleaved (ggml, hqq, ggml, ...).

    .venv/bin/python tools/bench_hqq.py [--model M.gguf] [--tensor NAME] [--threads N] [--runs R]

The weights are one tensor of a model (its float32 rows); the same rows, threads and importance
values go to both encoders. Prints every run and the ratio of medians (hqq / ggml).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from quant_core import quantize
from quant_core.assets import DEMO_MODEL
from quant_core.model import open_model
from quant_core.qtypes import HQQ_TYPES, QTYPES


def _time(rows: np.ndarray, type_name: str, qw: np.ndarray | None, threads: int, encoder: str) -> float:
    start = time.perf_counter()
    quantize(rows, type_name, imatrix=qw, threads=threads, encoder=encoder)
    return time.perf_counter() - start


def bench(rows: np.ndarray, threads: int, runs: int) -> None:
    qw = np.random.default_rng(0).lognormal(0.0, 1.0, rows.shape[1]).astype(np.float32)
    print(f"{'type':6} {'imatrix':7} {'ggml ms (runs)':52} {'hqq ms (runs)':52} hqq/ggml")
    for type_name in (n for n in QTYPES if n in HQQ_TYPES):
        if rows.shape[1] % QTYPES[type_name].block_size:
            print(f"{type_name:6} skipped: rows of {rows.shape[1]} are not whole {type_name} blocks")
            continue
        for weights in (None, qw):
            for encoder in ("ggml", "hqq"):  # compile and warm up
                quantize(rows[:2], type_name, imatrix=weights, encoder=encoder)
            times: dict[str, list[float]] = {"ggml": [], "hqq": []}
            for _ in range(runs):
                for encoder in times:
                    times[encoder].append(1e3 * _time(rows, type_name, weights, threads, encoder))
            med = {k: statistics.median(v) for k, v in times.items()}
            cols = [f"{med[k]:7.2f} ({' '.join(f'{t:.2f}' for t in times[k])})" for k in times]
            yes = "yes" if weights is not None else "no"
            print(f"{type_name:6} {yes:7} {cols[0]:52} {cols[1]:52} {med['hqq'] / med['ggml']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEMO_MODEL))
    ap.add_argument("--tensor", default="", help="default: the model's largest 2-D weight")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    model = open_model(args.model)
    candidates = [t for t in model.tensors if len(t.shape) == 2 and t.shape[0] % 256 == 0]
    t = model.tensor(args.tensor) if args.tensor else max(candidates, key=lambda t: t.n_rows * t.n_per_row)
    rows = model.rows_f32(t.name)
    print(f"{model.path.name}: {t.name} {rows.shape[0]} x {rows.shape[1]}, {args.threads} threads, {args.runs} runs")
    bench(rows, args.threads, args.runs)


if __name__ == "__main__":
    main()
