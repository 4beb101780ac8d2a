"""Quality of a candidate GGUF against a base GGUF, as ``llama-perplexity --kl-divergence``.

Two passes, each a generator of :class:`QualityProgress` (stop iterating to cancel; the llama.cpp
model and context are freed at once):

1. the base pass tokenizes the text, evaluates the base model chunk by chunk and writes its
   log-probabilities as llama.cpp's 16-bit records (``--kl-divergence-base``), cached on disk;
2. the candidate pass re-reads tokens and records from that file, evaluates the candidate on the
   same chunks and accumulates the statistics, then yields a :class:`QualityReport`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .cache import cached_base_file, temporary_file
from .errors import QualityError
from .logits_file import BaseFileReader, BaseFileWriter, encode_log_probs, scored_per_chunk
from .runtime import ChunkEvaluator, LlamaModel, load_runtime, runtime_version
from .stats import KldAccumulator, QualityReport

MIN_SCORED = 100  # llama-perplexity prints no statistics below this many scored positions


@dataclass(frozen=True)
class QualityProgress:
    """Where a measurement stands: ``stage`` is "export", "base" or "candidate"."""

    stage: str
    done: float
    total: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def read_text_file(path: str | os.PathLike[str]) -> bytes:
    """An evaluation text as ``llama-perplexity -f`` reads it (one trailing newline dropped)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise QualityError(f"cannot read text file {path}: {err.strerror}") from None
    return data[:-1] if data.endswith(b"\n") else data


def _check_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise QualityError(f"no such {what} file: {p}")
    return p


def count_chunks(n_tokens: int, n_ctx: int, chunks: int | None) -> int:
    """Chunks llama-perplexity evaluates; a clear error when the text is too short."""
    if n_ctx < 8:
        raise QualityError(f"context of {n_ctx} tokens is too small (at least 8)")
    if n_tokens < 2 * n_ctx:
        raise QualityError(
            f"the text has {n_tokens} tokens; at least {2 * n_ctx} (two chunks of {n_ctx}) "
            f"are needed: use a longer text or a smaller --ctx"
        )
    n_chunk = n_tokens // n_ctx if chunks is None or chunks < 0 else min(chunks, n_tokens // n_ctx)
    if n_chunk * scored_per_chunk(n_ctx) < MIN_SCORED:
        raise QualityError(
            f"{n_chunk} chunks of {n_ctx} score only {n_chunk * scored_per_chunk(n_ctx)} tokens; "
            f"at least {MIN_SCORED} are needed"
        )
    return n_chunk


def iter_base_pass(
    base_path: str | os.PathLike[str],
    text: bytes,
    out_path: str | os.PathLike[str],
    n_ctx: int = 512,
    chunks: int | None = None,
    threads: int | None = None,
) -> Iterator[QualityProgress]:
    """Write the base model's log-probabilities on ``text`` to ``out_path`` (renamed when complete)."""
    out = Path(out_path)
    model = LlamaModel(_check_file(base_path, "base model"))
    evaluator = None
    try:
        tokens = model.tokenize(text)
        n_chunk = count_chunks(len(tokens), n_ctx, chunks)
        tokens = tokens[: n_chunk * n_ctx]
        evaluator = ChunkEvaluator(model, n_ctx, threads)
        with temporary_file(".part", out.parent) as tmp:
            writer = BaseFileWriter(tmp, n_ctx, model.n_vocab, tokens)
            try:
                yield QualityProgress("base", 0, n_chunk)
                for k, logits in enumerate(evaluator.iter_chunks(tokens, n_chunk)):
                    writer.write_chunk(encode_log_probs(logits))
                    yield QualityProgress("base", k + 1, n_chunk)
                writer.finish()
            finally:
                writer.close()
            os.replace(tmp, out)
    finally:
        if evaluator is not None:
            evaluator.close()
        model.close()


def iter_candidate_pass(
    base_file: str | os.PathLike[str], candidate_path: str | os.PathLike[str], threads: int | None = None
) -> Iterator[QualityProgress | QualityReport]:
    """Score the candidate against a base file; progress per chunk, then the report."""
    candidate = _check_file(candidate_path, "candidate model")
    with BaseFileReader(base_file) as reader:
        h = reader.header
        model = LlamaModel(candidate)
        evaluator = None
        try:
            if model.n_vocab != h.n_vocab:
                raise QualityError(
                    f"{candidate.name} has a vocabulary of {model.n_vocab} tokens, the base "
                    f"{h.n_vocab}: the two models are not comparable"
                )
            evaluator = ChunkEvaluator(model, h.n_ctx, threads)
            acc = KldAccumulator(h.n_vocab)
            first, scored = h.n_ctx // 2, scored_per_chunk(h.n_ctx)
            yield QualityProgress("candidate", 0, h.n_chunk)
            for k, logits in enumerate(evaluator.iter_chunks(h.tokens, h.n_chunk)):
                start = k * h.n_ctx + first + 1
                acc.add(logits, reader.read_chunk(), h.tokens[start : start + scored])
                yield QualityProgress("candidate", k + 1, h.n_chunk)
        finally:
            if evaluator is not None:
                evaluator.close()
            model.close()
    if acc.count < MIN_SCORED:
        raise QualityError(f"only {acc.count} scored tokens in {Path(base_file).name}; at least {MIN_SCORED} needed")
    yield acc.report(h.n_chunk, h.n_ctx, candidate.stat().st_size)


def ensure_base_file(
    base_path: str | os.PathLike[str],
    text: bytes,
    n_ctx: int = 512,
    chunks: int | None = None,
    threads: int | None = None,
    base_file: str | os.PathLike[str] | None = None,
) -> Iterator[QualityProgress]:
    """Make sure the base pass exists (``base_file`` or the cached one); returns its path."""
    load_runtime()
    _check_file(base_path, "base model")
    path = Path(base_file) if base_file else cached_base_file(base_path, text, n_ctx, chunks, runtime_version())
    if not path.is_file():
        yield from iter_base_pass(base_path, text, path, n_ctx, chunks, threads)
    return path


def iter_quality(
    base_path: str | os.PathLike[str],
    candidate_path: str | os.PathLike[str],
    text: bytes,
    n_ctx: int = 512,
    chunks: int | None = None,
    threads: int | None = None,
    base_file: str | os.PathLike[str] | None = None,
) -> Iterator[QualityProgress | QualityReport]:
    """Evaluate ``candidate_path`` against ``base_path`` on ``text``: progress, then a report.

    The base pass is cached (see :mod:`.cache`); ``base_file`` names an explicit
    ``--kl-divergence-base`` file instead, read if it exists (its context and chunks win, as in
    llama-perplexity) and written otherwise.
    """
    _check_file(candidate_path, "candidate model")
    path = yield from ensure_base_file(base_path, text, n_ctx, chunks, threads, base_file)
    yield from iter_candidate_pass(path, candidate_path, threads)
