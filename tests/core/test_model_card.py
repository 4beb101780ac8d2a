"""Model cards: the Markdown text from plain data, and the data from plans, files and eval JSON."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from quant_core.card_data import (
    CardError,
    card_path,
    categories,
    entry_from_file,
    entry_from_plan,
    infer_split,
    quality_row,
    read_eval_json,
    source_info,
    write_card,
)
from quant_core.cli.main import main
from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.model_card import CardEntry, QualityRow, SourceInfo, TypeCount, format_size, render_card
from quant_core.plan import QuantOptions, build_plan, parse_tensor_type
from quant_core.recipe import llama_quantize_args
from quant_core.size import project_parts, project_size
from quant_core.split import SplitSpec

SOURCE = SourceInfo("Tiny", "tiny-F16.gguf", "llama", 12_600_000, "F16", 25_000_000, "ab" * 32)


def _entry(name: str, size: int, quality: QualityRow | None = None) -> CardEntry:
    cats = (
        ("token_embd", (TypeCount("Q6_K", 1, 1000),)),
        ("ffn_down", (TypeCount("Q6_K", 2, 600), TypeCount("Q4_K", 4, 800))),
    )
    return CardEntry(name, "Q4_K_M", size, 4.5, cats, command="llama-quantize in.gguf out.gguf Q4_K_M", quality=quality)


def _q(kld: float) -> QualityRow:
    return QualityRow(
        ppl=12.5, ppl_base=12.0, kld_mean=kld, kld_p99=10 * kld, same_top_p=0.93, text="eval.txt", n_chunk=8, n_ctx=512
    )


def _table_rows(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_card_lists_source_files_sorted_by_size_and_details() -> None:
    text = render_card(SOURCE, [_entry("b.gguf", 9_000_000, _q(0.02)), _entry("a.gguf", 5_000_000)])
    assert text.startswith("# Tiny GGUF\n")
    assert "`" + "ab" * 32 + "`" in text and "12.6 M (12,600,000)" in text
    rows = _table_rows(text, "| File |")
    assert [r[0] for r in rows] == ["`a.gguf`", "`b.gguf`"]
    assert rows[0][4:] == ["—"] * 4  # not measured
    assert rows[1][4:] == ["12.5000", "0.020000", "0.200000", "93.00 %"]
    assert "on `eval.txt` (8 chunks of 512 tokens; source perplexity 12.0000)" in text
    assert text.count("```sh\nllama-quantize in.gguf out.gguf Q4_K_M\n```") == 2
    cats = _table_rows(text, "| Tensor category |")
    assert cats[1] == ["ffn_down", "Q6_K (2), Q4_K (4)", format_size(1400)]  # as given


def test_measured_speed_adds_pp_and_tg_columns(tmp_path: Path) -> None:
    doc = {"candidate": "/x/q.gguf", "text": "eval.txt", **_q(0.01).__dict__, "pp_tps": 512.25, "tg_tps": 61.04}
    (tmp_path / "e.json").write_text(json.dumps(doc))
    _, timed = read_eval_json(tmp_path / "e.json")
    assert (timed.pp_tps, timed.tg_tps) == (512.25, 61.04)
    text = render_card(SOURCE, [_entry("q.gguf", 9, timed), _entry("r.gguf", 5, _q(0.02))])
    rows = _table_rows(text, "| File |")
    assert rows[1][-2:] == ["512.2", "61.0"] and rows[0][-2:] == ["—", "—"]  # sorted by size
    assert "llama-bench" in text
    assert "pp t/s" not in render_card(SOURCE, [_entry("r.gguf", 5, _q(0.02))])


def test_card_without_measurements_has_no_quality_columns() -> None:
    text = render_card(SOURCE, [_entry("a.gguf", 5)])
    assert "PPL" not in text and "Quality measured" not in text
    with pytest.raises(ValueError):
        render_card(SOURCE, [])


def test_table_cells_escape_pipes() -> None:
    text = render_card(SourceInfo("a|b", "x.gguf", "llama", 1, "F16", 1), [_entry("a.gguf", 5)])
    assert "| Model | a\\|b |" in text


def test_categories_group_count_and_order() -> None:
    got = categories(
        [("ffn_down", "Q4_K", 10), ("token_embd", "Q6_K", 5), ("ffn_down", "Q6_K", 30), ("ffn_down", "Q4_K", 10)]
    )
    assert got == (
        ("token_embd", (TypeCount("Q6_K", 1, 5),)),
        ("ffn_down", (TypeCount("Q6_K", 1, 30), TypeCount("Q4_K", 2, 20))),
    )


def test_entry_from_plan_matches_plan_and_split(small_gguf: Path, tmp_path: Path) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M", tensor_types=(("ffn_down", "Q8_0"),)))
    size = project_size(model, plan)
    spec = SplitSpec(max_tensors=8)
    parts = project_parts(model, plan, spec)
    entry = entry_from_plan(model, plan, size, tmp_path / "m-Q4_K_M.gguf", parts, spec, _q(0.01))
    assert entry.file_bytes == sum(parts) and entry.bpw == pytest.approx(size.bpw)
    assert entry.parts[0] == entry.file_name == f"m-Q4_K_M-00001-of-{len(parts):05d}.gguf"
    first, second = entry.command.splitlines()
    assert shlex.split(first)[1:] == llama_quantize_args(model, plan, small_gguf.name, "m-Q4_K_M.gguf")
    assert second == "llama-gguf-split --split-max-tensors 8 m-Q4_K_M.gguf m-Q4_K_M"
    by_cat = dict(entry.categories)
    assert by_cat["ffn_down"] == (
        TypeCount("Q8_0", 3, sum(tp.n_bytes for tp in plan.tensors if tp.source.category == "ffn_down")),
    )
    assert sum(t.count for _, ts in entry.categories for t in ts) == len(plan.tensors)


def test_entry_from_file_rebuilds_the_command(small_gguf: Path, tmp_path: Path) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"), explicit={"blk.1.attn_v.weight": "Q8_0"})
    out = tmp_path / "x.gguf"
    for _ in iter_export(model, plan, out):
        pass
    entry = entry_from_file(out, model)
    assert entry.preset == "Q4_K_M" and entry.file_bytes == out.stat().st_size
    args = shlex.split(entry.command)
    rebuilt = build_plan(model, QuantOptions(preset="Q4_K_M", tensor_types=_rules(args)))
    assert rebuilt.types() == plan.types()
    assert entry_from_file(out).command is None  # without the source no command


def _rules(args: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple(parse_tensor_type(a) for i, a in enumerate(args) if i and args[i - 1] == "--tensor-type")


def test_source_info_hashes_small_sources(small_gguf: Path) -> None:
    info = source_info(open_model(small_gguf))
    import hashlib

    assert info.sha256 == hashlib.sha256(small_gguf.read_bytes()).hexdigest()
    assert source_info(open_model(small_gguf), hash_limit=10).sha256 is None
    assert info.architecture == "llama" and info.n_parameters == open_model(small_gguf).n_parameters


def test_eval_json_is_read_and_refused_when_wrong(tmp_path: Path) -> None:
    good = tmp_path / "e.json"
    doc = {"base": "b.gguf", "candidate": "/x/q.gguf", "text": "/t/eval.txt", **_q(0.05).__dict__}
    good.write_text(json.dumps(doc))
    name, row = read_eval_json(good)
    assert name == "q.gguf" and row.kld_mean == 0.05 and row.text == "eval.txt"
    bad = tmp_path / "bad.json"
    bad.write_text('{"candidate": "q.gguf", "text": "t", "ppl": "x"}')
    with pytest.raises(CardError):
        read_eval_json(bad)
    with pytest.raises(CardError):
        quality_row({}, "t")


def test_card_path_and_atomic_write(tmp_path: Path) -> None:
    assert card_path(tmp_path / "m-Q4_K_M.gguf") == tmp_path / "m-Q4_K_M.md"
    path = write_card(tmp_path / "c.md", "# hi\n")
    assert path.read_text() == "# hi\n" and sorted(p.name for p in tmp_path.iterdir()) == ["c.md"]
    with pytest.raises(CardError):
        write_card(tmp_path / "missing" / "c.md", "x")


def test_quantize_writes_a_card_and_card_command_builds_a_ladder(small_gguf: Path, tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "m-Q4_K_M.gguf", tmp_path / "m-Q8_0.gguf"
    assert main(["quantize", "--model-card", str(small_gguf), str(a), "Q4_K_M"]) == 0
    card = (tmp_path / "m-Q4_K_M.md").read_text()
    assert "`m-Q4_K_M.gguf`" in card and f"{a.stat().st_size:,} bytes" in card
    assert main(["quantize", "--split-max-tensors", "10", str(small_gguf), str(b), "Q8_0"]) == 0
    first = tmp_path / "m-Q8_0-00001-of-00003.gguf"
    ev = tmp_path / "q8.json"
    ev.write_text(json.dumps({"candidate": str(first), "text": "eval.txt", **_q(0.001).__dict__}))
    out = tmp_path / "README.md"
    assert main(["card", str(a), str(first), "--source", str(small_gguf), "--eval", str(ev), "-o", str(out)]) == 0
    text = out.read_text()
    rows = _table_rows(text, "| File |")
    assert [r[0] for r in rows] == ["`m-Q4_K_M.gguf`", f"`{first.name}`"]
    assert rows[1][5] == "0.001000" and rows[0][5] == "—"
    assert "Split into 3 parts" in text
    assert "\nllama-gguf-split --split-max-tensors 10 m-Q8_0.gguf m-Q8_0\n" in text
    assert "llama-quantize m.gguf" not in text and f" {small_gguf.name} m-Q8_0.gguf Q8_0\n" in text
    assert len(re.findall(r"```sh\nllama-quantize ", text)) == 2
    assert main(["card", str(tmp_path / "nope.gguf"), "-o", str(out)]) == 1
    assert main(["card", str(a), "-o", str(b)]) == 1 and not b.exists()  # never over a model
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("spec", [SplitSpec(max_bytes=2 * 1000**2), SplitSpec(max_tensors=7)], ids=str)
def test_split_limit_inferred_from_the_parts(tmp_path: Path, spec: SplitSpec) -> None:
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo-llama.gguf"
    model = open_model(demo)
    plan = build_plan(model, QuantOptions(preset="Q8_0"))
    for _ in iter_export(model, plan, tmp_path / "d.gguf", split=spec):
        pass
    first = sorted(tmp_path.glob("d-*.gguf"))[0]
    assert infer_split(open_model(first)) == spec
    assert infer_split(model) is None
