"""Record llama-perplexity's KL-divergence statistics for mixes of the demo model (test data).

    .venv/bin/python tools/record_llama_perplexity.py [--build-dir ../llama-build] [--chunks N] ...

Every candidate is exported with quant_core (byte-identical to llama-quantize's file for the
same preset and options); llama-perplexity, built by tools/build_llama_tools.sh from the same
llama.cpp as the quality runtime, then measures it:

    llama-perplexity -m BASE -f TEXT -c 512 -t T --kl-divergence-base base.kld
    llama-perplexity -m CAND -f TEXT -c 512 -t T --kl-divergence-base base.kld --kl-divergence

The test data is recorded with ``--chunks 12`` (tests/data/quality/llama_perplexity.json); the
whole text, for the preset table, with ``--out tests/data/quality/llama_perplexity_full.json``.
The printed statistics go to the JSON file with the exact commands,
the sha256 of model, text and candidates, and two interoperability checks: whether our base pass
writes the same bytes as llama-perplexity's, and what llama-perplexity reports when it reads
ours.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quant_core.assets import DEMO_EVAL_TEXT, DEMO_MODEL  # noqa: E402
from quant_core.export import iter_export  # noqa: E402
from quant_core.model import open_model  # noqa: E402
from quant_core.plan import QuantOptions, build_plan  # noqa: E402
from quant_core.quality.measure import iter_base_pass, read_text_file  # noqa: E402
from quant_core.size import project_size  # noqa: E402

MIXES: dict[str, dict] = {
    "Q2_K": {"preset": "Q2_K"},
    "Q3_K_M": {"preset": "Q3_K_M"},
    "Q4_K_M": {"preset": "Q4_K_M"},
    "Q5_K_M": {"preset": "Q5_K_M"},
    "Q6_K": {"preset": "Q6_K"},
    "Q8_0": {"preset": "Q8_0"},
    "hand": {"preset": "Q4_K_M", "tensor_types": [["ffn_down", "Q2_K"], ["attn_v", "Q8_0"]]},
}
_LINE = re.compile(r"^(?P<label>[^:±]+?)\s*:\s*(?P<v>-?\d+\.\d+)\s*(?:±\s*(?P<u>\d+\.\d+))?\s*%?\s*$")
_DONE = "Same top p:"  # the last line llama-perplexity --kl-divergence prints
_KEYS = {
    "Mean PPL(Q)": "ppl",
    "Mean PPL(base)": "ppl_base",
    "Cor(ln(PPL(Q)), ln(PPL(base)))": "ppl_cor_pct",
    "Mean ln(PPL(Q)/PPL(base))": "ln_ppl_ratio",
    "Mean    KLD": "kld_mean",
    "Maximum KLD": "kld_max",
    "99.9%   KLD": "kld_p999",
    "99.0%   KLD": "kld_p99",
    "95.0%   KLD": "kld_p95",
    "90.0%   KLD": "kld_p90",
    "Median  KLD": "kld_median",
    "Minimum KLD": "kld_min",
    "Mean    Δp": "dp_mean_pct",
    "RMS Δp": "rms_dp_pct",
    "Same top p": "same_top_p_pct",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd: list[str], expect: str = "") -> str:
    """Output (stdout + stderr) of a tool run that must contain ``expect``.

    llama.cpp logs through a background thread; now and then the last lines are lost when the
    process exits, so a run whose output lacks ``expect`` is repeated (the result is the same).
    """
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    for _ in range(5):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{cmd[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        if expect in done.stdout + done.stderr:
            return done.stdout + done.stderr
    sys.exit(f"{cmd[0]} printed no {expect!r} in 5 runs")


def parse_kld(output: str) -> dict[str, float | int]:
    """The final statistics block of ``llama-perplexity --kl-divergence``."""
    stats: dict[str, float | int] = {}
    text = output[output.index("====== Perplexity statistics ======") :]
    for line in text.splitlines():
        m = _LINE.match(line.strip("\n"))
        if m and m["label"].strip() in _KEYS:
            key = _KEYS[m["label"].strip()]
            stats[key] = float(m["v"])
            if m["u"] is not None:
                stats[key.replace("_pct", "") + "_unc" + ("_pct" if key.endswith("_pct") else "")] = float(m["u"])
    m = re.search(r"computing over (\d+) chunks, n_ctx=(\d+)", output)
    if not m:
        sys.exit("no chunk count in llama-perplexity's output")
    n_chunk, n_ctx = int(m[1]), int(m[2])
    stats["tokens"] = n_chunk * (n_ctx - 1 - n_ctx // 2)
    stats["n_same_top"] = round(stats["same_top_p_pct"] / 100 * stats["tokens"])
    return stats


def export(model_path: Path, mix: dict, out: Path, threads: int) -> dict:
    model = open_model(model_path)
    options = QuantOptions(preset=mix["preset"], tensor_types=tuple(tuple(t) for t in mix.get("tensor_types", ())))
    plan = build_plan(model, options)
    with closing(iter_export(model, plan, out, threads=threads)) as progress:
        for _ in progress:
            pass
    size = project_size(model, plan)
    return {"bytes": out.stat().st_size, "bpw": size.bpw, "sha256": sha256(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=REPO.parent / "llama-build")
    ap.add_argument("--model", type=Path, default=DEMO_MODEL)
    ap.add_argument("--text", type=Path, default=DEMO_EVAL_TEXT)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=None, help="limit the chunks (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mixes", nargs="*", default=list(MIXES))
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "quality" / "llama_perplexity.json")
    args = ap.parse_args()
    tool = str(args.build_dir / "bin" / "llama-perplexity")
    work = args.build_dir / "parity"
    work.mkdir(parents=True, exist_ok=True)
    common = ["-f", str(args.text), "-c", str(args.ctx), "-t", str(args.threads)]
    common += ["--chunks", str(args.chunks)] if args.chunks else []

    base_llama = work / "base-llama.kld"
    base_cmd = [tool, "-m", str(args.model), *common, "--kl-divergence-base", str(base_llama)]
    base_out = run(base_cmd, "Final estimate")
    final = re.search(r"Final estimate: PPL = (\d+\.\d+) \+/- (\d+\.\d+)", base_out)

    base_ours = work / "base-ours.kld"
    for _ in iter_base_pass(args.model, read_text_file(args.text), base_ours, args.ctx, args.chunks, args.threads):
        pass

    mixes = []
    for name in args.mixes:
        cand = work / f"{name}.gguf"
        info = export(args.model, MIXES[name], cand, args.threads)
        cmd = [tool, "-m", str(cand), *common, "--kl-divergence-base", str(base_llama), "--kl-divergence"]
        mixes.append({"name": name, **MIXES[name], **info, "command": _rel(cmd), "stats": parse_kld(run(cmd, _DONE))})

    probe = work / f"{mixes[0]['name']}.gguf"
    ours_cmd = [tool, "-m", str(probe), *common, "--kl-divergence-base", str(base_ours), "--kl-divergence"]
    doc = {
        "llama_cpp": "b11312 (vendored in the llama-cpp-python 0.3.36 sdist), tools/build_llama_tools.sh",
        "model": {"path": _rel([str(args.model)])[0], "sha256": sha256(args.model)},
        "text": {"path": _rel([str(args.text)])[0], "sha256": sha256(args.text)},
        "n_ctx": args.ctx,
        "chunks": args.chunks,
        "threads": args.threads,
        "base": {
            "command": _rel(base_cmd),
            "sha256": sha256(base_llama),
            "bytes": base_llama.stat().st_size,
            "ppl": float(final[1]) if final else None,
            "ppl_unc": float(final[2]) if final else None,
        },
        "our_base_sha256": sha256(base_ours),
        "llama_reads_our_base": {
            "mix": mixes[0]["name"],
            "command": _rel(ours_cmd),
            "stats": parse_kld(run(ours_cmd, _DONE)),
        },
        "mixes": mixes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


def _rel(cmd: list[str]) -> list[str]:
    """Paths inside the repository or the build folder written relative, so the record is portable."""
    out = []
    for part in cmd:
        p = Path(part)
        if p.is_absolute() and p.is_relative_to(REPO):
            part = str(p.relative_to(REPO))
        elif p.is_absolute() and p.is_relative_to(REPO.parent):
            part = "../" + str(p.relative_to(REPO.parent))
        out.append(part)
    return out


if __name__ == "__main__":
    main()
