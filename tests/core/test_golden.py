"""Our quantizers write exactly ggml's bytes, and our dequantizers read them exactly as gguf-py."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from quant_core import ImatrixError, dequantize, qtype, quantize

from .golden import SETS, describe_mismatch, golden_bytes, golden_imatrix, golden_input

# Types of the foundation issue; the lattice i-quants are listed separately.
BASE_TYPES = [
    "f16",
    "bf16",
    "q4_0",
    "q4_1",
    "q5_0",
    "q5_1",
    "q8_0",
    "q2_K",
    "q3_K",
    "q4_K",
    "q5_K",
    "q6_K",
    "iq4_nl",
    "iq4_xs",
    "tq1_0",
    "tq2_0",
    "mxfp4",
    "nvfp4",
]
LATTICE_TYPES = ["iq3_xxs", "iq3_s", "iq2_xxs", "iq2_xs", "iq2_s", "iq1_s", "iq1_m"]
IMATRIX_REQUIRED = ["iq2_xxs", "iq2_xs", "iq1_s"]


def _check(set_name: str, type_key: str, with_imatrix: bool) -> None:
    want = golden_bytes(set_name, type_key, with_imatrix)
    if want is None:  # float types have no separate imatrix output: they ignore it
        want = golden_bytes(set_name, type_key, False)
    x = golden_input(set_name)
    qw = golden_imatrix(set_name) if with_imatrix else None
    got = quantize(x, type_key, imatrix=qw)
    qt = qtype(type_key)
    assert got.dtype == np.uint8
    assert np.array_equal(got, want), describe_mismatch(got, want, qt.type_size)


def _golden_cases(types: list[str]) -> list:
    cases = []
    for set_name in SETS:
        for t in types:
            for imat in (False, True):
                if imat is False and t in IMATRIX_REQUIRED:
                    continue
                cases.append(pytest.param(set_name, t, imat, id=f"{set_name}-{t}-{'imat' if imat else 'plain'}"))
    return cases


@pytest.mark.parametrize("set_name,type_key,with_imatrix", _golden_cases(BASE_TYPES))
def test_quantize_matches_ggml(set_name: str, type_key: str, with_imatrix: bool) -> None:
    _check(set_name, type_key, with_imatrix)


@pytest.mark.parametrize("set_name,type_key,with_imatrix", _golden_cases(LATTICE_TYPES))
def test_lattice_quantize_matches_ggml(set_name: str, type_key: str, with_imatrix: bool) -> None:
    _check(set_name, type_key, with_imatrix)


@pytest.mark.parametrize("type_key", IMATRIX_REQUIRED)
def test_types_that_need_an_imatrix_refuse_without(type_key: str) -> None:
    with pytest.raises(ImatrixError, match="importance matrix"):
        quantize(golden_input("set-a"), type_key)


@pytest.mark.parametrize("set_name", SETS)
@pytest.mark.parametrize("type_key", BASE_TYPES + LATTICE_TYPES)
def test_dequantize_matches_gguf(set_name: str, type_key: str) -> None:
    want_bytes = golden_bytes(set_name, type_key, False)
    if want_bytes is None:
        want_bytes = golden_bytes(set_name, type_key, True)
    qt = qtype(type_key)
    n = golden_input(set_name).shape[1]
    got = dequantize(want_bytes, type_key, n)
    reference = gguf.dequantize(want_bytes, qt.ggml_type).reshape(-1, n).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == reference.shape
    assert np.array_equal(got.view(np.uint32), reference.view(np.uint32))
