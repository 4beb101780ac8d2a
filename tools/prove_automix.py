"""Auto-mix against llama.cpp's presets, measured by llama-perplexity (the README's table).

    .venv/bin/python tools/prove_automix.py MODEL.gguf [MODEL.gguf ...] \
        --canterbury /tmp/brotli/brotli-1.2.1/tests/testdata --work /work/proof/run

For every model, without and with an importance matrix, and for every preset (Q3_K_M, Q4_K_M,
Q5_K_M):

1. ``llama-quantize [--imatrix I] MODEL preset.gguf PRESET`` gives the preset file and its size N.
2. ``quant-explorer sensitivity MODEL --text CALIB [--imatrix I] --json`` gives the cost table
   (once per model and imatrix), ``quant-explorer quantize --costs T --target-size Nb [--imatrix I]
   MODEL auto.gguf PRESET`` the auto-mix file, which must not be larger than N.
3. ``llama-perplexity -m MODEL -f EVAL --kl-divergence-base base.kld`` once per model, then
   ``llama-perplexity -m CAND -f EVAL --kl-divergence-base base.kld --kl-divergence`` for both.

Calibration and evaluation are disjoint: the importance matrix (``llama-imatrix``) and the
sensitivity runs read CALIB, a slice of the *training* part of the Canterbury texts (40-52 % of
each, cut at line starts; ``--calib-text`` to give another), while KLD, PPL and same-top-p are
measured on EVAL, the held-out text (``assets/demo-eval.txt``: the last 12 % of each text), which
neither the model, nor the tokenizer, nor the calibration has seen. Every step's output is kept in
``--work`` and reused when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_llama_perplexity import parse_kld, run  # noqa: E402

PRESETS = ("Q3_K_M", "Q4_K_M", "Q5_K_M")
CANTERBURY = ("alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt")
CLI = [str(REPO / ".venv" / "bin" / "quant-explorer")]


def calibration_slice(folder: Path, start: float = 0.40, end: float = 0.52) -> str:
    """From each Canterbury text the part between ``start`` and ``end`` of its length (line starts)."""
    parts = []
    for name in CANTERBURY:
        text = (folder / name).read_bytes().decode("utf-8").replace("\r\n", "\n")
        a = text.index("\n", int(len(text) * start)) + 1
        b = text.index("\n", int(len(text) * end)) + 1
        parts.append(text[a:b].strip("\n"))
    return "\n\n".join(parts) + "\n"


class Prover:
    """The measurements of one model, kept as files in its own work folder."""

    def __init__(self, model: Path, work: Path, args: argparse.Namespace) -> None:
        self.model, self.work, self.args = model, work, args
        self.bin = args.build_dir / "bin"
        work.mkdir(parents=True, exist_ok=True)
        self.base = work / "base.kld"

    def _common(self) -> list[str]:
        return ["-f", str(self.args.eval_text), "-c", str(self.args.ctx), "-t", str(self.args.threads)]

    def base_pass(self) -> None:
        if not self.base.exists():
            cmd = [str(self.bin / "llama-perplexity"), "-m", str(self.model), *self._common()]
            run(cmd + ["--kl-divergence-base", str(self.base)], "Final estimate")

    def imatrix(self) -> Path:
        out = self.work / "imatrix.gguf"
        if not out.exists():
            cmd = [str(self.bin / "llama-imatrix"), "-m", str(self.model), "-f", str(self.args.calib_text)]
            run(cmd + ["-c", str(self.args.ctx), "-t", str(self.args.threads), "-o", str(out)])
        return out

    def costs(self, imatrix: Path | None) -> Path:
        out = self.work / f"costs-{'imatrix' if imatrix else 'none'}.json"
        if not out.exists():
            cmd = [*CLI, "sensitivity", str(self.model), "--text", str(self.args.calib_text), "--json"]
            cmd += ["--threads", str(self.args.threads)] + (["--imatrix", str(imatrix)] if imatrix else [])
            print("$", " ".join(cmd), file=sys.stderr, flush=True)
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"sensitivity failed:\n{done.stderr[-3000:]}")
            out.write_text(done.stdout)
        return out

    def preset_file(self, preset: str, imatrix: Path | None) -> Path:
        out = self.work / f"{preset}-{'imatrix' if imatrix else 'none'}-preset.gguf"
        if not out.exists():
            cmd = [str(self.bin / "llama-quantize")] + (["--imatrix", str(imatrix)] if imatrix else [])
            run(cmd + [str(self.model), str(out), preset, str(self.args.threads)])
        return out

    def automix_file(self, preset: str, imatrix: Path | None, size: int) -> Path:
        out = self.work / f"{preset}-{'imatrix' if imatrix else 'none'}-automix.gguf"
        if not out.exists():
            cmd = [*CLI, "quantize", "--costs", str(self.costs(imatrix)), "--target-size", f"{size}b"]
            cmd += ["--threads", str(self.args.threads)] + (["--imatrix", str(imatrix)] if imatrix else [])
            run(cmd + [str(self.model), str(out), preset])
        return out

    def measure(self, candidate: Path) -> dict:
        out = candidate.with_suffix(".kld.json")
        if not out.exists():
            cmd = [str(self.bin / "llama-perplexity"), "-m", str(candidate), *self._common()]
            text = run(cmd + ["--kl-divergence-base", str(self.base), "--kl-divergence"], "Same top p:")
            out.write_text(json.dumps(parse_kld(text)))
        return {"bytes": candidate.stat().st_size, **json.loads(out.read_text())}

    def rows(self) -> list[dict]:
        self.base_pass()
        rows = []
        for imatrix in (None, self.imatrix()):
            for preset in self.args.presets:
                pf = self.preset_file(preset, imatrix)
                size = pf.stat().st_size
                af = self.automix_file(preset, imatrix, size)
                if af.stat().st_size > size:
                    sys.exit(f"{af} has {af.stat().st_size} bytes, more than the preset's {size}")
                p, a = self.measure(pf), self.measure(af)
                rows.append({"model": self.model.name, "imatrix": imatrix is not None, "preset": preset,
                             "preset_file": p, "automix": a,
                             "kld_change_pct": 100.0 * (a["kld_mean"] / p["kld_mean"] - 1.0)})  # fmt: skip
                print(markdown_row(rows[-1]), flush=True)
        return rows


def markdown_row(r: dict) -> str:
    p, a = r["preset_file"], r["automix"]
    return (
        f"| {r['model']} | {'yes' if r['imatrix'] else 'no'} | {r['preset']} | {p['bytes']:,} | {a['bytes']:,} "
        f"| {p['kld_mean']:.6f} | {a['kld_mean']:.6f} | {r['kld_change_pct']:+.1f} % "
        f"| {p['same_top_p_pct']:.2f} % | {a['same_top_p_pct']:.2f} % | {p['ppl']:.3f} | {a['ppl']:.3f} |"
    )


HEADER = (
    "| model | imatrix | size of | preset bytes | auto-mix bytes | preset KLD | auto-mix KLD | ΔKLD "
    "| preset same top p | auto-mix same top p | preset PPL | auto-mix PPL |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="F16 GGUF models")
    ap.add_argument("--work", type=Path, required=True, help="folder for every intermediate file")
    ap.add_argument("--eval-text", type=Path, default=REPO / "assets" / "demo-eval.txt")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--calib-text", type=Path, help="calibration text (imatrix and sensitivity)")
    g.add_argument("--canterbury", type=Path, help="folder of the Canterbury texts: calibrate on a training slice")
    ap.add_argument("--build-dir", type=Path, default=REPO.parent / "llama-build")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write every measurement here")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.canterbury:
        args.calib_text = args.work / "calibration.txt"
        args.calib_text.write_text(calibration_slice(args.canterbury), encoding="utf-8")
    print(HEADER, flush=True)
    rows = []
    for model in args.models:
        rows += Prover(model.resolve(), args.work / model.stem, args).rows()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
