"""The kernel registry agrees with the type table, and the package's map agrees with the registry."""

from __future__ import annotations

import re

import gguf
import pytest

import quant_core.kernels as kernels
from quant_core import QTYPES, UnknownTypeError, qtype
from quant_core.kernels import DEQUANTIZERS, QUANTIZERS, kernel_map, registry
from quant_core.qtypes import QK_K, is_float_type

_ROW = re.compile(r"^(\w+)\s+(\w+)\s+(\w+)$")


def _docstring_map() -> dict[str, tuple[str, str]]:
    """The type -> (quantize module, dequantize module) rows of the package docstring's table."""
    rows = {}
    for line in (kernels.__doc__ or "").splitlines():
        m = _ROW.match(line.strip())
        if m and m.group(1) != "type":
            assert m.group(1) not in rows, f"{m.group(1)} listed twice"
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_every_registered_kernel_names_a_known_type() -> None:
    for name in list(QUANTIZERS) + list(DEQUANTIZERS):
        assert qtype(name).name == name  # the table's spelling, not just a case-insensitive match


def test_every_type_of_the_table_has_both_kernels() -> None:
    missing = [
        (name, kind)
        for name in QTYPES
        for kind, kernels_ in (("quantize", QUANTIZERS), ("dequantize", DEQUANTIZERS))
        if name not in kernels_
    ]
    assert not missing


def test_package_docstring_table_is_the_registry() -> None:
    documented = _docstring_map()
    assert documented == kernel_map()
    assert list(documented) == list(QTYPES)  # listed in the table's order


def test_kernel_map_names_existing_modules() -> None:
    for quant_module, dequant_module in kernel_map().values():
        for module in (quant_module, dequant_module):
            assert module in kernels.__dict__, f"{module} is not a module of quant_core.kernels"


def test_a_second_kernel_for_a_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "QUANTIZERS", dict(QUANTIZERS))
    monkeypatch.setattr(registry, "QUANTIZER_MODULES", dict(registry.QUANTIZER_MODULES))
    with pytest.raises(ValueError, match="second kernel registered for Q4_K"):
        registry.quantizer("Q4_K")(lambda x, qw: x)


def test_table_sizes_are_ggufs() -> None:
    for name, qt in QTYPES.items():
        assert (qt.block_size, qt.type_size) == gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]]
    assert QK_K == 256 == QTYPES["Q4_K"].block_size


def test_scale_group_divides_the_block() -> None:
    for qt in QTYPES.values():
        assert qt.block_size % qt.scale_group == 0, qt.name
        assert (qt.scale_group == 1) == qt.is_float, qt.name
    assert QTYPES["Q6_K"].scale_group == 16 and QTYPES["Q4_K"].scale_group == 32


def test_imatrix_flags_are_consistent() -> None:
    for qt in QTYPES.values():
        if qt.ggml_requires_imatrix:
            assert qt.llama_requires_imatrix, qt.name  # llama-quantize refuses what ggml refuses
        if qt.llama_requires_imatrix:
            assert qt.uses_imatrix, qt.name
    ggml_list = {n for n, qt in QTYPES.items() if qt.ggml_requires_imatrix}
    assert ggml_list == {"IQ2_XXS", "IQ2_XS", "IQ1_S"}  # ggml_quantize_requires_imatrix


def test_is_float_type() -> None:
    assert [n for n in QTYPES if is_float_type(n)] == ["F32", "F16", "BF16"]
    assert is_float_type("bf16") and not is_float_type("Q8_0")
    assert not is_float_type("F64") and not is_float_type("I8")  # not types we write
    with pytest.raises(UnknownTypeError):
        qtype("F64")
