"""Measure HQQ-encoded against ggml-encoded GGUF quantizations; writes assets/hqq-measurements.json.

    .venv/bin/python tools/measure_hqq.py [--demo-imatrix I] [--gemma G.gguf --gemma-imatrix J]
                                          [--threads N] [--out assets/hqq-measurements.json]

For each configuration (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K pure: every quantizable tensor at that type;
and the Q4_K_M and Q5_K_M mixes) without and with an importance matrix, both encoders:

* weight error over every converted tensor: RMSE, mean |error| and the importance-weighted RMSE
  (the imatrix as weights, for both the runs without and with it in the encoding);
* model quality (demo model): mean KLD and same top token against the F16 model on the held-out
  text, through quant_core.quality (as llama-perplexity --kl-divergence). The HQQ file is the
  ggml export with every HQQ-encodable tensor re-encoded in place (same layout and size).

The Gemma-3-270M file is Q4_K_M already, so its weights are that file's decoded values and only
the weight error is measured (token_embd is left out for time). ``quant_core.hqq_policy`` reads
the JSON to decide where HQQ may be suggested.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

from quant_core import dequantize, quantize
from quant_core.assets import DEMO_CALIBRATION_TEXT, DEMO_EVAL_TEXT, DEMO_MODEL, HQQ_MEASUREMENTS
from quant_core.export import iter_export
from quant_core.hqq_policy import kld_margin
from quant_core.imatrix import Imatrix, load_imatrix, tensor_importance
from quant_core.imatrix_calc.compute import iter_imatrix
from quant_core.model import Model, open_model
from quant_core.plan import Plan, QuantOptions, build_plan
from quant_core.qtypes import HQQ_TYPES, is_float_type
from quant_core.quality import QualityReport, iter_quality, read_text_file

CONFIGS = (
    ("Q4_1", True),
    ("Q5_1", True),
    ("Q2_K", True),
    ("Q4_K_S", True),
    ("Q5_K_S", True),
    ("Q4_K_M", False),
    ("Q5_K_M", False),
)
"""(preset, pure): with pure, Q4_K_S / Q5_K_S put every quantizable tensor at Q4_K / Q5_K."""


def config_name(preset: str, pure: bool) -> str:
    return preset.removesuffix("_S") if pure else preset


@dataclass
class ErrorSums:
    """Running sums of one (configuration, imatrix, encoder) over the tensors."""

    n: int = 0
    sq: float = 0.0
    ab: float = 0.0
    wsq: float = 0.0
    wn: float = 0.0
    hqq_tensors: list[str] = field(default_factory=list)

    def add(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> None:
        e = (y - x).astype(np.float64)
        self.n += e.size
        self.sq += float((e * e).sum())
        self.ab += float(np.abs(e).sum())
        if weights is not None:
            self.wsq += float(((e * e) * weights).sum())
            self.wn += float(weights.sum()) * e.shape[0]

    def report(self) -> dict:
        if not self.n:
            return {"rmse": None, "mae": None, "weights": 0, "imatrix_rmse": None, "hqq_tensors": 0}
        out = {"rmse": (self.sq / self.n) ** 0.5, "mae": self.ab / self.n, "weights": self.n}
        out["imatrix_rmse"] = (self.wsq / self.wn) ** 0.5 if self.wn else None
        out["hqq_tensors"] = len(self.hqq_tensors)
        return out


def plans(model: Model, imatrix_path: str | None) -> dict[tuple[str, bool], Plan]:
    """(configuration name, with imatrix) -> plan."""
    out = {}
    for preset, pure in CONFIGS:
        for with_imatrix in (False, True):
            if with_imatrix and imatrix_path is None:
                continue
            opts = QuantOptions(preset=preset, pure=pure, imatrix=imatrix_path if with_imatrix else None)
            out[(config_name(preset, pure), with_imatrix)] = build_plan(model, opts, has_imatrix=with_imatrix)
    return out


def weight_errors(model: Model, all_plans: dict, imatrix: Imatrix | None, skip: tuple[str, ...], threads: int) -> dict:
    """Error sums per (configuration, with imatrix, encoder), each tensor read once."""
    sums: dict[tuple[str, bool, str], ErrorSums] = {}
    for t in model.tensors:
        if t.name in skip:
            continue
        rows = None
        cache: dict[tuple[str, bool, str], np.ndarray] = {}
        qw = tensor_importance(imatrix, t)
        for (config, with_imatrix), plan in all_plans.items():
            tp = next((p for p in plan.tensors if p.source.name == t.name), None)
            if tp is None or not tp.quantizable or is_float_type(tp.type):
                continue  # a quantized source at its own type is still re-encoded from its values
            rows = model.rows_f32(t.name) if rows is None else rows
            for encoder in ("ggml", "hqq"):
                enc = encoder if tp.type in HQQ_TYPES else "ggml"
                key = (tp.type, with_imatrix, enc)
                if key not in cache:
                    w = qw if with_imatrix else None
                    q = quantize(rows, tp.type, imatrix=w, threads=threads, encoder=enc)
                    cache[key] = dequantize(q, tp.type, rows.shape[1], threads=threads)
                acc = sums.setdefault((config, with_imatrix, encoder), ErrorSums())
                acc.add(rows, cache[key], qw)
                if enc == "hqq":
                    acc.hqq_tensors.append(t.name)
    return sums


def reencode_in_place(model: Model, plan: Plan, path: Path, imatrix: Imatrix | None, threads: int) -> int:
    """Rewrite every HQQ-encodable tensor of the exported ``path`` with the HQQ encoder."""
    reader = gguf.GGUFReader(path, "r+")
    count = 0
    for t in reader.tensors:
        tp = plan.tensor(t.name)
        if tp.type not in HQQ_TYPES or not tp.converts:
            continue
        rows = model.rows_f32(tp.source.name)
        q = quantize(rows, tp.type, imatrix=tensor_importance(imatrix, tp.source), threads=threads, encoder="hqq")
        t.data[...] = q.reshape(t.data.shape)
        count += 1
    reader.data.flush()
    return count


def quality(
    model: Model, plan: Plan, encoder: str, imatrix: Imatrix | None, text: bytes, work: Path, threads: int
) -> dict:
    """Export the plan (ggml), re-encode with HQQ if asked, measure against the model."""
    path = work / "candidate.gguf"
    for _ in iter_export(model, plan, path, imatrix=imatrix, threads=threads):
        pass
    if encoder == "hqq":
        reencode_in_place(model, plan, path, imatrix, threads)
    size = path.stat().st_size
    report = None
    for item in iter_quality(model.path, path, text, n_ctx=512, threads=threads):
        if isinstance(item, QualityReport):
            report = item
    path.unlink()
    assert report is not None
    keys = ("kld_mean", "kld_unc", "same_top_p", "same_top_p_unc", "ppl", "ppl_base", "kld_p99", "rms_dp")
    return {k: getattr(report, k) for k in keys} | {"file_bytes": size}


def measure_model(
    label: str, path: Path, imatrix_path: str | None, text: Path | None, skip: tuple[str, ...], threads: int, work: Path
) -> list[dict]:
    model = open_model(path)
    imatrix = load_imatrix(imatrix_path) if imatrix_path else None
    all_plans = plans(model, imatrix_path)
    print(f"{label}: weight errors of {len(all_plans)} plans x 2 encoders", flush=True)
    sums = weight_errors(model, all_plans, imatrix, skip, threads)
    rows = []
    for (config, with_imatrix), plan in all_plans.items():
        for encoder in ("ggml", "hqq"):
            entry = {"model": label, "config": config, "imatrix": with_imatrix, "encoder": encoder}
            entry["weight_error"] = sums.get((config, with_imatrix, encoder), ErrorSums()).report()
            if text is not None:
                entry["quality"] = quality(
                    model, plan, encoder, imatrix if with_imatrix else None, read_text_file(text), work, threads
                )
                q = entry["quality"]
                same = 100 * q["same_top_p"]
                print(
                    f"  {config:7} imatrix={with_imatrix!s:5} {encoder}: KLD {q['kld_mean']:.5f} same-top {same:.2f} %",
                    flush=True,
                )
            rows.append(entry)
    return rows


def markdown_table(doc: dict) -> str:
    """The measurements as Markdown: one line per model, configuration and imatrix, ggml vs hqq."""
    index = {(r["model"], r["config"], r["imatrix"], r["encoder"]): r for r in doc["results"]}
    head = (
        "| model | config | imatrix | RMSE ggml / hqq | MAE ggml / hqq | imatrix-RMSE ggml / hqq "
        "| KLD ggml / hqq | same top ggml / hqq | HQQ wins |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for (model, config, with_imatrix, encoder), g in index.items():
        if encoder != "ggml":
            continue
        h = index[(model, config, with_imatrix, "hqq")]
        we, wh = g["weight_error"], h["weight_error"]
        cells = [model, config, "yes" if with_imatrix else "no"]
        for key in ("rmse", "mae", "imatrix_rmse"):
            cells.append(f"{we[key]:.3e} / {wh[key]:.3e}" if we[key] is not None else "-")
        if g.get("quality"):
            qg, qh = g["quality"], h["quality"]
            cells.append(f"{qg['kld_mean']:.5f} / {qh['kld_mean']:.5f}")
            cells.append(f"{100 * qg['same_top_p']:.2f} / {100 * qh['same_top_p']:.2f} %")
            win = qh["kld_mean"] < qg["kld_mean"] - kld_margin(qg["kld_unc"], qh["kld_unc"])
            cells.append("yes" if win else "no")
        else:
            cells += ["-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _document(models: dict, results: list[dict]) -> dict:
    return {
        "about": "HQQ vs ggml encoders of the same GGUF types; written by tools/measure_hqq.py",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quality": {
            "n_ctx": 512,
            "metric": "mean KLD and same top token vs the F16 model (llama-perplexity --kl-divergence)",
        },
        "calibration_text": "demo-calibration.txt (llama-imatrix -c 512)",
        "models": models,
        "results": results,
    }


def merge(out: Path, other: Path) -> None:
    """Add the models and rows of ``other`` to ``out`` (replacing rows of the same models)."""
    doc, extra = json.loads(out.read_text()), json.loads(other.read_text())
    names = set(extra["models"])
    results = [r for r in doc["results"] if r["model"] not in names] + extra["results"]
    out.write_text(json.dumps(_document(doc["models"] | extra["models"], results), indent=1) + "\n")


def demo_imatrix(work: Path, threads: int) -> str:
    """The demo's importance matrix from its calibration text (all chunks of 512), as llama-imatrix makes it."""
    out = work / "demo-imatrix.gguf"
    text = DEMO_CALIBRATION_TEXT.read_bytes()
    for _ in iter_imatrix(DEMO_MODEL, text, out, dataset=DEMO_CALIBRATION_TEXT.name, threads=threads):
        pass
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("all", "demo", "gemma"), default="all")
    ap.add_argument("--demo-imatrix", default="", help="default: computed from the demo's calibration text")
    ap.add_argument("--gemma", default="/tmp/gemma/gemma-3-270m-q4_k_m.gguf")
    ap.add_argument("--gemma-imatrix", default="", help="an importance matrix of the Gemma file (optional)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/hqq/work")
    ap.add_argument("--out", default=str(HQQ_MEASUREMENTS))
    ap.add_argument("--merge", default="", help="add the models of this measurements file to --out and stop")
    ap.add_argument("--table", action="store_true", help="print the Markdown table of --out and stop")
    args = ap.parse_args()
    if args.table or args.merge:
        if args.merge:
            merge(Path(args.out), Path(args.merge))
        print(markdown_table(json.loads(Path(args.out).read_text())))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    models: dict[str, dict] = {}
    results: list[dict] = []
    if args.only in ("all", "demo"):
        args.demo_imatrix = args.demo_imatrix or demo_imatrix(work, args.threads)
        models["demo-llama"] = {
            "path": DEMO_MODEL.name,
            "imatrix": Path(args.demo_imatrix).name,
            "text": DEMO_EVAL_TEXT.name,
        }
        results += measure_model("demo-llama", DEMO_MODEL, args.demo_imatrix, DEMO_EVAL_TEXT, (), args.threads, work)
        Path(args.out).write_text(json.dumps(_document(models, results), indent=1) + "\n")
    if args.only in ("all", "gemma") and Path(args.gemma).is_file():
        gemma_imatrix = args.gemma_imatrix or None
        models["gemma-3-270m"] = {
            "path": Path(args.gemma).name,
            "imatrix": gemma_imatrix and Path(gemma_imatrix).name,
            "text": None,
            "note": "weights decoded from the Q4_K_M file; token_embd left out; no quality pass",
        }
        results += measure_model(
            "gemma-3-270m", Path(args.gemma), gemma_imatrix, None, ("token_embd.weight",), args.threads, work
        )
    Path(args.out).write_text(json.dumps(_document(models, results), indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
