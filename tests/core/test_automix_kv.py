"""KV-cache bytes: the formula, sliding-window layers, and llama.cpp's own allocation."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from gguf import GGUFValueType

from quant_core.assets import DEMO_MODEL
from quant_core.automix import KVError, kv_cache_bytes, kv_layout
from quant_core.model import MetaField, open_model

MIB = 1024**2


def _header(arch: str, n_layer: int, **keys: object) -> SimpleNamespace:
    """A model header with just the metadata kv_layout reads."""
    meta = [MetaField("general.architecture", arch.encode(), GGUFValueType.STRING)]
    meta += [MetaField(f"{arch}.{k}", v, GGUFValueType.UINT32) for k, v in keys.items()]
    return SimpleNamespace(arch=arch, n_layer=n_layer, metadata=meta, path=Path(f"{arch}.gguf"))


# Gemma-3-270M's attention metadata (gemma-3-270m-q4_k_m.gguf from the PyPI packages)
GEMMA3_270M = dict(
    embedding_length=640,
    **{
        "attention.head_count": 4,
        "attention.head_count_kv": 1,
        "attention.key_length": 256,
        "attention.value_length": 256,
        "attention.sliding_window": 512,
    },
)


def test_llama_formula(small_gguf: Path) -> None:
    """3 layers x 1 KV head x 64 dims, F16, 1000 tokens padded to 1024 cells."""
    kv = kv_cache_bytes(open_model(small_gguf), 1000)
    assert kv.cells == 1024 and kv.swa_cells == 0
    assert kv.k_bytes == kv.v_bytes == 3 * 64 * 2 * 1024
    q8 = kv_cache_bytes(open_model(small_gguf), 1000, "Q8_0", "Q8_0")
    assert q8.k_bytes == 3 * (64 // 32 * 34) * 1024


def test_gemma3_sliding_window_layers() -> None:
    layout = kv_layout(_header("gemma3", 18, **GEMMA3_270M))
    assert [i for i, s in enumerate(layout.swa) if not s] == [5, 11, 17]
    assert layout.head_k == (256,) * 18


@pytest.mark.parametrize(
    ("n_ctx", "swa_full", "cache_type", "full_mib", "swa_mib"),
    [  # llama.cpp b11312 (llama-cpp-python 0.3.36) "llama_kv_cache: size = ..." for Gemma-3-270M
        (4096, False, "F16", 12.00, 15.00),
        (1000, False, "F16", 3.00, 15.00),
        (300, False, "F16", 1.50, 7.50),
        (4096, True, "F16", 12.00, 60.00),
        (8192, False, "Q8_0", 12.75, 7.97),
    ],
)
def test_gemma3_matches_llama_cpp(n_ctx: int, swa_full: bool, cache_type: str, full_mib: float, swa_mib: float) -> None:
    kv = kv_cache_bytes(_header("gemma3", 18, **GEMMA3_270M), n_ctx, cache_type, cache_type, swa_full=swa_full)
    assert kv.total / MIB == pytest.approx(full_mib + swa_mib, abs=0.01)


def test_unsupported_caches_are_refused() -> None:
    with pytest.raises(KVError, match="not supported"):
        kv_layout(_header("mamba", 4, **{"ssm.state_size": 16, "attention.head_count": 0}))
    with pytest.raises(KVError, match="no known layer pattern"):
        kv_layout(_header("newarch", 4, **{"attention.head_count": 4, "attention.sliding_window": 128}))
    with pytest.raises(KVError):
        kv_cache_bytes(_header("gemma3", 18, **GEMMA3_270M), 512, "Q4_K", "F16")


_callbacks: list[object] = []  # ctypes callbacks must outlive every call llama.cpp makes to them


def _llama_cpp_kv_log(path: Path, n_ctx: int) -> list[tuple[int, int, float]]:
    """(cells, layers, MiB) of each KV cache llama.cpp creates for a context of ``n_ctx``."""
    ll = pytest.importorskip("llama_cpp.llama_cpp")
    lines: list[str] = []

    @ll.llama_log_callback
    def capture(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", "replace"))

    @ll.llama_log_callback
    def quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    _callbacks.extend([capture, quiet])
    ll.llama_backend_init()
    ll.llama_log_set(capture, ctypes.c_void_p(0))
    try:
        model = ll.llama_model_load_from_file(str(path).encode(), ll.llama_model_default_params())
        assert model, f"llama.cpp cannot load {path}"
        params = ll.llama_context_default_params()
        params.n_ctx = n_ctx
        params.swa_full = False
        ctx = ll.llama_init_from_model(model, params)
        ll.llama_free(ctx)
        ll.llama_model_free(model)
    finally:
        ll.llama_log_set(quiet, ctypes.c_void_p(0))
    found = re.findall(r"size =\s*([\d.]+) MiB \(\s*(\d+) cells,\s*(\d+) layers", "".join(lines))
    return [(int(cells), int(layers), float(mib)) for mib, cells, layers in found]


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="the trained demo model is not in assets/")
@pytest.mark.parametrize("n_ctx", [512, 1000, 4096])
def test_demo_model_matches_llama_cpp(n_ctx: int) -> None:
    reported = _llama_cpp_kv_log(DEMO_MODEL, n_ctx)
    kv = kv_cache_bytes(open_model(DEMO_MODEL), n_ctx)
    assert len(reported) == 1
    cells, layers, mib = reported[0]
    assert cells == kv.cells
    assert layers == open_model(DEMO_MODEL).n_layer
    assert kv.total / MIB == pytest.approx(mib, abs=0.005)
