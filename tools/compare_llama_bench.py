"""Compare our prompt/generation speed with llama-bench's on the same files, runs interleaved.

    python tools/compare_llama_bench.py MODEL.gguf [MODEL.gguf ...] [-p 512] [-n 128] [-r 5]
        [-t THREADS] [--rounds 3] [--llama-bench PATH] [--same-libs] [--json OUT.json]

Each round measures every model with ours (``quant_core.quality.iter_speed``) and then with
``llama-bench -o json`` (same sizes, threads, repetitions, batch sizes), so both see the same load.
Every run is printed with the 1-minute load average before it; the summary gives, per model and
test, the median over rounds of each tool's mean t/s and the range of the rounds' means.

``--same-libs`` runs llama-bench on llama-cpp-python's own libllama/libggml (the ones our
measurement uses; same llama.cpp sources, possibly other compiler flags than llama-bench's build),
so that only the way of measuring differs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_core.quality import SpeedReport, SpeedSettings, iter_speed

DEFAULT_BENCH = Path("/work/llama-build/bin/llama-bench")


def ours(model: Path, s: SpeedSettings) -> dict[str, list[float]]:
    report = [r for r in iter_speed(model, s) if isinstance(r, SpeedReport)][-1]
    return {"pp": list(report.pp_samples), "tg": list(report.tg_samples)}


def runtime_lib_dir() -> Path:
    """The folder of llama-cpp-python's shared libraries."""
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


def bench(model: Path, s: SpeedSettings, exe: Path, same_libs: bool = False) -> dict[str, list[float]]:
    cmd = [str(exe), "-m", str(model), "-p", str(s.n_prompt), "-n", str(s.n_gen), "-r", str(s.repetitions)]
    cmd += ["-t", str(s.threads), "-b", str(s.n_batch), "-ub", str(s.n_ubatch), "-o", "json"]
    libs = [str(runtime_lib_dir())] if same_libs else []
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([*libs, str(exe.parent)])}
    env.pop("OMP_WAIT_POLICY", None)  # as from a plain shell (our child process does the same)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    result: dict[str, list[float]] = {"pp": [], "tg": []}
    for test in json.loads(out):
        result["pp" if test["n_prompt"] else "tg"] = [float(v) for v in test["samples_ts"]]
    return result


def _mean_std(v: list[float]) -> str:
    if not v:
        return "-"
    return f"{statistics.fmean(v):9.2f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:7.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-t", type=int, default=None, help="threads (default: llama-bench's)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--llama-bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--same-libs", action="store_true", help="llama-bench on llama-cpp-python's libraries")
    ap.add_argument("--json", type=Path, help="write every run here")
    args = ap.parse_args()
    s = SpeedSettings(n_prompt=args.p, n_gen=args.n, repetitions=args.r, threads=args.t).resolved()
    libs = "llama-cpp-python's libraries" if args.same_libs else "its own build's libraries"
    print(f"pp{s.n_prompt} / tg{s.n_gen}, {s.repetitions} repetitions, {s.threads} threads; t/s mean ± std")
    print(f"llama-bench: {args.llama_bench} on {libs}")
    print(f"{'round':>5} {'model':<28} {'tool':<11} {'load1':>5} {'pp t/s':>19} {'tg t/s':>19}")
    runs = []
    for rnd in range(1, args.rounds + 1):
        for model in args.models:
            for tool in ("ours", "llama-bench"):
                load = os.getloadavg()[0]
                res = ours(model, s) if tool == "ours" else bench(model, s, args.llama_bench, args.same_libs)
                runs.append({"round": rnd, "model": model.name, "tool": tool, "load1": load, **res})
                print(
                    f"{rnd:>5} {model.name:<28} {tool:<11} {load:5.2f} {_mean_std(res['pp']):>19} "
                    f"{_mean_std(res['tg']):>19}",
                    flush=True,
                )
    print("\nsummary: median over rounds of the runs' mean t/s [lowest .. highest run mean]")
    for model in args.models:
        for test in ("pp", "tg"):
            line = f"  {model.name:<28} {test}"
            for tool in ("ours", "llama-bench"):
                means = [statistics.fmean(r[test]) for r in runs if r["model"] == model.name and r["tool"] == tool]
                if means:
                    line += f"  {tool} {statistics.median(means):9.2f} [{min(means):.2f} .. {max(means):.2f}]"
            print(line)
    if args.json:
        args.json.write_text(json.dumps({"settings": s.__dict__, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
