"""Per-tensor statistics of an importance matrix, as ``llama-imatrix --show-statistics`` prints them.

Per weight, over its mean squared activations (``sum / count`` per column, experts without a
count left out): their sum Σ(Act²), min, max, mean μ, standard deviation σ, the share of values
above 1e-5 ("% Active"), their number N, the entropy of their distribution (bits, and as a
percentage of log2 N), the share of values more than one σ above the mean (ZD) and the cosine
similarity of the raw sums with the same weight one block earlier. Then per block the averages
of Σ(Act²), ZD and cosine weighted by N. All in float32 and in llama-imatrix's order; we add the
share of each tensor's Σ(Act²) in the total over all tensors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ImatrixError
from ..imatrix import COUNTS_SUFFIX, SUMS_SUFFIX, load_imatrix

_BLOCK = re.compile(r"blk\.(\d+)\.")
_INACTIVE = np.float32(1e-5)
_LEGACY_CHUNK = 512  # llama-imatrix's default -c, by which it scales legacy entries when reading


@dataclass(frozen=True)
class TensorStats:
    """One row of the statistics table (fractions, not percentages, except ``entropy_norm``)."""

    name: str
    layer: str  # the block number as text, or "-"
    kind: str  # the part before ".weight" ("attn_q"), or the whole name
    total: float
    min: float
    max: float
    mean: float
    std: float
    active: float
    elements: int
    entropy: float
    entropy_norm: float
    zd: float
    cossim: float
    share: float

    @property
    def block(self) -> int | None:
        return int(self.layer) if self.layer.isdigit() else None


@dataclass(frozen=True)
class LayerStats:
    """Per block: Σ(Act²), ZD and cosine similarity averaged over its tensors, weighted by N."""

    block: int
    total: float
    zd: float
    cossim: float


def raw_entries(path: str | os.PathLike[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sums (float32) and counts (int64) per weight, as llama-imatrix reads them for statistics.

    A legacy ``.dat`` file stores means: each becomes sums ``mean * ncall * 512`` over one count
    ``ncall * 512``, as llama-imatrix rebuilds them. Raises ImatrixError for a bad file.
    """
    imatrix = load_imatrix(path)  # validates and gives one-line errors
    if imatrix.format == "dat":
        return {
            name: (values * np.float32(_LEGACY_CHUNK), np.array([_LEGACY_CHUNK], np.int64))
            for name, values in imatrix.entries.items()
        }
    from ..reader import HeaderReader

    reader = HeaderReader(os.fspath(path), "r")
    parts: dict[str, dict[str, np.ndarray]] = {}
    for t in reader.tensors:
        for suffix in (SUMS_SUFFIX, COUNTS_SUFFIX):
            if t.name.endswith(suffix):
                parts.setdefault(t.name[: -len(suffix)], {})[suffix] = np.array(t.data, np.float32).reshape(-1)
    out = {}
    for name, p in sorted(parts.items()):
        if SUMS_SUFFIX in p and COUNTS_SUFFIX in p:
            counts = np.copysign(np.floor(np.abs(p[COUNTS_SUFFIX].astype(np.float64)) + 0.5), p[COUNTS_SUFFIX])
            out[name] = (p[SUMS_SUFFIX], counts.astype(np.int64))
    return out


def split_name(name: str) -> tuple[str, str]:
    """(layer, kind) as llama-imatrix names them: the part after "blk" and the part before "weight"."""
    parts = name.split(".")
    layer = next((parts[i + 1] for i in range(len(parts) - 1) if parts[i] == "blk"), "-")
    kind = next((parts[i - 1] for i in range(1, len(parts)) if parts[i] == "weight"), name)
    return layer, kind


def _seq_sum(a: np.ndarray) -> np.float32:
    """Left-to-right float32 sum (std::accumulate), not numpy's pairwise one."""
    return np.float32(np.add.accumulate(a, dtype=np.float32)[-1])


def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if counts.size == 0 or sums.size % counts.size:
        return np.empty(0, np.float32)
    rows = sums.reshape(counts.size, -1)
    keep = counts != 0
    return (rows[keep] / counts[keep].astype(np.float32)[:, None]).astype(np.float32).reshape(-1)


def _row(name: str, sums: np.ndarray, counts: np.ndarray) -> dict | None:
    act = _means(sums, counts)
    if act.size == 0:
        return None
    n = act.size
    total = _seq_sum(act)
    mean = np.float32(total / np.float32(n))
    var = np.float32(_seq_sum(act * act) / np.float32(n)) - mean * mean
    std = np.float32(np.sqrt(max(np.float32(0), var)))
    active = np.float32(1) - np.float32(np.count_nonzero(np.abs(act) <= _INACTIVE)) / np.float32(n)
    entropy = np.float32(0)
    if total > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = act / total
            p = p[p > 0]
            entropy = -_seq_sum(p * np.log2(p)) if p.size else np.float32(0)
    z = int(np.count_nonzero((act - mean) / std > 1)) if std > 0 else 0
    layer, kind = split_name(name)
    norm = float(np.float32(100.0 * (float(entropy) / np.log2(n)))) if n > 1 else 0.0  # log2 of an int: double
    return {
        "name": name, "layer": layer, "kind": kind, "total": float(total), "min": float(act.min()),
        "max": float(act.max()), "mean": float(mean), "std": float(std), "active": float(active),
        "elements": n, "entropy": float(entropy), "entropy_norm": norm, "zd": z / n, "sums": sums,
    }  # fmt: skip


