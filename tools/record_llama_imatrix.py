"""Record llama-imatrix's output on the demo model (test data for the imatrix parity tests).

    .venv/bin/python tools/record_llama_imatrix.py [--build-dir ../llama-build]

Runs llama-imatrix, built by tools/build_llama_tools.sh from the same llama.cpp as the quality
runtime, on assets/demo-calibration.txt twice:

    llama-imatrix -m MODEL -f TEXT -c 512 --chunks 6 -t 2 --no-ppl -o llama_imatrix.gguf
    llama-imatrix -m MODEL -f TEXT -c 128 --chunks 20 -t 2 --no-ppl --process-output \
                  --output-format dat -o llama_imatrix.dat

then ``--show-statistics`` on the GGUF one. The two files go to tests/data/imatrix/ with
record.json: the commands, the sha256 of model, text and outputs, and the statistics table as
numbers (the tests compare ours with them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "imatrix"
MODEL = Path("assets/demo-llama.gguf")
TEXT = Path("assets/demo-calibration.txt")
RUNS = {
    "gguf": {"file": "llama_imatrix.gguf", "ctx": 512, "chunks": 6, "extra": []},
    "dat": {
        "file": "llama_imatrix.dat",
        "ctx": 128,
        "chunks": 20,
        "extra": ["--process-output", "--output-format", "dat"],
    },
}
_ROW = re.compile(r"^\s*(\S+)\t(\S+)\s*\t" + r"\s*([-\d.naif]+)%?\t" * 10 + r"\s*([-\d.naif]+)\s*$")
_LAYER = re.compile(r"^\s*(\d+)\t\s*([-\d.]+)\t\s*([-\d.]+)%\t([-\d.]+)\s*$")
_COLUMNS = ("total", "min", "max", "mean", "std", "active_pct", "elements", "entropy", "entropy_norm_pct", "zd_pct",
            "cossim")  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(cmd: list[str], build: Path) -> str:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    env = {**os.environ, "LD_LIBRARY_PATH": str(build / "bin")}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO, env=env)
    if done.returncode:
        sys.exit(f"{cmd[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def statistics(cmd: list[str], build: Path) -> dict:
    """Run ``--show-statistics`` until its tables arrive: llama.cpp logs from a background
    thread, and a process that ends this fast often loses its output."""
    for _ in range(20):
        if parsed := parse_statistics(run(cmd, build)):
            return parsed
    sys.exit("no statistics table in llama-imatrix's output after 20 runs")


def parse_statistics(output: str) -> dict | None:
    """The two tables of ``--show-statistics`` (log prefixes stripped), as numbers; None if absent."""
    tensors, layers = [], []
    for line in output.splitlines():
        line = re.sub(r"^\d+\.\d+\.\d+\.\d+ [IWE] ", "", line)
        if m := _ROW.match(line):
            values = [float(v) for v in m.groups()[2:]]
            row = dict(zip(_COLUMNS, values, strict=True))
            row["elements"] = int(row["elements"])
            tensors.append({"layer": m[1], "kind": m[2], **row})
        elif m := _LAYER.match(line):
            layers.append({"block": int(m[1]), "total": float(m[2]), "zd_pct": float(m[3]), "cossim": float(m[4])})
    if not tensors or not layers:
        return None
    return {"tensors": tensors, "layers": layers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=REPO.parent / "llama-build")
    args = ap.parse_args()
    tool = str(args.build_dir / "bin" / "llama-imatrix")
    OUT.mkdir(parents=True, exist_ok=True)
    runs = {}
    for fmt, spec in RUNS.items():
        out = OUT / spec["file"]
        cmd = [tool, "-m", str(MODEL), "-f", str(TEXT), "-c", str(spec["ctx"]), "--chunks", str(spec["chunks"])]
        cmd += ["-t", "2", "--no-ppl", *spec["extra"], "-o", str(out.relative_to(REPO))]
        run(cmd, args.build_dir)
        runs[fmt] = {**spec, "command": ["../llama-build/bin/llama-imatrix", *cmd[1:]], "sha256": sha256(out)}
    gguf_file = str((OUT / RUNS["gguf"]["file"]).relative_to(REPO))
    stats_cmd = [tool, "-m", str(MODEL), "--in-file", gguf_file, "--show-statistics", "-lv", "4", "--log-colors",
                 "off"]  # fmt: skip
    doc = {
        "llama_cpp": "b11312 (vendored in the llama-cpp-python 0.3.36 sdist), tools/build_llama_tools.sh",
        "model": {"path": str(MODEL), "sha256": sha256(REPO / MODEL)},
        "text": {"path": str(TEXT), "sha256": sha256(REPO / TEXT)},
        "runs": runs,
        "statistics": {
            "command": ["../llama-build/bin/llama-imatrix", *stats_cmd[1:]],
            **statistics(stats_cmd, args.build_dir),
        },
    }
    (OUT / "record.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT / 'record.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
