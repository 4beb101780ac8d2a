"""Where measurements keep their files: base log-probabilities and temporary exports.

The folder is ``$QUANT_EXPLORER_QUALITY_CACHE`` if set, else
``$XDG_CACHE_HOME/quant-explorer/quality`` (``~/.cache/quant-explorer/quality``). A base pass is
stored once per (base file identity, text, context, chunks, llama.cpp version) in llama.cpp's own
``--kl-divergence-base`` format, so ``llama-perplexity --kl-divergence`` can read it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import QualityError

ENV_VAR = "QUANT_EXPLORER_QUALITY_CACHE"


def cache_dir() -> Path:
    """The quality cache folder (created on first use)."""
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quant-explorer" / "quality"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QualityError(f"cannot create the cache folder {root}: {err.strerror}") from None
    return root


def file_identity(path: str | os.PathLike[str]) -> dict[str, str | int]:
    """What identifies a model file without reading it: real path, size and modification time."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def base_file_key(base_path: str | os.PathLike[str], text: bytes, n_ctx: int, chunks: int | None, runtime: str) -> str:
    """A short hash naming the base pass of this model on this text with these settings."""
    doc = {
        "base": file_identity(base_path),
        "text_sha256": hashlib.sha256(text).hexdigest(),
        "n_ctx": n_ctx,
        "chunks": chunks,
        "runtime": runtime,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def cached_base_file(
    base_path: str | os.PathLike[str], text: bytes, n_ctx: int, chunks: int | None, runtime: str
) -> Path:
    """Path of the cached base file for these inputs (it may not exist yet)."""
    return cache_dir() / f"base-{base_file_key(base_path, text, n_ctx, chunks, runtime)}.kld"


@contextmanager
def temporary_file(suffix: str, directory: Path | None = None) -> Iterator[Path]:
    """A fresh file name in the cache folder (or ``directory``), removed on exit whatever happens."""
    folder = directory or cache_dir() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".quality-", suffix=suffix, dir=folder)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