def _cosine(rows: dict[str, dict]) -> None:
    for name, row in rows.items():
        row["cossim"] = 0.0
        m = _BLOCK.search(name)
        if m is None:
            continue
        prev = rows.get(name[: m.start(1)] + str(int(m[1]) - 1) + name[m.end(1) :])
        if prev is None:
            continue
        a, b = row["sums"], prev["sums"]
        if a.size != b.size:
            continue
        dp = _seq_sum(a * b)
        mags = np.float32(np.sqrt(_seq_sum(a * a))) * np.float32(np.sqrt(_seq_sum(b * b)))
        with np.errstate(divide="ignore", invalid="ignore"):
            row["cossim"] = float(np.float32(dp / mags))


def tensor_statistics(entries: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[TensorStats]:
    """One row per weight with data, in llama-imatrix's order (kind, then Σ(Act²) descending)."""
    rows = {name: r for name, (s, c) in entries.items() if (r := _row(name, s, c)) is not None}
    _cosine(rows)
    grand = sum(r["total"] for r in rows.values())
    ordered = sorted(rows.values(), key=lambda r: (r["kind"], -r["total"]))
    return [
        TensorStats(**{k: v for k, v in r.items() if k != "sums"}, share=r["total"] / grand if grand else 0.0)
        for r in ordered
    ]


def layer_statistics(stats: Sequence[TensorStats]) -> list[LayerStats]:
    """Per block (ascending): N-weighted means of Σ(Act²), ZD and cosine, in float32 as llama-imatrix."""
    acc: dict[int, list] = {}
    for s in stats:
        if s.block is None:
            continue
        a = acc.setdefault(s.block, [np.float32(0), np.float32(0), np.float32(0), 0])
        n = np.float32(s.elements)
        a[0] += n * np.float32(s.total)
        a[1] += n * np.float32(s.zd)
        a[2] += n * np.float32(s.cossim)
        a[3] += s.elements
    return [
        LayerStats(b, float(a[0] / np.float32(a[3])), float(a[1] / np.float32(a[3])), float(a[2] / np.float32(a[3])))
        for b, a in sorted(acc.items())
        if a[3]
    ]


def statistics_for_file(path: str | os.PathLike[str]) -> tuple[list[TensorStats], list[LayerStats]]:
    """Tensor and layer statistics of an importance matrix file (ImatrixError for a bad one)."""
    stats = tensor_statistics(raw_entries(path))
    if not stats:
        raise ImatrixError(f"{os.fspath(path)}: no tensor has activation data")
    return stats, layer_statistics(stats)


def format_statistics(stats: Sequence[TensorStats], layers: Sequence[LayerStats]) -> str:
    """The two tables as text, llama-imatrix's columns and number formats, plus the share column."""
    head = ("Layer", "Tensor", "Σ(Act²)", "Min", "Max", "μ", "σ", "% Active", "N", "Entropy", "E (norm)", "ZD",
            "CosSim", "Share")  # fmt: skip
    lines = [
        f"{head[0]:>5} {head[1]:<20} {head[2]:>12} {head[3]:>10} {head[4]:>12} {head[5]:>9} {head[6]:>9} "
        f"{head[7]:>9} {head[8]:>7} {head[9]:>10} {head[10]:>8} {head[11]:>9} {head[12]:>8} {head[13]:>7}"
    ]
    lines.append("=" * len(lines[0]))
    for s in stats:
        lines.append(
            f"{s.layer:>5} {s.kind:<20} {s.total:12.2f} {s.min:10.4f} {s.max:12.4f} {s.mean:9.2f} {s.std:9.2f} "
            f"{100 * s.active:8.2f}% {s.elements:7d} {s.entropy:10.4f} {s.entropy_norm:7.2f}% {100 * s.zd:8.2f}% "
            f"{s.cossim:8.4f} {100 * s.share:6.2f}%"
        )
    lines += ["", f"{'Layer':>5} {'μΣ(Act²)':>14} {'μZD':>10} {'μCosSim':>8}", "=" * 40]
    lines += [f"{x.block:5d} {x.total:14.2f} {100 * x.zd:9.4f}% {x.cossim:8.4f}" for x in layers]
    return "\n".join(lines)
