"""Compiled kernels are cached under a name derived from their sources, so none is ever stale."""

from __future__ import annotations

from pathlib import Path

import numba
import pytest

from quant_core import _numba_cache


def _fake_package(root: Path, kernel_text: str) -> Path:
    (root / "kernels").mkdir(parents=True, exist_ok=True)
    (root / "kernels" / "q4_k.py").write_text(kernel_text)
    (root / "kernels" / "_common.py").write_text("x = 1\n")
    (root / "stats.py").write_text("")
    (root / "plan.py").write_text("not a kernel")
    return root


def test_digest_follows_kernel_sources_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_numba_cache, "_PACKAGE", _fake_package(tmp_path, "a = 1\n"))
    first = _numba_cache.source_digest()
    (tmp_path / "plan.py").write_text("changed, but no kernels here")
    assert _numba_cache.source_digest() == first
    (tmp_path / "kernels" / "_common.py").write_text("x = 2\n")  # a helper kernels inline
    assert _numba_cache.source_digest() != first


def test_configure_uses_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    _numba_cache.configure()
    assert Path(numba.config.CACHE_DIR).parent == tmp_path / "quant-explorer"
    assert Path(numba.config.CACHE_DIR).name == f"numba-{_numba_cache.source_digest()}"


def test_configure_respects_numba_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setattr(numba.config, "CACHE_DIR", "unchanged")
    _numba_cache.configure()
    assert numba.config.CACHE_DIR == "unchanged"
