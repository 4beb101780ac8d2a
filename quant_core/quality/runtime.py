"""llama.cpp in-process (llama-cpp-python's bindings): load a model, tokenize, and compute the
logits ``llama-perplexity`` scores, with the context set up exactly as that tool sets its own.

``llama-perplexity -c N`` (defaults ``-b 2048``, ``-ub 512``, flash attention *auto*) makes one
context of ``n_seq * N`` cells with ``n_seq = max(1, 2048 // N)`` sequences and decodes ``n_seq``
chunks per call, each at positions ``0 .. N-1`` in its own sequence, the first token replaced by
BOS when the vocabulary adds one, and logits requested only for the second half of the chunk.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .errors import QualityError, RuntimeMissingError
from .logits_file import scored_per_chunk

N_BATCH = 2048  # llama-perplexity's default -b
N_UBATCH = 512  # and -ub

_state: dict[str, Any] = {}


def runtime_available() -> bool:
    """Whether llama-cpp-python (the ``quality`` extra) can be imported."""
    try:
        load_runtime()
    except RuntimeMissingError:
        return False
    return True


def runtime_version() -> str:
    """The llama-cpp-python version (part of the cache keys: another llama.cpp, other numbers)."""
    import llama_cpp

    return str(llama_cpp.__version__)


def load_runtime() -> ModuleType:
    """llama-cpp-python's low-level module, initialised once with llama.cpp's log silenced."""
    if "ll" in _state:
        return _state["ll"]
    # llama.cpp's OpenMP threads spin between graph evaluations by default; on a machine that is
    # busy (numba's workers, the GUI) that spinning made a demo-model run 10x slower. Read once,
    # when libgomp starts, so the entry points set it first too.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        from llama_cpp import llama_cpp as ll
    except (ImportError, OSError):  # OSError: the package is there but its libllama is not loadable
        raise RuntimeMissingError() from None

    @ll.llama_log_callback
    def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    ll.llama_log_set(_quiet, ctypes.c_void_p(0))
    ll.llama_backend_init()
    _state["log"] = _quiet  # keep the callback alive as long as llama.cpp may call it
    _state["ll"] = ll
    return ll


def default_threads() -> int:
    """Threads for evaluation: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LlamaModel:
    """A GGUF loaded by llama.cpp, with its vocabulary facts. Call :meth:`close` to free it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.ll = load_runtime()
        self.path = Path(path)
        if not self.path.is_file():
            raise QualityError(f"no such model file: {self.path}")
        params = self.ll.llama_model_default_params()
        self.ptr = self.ll.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.ptr:
            raise QualityError(f"llama.cpp cannot load {self.path.name} (not a model it supports?)")
        self.vocab = self.ll.llama_model_get_vocab(self.ptr)
        self.n_vocab = int(self.ll.llama_vocab_n_tokens(self.vocab))
        self.add_bos = bool(self.ll.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(self.ll.llama_vocab_bos(self.vocab))
        if self.ll.llama_vocab_get_add_eos(self.vocab):
            self.close()
            raise QualityError(f"{self.path.name}: vocabularies that append EOS cannot be scored")

    def tokenize(self, text: bytes) -> np.ndarray:
        """Tokens of ``text`` with special tokens added (BOS), special text not parsed."""
        n_max = len(text) + 16
        for _ in range(2):
            buf = (self.ll.llama_token * n_max)()
            n = self.ll.llama_tokenize(self.vocab, text, len(text), buf, n_max, True, False)
            if n >= 0:
                return np.ctypeslib.as_array(buf)[:n].astype(np.int32)
            n_max = -n
        raise QualityError(f"llama.cpp could not tokenize the text with {self.path.name}")

    def close(self) -> None:
        if self.ptr:
            self.ll.llama_model_free(self.ptr)
            self.ptr = None


class ChunkEvaluator:
    """A llama.cpp context configured like llama-perplexity's, yielding the scored logits per chunk."""

    def __init__(self, model: LlamaModel, n_ctx: int, threads: int | None = None, n_batch: int = N_BATCH) -> None:
        self.ll, self.model, self.n_ctx = model.ll, model, n_ctx
        self.n_seq = max(1, n_batch // n_ctx)
        self.n_batch = min(n_batch, self.n_seq * n_ctx)
        threads = threads or default_threads()
        p = self.ll.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max = self.n_seq * n_ctx, self.n_batch, N_UBATCH, self.n_seq
        p.n_threads = p.n_threads_batch = threads
        p.flash_attn_type = self.ll.LLAMA_FLASH_ATTN_TYPE_AUTO
        p.swa_full = False  # llama.cpp's common defaults, not the library's
        p.kv_unified = False
        self.ctx = self.ll.llama_init_from_model(model.ptr, p)
        if not self.ctx:
            raise QualityError(f"llama.cpp could not create a context of {self.n_seq} x {n_ctx} tokens")
        self.batch = self.ll.llama_batch_init(self.n_batch, 0, 1)
        self._batch_ready = True

    def iter_chunks(self, tokens: np.ndarray, n_chunk: int) -> Iterator[np.ndarray]:
        """Per chunk, in order: f32 logits of its scored positions, ``(scored_per_chunk(n_ctx), n_vocab)``."""
        for first_chunk in range(0, n_chunk, self.n_seq):
            n_seq = min(self.n_seq, n_chunk - first_chunk)
            yield from self._evaluate(tokens[first_chunk * self.n_ctx : (first_chunk + n_seq) * self.n_ctx], n_seq)

    def _evaluate(self, tokens: np.ndarray, n_seq: int) -> list[np.ndarray]:
        ll, n_ctx, first = self.ll, self.n_ctx, self.n_ctx // 2
        ll.llama_memory_clear(ll.llama_get_memory(self.ctx), True)
        outputs: list[list[np.ndarray]] = [[] for _ in range(n_seq)]
        for start in range(0, n_ctx, self.n_batch):
            size = min(n_ctx - start, self.n_batch)
            rows = []
            for seq in range(n_seq):
                chunk = tokens[seq * n_ctx + start : seq * n_ctx + start + size].copy()
                if start == 0 and self.model.add_bos:
                    chunk[0] = self.model.bos
                rows.append((seq, chunk, np.arange(start, start + size, dtype=np.int32)))
            n_out = self._decode(rows, first)
            if n_out:
                logits = self._logits(n_out)
                per_seq = n_out // n_seq
                for seq in range(n_seq):
                    outputs[seq].append(logits[seq * per_seq : (seq + 1) * per_seq].copy())
        scored = scored_per_chunk(n_ctx)
        return [np.concatenate(o)[:scored] for o in outputs]

    def _decode(self, rows: list[tuple[int, np.ndarray, np.ndarray]], first: int) -> int:
        b, n = self.batch, sum(len(r[1]) for r in rows)
        token = np.ctypeslib.as_array(b.token, shape=(n,))
        pos = np.ctypeslib.as_array(b.pos, shape=(n,))
        n_seq_id = np.ctypeslib.as_array(b.n_seq_id, shape=(n,))
        want = np.ctypeslib.as_array(b.logits, shape=(n,))
        i = 0
        for seq, chunk, positions in rows:
            m = len(chunk)
            token[i : i + m] = chunk
            pos[i : i + m] = positions
            want[i : i + m] = positions >= first
            for k in range(i, i + m):
                b.seq_id[k][0] = seq
            i += m
        n_seq_id[:] = 1
        b.n_tokens = n
        rc = self.ll.llama_decode(self.ctx, b)
        if rc != 0:
            raise QualityError(f"llama.cpp failed to evaluate a batch of {n} tokens (code {rc})")
        return int(want.sum())

    def _logits(self, n_out: int) -> np.ndarray:
        ptr = self.ll.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n_out * self.model.n_vocab,)).reshape(n_out, self.model.n_vocab)

    def close(self) -> None:
        if self._batch_ready:
            self.ll.llama_batch_free(self.batch)
            self._batch_ready = False
        if self.ctx:
            self.ll.llama_free(self.ctx)
            self.ctx = None
