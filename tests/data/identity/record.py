"""Record llama-quantize's output hashes for tiny-llama.gguf (run by hand; results in expected.json).

    python tests/data/identity/record.py /path/to/llama-quantize

llama-quantize was built from the llama.cpp sources vendored in llama-cpp-python 0.3.36
(release b11312), CPU only, without -march=native.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = HERE / "tiny-llama.gguf"
IMATRIX = HERE / "tiny-llama.imatrix.gguf"

# the last five need an importance matrix: llama-quantize refuses them (recorded as failures)
PLAIN = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
         "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "IQ3_S", "IQ3_M", "TQ1_0", "TQ2_0",
         "MXFP4_MOE", "F16", "BF16", "F32", "IQ3_XS", "IQ3_XXS", "IQ2_XXS", "Q2_K_S", "IQ1_M"]
WITH_IMATRIX = ["Q4_0", "Q5_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "Q2_K_S", "IQ4_NL",
                "IQ4_XS", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M",
                "IQ1_S", "IQ1_M"]
EXTRA = [
    (["--tensor-type", r"blk\.0\.attn_v=q8_0", "--tensor-type", "ffn_down=q5_k", "--output-tensor-type", "q4_k"], "Q4_K_M"),
    (["--pure"], "Q3_K_M"),
    (["--leave-output-tensor", "--token-embedding-type", "q8_0"], "Q5_K_M"),
    (["--override-kv", "general.name=str:renamed", "--override-kv", "llama.context_length=int:4096"], "Q6_K"),
    (["--prune-layers", "0"], "Q4_K_M"),
]


def run(binary: str, args: list[str], preset: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.gguf"
        cmd = [binary, *args, str(MODEL), str(out), preset, "2"]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return {"args": args, "preset": preset, "fails": True}
        data = out.read_bytes()
    return {"args": args, "preset": preset, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def main(binary: str) -> None:
    runs = [run(binary, [], p) for p in PLAIN]
    runs += [run(binary, ["--imatrix", str(IMATRIX.name)], p) for p in WITH_IMATRIX]
    runs += [run(binary, args, p) for args, p in EXTRA]
    doc = {"model_sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(), "runs": runs}
    (HERE / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    import os

    os.chdir(HERE)  # the imatrix path is recorded in the output as given: keep it relative
    main(sys.argv[1])
