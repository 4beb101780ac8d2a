"""Speed options shared by ``bench-model`` and ``eval --speed``, and llama-bench's table layout."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from ..quality import QualityProgress, SpeedReport, SpeedSettings

_DEFAULTS = SpeedSettings()


# (llama-bench's spelling, the spelling on ``eval``, destination, default, help)
_OPTIONS = (
    (("-p", "--n-prompt"), ("--speed-prompt",), "n_prompt", _DEFAULTS.n_prompt,
     "prompt tokens, decoded as one batch (pp; default %(default)s, 0: skip)"),
    (("-n", "--n-gen"), ("--speed-gen",), "n_gen", _DEFAULTS.n_gen,
     "tokens generated one at a time (tg; default %(default)s, 0: skip)"),
    (("-r", "--repetitions"), ("--speed-reps",), "repetitions", _DEFAULTS.repetitions,
     "timed repetitions of each test, after a warm-up (default %(default)s)"),
    (("-t",), ("--speed-threads",), "speed_threads", None,
     "llama.cpp threads (default: llama-bench's, the physical cores)"),
    (("-b", "--batch-size"), ("--speed-batch-size",), "n_batch", _DEFAULTS.n_batch,
     "logical batch size (default %(default)s)"),
    (("-ub", "--ubatch-size"), ("--speed-ubatch-size",), "n_ubatch", _DEFAULTS.n_ubatch,
     "physical batch size (default %(default)s)"),
    (("-ngl", "--n-gpu-layers"), ("--speed-gpu-layers",), "n_gpu_layers", _DEFAULTS.n_gpu_layers,
     "layers on the GPU when llama-cpp-python is built with a GPU backend (default %(default)s: all)"),
)  # fmt: skip


def add_speed_options(group: argparse._ArgumentGroup, short: bool) -> None:
    """llama-bench's options, spelled as llama-bench spells them when ``short``.

    Otherwise (on ``eval``, whose ``--threads`` and ``--ctx`` mean other things) they are spelled
    ``--speed-prompt``, ``--speed-gen``, ``--speed-reps``, ``--speed-threads`` and so on.
    """
    for bench_names, eval_names, dest, default, help_text in _OPTIONS:
        names = bench_names if short else eval_names
        group.add_argument(*names, dest=dest, type=int, default=default, metavar="N", help=help_text)


def speed_settings(args: argparse.Namespace) -> SpeedSettings:
    """The settings the options ask for (checked: one line for impossible values)."""
    s = SpeedSettings(
        n_prompt=args.n_prompt,
        n_gen=args.n_gen,
        repetitions=args.repetitions,
        threads=args.speed_threads,
        n_batch=args.n_batch,
        n_ubatch=args.n_ubatch,
        n_gpu_layers=args.n_gpu_layers,
    )
    s.check()
    return s


def show_speed_progress(p: QualityProgress, name: str) -> None:
    """One updating line on a terminal (nothing otherwise): which test, which repetition."""
    if not sys.stderr.isatty():
        return
    test = {"pp": "prompt", "tg": "generation"}.get(p.stage, p.stage)
    done = (
        f"{min(int(p.done) + 1, int(p.total))}/{p.total:.0f}" if p.stage in ("pp", "tg") else f"{100 * p.fraction:.0f}%"
    )
    print(f"\r{name}: {test} {done}          ", end="", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SpeedRow:
    """One measured model for the table: its name, tensor bytes and parameters, and the report."""

    name: str
    tensor_bytes: int
    n_params: int
    report: SpeedReport


def _size(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.2f} MiB"


def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def speed_table(rows: list[SpeedRow]) -> str:
    """llama-bench's markdown table: one line per model and test, t/s as mean ± standard deviation."""
    header = ("model", "size", "params", "threads", "n_batch", "n_ubatch", "test", "t/s")
    right = (False, True, True, True, True, True, True, True)
    body = []
    for r in rows:
        s = r.report.settings
        tests = [
            (f"pp{s.n_prompt}", r.report.pp_tps, r.report.pp_tps_std),
            (f"tg{s.n_gen}", r.report.tg_tps, r.report.tg_tps_std),
        ]
        for test, mean, std in tests:
            if mean is None:
                continue
            common = (r.name, _size(r.tensor_bytes), _params(r.n_params), str(s.threads))
            body.append((*common, str(s.n_batch), str(s.n_ubatch), test, f"{mean:.2f} ± {std or 0.0:.2f}"))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if r else "-" * w for w, r in zip(widths, right)) + " |"
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def speed_summary(report: SpeedReport) -> str:
    """The two tests in a few lines: ``pp512: 1234.56 ± 7.89 t/s`` and the settings used."""
    s = report.settings
    lines = [
        f"{test:<8}: {mean:10.2f} ± {std or 0.0:.2f} t/s"
        for test, mean, std in (
            (f"pp{s.n_prompt}", report.pp_tps, report.pp_tps_std),
            (f"tg{s.n_gen}", report.tg_tps, report.tg_tps_std),
        )
        if mean is not None
    ]
    lines.append(f"({s.threads} threads, batch {s.n_batch}/{s.n_ubatch}, {s.repetitions} repetitions after a warm-up)")
    return "\n".join(lines)
