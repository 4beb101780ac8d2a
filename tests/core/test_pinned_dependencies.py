"""What the code relies on beyond the public API of gguf, numba and llvmlite.

``quant_core/reader.py`` overrides private methods of gguf-py's ``GGUFReader`` and calls others;
``quant_core/kernels/_simd.py`` and ``_common.py`` emit LLVM IR through numba intrinsics. These
dependencies are pinned in ``pyproject.toml``; when a pin is raised, these tests say what broke.
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.gguf_reader import GGUFReader, ReaderField
from numba import njit

from quant_core.kernels import floats
from quant_core.kernels._simd import first_absmax, first_better, first_min_max
from quant_core.reader import HeaderReader

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PINNED = ("gguf", "numba", "llvmlite")

# name -> parameter names (after self) of the GGUFReader methods reader.py overrides or calls
READER_PRIVATE_API = {
    "_get": ["offset", "dtype", "count", "override_order"],
    "_build_fields": ["offs", "count"],
    "_get_str": ["offset"],
    "_get_field_parts": ["orig_offs", "raw_type"],
    "_push_field": ["field", "skip_sum"],
}


def _declared_requirements() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower(): d for d in deps}


@pytest.mark.parametrize("name", PINNED)
def test_installed_version_is_within_the_pin(name: str) -> None:
    from packaging.requirements import Requirement

    declared = _declared_requirements()
    assert name in declared, f"{name} is not declared in pyproject.toml"
    req = Requirement(declared[name])
    assert not list(req.specifier.filter(["999"])), f"{name} has no upper bound in pyproject.toml"
    installed = metadata.version(name)
    assert req.specifier.contains(installed), f"{name} {installed} is outside the tested range {req.specifier}"


@pytest.mark.parametrize("method", sorted(READER_PRIVATE_API))
def test_gguf_reader_private_methods_keep_their_signatures(method: str) -> None:
    base = getattr(GGUFReader, method, None)
    assert base is not None, f"gguf {gguf.__name__} GGUFReader.{method} is gone: update quant_core/reader.py"
    params = list(inspect.signature(base).parameters)[1:]
    assert params == READER_PRIVATE_API[method], f"GGUFReader.{method} changed its parameters: {params}"
    if method in vars(HeaderReader):
        ours = list(inspect.signature(getattr(HeaderReader, method)).parameters)[1:]
        assert ours == params, f"HeaderReader.{method} no longer matches the method it overrides"


def test_reader_field_is_built_positionally() -> None:
    assert ReaderField._fields[:5] == ("offset", "name", "parts", "data", "types")


def _write(path: Path) -> Path:
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_uint32("llama.block_count", 2)
    w.add_string("general.name", "pin check")
    w.add_token_list([b"<s>", b"a", b"bc"])
    w.add_array("test.numbers", [1.5, -2.0, 3.25])
    w.add_tensor("blk.0.attn_q.weight", np.arange(512, dtype=np.float16).reshape(2, 256))
    w.add_tensor("blk.0.attn_norm.weight", np.linspace(0, 1, 256, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_header_reader_agrees_with_gguf_reader(tmp_path: Path) -> None:
    """The base constructor still calls the overridden ``_build_fields`` and reads tensors after it."""
    path = _write(tmp_path / "pin.gguf")
    ours, theirs = HeaderReader(path, "r"), GGUFReader(path, "r")
    assert [f.key for f in ours.meta_fields] == [k for k in theirs.fields if not k.startswith("GGUF.")]
    assert list(ours.fields) == list(theirs.fields)
    assert ours.data_offset == theirs.data_offset
    assert len(ours.tensors) == len(theirs.tensors) == 2
    for a, b in zip(ours.tensors, theirs.tensors):
        assert (a.name, a.tensor_type, a.data_offset, a.n_bytes) == (b.name, b.tensor_type, b.data_offset, b.n_bytes)
        assert np.array_equal(a.data, b.data)
    values = {f.key: f.value for f in ours.meta_fields}
    assert list(values["tokenizer.ggml.tokens"]) == [b"<s>", b"a", b"bc"]
    assert values["test.numbers"] == [1.5, -2.0, 3.25] and values["llama.block_count"] == 2


@njit(cache=False)
def _reductions(x: np.ndarray, sumqx: np.ndarray, sumq2: np.ndarray) -> tuple:
    return first_absmax(x, 0, 32), first_min_max(x, 0, 32), first_better(sumqx, sumq2, 0, np.float32(1.0), 16)


def _llvm_names(ir: str) -> set[str]:
    return set(re.findall(r"llvm\.[a-z0-9_.]+", ir))


def test_vector_reductions_compile_to_vector_ir_and_are_right() -> None:
    x = np.zeros(32, dtype=np.float32)
    x[[3, 9, 20, 25]] = [-5.0, 5.0, -7.0, 7.0]  # |-7| == |7|: the first one wins
    sumqx = np.zeros(16, dtype=np.float32)
    sumq2 = np.ones(16, dtype=np.float32)
    sumqx[[6, 11]] = 2.0  # 2*2 > 1*1 first at 6
    absmax, min_max, better = _reductions(x, sumqx, sumq2)
    assert absmax == (7.0, -7.0) and min_max == (-7.0, 7.0) and better == 6
    ir = _reductions.inspect_llvm(_reductions.signatures[0])
    names = _llvm_names(ir)
    for wanted in (
        "llvm.vector.reduce.umax.v32i32",
        "llvm.vector.reduce.smin.v32i32",
        "llvm.vector.reduce.smax.v32i32",
        "llvm.cttz.i32",
        "llvm.cttz.i16",
    ):
        assert wanted in names, f"{wanted} is no longer emitted: {sorted(names)}"


def test_streaming_copy_keeps_nontemporal_stores() -> None:
    copy = njit(cache=False, error_model="numpy")(floats.copy_f32_checked.py_func)
    x = np.linspace(-1, 1, 3 * 1000, dtype=np.float32).reshape(3, 1000)
    out, finite = copy(x)
    assert finite and np.array_equal(out.view(np.float32), x)
    x[2, 999] = np.nan
    assert not copy(x)[1]
    ir = copy.inspect_llvm(copy.signatures[0])
    assert "!nontemporal" in ir and "llvm.vector.reduce.or.v8i32" in _llvm_names(ir)
