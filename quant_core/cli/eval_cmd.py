"""``quant-explorer eval``: KL-divergence and perplexity of a quantization, as llama-perplexity.

    eval BASE.gguf CANDIDATE.gguf [--text FILE] [--ctx 512] [--chunks N] [--threads N] [--json]
    eval BASE.gguf --preset PRESET [llama-quantize options] [--text FILE] ... [--json]

The second form measures a plan (preset, options, ``--recipe``) through a temporary file that is
deleted afterwards. ``--speed`` adds the prompt and generation speed of the same file, measured
as llama-bench does (``--speed-prompt``, ``--speed-gen``, ``--speed-reps``, ``--speed-threads``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from ..assets import DEMO_EVAL_TEXT
from ..errors import QuantError
from ..inputs import read_input_head
from ..quality import (
    QualityProgress,
    QualityReport,
    SpeedReport,
    iter_plan_quality,
    iter_plan_speed,
    iter_quality,
    iter_speed,
    read_text_file,
)
from .options import add_quant_options, open_and_plan
from .speed_options import add_speed_options, speed_settings, speed_summary
from .target import add_target_options

HELP = "measure a quantization against its base model: KL divergence, perplexity, same top token"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE.gguf", help="the reference model (F16/BF16/F32)")
    parser.add_argument("candidate", metavar="CANDIDATE.gguf", nargs="?", help="the quantized model to measure")
    parser.add_argument("--preset", metavar="PRESET", help="measure this plan of BASE instead of a file")
    m = parser.add_argument_group("measurement")
    m.add_argument("--text", metavar="FILE", help="evaluation text (default: the demo's held-out text)")
    m.add_argument("--ctx", type=int, default=512, metavar="N", help="tokens per chunk (default 512)")
    m.add_argument("--chunks", type=int, metavar="N", help="evaluate at most N chunks (default: all)")
    m.add_argument(
        "--kl-divergence-base",
        metavar="FILE",
        dest="base_file",
        help="llama-perplexity base log-prob file: read if it exists, else written",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    speed = parser.add_argument_group("speed (with --speed, as llama-bench)")
    speed.add_argument("--speed", action="store_true", help="also measure prompt and generation tokens/s")
    add_speed_options(speed, short=False)
    add_quant_options(parser)
    add_target_options(parser, ctx_flag="--target-ctx")  # --ctx is the evaluation's context here


def _text(args: argparse.Namespace) -> tuple[Path, bytes]:
    path = Path(args.text) if args.text else DEMO_EVAL_TEXT
    read_input_head(path, "text file", QuantError, 0)  # a FIFO or device would never end
    return path, read_text_file(path)


Item = QualityProgress | QualityReport | SpeedReport


def _measurements(args: argparse.Namespace, text: bytes) -> Iterator[Item]:
    if args.candidate and args.preset:
        raise QuantError("give either CANDIDATE.gguf or --preset, not both")
    if args.ctx <= 0:
        raise QuantError(f"--ctx must be positive, got {args.ctx}")
    common = {"n_ctx": args.ctx, "chunks": args.chunks, "threads": args.threads, "base_file": args.base_file}
    speed = speed_settings(args) if args.speed else None
    if args.candidate:
        if speed is None:
            return iter_quality(args.base, args.candidate, text, **common)
        return _chain(iter_quality(args.base, args.candidate, text, **common), iter_speed(args.candidate, speed))
    if not (args.preset or args.recipe):
        raise QuantError("give CANDIDATE.gguf, or --preset PRESET (or --recipe) to measure a plan")
    args.input = args.base
    model, plan, imatrix, keys = open_and_plan(args, args.preset)
    if speed is None:
        return iter_plan_quality(model, plan, text, imatrix, keys, **common)
    return iter_plan_speed(model, plan, speed, imatrix, keys, text=text, **common)


def _chain(*parts: Iterator[Item]) -> Iterator[Item]:
    """One measurement after another; closing the chain closes the part under way."""
    for part in parts:
        with closing(part):
            yield from part


def _show_progress(p: QualityProgress, tty: bool, last_stage: list[str]) -> None:
    names = {"base": "base model", "candidate": "candidate", "export": "export", "pp": "prompt", "tg": "generation"}
    if tty:
        unit = {"export": "bytes", "pp": "runs", "tg": "runs"}.get(p.stage, "chunks")
        print(
            f"\r{names[p.stage]:>10}: {100 * p.fraction:5.1f}% ({p.done:.0f}/{p.total:.0f} {unit})   ",
            end="",
            file=sys.stderr,
            flush=True,
        )
    elif p.stage != (last_stage[0] if last_stage else None):
        print(f"{names[p.stage]}...", file=sys.stderr, flush=True)
    last_stage[:] = [p.stage]


def run(args: argparse.Namespace) -> int:
    text_path, text = _text(args)
    tty = sys.stderr.isatty()
    report: QualityReport | None = None
    speed: SpeedReport | None = None
    last: list[str] = []
    with closing(_measurements(args, text)) as items:
        for item in items:
            if isinstance(item, QualityReport):
                report = item
            elif isinstance(item, SpeedReport):
                speed = item
            else:
                _show_progress(item, tty, last)
    if tty and last:
        print(file=sys.stderr)
    if report is None or (args.speed and speed is None):
        raise QuantError("the measurement produced no report")
    if args.json:
        doc = {
            "base": args.base,
            "candidate": args.candidate or f"plan {args.preset or args.recipe}",
            "text": str(text_path),
            **report.as_json(),
            **(speed.as_json() if speed else {}),
        }
        print(json.dumps(doc))
    else:
        print_report(report)
        if speed is not None:
            print("\n====== Speed (llama-bench) ======")
            print(speed_summary(speed))
    return 0


def print_report(r: QualityReport) -> None:
    """The statistics in llama-perplexity's layout."""
    log_ppl_unc = r.ppl_unc / r.ppl if r.ppl else 0.0
    log_base_unc = r.ppl_base_unc / r.ppl_base if r.ppl_base else 0.0
    cov = r.ppl_cor * log_ppl_unc * log_base_unc
    ratio = math.exp(r.ln_ppl_ratio)
    diff_unc = math.sqrt(max(r.ppl_unc**2 + r.ppl_base_unc**2 - 2.0 * r.ppl * r.ppl_base * cov, 0.0))
    pct = [
        ("Maximum", r.kld_max),
        ("99.9%  ", r.kld_p999),
        ("99.0%  ", r.kld_p99),
        ("95.0%  ", r.kld_p95),
        ("90.0%  ", r.kld_p90),
        ("Median ", r.kld_median),
        ("10.0%  ", r.kld_p10),
        (" 5.0%  ", r.kld_p5),
        (" 1.0%  ", r.kld_p1),
        (" 0.1%  ", r.kld_p01),
        ("Minimum", r.kld_min),
    ]
    lines = [
        f"{r.tokens} tokens scored ({r.n_chunk} chunks of {r.n_ctx}), candidate {r.candidate_bytes} bytes",
        "",
        "====== Perplexity statistics ======",
        f"Mean PPL(Q)                   : {r.ppl:10.6f} ± {r.ppl_unc:10.6f}",
        f"Mean PPL(base)                : {r.ppl_base:10.6f} ± {r.ppl_base_unc:10.6f}",
        f"Cor(ln(PPL(Q)), ln(PPL(base))): {100 * r.ppl_cor:6.2f}%",
        f"Mean ln(PPL(Q)/PPL(base))     : {r.ln_ppl_ratio:10.6f} ± {r.ln_ppl_ratio_unc:10.6f}",
        f"Mean PPL(Q)/PPL(base)         : {ratio:10.6f} ± {ratio * r.ln_ppl_ratio_unc:10.6f}",
        f"Mean PPL(Q)-PPL(base)         : {r.ppl - r.ppl_base:10.6f} ± {diff_unc:10.6f}",
        "",
        "====== KL divergence statistics ======",
        f"Mean    KLD: {r.kld_mean:10.6f} ± {r.kld_unc:10.6f}",
        *[f"{name} KLD: {value:10.6f}" for name, value in pct],
        "",
        "====== Token probability statistics ======",
        f"Mean    Δp: {100 * r.dp_mean:6.3f} ± {100 * r.dp_mean_unc:5.3f} %",
        f"Maximum Δp: {100 * r.dp_max:6.3f}%",
        f"Minimum Δp: {100 * r.dp_min:6.3f}%",
        f"RMS Δp    : {100 * r.rms_dp:6.3f} ± {100 * r.rms_dp_unc:5.3f} %",
        f"Same top p: {100 * r.same_top_p:6.3f} ± {100 * r.same_top_p_unc:5.3f} %",
    ]
    print("\n".join(lines))
