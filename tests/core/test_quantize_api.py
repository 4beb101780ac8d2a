"""The public quantize/dequantize API: input forms, thread independence and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quant_core import (
    ImatrixError,
    NonFiniteError,
    QuantError,
    ShapeError,
    UnknownTypeError,
    UnsupportedTypeError,
    dequantize,
    quantize,
)

from .golden import golden_bytes, golden_input

TYPES = ["Q4_0", "Q8_0", "Q4_K", "Q6_K", "IQ4_XS", "BF16"]


@pytest.mark.parametrize("spelling", ["q4_K", "Q4_K", "q4_k", " Q4_K "])
def test_type_names_are_case_insensitive(spelling: str) -> None:
    x = golden_input("set-a")
    assert np.array_equal(quantize(x, spelling), golden_bytes("set-a", "q4_K", False))


@pytest.mark.parametrize("type_name", TYPES)
def test_read_only_memmap_and_strided_input(tmp_path: Path, type_name: str) -> None:
    x = golden_input("set-b")
    want = quantize(x, type_name)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    assert not mm.flags.writeable
    assert np.array_equal(quantize(mm, type_name), want)
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=np.float32)
    wide[:, ::2] = x
    assert np.array_equal(quantize(wide[:, ::2], type_name), want)
    fortran = np.asfortranarray(x)
    assert np.array_equal(quantize(fortran, type_name), want)


@pytest.mark.parametrize("type_name", TYPES)
def test_bytes_do_not_depend_on_threads(type_name: str) -> None:
    x = golden_input("set-b")
    assert np.array_equal(quantize(x, type_name, threads=1), quantize(x, type_name, threads=2))


def test_one_dimensional_input_is_one_row() -> None:
    x = golden_input("set-a")
    assert np.array_equal(quantize(x[3], "Q6_K"), quantize(x[3:4], "Q6_K"))


def test_dequantize_accepts_flat_bytes() -> None:
    q = golden_bytes("set-a", "q4_K", False)
    assert np.array_equal(dequantize(q.ravel(), "Q4_K", 512), dequantize(q, "Q4_K", 512))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda x: quantize(x, "Q9_K"), UnknownTypeError, "unknown tensor type"),
        (lambda x: quantize(x[:, :500], "Q4_0"), ShapeError, "not a multiple of Q4_0's block size 32"),
        (lambda x: quantize(x[:, :384], "Q4_K"), ShapeError, "block size 256"),
        (lambda x: quantize(x, "Q4_K", imatrix=np.ones(100, np.float32)), ImatrixError, "100 values"),
        (lambda x: quantize(x, "Q4_K", imatrix=np.full(512, np.nan, np.float32)), ImatrixError, "non-finite"),
        (lambda x: quantize(x.astype(np.int32), "Q4_K"), ShapeError, "float array"),
        (lambda x: quantize(x[None], "Q4_K"), ShapeError, "rows, n_per_row"),
        (lambda x: dequantize(np.zeros(100, np.uint8), "Q4_K", 256), ShapeError, "whole rows"),
        (lambda x: quantize(x, "F64"), UnknownTypeError, "unknown tensor type"),
    ],
)
def test_errors_are_ours_with_one_line(call, error: type, match: str) -> None:
    x = np.array(golden_input("set-a"))
    with pytest.raises(error, match=match) as info:
        call(x)
    assert isinstance(info.value, QuantError) and "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_with_their_position(bad: float) -> None:
    x = np.array(golden_input("set-a"))
    x[5, 77] = bad
    with pytest.raises(NonFiniteError, match="row 5, column 77"):
        quantize(x, "Q4_K")


def test_unsupported_type_error_is_a_quant_error() -> None:
    assert issubclass(UnsupportedTypeError, QuantError)
