"""Compute an importance matrix from a model and a text, as ``llama-imatrix`` does.

``llama-imatrix -c N`` (defaults ``-b 2048``, ``-ub 512``) makes one context of ``n_seq * N``
cells with ``n_seq = max(1, 2048 // N)`` sequences and decodes ``n_seq`` chunks of ``N`` tokens
per call, each at positions ``0 .. N-1`` in its own sequence, the first token replaced by BOS
when the vocabulary adds one, with outputs requested for *every* token (otherwise llama.cpp
would skip the last layer's feed-forward for the rest). Its evaluation callback collects the
activations (see :mod:`.collector`); at the end the sums and counts are written, sorted by name.

:func:`iter_imatrix` is a generator of :class:`ImatrixProgress` ending with an
:class:`ImatrixResult`; stop iterating to cancel (nothing is written before the end, and the
file appears complete or not at all).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImatrixError, QuantError
from ..imatrix import write_imatrix_dat, write_imatrix_gguf
from ..partial_files import create_partial, sweep_partials
from ..quality.errors import QualityError
from ..quality.runtime import N_BATCH, N_UBATCH, LlamaModel, default_threads, load_runtime
from .collector import Collector
from .ggml_view import TensorPtr


@dataclass(frozen=True)
class ImatrixProgress:
    """Chunks evaluated so far out of ``total``."""

    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class ImatrixResult:
    """The written file and what it holds."""

    path: Path
    chunks: int
    chunk_size: int
    entries: int
    tokens: int
    seconds: float


def output_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """ "gguf" or "dat": ``fmt`` when given, else "dat" for a ``.dat`` output, "gguf" otherwise."""
    if fmt is not None:
        if fmt not in ("gguf", "dat"):
            raise ImatrixError(f"unknown importance matrix format {fmt!r} (gguf or dat)")
        return fmt
    return "dat" if Path(path).suffix.lower() == ".dat" else "gguf"


def count_chunks(n_tokens: int, n_ctx: int, chunks: int | None) -> int:
    """Chunks llama-imatrix evaluates; a one-line error when the text is too short."""
    if n_ctx < 16:
        raise ImatrixError(f"context of {n_ctx} tokens is too small (at least 16)")
    if n_tokens < 2 * n_ctx:
        raise ImatrixError(
            f"the text has {n_tokens} tokens; at least {2 * n_ctx} (two chunks of {n_ctx}) are needed: "
            "use a longer text or a smaller --ctx"
        )
    n_max = n_tokens // n_ctx
    return n_max if chunks is None or chunks < 0 else min(chunks, n_max)


def iter_imatrix(
    model_path: str | os.PathLike[str],
    text: bytes,
    out_path: str | os.PathLike[str],
    n_ctx: int = 512,
    chunks: int | None = None,
    dataset: str = "",
    fmt: str | None = None,
    process_output: bool = False,
    threads: int | None = None,
) -> Iterator[ImatrixProgress | ImatrixResult]:
    """Evaluate ``text`` with the model at ``model_path`` and write its importance matrix.

    ``dataset`` is the name stored in the file (llama-imatrix stores the ``-f`` path as given).
    ``fmt`` "gguf" or "dat" (default: from the suffix of ``out_path``). Raises QuantError
    subclasses (one line) for a model llama.cpp cannot load, a short text or a write failure.
    """
    out = Path(out_path)
    fmt = output_format(out, fmt)
    _check_output(out, Path(model_path))
    start = time.perf_counter()
    model = LlamaModel(model_path)
    try:
        tokens = model.tokenize(text)
        n_chunk = count_chunks(len(tokens), n_ctx, chunks)
        collector = Collector(process_output=process_output)
        yield ImatrixProgress(0, n_chunk)
        runner = _Runner(model, collector, n_ctx, threads)
        try:
            yield from runner.run(tokens, n_chunk)
        finally:
            runner.close()
    finally:
        model.close()
    if not collector.entries:
        raise ImatrixError("no matrix products were seen: nothing to write")
    _write(collector, out, fmt, n_ctx, dataset)
    yield ImatrixResult(
        out, collector.chunk_count(n_ctx), n_ctx, len(collector.entries), n_chunk * n_ctx, time.perf_counter() - start
    )


def _check_output(out: Path, model: Path) -> None:
    """Refuse at once (not after the whole text) an output that cannot be written."""
    if out.exists() and out.resolve() == model.resolve():
        raise ImatrixError("the output would overwrite the model")
    if out.is_dir():
        raise ImatrixError(f"cannot write {out}: it is a folder")
    folder = out.parent
    if not folder.is_dir():
        raise ImatrixError(f"cannot write {out}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImatrixError(f"cannot write {out}: the folder is not writable")


def _write(collector: Collector, out: Path, fmt: str, n_ctx: int, dataset: str) -> None:
    """Write through a partial file renamed at the end (a failure leaves nothing)."""
    sweep_partials(out.parent)
    try:
        partial = create_partial(out)
    except OSError as err:
        raise ImatrixError(f"cannot write {out}: {err.strerror}") from None
    sums, counts = collector.file_tables()
    chunks = collector.chunk_count(n_ctx)
    try:
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp made it private; a finished file is not
        if fmt == "dat":
            write_imatrix_dat(partial, sums, counts, n_ctx, chunks, dataset)
        else:
            write_imatrix_gguf(partial, sums, counts, n_ctx, chunks, [dataset])
        os.replace(partial, out)
    except OSError as err:
        raise ImatrixError(f"cannot write {out}: {err.strerror}") from None
    finally:
        with suppress(OSError):
            partial.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_DEFERRED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def _deferred_signals() -> Iterator[None]:
    """Hold Python's signal handlers back while llama.cpp calls our callback, then run them.

    A handler that raises (Ctrl+C's KeyboardInterrupt) can fire at the very entry of the
    callback, outside any ``try``: ctypes would print and swallow it and return False, which
    silently drops that node's activations. So during a decode a signal only records itself,
    and is raised again, to the handlers it was meant for, once llama.cpp has returned.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only ever handled on the main thread
        return
    caught: list[int] = []
    previous = {}
    for signum in _DEFERRED:
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = signal.signal(signum, lambda n, _f: caught.append(n))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


class _Runner:
    """A llama.cpp context set up as llama-imatrix's, with the collecting callback installed."""

    def __init__(self, model: LlamaModel, collector: Collector, n_ctx: int, threads: int | None) -> None:
        ll = self.ll = load_runtime()
        self.model, self.collector, self.n_ctx = model, collector, n_ctx
        self.n_seq = max(1, N_BATCH // n_ctx)
        self.n_batch = min(N_BATCH, self.n_seq * n_ctx)
        self.error: BaseException | None = None
        self.callback = ll.ggml_backend_sched_eval_callback(self._on_node)  # kept alive with self
        p = ll.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max = self.n_seq * n_ctx, self.n_batch, N_UBATCH, self.n_seq
        p.n_threads = p.n_threads_batch = threads or default_threads()
        p.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_AUTO
        p.swa_full = False
        p.kv_unified = False
        p.cb_eval = self.callback
        p.cb_eval_user_data = None
        self.ctx = ll.llama_init_from_model(model.ptr, p)
        if not self.ctx:
            raise QualityError(f"llama.cpp could not create a context of {self.n_seq} x {n_ctx} tokens")
        self.batch = ll.llama_batch_init(self.n_batch, 0, 1)

    def _on_node(self, ptr: int, ask: bool, _user: int) -> bool:
        """llama.cpp's eval callback: never raises (an error is kept and stops the decode)."""
        try:
            t = ctypes.cast(ptr, TensorPtr).contents
            if ask:
                return self.collector.wants(t)
            self.collector.collect(t)
            return True
        except BaseException as err:  # noqa: BLE001  raised again after llama_decode returns
            self.error = err
            return False

    def run(self, tokens: np.ndarray, n_chunk: int) -> Iterator[ImatrixProgress]:
        n_ctx = self.n_ctx
        for first in range(0, n_chunk, self.n_seq):
            n_seq = min(self.n_seq, n_chunk - first)
            self.ll.llama_memory_clear(self.ll.llama_get_memory(self.ctx), True)
            start = first * n_ctx
            for offset in range(0, n_ctx, self.n_batch):
                size = min(n_ctx - offset, self.n_batch)
                rows = []
                for seq in range(n_seq):
                    chunk = tokens[start + seq * n_ctx + offset : start + seq * n_ctx + offset + size].copy()
                    if offset == 0 and self.model.add_bos:
                        chunk[0] = self.model.bos
                    rows.append(chunk)
                self._decode(rows, offset)
            yield ImatrixProgress(first + n_seq, n_chunk)

    def _decode(self, rows: list[np.ndarray], offset: int) -> None:
        b, n = self.batch, sum(len(r) for r in rows)
        token = np.ctypeslib.as_array(b.token, shape=(n,))
        pos = np.ctypeslib.as_array(b.pos, shape=(n,))
        np.ctypeslib.as_array(b.n_seq_id, shape=(n,))[:] = 1
        np.ctypeslib.as_array(b.logits, shape=(n,))[:] = 1  # every output: the last layer runs in full
        i = 0
        for seq, chunk in enumerate(rows):
            m = len(chunk)
            token[i : i + m] = chunk
            pos[i : i + m] = np.arange(offset, offset + m, dtype=np.int32)
            for k in range(i, i + m):
                b.seq_id[k][0] = seq
            i += m
        b.n_tokens = n
        with _deferred_signals():
            rc = self.ll.llama_decode(self.ctx, b)
        if self.error is not None:
            err, self.error = self.error, None
            if isinstance(err, QuantError | KeyboardInterrupt | MemoryError):
                raise err
            raise ImatrixError(f"collecting activations failed: {err}") from err
        if rc != 0:
            raise QualityError(f"llama.cpp failed to evaluate a batch of {n} tokens (code {rc})")

    def close(self) -> None:
        if self.ctx:
            self.ll.llama_batch_free(self.batch)
            self.ll.llama_free(self.ctx)
            self.ctx = None
