"""llama.cpp's ``--kl-divergence-base`` file: the base model's log-probabilities as 16-bit records.

Layout (little-endian), as ``llama-perplexity --kl-divergence-base F`` writes it:

* ``b"_logits_"``, u32 ``n_ctx``, i32 ``n_vocab``, i32 ``n_chunk``;
* ``n_chunk * n_ctx`` i32 tokens (the tokenized text, first token of each chunk *not* replaced
  by BOS);
* per chunk, per scored position (``n_ctx - 1 - n_ctx // 2`` of them, the second half of the chunk
  minus the last), one record of ``2 * ceil(n_vocab / 2) + 4`` u16: two f32 ``scale`` and
  ``min_log_prob``, then one code per vocabulary entry, zero padded to an even count.

A code q stands for the log-probability ``scale * q + min_log_prob`` (f32 arithmetic). Logits
more than 16 below the maximum are all coded 0. Records are written and read one chunk at a time:
the file is never held in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from ._kernels import softmax_rows
from .errors import BaseFileError

MAGIC = b"_logits_"
LOG_PROB_RANGE = np.float32(16.0)  # logits further below the maximum than this are coded 0
_CODE_MAX = np.float32(65535.0)
_HEADER = np.dtype([("n_ctx", "<u4"), ("n_vocab", "<i4"), ("n_chunk", "<i4")])


def record_len(n_vocab: int) -> int:
    """Number of u16 in one position's record (two f32 + the codes, padded to even)."""
    return 2 * ((n_vocab + 1) // 2) + 4


def scored_per_chunk(n_ctx: int) -> int:
    """Positions scored in one chunk: from ``n_ctx // 2`` to ``n_ctx - 2`` (each predicts the next)."""
    return n_ctx - 1 - n_ctx // 2


@dataclass(frozen=True)
class BaseHeader:
    """The header of a base file: context, vocabulary, chunk count and the evaluated tokens."""

    n_ctx: int
    n_vocab: int
    n_chunk: int
    tokens: np.ndarray  # int32, n_chunk * n_ctx

    @property
    def data_offset(self) -> int:
        return len(MAGIC) + _HEADER.itemsize + 4 * self.n_ctx * self.n_chunk

    @property
    def chunk_bytes(self) -> int:
        return 2 * scored_per_chunk(self.n_ctx) * record_len(self.n_vocab)

    @property
    def file_bytes(self) -> int:
        return self.data_offset + self.n_chunk * self.chunk_bytes


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, copy=False)


