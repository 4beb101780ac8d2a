"""Headers llama.cpp refuses are refused by open_model with one line, not exported."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from quant_core.layout import parse_override_kv
from quant_core.model import ModelError, open_model
from quant_core.plan import PlanError, QuantOptions, build_plan
from quant_core.recipe import RECIPE_FORMAT, Recipe, RecipeError
from quant_core.size import project_size

from .gguf_bytes import ARR, F32, I32, STR, U32, U64, Header, Tensor, kv, valid_header


def _write(tmp_path: Path, header: Header) -> Path:
    p = tmp_path / "m.gguf"
    p.write_bytes(header.to_bytes())
    return p


def _set_kv(h: Header, key: str, vtype: int, value: object, sub: int | None = None) -> None:
    h.kvs = [p for p in h.kvs if p.key != key.encode()] + [kv(key, vtype, value, sub)]


def test_valid_header_opens_and_plans(tmp_path: Path) -> None:
    m = open_model(_write(tmp_path, valid_header()))
    assert (m.arch, m.n_layer, m.n_head, m.n_head_kv, len(m.tensors)) == ("llama", 1, 4, 2, 12)
    assert project_size(m, build_plan(m, QuantOptions(preset="Q8_0"))).file_bytes > 0


def _tensor(i: int, **changes: object) -> Callable[[Header], None]:
    def mutate(h: Header) -> None:
        for name, value in changes.items():
            setattr(h.tensors[i], name, value)

    return mutate


def _offset_plus(i: int, delta: int) -> Callable[[Header], None]:
    def mutate(h: Header) -> None:
        h.tensors[i].offset = sum(-(-t.nbytes() // 32) * 32 for t in h.tensors[:i]) + delta

    return mutate


CASES = {
    "offset past the end": (_tensor(11, offset=2**40), r"data offset 1099511627776, expected"),
    "offset overflows u64": (_tensor(11, offset=2**64 - 32), r"data offset .* beyond any file"),
    "overlapping data": (_tensor(2, offset=0), r"blk.0.attn_q.weight has data offset 0, expected"),
    "unaligned offset": (_offset_plus(3, 8), r"aligned to 32 bytes"),
    "gap between tensors": (_offset_plus(3, 32), r"packed in order"),
    "five dimensions": (_tensor(1, dims=[64, 1, 1, 1, 1]), r"5 dimensions; ggml allows 1 to 4"),
    "no dimension": (_tensor(1, dims=[]), r"0 dimensions"),
    "name of 64 bytes": (_tensor(1, name=b"n" * 64), r"is 64 bytes; ggml allows at most 63"),
    "zero dimension": (_tensor(2, dims=[64, 0]), r"zero dimension .* refused"),
    "negative dimension": (_tensor(2, dims=[64, -3]), r"negative dimension"),
    "element count overflow": (_tensor(2, dims=[64, 2**40, 2**40]), r"too many elements"),
    "Q8_1 (wrong size in gguf-py)": (_tensor(2, ttype=9), r"Q8_1, whose size gguf-py gets wrong"),
    "unknown type": (_tensor(2, ttype=1234), r"unsupported tensor type 1234"),
    "duplicate tensor": (_tensor(2, name=b"blk.0.attn_norm.weight"), r"duplicate tensor name"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_tensor_info_is_refused(tmp_path: Path, case: str) -> None:
    mutate, message = CASES[case]
    h = valid_header()
    mutate(h)
    with pytest.raises(ModelError, match=message) as info:
        open_model(_write(tmp_path, h))
    assert "\n" not in str(info.value)


def test_q8_0_row_of_a_partial_block_is_refused(tmp_path: Path) -> None:
    h = valid_header()
    h.tensors[1] = Tensor(b"blk.0.attn_norm.weight", [48], 8)
    with pytest.raises(ModelError, match=r"row length 48 is not a multiple of the Q8_0 block \(32\)"):
        open_model(_write(tmp_path, h))


def test_duplicate_key(tmp_path: Path) -> None:
    h = valid_header()
    h.kvs.append(kv("general.name", STR, "again"))
    with pytest.raises(ModelError, match=r"duplicate metadata key 'general\.name'"):
        open_model(_write(tmp_path, h))


@pytest.mark.parametrize(
    "key,vtype,value,sub,message",
    [
        ("llama.block_count", STR, "2", None, "llama.block_count has type STRING; llama.cpp requires UINT32"),
        ("llama.block_count", U64, 2, None, "llama.block_count has type UINT64"),
        ("llama.expert_count", I32, 2, None, "llama.expert_count has type INT32"),
        ("llama.attention.head_count", ARR, [], U32, "head_count is an empty array"),
        ("llama.attention.head_count_kv", ARR, [1, 1], U32, "head_count_kv has 2 values for 1 layers"),
        ("llama.attention.head_count", ARR, [1.0], F32, "is an array of FLOAT32"),
        ("general.architecture", U32, 7, None, "general.architecture has type UINT32"),
        ("llama.embedding_length", STR, "64", None, "llama.embedding_length has type STRING"),
        ("llama.feed_forward_length", ARR, [128, 128], U32, "feed_forward_length has 2 values for 1 layers"),
        ("llama.attention.layer_norm_rms_epsilon", U32, 1, None, "epsilon has type UINT32; llama.cpp requires FLOAT32"),
    ],
)
def test_hyperparameter_of_wrong_type(
    tmp_path: Path, key: str, vtype: int, value: object, sub: int | None, message: str
) -> None:
    h = valid_header()
    _set_kv(h, key, vtype, value, sub)
    with pytest.raises(ModelError, match=message):
        open_model(_write(tmp_path, h))


def test_per_layer_head_counts_are_read(tmp_path: Path) -> None:
    h = valid_header()
    _set_kv(h, "llama.attention.head_count_kv", ARR, [1], I32)
    assert open_model(_write(tmp_path, h)).n_head_kv == 1


@pytest.mark.parametrize("value,vtype", [(64, U32), (0, U32), (3, U32), (32, U64)])
def test_alignment_other_than_32_is_refused(tmp_path: Path, value: int, vtype: int) -> None:
    h = valid_header()
    _set_kv(h, "general.alignment", vtype, value)
    h.align = 64 if value == 64 else 32
    try:
        m = open_model(_write(tmp_path, h))
    except ModelError as err:  # 0, 3, a u64: gguf.cpp refuses the header itself
        assert "general.alignment" in str(err) and value != 64
        return
    assert value == 64
    with pytest.raises(PlanError, match=r"general\.alignment = 64; export writes 32-byte aligned files only"):
        project_size(m, build_plan(m, QuantOptions(preset="Q8_0")))


def test_alignment_of_32_is_accepted(tmp_path: Path) -> None:
    h = valid_header()
    _set_kv(h, "general.alignment", U32, 32)
    m = open_model(_write(tmp_path, h))
    assert project_size(m, build_plan(m, QuantOptions(preset="Q8_0"))).file_bytes > 0


@pytest.mark.parametrize("entry", ["general.alignment=int:64", "general.alignment=str:32"])
def test_alignment_cannot_be_overridden(entry: str) -> None:
    with pytest.raises(PlanError, match="describes the file layout and cannot be overridden"):
        parse_override_kv(entry)


def test_string_length_past_the_end(tmp_path: Path) -> None:
    h = valid_header()
    h.kvs[1].payload = struct.pack("<Q", 2**62) + b"bytes test"
    with pytest.raises(ModelError, match="truncated or corrupt"):
        open_model(_write(tmp_path, h))


def test_alignment_in_a_recipe_is_refused() -> None:
    doc = {"format": RECIPE_FORMAT, "version": 1, "options": {"override_kv": ["general.alignment=int:64"]}}
    with pytest.raises(RecipeError, match=r"general\.alignment describes the file layout"):
        Recipe.from_json(json.dumps(doc))


def test_non_printable_names_are_escaped(tmp_path: Path) -> None:
    h = valid_header()
    h.tensors[1].name = b"bad\nname"
    h.tensors[1].dims = [64, 1, 1, 1, 1]
    with pytest.raises(ModelError, match=r"bad\\nname has 5 dimensions") as info:
        open_model(_write(tmp_path, h))
    assert "\n" not in str(info.value)
