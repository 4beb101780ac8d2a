"""Split output in llama-gguf-split's format: limits, names, exact part sizes, reading parts back."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest

from quant_core.export import ExportError, iter_export
from quant_core.layout import pad
from quant_core.model import ModelError, open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.size import project_parts, project_size
from quant_core.split import (
    SplitError,
    SplitSpec,
    assign_parts,
    parse_part_name,
    parse_split_size,
    part_paths,
)

LLAMA_BIN = Path(os.environ.get("LLAMA_BIN", "/work/llama-build/bin"))
GGUF_SPLIT = LLAMA_BIN / "llama-gguf-split"


def _export(src: Path, out: Path, preset: str, split: SplitSpec | None = None) -> list[Path]:
    model = open_model(src)
    plan = build_plan(model, QuantOptions(preset=preset))
    for _ in iter_export(model, plan, out, split=split):
        pass
    if split is None:
        return [out]
    return sorted(out.parent.glob(out.stem + "-0*-of-*.gguf"))


def test_split_size_parsing() -> None:
    assert parse_split_size("500M") == 500 * 10**6
    assert parse_split_size("2G") == 2 * 10**9
    for bad in ("2", "1.5G", "-3M", "0G", "2K", ""):
        with pytest.raises(SplitError):
            parse_split_size(bad)


def test_spec_needs_exactly_one_positive_limit() -> None:
    for kwargs in ({}, {"max_bytes": 1, "max_tensors": 1}, {"max_tensors": 0}, {"max_bytes": -5}):
        with pytest.raises(SplitError):
            SplitSpec(**kwargs)


def test_part_names_follow_llama_split_path(tmp_path: Path) -> None:
    paths = part_paths(tmp_path / "model-Q4_K_M.gguf", 3)
    assert [p.name for p in paths] == [f"model-Q4_K_M-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert parse_part_name(paths[1]) == (tmp_path / "model-Q4_K_M", 1, 3)
    assert parse_part_name(tmp_path / "model.gguf") is None


def test_assignment_by_tensor_count() -> None:
    parts = assign_parts([32] * 10, SplitSpec(max_tensors=4))
    assert [list(r) for r in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_assignment_by_size_counts_padded_data_and_allows_one_big_tensor() -> None:
    sizes = [64, 64, 96, 256, 32, 32]
    parts = assign_parts(sizes, SplitSpec(max_bytes=160))
    assert [list(r) for r in parts] == [[0, 1], [2], [3], [4, 5]]  # a tensor above the limit sits alone
    for r in parts:
        assert len(r) == 1 or sum(sizes[i] for i in r) <= 160


def test_first_tensor_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(SplitError, match="first tensor"):
        assign_parts([500, 10], SplitSpec(max_bytes=100))


@pytest.mark.parametrize(
    "spec", [SplitSpec(max_tensors=7), SplitSpec(max_bytes=120_000), SplitSpec(max_bytes=10**9)], ids=str
)
def test_every_part_has_its_projected_size(small_gguf: Path, tmp_path: Path, spec: SplitSpec) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    projected = project_parts(model, plan, spec)
    parts = _export(small_gguf, tmp_path / "q.gguf", "Q4_K_M", spec)
    assert [p.stat().st_size for p in parts] == projected
    assert [p.name for p in parts] == [p.name for p in part_paths(tmp_path / "q.gguf", len(projected))]
    assert not (tmp_path / "q.gguf").exists()
    if spec.max_bytes == 10**9:
        assert len(parts) == 1  # one part is still written in the split format, as gguf-split does
    else:
        assert len(parts) > 1


def test_parts_hold_split_keys_and_metadata_only_in_the_first(small_gguf: Path, tmp_path: Path) -> None:
    parts = _export(small_gguf, tmp_path / "q.gguf", "Q8_0", SplitSpec(max_tensors=5))
    whole = gguf.GGUFReader(_export(small_gguf, tmp_path / "whole.gguf", "Q8_0")[0])
    n = len(whole.tensors)
    model_keys = [k for k in whole.fields if not k.startswith("GGUF.")]
    names = []
    for i, path in enumerate(parts):
        r = gguf.GGUFReader(path)
        keys = [k for k in r.fields if not k.startswith("GGUF.")]
        split_keys = ["split.no", "split.tensors.count", "split.count"]
        assert keys == (model_keys if i == 0 else []) + split_keys
        assert r.fields["split.no"].types == [gguf.GGUFValueType.UINT16]
        assert r.fields["split.count"].types == [gguf.GGUFValueType.UINT16]
        assert r.fields["split.tensors.count"].types == [gguf.GGUFValueType.INT32]
        assert [int(r.fields[k].parts[-1][0]) for k in split_keys] == [i, n, len(parts)]
        names += [t.name for t in r.tensors]
        assert len(r.tensors) <= 5
    assert names == [t.name for t in whole.tensors]


def test_split_model_opens_as_one(small_gguf: Path, tmp_path: Path) -> None:
    parts = _export(small_gguf, tmp_path / "q.gguf", "Q8_0", SplitSpec(max_bytes=100_000))
    whole = open_model(_export(small_gguf, tmp_path / "whole.gguf", "Q8_0")[0])
    split = open_model(parts[0])
    assert split.part_paths == tuple(parts)
    assert split.file_size == sum(p.stat().st_size for p in parts)
    assert [(t.name, t.shape, t.src_type) for t in split.tensors] == [
        (t.name, t.shape, t.src_type) for t in whole.tensors
    ]
    assert {t.part for t in split.tensors} == set(range(len(parts)))
    for t in split.tensors:
        assert np.array_equal(split.raw(t.name), whole.raw(t.name))
    last = split.tensors[-1].name
    np.testing.assert_array_equal(split.rows_f32(last, slice(1, 3)), whole.rows_f32(last, slice(1, 3)))


def test_quantizing_a_split_source_equals_the_unsplit_source(small_gguf: Path, tmp_path: Path) -> None:
    # a split F16 source (the model as published) gives the same bytes as the unsplit one
    source_parts = _export(small_gguf, tmp_path / "src.gguf", "F16", SplitSpec(max_tensors=4))
    whole_source = _export(small_gguf, tmp_path / "src-whole.gguf", "F16")[0]
    a = _export(source_parts[0], tmp_path / "a.gguf", "Q4_K_M")[0]
    b = _export(whole_source, tmp_path / "b.gguf", "Q4_K_M")[0]
    assert a.read_bytes() == b.read_bytes()


def test_missing_or_wrong_parts_are_one_line(small_gguf: Path, tmp_path: Path) -> None:
    parts = _export(small_gguf, tmp_path / "q.gguf", "Q8_0", SplitSpec(max_tensors=6))
    assert len(parts) >= 3
    with pytest.raises(ModelError, match=f"part 2 of {len(parts)}; open the first part, {parts[0].name}$"):
        open_model(parts[1])
    renamed = tmp_path / "renamed.gguf"
    shutil.copy(parts[0], renamed)
    with pytest.raises(ModelError, match="its name does not end in -00001-of-"):
        open_model(renamed)
    shutil.copy(parts[2], parts[1])  # part 3's content under part 2's name
    with pytest.raises(ModelError, match="says it is part 3, expected part 2"):
        open_model(parts[0])
    parts[1].unlink()
    with pytest.raises(ModelError, match=r"part 2 of \d+ is missing") as err:
        open_model(parts[0])
    assert "\n" not in str(err.value)


def test_cancelled_split_export_leaves_nothing(small_gguf: Path, tmp_path: Path) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    gen = iter_export(model, plan, tmp_path / "q.gguf", split=SplitSpec(max_tensors=4))
    seen = 0
    for p in gen:
        seen += 1
        if p.tensor_index >= 6:  # inside the second part
            break
    gen.close()
    assert seen and os.listdir(tmp_path) == []


def test_split_output_may_not_overwrite_a_source_part(small_gguf: Path, tmp_path: Path) -> None:
    parts = _export(small_gguf, tmp_path / "src.gguf", "F16", SplitSpec(max_tensors=6))
    model = open_model(parts[0])
    plan = build_plan(model, QuantOptions(preset="Q8_0"))
    with pytest.raises(ExportError, match="input file"):
        list(iter_export(model, plan, tmp_path / "src.gguf", split=SplitSpec(max_tensors=6)))


def test_unsplit_projection_unchanged_by_split_support(small_gguf: Path, tmp_path: Path) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M"))
    out = _export(small_gguf, tmp_path / "q.gguf", "Q4_K_M")[0]
    parts = project_parts(model, plan, SplitSpec(max_tensors=5))
    assert out.stat().st_size == project_size(model, plan).file_bytes
    # splitting adds a header per part; the tensor data is the same
    data = sum(pad(tp.n_bytes) for tp in plan.tensors)
    assert sum(parts) > project_size(model, plan).file_bytes > data


@pytest.mark.skipif(not GGUF_SPLIT.exists(), reason="llama-gguf-split not built (tools/build_llama_tools.sh)")
@pytest.mark.parametrize("args", [["--split-max-tensors", "9"], ["--split-max-size", "2M"]], ids=" ".join)
def test_same_bytes_as_llama_gguf_split(tmp_path: Path, args: list[str]) -> None:
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo-llama.gguf"
    whole = _export(demo, tmp_path / "whole.gguf", "Q8_0")[0]
    env = {**os.environ, "LD_LIBRARY_PATH": str(LLAMA_BIN)}
    ref = tmp_path / "ref" / "demo"
    ref.parent.mkdir()
    subprocess.run([str(GGUF_SPLIT), *args, str(whole), str(ref)], env=env, check=True, capture_output=True)
    theirs = sorted(ref.parent.glob("demo-*.gguf"))
    spec = (
        SplitSpec(max_tensors=int(args[1])) if "tensors" in args[0] else SplitSpec(max_bytes=parse_split_size(args[1]))
    )
    ours = _export(demo, tmp_path / "demo.gguf", "Q8_0", spec)
    assert len(theirs) > 1
    assert [p.name for p in ours] == [p.name for p in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.skipif(not GGUF_SPLIT.exists(), reason="llama-gguf-split not built (tools/build_llama_tools.sh)")
def test_a_limit_below_the_first_tensor_is_refused_like_llama_gguf_split(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo-llama.gguf"
    whole = _export(demo, tmp_path / "whole.gguf", "Q8_0")[0]  # output.weight alone is 1.1 MB
    env = {**os.environ, "LD_LIBRARY_PATH": str(LLAMA_BIN)}
    ref = subprocess.run(
        [str(GGUF_SPLIT), "--split-max-size", "1M", str(whole), str(tmp_path / "ref")], env=env, capture_output=True
    )
    assert ref.returncode != 0
    with pytest.raises(SplitError, match="first tensor"):
        _export(demo, tmp_path / "demo.gguf", "Q8_0", SplitSpec(max_bytes=parse_split_size("1M")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.gguf"]


LLAMA_QUANTIZE = LLAMA_BIN / "llama-quantize"


@pytest.mark.skipif(not LLAMA_QUANTIZE.exists(), reason="llama-quantize not built (tools/build_llama_tools.sh)")
def test_split_source_quantized_like_llama_quantize(tmp_path: Path) -> None:
    # llama-quantize reads a split source through llama.cpp's loader; we read it from the first part
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo-llama.gguf"
    parts = _export(demo, tmp_path / "src.gguf", "F16", SplitSpec(max_tensors=12))
    assert len(parts) == 4
    ours = _export(parts[0], tmp_path / "ours.gguf", "Q4_K_M")[0]
    theirs = tmp_path / "theirs.gguf"
    env = {**os.environ, "LD_LIBRARY_PATH": str(LLAMA_BIN)}
    subprocess.run(
        [str(LLAMA_QUANTIZE), str(parts[0]), str(theirs), "Q4_K_M", "1"], env=env, check=True, capture_output=True
    )
    assert ours.read_bytes() == theirs.read_bytes()


def test_cli_split_options(small_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quant_core.cli.main import main

    out = tmp_path / "q.gguf"
    assert main(["quantize", "--split-max-size", "1.5G", str(small_gguf), str(out), "Q8_0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "whole number followed by M or G" in err
    assert main(["quantize", "--dry-run", "--split-max-tensors", "8", str(small_gguf), str(out), "Q8_0"]) == 0
    printed = capsys.readouterr().out
    model = open_model(small_gguf)
    parts = project_parts(model, build_plan(model, QuantOptions(preset="Q8_0")), SplitSpec(max_tensors=8))
    for path, n in zip(part_paths(out, len(parts)), parts, strict=True):
        assert f"{path.name}: {n} bytes" in printed
    assert os.listdir(tmp_path) == []
