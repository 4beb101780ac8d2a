"""Access to ggml's golden vectors (tests/data/golden, copied from ggml's own output)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "data" / "golden"
SETS = ("set-a", "set-b")


@cache
def manifest(set_name: str) -> dict:
    return json.loads((GOLDEN_DIR / set_name / "manifest.json").read_text())


@cache
def golden_input(set_name: str) -> np.ndarray:
    x = np.load(GOLDEN_DIR / set_name / "input.npy")
    x.setflags(write=False)
    return x


@cache
def golden_imatrix(set_name: str) -> np.ndarray:
    return np.load(GOLDEN_DIR / set_name / "imatrix.npy")


def golden_bytes(set_name: str, type_key: str, with_imatrix: bool) -> np.ndarray | None:
    """ggml's bytes for this type (rows, row_bytes), or None when ggml produced none."""
    entry = manifest(set_name)["outputs"][type_key]
    variant = entry.get("imatrix" if with_imatrix else "plain")
    if variant is None:
        return None
    raw = np.fromfile(GOLDEN_DIR / set_name / variant["file"], dtype=np.uint8)
    return raw.reshape(golden_input(set_name).shape[0], -1)


def describe_mismatch(got: np.ndarray, want: np.ndarray, block_bytes: int) -> str:
    """One paragraph saying where two quantized arrays differ, block by block."""
    if got.shape != want.shape:
        return f"shape {got.shape} != expected {want.shape}"
    blocks_got = got.reshape(-1, block_bytes)
    blocks_want = want.reshape(-1, block_bytes)
    bad = np.flatnonzero((blocks_got != blocks_want).any(axis=1))
    if bad.size == 0:
        return "identical"
    per_row = want.shape[1] // block_bytes
    first = bad[0]
    rows = sorted({int(b) // per_row for b in bad})
    return (
        f"{bad.size} of {blocks_want.shape[0]} blocks differ (rows {rows}); first: row "
        f"{first // per_row} block {first % per_row}\n got  {blocks_got[first].tolist()}\n"
        f" want {blocks_want[first].tolist()}"
    )
