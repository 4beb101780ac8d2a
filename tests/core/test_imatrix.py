"""Importance matrices: both llama.cpp formats, values as llama-quantize computes them."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader, GGUFValueType, GGUFWriter

from quant_core import ImatrixError
from quant_core.imatrix import (
    Imatrix,
    filter_entries,
    load_imatrix,
    metadata_keys,
    tensor_importance,
    values_for_tensor,
    write_imatrix_dat,
    write_imatrix_gguf,
)
from quant_core.model import TensorInfo, tensor_category, tensor_layer

CHUNK = 128


def _stats() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    sums = {
        "blk.0.attn_q.weight": rng.gamma(2.0, 3.0, size=64).astype(np.float32),
        "blk.0.ffn_down_exps.weight": rng.gamma(2.0, 3.0, size=(3, 32)).astype(np.float32),
        "blk.1.attn_k.weight": rng.gamma(2.0, 3.0, size=64).astype(np.float32),
    }
    counts = {
        "blk.0.attn_q.weight": np.array([256]),
        "blk.0.ffn_down_exps.weight": np.array([40, 0, 256]),  # expert 1 never activated
        "blk.1.attn_k.weight": np.array([250]),
    }
    return sums, counts


def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    s = sums.reshape(len(counts), -1)
    out = s / np.where(counts == 0, 1, counts).astype(np.float32)[:, None]
    out[counts == 0] = 1.0
    return out.reshape(-1)


def _write_raw_gguf(path: Path, kv: dict, tensors: dict[str, np.ndarray]) -> Path:
    writer = GGUFWriter(path, arch="")
    for key, (value, vtype) in kv.items():
        writer.add_key_value(key, value, vtype, sub_type=GGUFValueType.STRING if vtype == GGUFValueType.ARRAY else None)
    for name, arr in tensors.items():
        writer.add_tensor(name, arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


GOOD_KV = {
    "imatrix.datasets": (["d.txt"], GGUFValueType.ARRAY),
    "imatrix.chunk_count": (2, GGUFValueType.UINT32),
    "imatrix.chunk_size": (CHUNK, GGUFValueType.UINT32),
}


def test_gguf_round_trip(tmp_path: Path) -> None:
    sums, counts = _stats()
    path = tmp_path / "imatrix.gguf"
    write_imatrix_gguf(path, sums, counts, chunk_size=CHUNK, datasets=["wiki.txt", "code.txt"])
    im = load_imatrix(path)
    assert (im.format, im.path, im.chunk_size, im.chunk_count) == ("gguf", str(path), CHUNK, 2)
    assert im.datasets == ["wiki.txt", "code.txt"]
    assert list(im.entries) == sorted(sums)
    for name in sums:
        got = im.entries[name]
        assert got.dtype == np.float32 and not got.flags.writeable
        assert np.array_equal(got, _means(sums[name], counts[name])), name
    assert np.all(im.entries["blk.0.ffn_down_exps.weight"][32:64] == 1.0)


def test_gguf_layout_is_llama_imatrix_s(tmp_path: Path) -> None:
    sums, counts = _stats()
    path = tmp_path / "imatrix.gguf"
    write_imatrix_gguf(path, sums, counts, chunk_size=CHUNK, chunk_count=7)
    reader = GGUFReader(path)
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert keys == ["general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"]
    assert reader.fields["general.type"].contents() == "imatrix"
    assert reader.fields["imatrix.chunk_count"].contents() == 7
    shapes = {t.name: t.shape.tolist() for t in reader.tensors}
    assert list(shapes) == [n + suffix for n in sorted(sums) for suffix in (".in_sum2", ".counts")]
    assert shapes["blk.0.attn_q.weight.in_sum2"] == [64] and shapes["blk.0.attn_q.weight.counts"] == [1]
    assert shapes["blk.0.ffn_down_exps.weight.in_sum2"] == [32, 3]
    assert shapes["blk.0.ffn_down_exps.weight.counts"] == [1, 3]


def test_dat_round_trip_gives_the_gguf_means(tmp_path: Path) -> None:
    sums, counts = _stats()
    # ncall = ceil(256 / 128) = 2 (a power of two: * and / are exact)
    write_imatrix_dat(tmp_path / "a.dat", sums, counts, chunk_size=CHUNK, dataset="wiki.txt")
    write_imatrix_gguf(tmp_path / "a.gguf", sums, counts, chunk_size=CHUNK)
    dat, gg = load_imatrix(tmp_path / "a.dat"), load_imatrix(tmp_path / "a.gguf")
    assert (dat.format, dat.chunk_size, dat.chunk_count, dat.datasets) == ("dat", None, 2, ["wiki.txt"])
    assert list(dat.entries) == list(gg.entries)
    for name in gg.entries:
        assert np.array_equal(dat.entries[name], gg.entries[name]), name


def test_dat_divides_by_ncall(tmp_path: Path) -> None:
    sums, counts = _stats()
    write_imatrix_dat(tmp_path / "a.dat", sums, counts, chunk_size=100)  # ncall = 3
    raw = (tmp_path / "a.dat").read_bytes()
    name = b"blk.0.attn_q.weight"
    at = raw.index(name) + len(name)
    assert struct.unpack_from("<ii", raw, at) == (3, 64)
    stored = np.frombuffer(raw, "<f4", 64, at + 8)
    mean = sums["blk.0.attn_q.weight"] / np.float32(256)
    assert np.array_equal(stored, mean * np.float32(3))
    got = load_imatrix(tmp_path / "a.dat").entries["blk.0.attn_q.weight"]
    assert np.array_equal(got, stored / np.float32(3))
    assert np.allclose(got, mean, rtol=2e-7, atol=0)


def test_hand_written_dat(tmp_path: Path) -> None:
    def entry(name: bytes, ncall: int, values: list[float]) -> bytes:
        head = struct.pack("<i", len(name)) + name + struct.pack("<ii", ncall, len(values))
        return head + np.array(values, "<f4").tobytes()

    body = struct.pack("<i", 2) + entry(b"a.weight", 4, [4, 8, 12, 16]) + entry(b"b.weight", 0, [5, 6])
    (tmp_path / "plain.dat").write_bytes(body)
    im = load_imatrix(tmp_path / "plain.dat")
    assert im.entries["a.weight"].tolist() == [1, 2, 3, 4]
    assert im.entries["b.weight"].tolist() == [5, 6]  # ncall 0: values kept as they are
    assert (im.chunk_count, im.datasets) == (0, [])
    (tmp_path / "trailer.dat").write_bytes(body + struct.pack("<ii", 9, 5) + b"t.txt")
    im = load_imatrix(tmp_path / "trailer.dat")
    assert (im.chunk_count, im.datasets) == (9, ["t.txt"])


def test_dat_skips_entries_without_data(tmp_path: Path) -> None:
    sums, counts = _stats()
    counts["blk.1.attn_k.weight"] = np.array([0])
    write_imatrix_dat(tmp_path / "a.dat", sums, counts, chunk_size=CHUNK)
    write_imatrix_gguf(tmp_path / "a.gguf", sums, counts, chunk_size=CHUNK)
    assert "blk.1.attn_k.weight" not in load_imatrix(tmp_path / "a.dat").entries
    assert np.all(load_imatrix(tmp_path / "a.gguf").entries["blk.1.attn_k.weight"] == 1.0)


def test_gguf_counts_are_rounded_and_element_counts_decide(tmp_path: Path) -> None:
    sums = np.arange(1, 9, dtype=np.float32) * np.float32(7.0)
    path = _write_raw_gguf(
        tmp_path / "odd.gguf",
        GOOD_KV,
        {
            "a.weight.in_sum2": sums.reshape(4, 2),  # ne = [2, 4], but 1 count: one matrix of 8
            "a.weight.counts": np.array([2.5], dtype=np.float32),  # lround -> 3
            "b.weight.in_sum2": sums,
            "b.weight.counts": np.array([0.4, 6.0], dtype=np.float32),  # lround 0 -> 1.0
        },
    )
    im = load_imatrix(path)
    assert np.array_equal(im.entries["a.weight"], sums / np.float32(3))
    assert im.entries["b.weight"].tolist() == [1, 1, 1, 1] + (sums[4:] / np.float32(6)).tolist()


def test_filter_entries() -> None:
    im = Imatrix(
        {n: np.ones(2, np.float32) for n in ["blk.0.attn_q", "blk.0.ffn_up", "blk.1.attn_q"]},
        ["d"],
        3,
        512,
        "x.gguf",
        "gguf",
    )
    assert list(filter_entries(im, include=["attn"]).entries) == ["blk.0.attn_q", "blk.1.attn_q"]
    assert list(filter_entries(im, include=["ffn", "blk.1"]).entries) == ["blk.0.ffn_up", "blk.1.attn_q"]
    assert list(filter_entries(im, exclude=["blk.0", "nothing"]).entries) == ["blk.1.attn_q"]
    assert filter_entries(im) is im
    assert len(im.entries) == 3  # the original is untouched
    with pytest.raises(ImatrixError, match="cannot be combined"):
        filter_entries(im, include=["a"], exclude=["b"])


def test_metadata_keys() -> None:
    long_path = "/data/" + "é" * 70 + ".gguf"  # 146 bytes of UTF-8
    im = Imatrix(
        {"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)}, ["wiki.txt", "b.txt"], 5, 512, long_path, "gguf"
    )
    keys = metadata_keys(im)
    assert [k for k, _, _ in keys] == [
        "quantize.imatrix.file",
        "quantize.imatrix.dataset",
        "quantize.imatrix.entries_count",
        "quantize.imatrix.chunks_count",
    ]
    file_value = keys[0][1]
    assert len(file_value.encode()) <= 127 and long_path.startswith(file_value)
    assert len(file_value.encode()) >= 126  # only a split 2-byte character is dropped
    assert keys[1:] == [
        ("quantize.imatrix.dataset", "wiki.txt", GGUFValueType.STRING),
        ("quantize.imatrix.entries_count", 2, GGUFValueType.UINT32),
        ("quantize.imatrix.chunks_count", 5, GGUFValueType.UINT32),
    ]
    bare = Imatrix({"a": np.ones(2, np.float32)}, [], 0, None, "i.dat", "dat")
    assert metadata_keys(bare) == [
        ("quantize.imatrix.file", "i.dat", GGUFValueType.STRING),
        ("quantize.imatrix.entries_count", 1, GGUFValueType.UINT32),
    ]
    assert metadata_keys(filter_entries(bare, include=["zzz"])) == []


def test_values_for_tensor() -> None:
    values = np.arange(6, dtype=np.float32)
    im = Imatrix({"e.weight": values, "bad.weight": np.array([1, np.nan], np.float32)}, [], 0, None, "p", "dat")
    assert values_for_tensor(im, "missing.weight", 6) is None
    assert np.array_equal(values_for_tensor(im, "e.weight", 3, n_expert=2).reshape(2, 3)[1], [3, 4, 5])
    with pytest.raises(ImatrixError, match=r"e\.weight has 6 values but the tensor needs 8 \(2 x 4\)") as err:
        values_for_tensor(im, "e.weight", 4, n_expert=2)
    assert "\n" not in str(err.value)
    with pytest.raises(ImatrixError, match="non-finite"):
        values_for_tensor(im, "bad.weight", 2)


def _info(name: str, shape: tuple[int, ...]) -> TensorInfo:
    return TensorInfo(name, shape, "F16", 2 * int(np.prod(shape)), 0, tensor_layer(name), tensor_category(name))


def test_tensor_importance_is_the_one_lookup() -> None:
    im = Imatrix(
        {
            "blk.0.ffn_down_exps.weight": np.arange(6, dtype=np.float32),
            "blk.0.attn_q.weight": np.ones(5, np.float32),
            "token_embd.weight": np.ones(5, np.float32),
        },
        [],
        0,
        None,
        "p",
        "dat",
    )
    experts = tensor_importance(im, _info("blk.0.ffn_down_exps.weight", (3, 4, 2)))
    assert np.array_equal(experts.reshape(2, 3)[1], [3, 4, 5])
    assert tensor_importance(None, _info("blk.0.attn_q.weight", (4, 8))) is None
    assert tensor_importance(im, _info("blk.1.attn_q.weight", (4, 8))) is None
    # llama-quantize ignores a mismatching token_embd entry but aborts on any other
    assert tensor_importance(im, _info("token_embd.weight", (4, 8))) is None
    with pytest.raises(ImatrixError, match=r"blk\.0\.attn_q\.weight has 5 values but the tensor needs 4"):
        tensor_importance(im, _info("blk.0.attn_q.weight", (4, 8)))


def _bad_gguf_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    ok = {"a.in_sum2": np.ones(4, np.float32), "a.counts": np.ones(1, np.float32)}
    no_size = {k: v for k, v in GOOD_KV.items() if k != "imatrix.chunk_size"}
    str_count = dict(GOOD_KV, **{"imatrix.chunk_count": ("2", GGUFValueType.STRING)})
    return {
        "missing key": (_write_raw_gguf(tmp_path / "k.gguf", no_size, ok), "missing imatrix metadata"),
        "wrong key type": (_write_raw_gguf(tmp_path / "t.gguf", str_count, ok), "must be a uint32"),
        "no counts": (_write_raw_gguf(tmp_path / "c.gguf", GOOD_KV, {"a.in_sum2": ok["a.in_sum2"]}), "mismatched"),
        "f16 sums": (
            _write_raw_gguf(tmp_path / "h.gguf", GOOD_KV, dict(ok, **{"a.in_sum2": np.ones(4, np.float16)})),
            "must be F32",
        ),
        "no tensors": (_write_raw_gguf(tmp_path / "e.gguf", GOOD_KV, {}), "no data"),
        "not divisible": (
            _write_raw_gguf(tmp_path / "d.gguf", GOOD_KV, dict(ok, **{"a.counts": np.ones(3, np.float32)})),
            "4 sums for 3 counts",
        ),
    }


def test_bad_files_raise_one_line_errors(tmp_path: Path) -> None:
    sums, counts = _stats()
    write_imatrix_dat(tmp_path / "good.dat", sums, counts, chunk_size=CHUNK)
    write_imatrix_gguf(tmp_path / "good.gguf", sums, counts, chunk_size=CHUNK)
    good_dat, good_gguf = (tmp_path / "good.dat").read_bytes(), (tmp_path / "good.gguf").read_bytes()
    cases = _bad_gguf_cases(tmp_path)
    for name, data, match in [
        ("empty", b"", "truncated"),
        ("text", b"hello, this is not an imatrix at all\n" * 3, "not an importance matrix"),
        ("cut dat", good_dat[: len(good_dat) // 2], "truncated"),
        ("cut trailer", good_dat[:-4], "truncated at the dataset name"),
        ("zero values", struct.pack("<ii", 1, 1) + b"a" + struct.pack("<ii", 1, 0), "has 0 values"),
        ("cut gguf", good_gguf[:200], "not a valid GGUF"),
    ]:
        (tmp_path / name).write_bytes(data)
        cases[name] = (tmp_path / name, match)
    cases["missing file"] = (tmp_path / "nope.dat", "cannot read")
    for name, (path, match) in cases.items():
        with pytest.raises(ImatrixError, match=match) as err:
            load_imatrix(path)
        assert "\n" not in str(err.value), name


def test_writers_check_their_input(tmp_path: Path) -> None:
    sums, counts = _stats()
    with pytest.raises(ValueError, match="same entry names"):
        write_imatrix_dat(tmp_path / "x.dat", sums, {})
    with pytest.raises(ValueError, match="one count"):
        write_imatrix_gguf(tmp_path / "x.gguf", sums, dict(counts, **{"blk.0.attn_q.weight": [1, 2]}))
    with pytest.raises(ValueError, match="dataset"):
        write_imatrix_gguf(tmp_path / "x.gguf", sums, counts, datasets=[])
