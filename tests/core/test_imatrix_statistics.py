"""``--show-statistics``: our table equals llama-imatrix's (recorded in tests/data/imatrix/record.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quant_core.errors import ImatrixError
from quant_core.imatrix import write_imatrix_dat, write_imatrix_gguf
from quant_core.imatrix_calc.statistics import (
    format_statistics,
    raw_entries,
    split_name,
    statistics_for_file,
    tensor_statistics,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "imatrix"
RECORD = json.loads((DATA / "record.json").read_text())
# column -> (our attribute, factor to llama's printed unit, printed decimals)
COLUMNS = {
    "total": ("total", 1, 2),
    "min": ("min", 1, 4),
    "max": ("max", 1, 4),
    "mean": ("mean", 1, 2),
    "std": ("std", 1, 2),
    "active_pct": ("active", 100, 2),
    "entropy": ("entropy", 1, 4),
    "entropy_norm_pct": ("entropy_norm", 1, 2),
    "zd_pct": ("zd", 100, 2),
    "cossim": ("cossim", 1, 4),
}


def _printed_equal(ours: float, theirs: float, decimals: int) -> bool:
    # printed with %.Nf: equal within half a unit of the last digit (plus float32 noise)
    return abs(ours - theirs) <= 0.5 * 10.0**-decimals * 1.001 + 1e-6 * abs(theirs)


def test_tensor_table_equals_llama_imatrix() -> None:
    stats, _ = statistics_for_file(DATA / RECORD["runs"]["gguf"]["file"])
    want = RECORD["statistics"]["tensors"]
    assert [(s.layer, s.kind) for s in stats] == [(w["layer"], w["kind"]) for w in want]
    for s, w in zip(stats, want, strict=True):
        assert s.elements == w["elements"]
        for column, (attr, factor, decimals) in COLUMNS.items():
            assert _printed_equal(factor * getattr(s, attr), w[column], decimals), (s.name, column)


def test_layer_table_equals_llama_imatrix() -> None:
    _, layers = statistics_for_file(DATA / RECORD["runs"]["gguf"]["file"])
    want = RECORD["statistics"]["layers"]
    assert [x.block for x in layers] == [w["block"] for w in want]
    for x, w in zip(layers, want, strict=True):
        assert _printed_equal(x.total, w["total"], 2)
        assert _printed_equal(100 * x.zd, w["zd_pct"], 4)
        assert _printed_equal(x.cossim, w["cossim"], 4)


def test_shares_sum_to_one_and_follow_the_totals() -> None:
    stats, _ = statistics_for_file(DATA / RECORD["runs"]["gguf"]["file"])
    assert sum(s.share for s in stats) == pytest.approx(1.0)
    top = max(stats, key=lambda s: s.total)
    assert top.share == max(s.share for s in stats)


def test_experts_without_data_are_left_out(tmp_path: Path) -> None:
    sums = {"blk.0.ffn_up_exps.weight": np.array([[1.0, 3.0], [5.0, 7.0], [9.0, 9.0]], np.float32)}
    counts = {"blk.0.ffn_up_exps.weight": np.array([2, 0, 1])}
    write_imatrix_gguf(tmp_path / "m.gguf", sums, counts, chunk_size=1, datasets=["t"])
    (s,) = tensor_statistics(raw_entries(tmp_path / "m.gguf"))
    assert s.elements == 4  # expert 1 has no count
    assert (s.min, s.max, s.total) == (0.5, 9.0, pytest.approx(0.5 + 1.5 + 9 + 9))
    assert s.layer == "0" and s.kind == "ffn_up_exps"


def test_legacy_dat_gives_the_same_means(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    sums = {f"blk.{i}.attn_q.weight": rng.gamma(2.0, 1.0, (1, 64)).astype(np.float32) * 50 for i in range(2)}
    counts = {name: np.array([100]) for name in sums}
    write_imatrix_gguf(tmp_path / "m.gguf", sums, counts, chunk_size=50, datasets=["t"])
    write_imatrix_dat(tmp_path / "m.dat", sums, counts, chunk_size=50)
    a, b = tensor_statistics(raw_entries(tmp_path / "m.gguf")), tensor_statistics(raw_entries(tmp_path / "m.dat"))
    for x, y in zip(a, b, strict=True):
        assert x.name == y.name
        assert x.mean == pytest.approx(y.mean, rel=1e-6) and x.cossim == pytest.approx(y.cossim, rel=1e-5)
    assert b[0].cossim > 0.5 and b[1].cossim == 0.0  # blk.1 against blk.0; blk.0 has no predecessor


def test_names_and_text(tmp_path: Path) -> None:
    assert split_name("blk.12.attn_q.weight") == ("12", "attn_q")
    assert split_name("output.weight") == ("-", "output")
    assert split_name("odd") == ("-", "odd")
    text = format_statistics(*statistics_for_file(DATA / RECORD["runs"]["gguf"]["file"]))
    assert "CosSim" in text and "ffn_down" in text and text.count("\n") > 30
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(8))
    with pytest.raises(ImatrixError):
        statistics_for_file(tmp_path / "bad.gguf")