def softmax_terms(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the maximum logit (f32) and ``float(log(sum(expf(l - max))))`` (sum in f64)."""
    return softmax_rows(np.ascontiguousarray(logits, dtype=np.float32))


def encode_log_probs(logits: np.ndarray) -> np.ndarray:
    """Code rows of f32 logits as llama-perplexity does: u16 records of ``record_len(n_vocab)``."""
    logits = _f32(np.ascontiguousarray(logits))
    rows, n_vocab = logits.shape
    lmax, log_sum_exp = softmax_terms(logits)
    lmin = np.maximum(logits.min(axis=1), lmax - LOG_PROB_RANGE)
    min_log_prob = (lmin - lmax) - log_sum_exp
    scale = (lmax - lmin) / _CODE_MAX
    out = np.zeros((rows, record_len(n_vocab)), dtype="<u2")
    head = np.stack([scale, min_log_prob], axis=1).astype("<f4")
    out[:, :4] = head.view("<u2")
    nonzero = scale != 0
    inv = np.ones_like(scale)
    inv[nonzero] = np.float32(1.0) / scale[nonzero]
    # nearest_int(): f32 round-half-even; entries at or below the floor are coded 0
    q = np.rint(inv[:, None] * (logits - lmin[:, None])).astype(np.int32)
    q[~(logits > lmin[:, None]) | ~nonzero[:, None]] = 0
    out[:, 4 : 4 + n_vocab] = q.astype(np.uint16)
    return out


def decode_log_probs(records: np.ndarray, n_vocab: int) -> np.ndarray:
    """The f32 log-probabilities ``scale * q + min_log_prob`` of u16 records."""
    head = np.ascontiguousarray(records[:, :4]).view("<f4")
    codes = records[:, 4 : 4 + n_vocab].astype(np.float32)
    return head[:, 0:1] * codes + head[:, 1:2]


class BaseFileWriter:
    """Write a base file chunk by chunk; :meth:`finish` closes it and checks every chunk was written."""

    def __init__(self, path: str | os.PathLike[str], n_ctx: int, n_vocab: int, tokens: np.ndarray) -> None:
        tokens = np.asarray(tokens, dtype="<i4").ravel()
        if n_ctx <= 0 or len(tokens) % n_ctx or not len(tokens):
            raise ValueError("tokens must be a positive whole number of n_ctx chunks")
        self.header = BaseHeader(n_ctx, n_vocab, len(tokens) // n_ctx, tokens)
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._chunks = 0
        head = np.array([(n_ctx, n_vocab, self.header.n_chunk)], dtype=_HEADER)
        self._file.write(MAGIC + head.tobytes() + tokens.tobytes())

    def write_chunk(self, records: np.ndarray) -> None:
        """Append one chunk's records, shape ``(scored_per_chunk(n_ctx), record_len(n_vocab))``."""
        shape = (scored_per_chunk(self.header.n_ctx), record_len(self.header.n_vocab))
        if records.shape != shape:
            raise ValueError(f"chunk records of shape {records.shape}, expected {shape}")
        self._file.write(np.ascontiguousarray(records, dtype="<u2").tobytes())
        self._chunks += 1

    def close(self) -> None:
        """Close the file (complete or not)."""
        self._file.close()

    def finish(self) -> None:
        """Close the file; an error if chunks are missing."""
        self.close()
        if self._chunks != self.header.n_chunk:
            raise BaseFileError(f"{self.path.name}: {self._chunks} of {self.header.n_chunk} chunks written")


class BaseFileReader:
    """Read a base file: the header at once, then the records one chunk at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as err:
            raise BaseFileError(f"cannot read base file {self.path}: {err.strerror}") from None
        try:
            self.header = self._read_header()
        except BaseException:
            self._file.close()
            raise
        self._next_chunk = 0

    def _read_header(self) -> BaseHeader:
        name = self.path.name
        if self._file.read(len(MAGIC)) != MAGIC:
            raise BaseFileError(f"{name} is not a llama.cpp log-probability file (no '_logits_' header)")
        raw = self._file.read(_HEADER.itemsize)
        if len(raw) < _HEADER.itemsize:
            raise BaseFileError(f"{name}: truncated header")
        head = np.frombuffer(raw, dtype=_HEADER)[0]
        n_ctx, n_vocab, n_chunk = int(head["n_ctx"]), int(head["n_vocab"]), int(head["n_chunk"])
        if n_ctx < 4 or n_vocab <= 0 or n_chunk <= 0:
            raise BaseFileError(f"{name}: invalid header (n_ctx={n_ctx}, n_vocab={n_vocab}, n_chunk={n_chunk})")
        tokens = np.frombuffer(self._file.read(4 * n_ctx * n_chunk), dtype="<i4")
        header = BaseHeader(n_ctx, n_vocab, n_chunk, tokens.astype(np.int32))
        if len(tokens) != n_ctx * n_chunk or os.fstat(self._file.fileno()).st_size < header.file_bytes:
            raise BaseFileError(f"{name}: truncated ({n_chunk} chunks of {n_ctx} tokens announced)")
        return header

    def read_chunk(self) -> np.ndarray:
        """The next chunk's records as u16 ``(scored_per_chunk(n_ctx), record_len(n_vocab))``."""
        h = self.header
        if self._next_chunk >= h.n_chunk:
            raise BaseFileError(f"{self.path.name}: read past the last chunk")
        raw = self._file.read(h.chunk_bytes)
        if len(raw) != h.chunk_bytes:
            raise BaseFileError(f"{self.path.name}: truncated in chunk {self._next_chunk}")
        self._next_chunk += 1
        return np.frombuffer(raw, dtype="<u2").reshape(scored_per_chunk(h.n_ctx), record_len(h.n_vocab))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BaseFileReader:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
