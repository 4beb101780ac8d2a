"""Prompt-processing and generation speed of a GGUF, measured in-process as ``llama-bench`` does.

``llama-bench -p 512 -n 128`` runs two tests, each on a fresh context sized for it
(``n_ctx = n_prompt`` or ``n_gen``, ``-b 2048``, ``-ub 512``, flash attention *auto*,
``swa_full`` off): a warm-up (the whole prompt; one generated token), then ``-r`` repetitions,
each after clearing the KV cache. The prompt test decodes random tokens (BOS first when the
vocabulary adds one) in batches of ``n_batch``; the generation test decodes one token at a time
at the next position. A repetition's speed is its tokens over its wall time, and the result is
the mean and sample standard deviation of those speeds.

:func:`iter_speed_here` is a generator (stop iterating to cancel): :class:`QualityProgress` items
with stage ``"pp"`` or ``"tg"``, then a :class:`SpeedReport`. The time the consumer spends on a
progress item is not counted. :mod:`.speed_process` runs it in a child process (the entry point
the rest of the project uses).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import QualityError
from .measure import QualityProgress
from .runtime import load_runtime

PROGRESS_EVERY_S = 0.25  # progress inside a repetition at most this often (for a prompt cancel)
_SEED = 1  # the token values do not change the speed; a fixed seed keeps runs alike


@dataclass(frozen=True)
class SpeedSettings:
    """What llama-bench's options decide; the defaults are llama-bench's on CPU.

    ``threads`` None means llama-bench's default (the physical cores, see
    :func:`bench_default_threads`); ``n_gpu_layers`` only matters when llama-cpp-python is built
    with a GPU backend (-1: all layers, llama-bench's default; 0: CPU only).
    """

    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 5
    threads: int | None = None
    n_batch: int = 2048
    n_ubatch: int = 512
    n_gpu_layers: int = -1
    warmup: bool = True

    def check(self) -> None:
        """One readable line for impossible settings."""
        for name in ("n_prompt", "n_gen"):
            if getattr(self, name) < 0:
                raise QualityError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.n_prompt == 0 and self.n_gen == 0:
            raise QualityError("nothing to measure: both the prompt and the generation length are 0")
        for name in ("repetitions", "n_batch", "n_ubatch"):
            if getattr(self, name) < 1:
                raise QualityError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise QualityError(f"threads must be at least 1, got {self.threads}")

    def resolved(self) -> SpeedSettings:
        """The same settings with the thread count filled in."""
        return self if self.threads else SpeedSettings(**{**asdict(self), "threads": bench_default_threads()})


@dataclass(frozen=True)
class SpeedReport:
    """Tokens per second of one model: per repetition, and their mean and sample standard deviation."""

    settings: SpeedSettings
    file_bytes: int = 0
    pp_samples: tuple[float, ...] = field(default=())
    tg_samples: tuple[float, ...] = field(default=())

    @property
    def pp_tps(self) -> float | None:
        return _mean(self.pp_samples)

    @property
    def pp_tps_std(self) -> float | None:
        return _stdev(self.pp_samples)

    @property
    def tg_tps(self) -> float | None:
        return _mean(self.tg_samples)

    @property
    def tg_tps_std(self) -> float | None:
        return _stdev(self.tg_samples)

    def as_json(self) -> dict[str, object]:
        """The numbers and the settings used, as JSON-ready values (None for a test not run)."""
        s = self.settings
        return {
            "file_bytes": self.file_bytes,
            "pp_tps": self.pp_tps,
            "pp_tps_std": self.pp_tps_std,
            "tg_tps": self.tg_tps,
            "tg_tps_std": self.tg_tps_std,
            "pp_samples": list(self.pp_samples),
            "tg_samples": list(self.tg_samples),
            "speed_settings": {
                "n_prompt": s.n_prompt,
                "n_gen": s.n_gen,
                "repetitions": s.repetitions,
                "threads": s.threads,
                "n_batch": s.n_batch,
                "n_ubatch": s.n_ubatch,
                "n_gpu_layers": s.n_gpu_layers,
            },
        }

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> SpeedReport:
        """Inverse of :meth:`as_json` (plus ``file_bytes`` when given)."""
        settings = SpeedSettings(**doc["speed_settings"])  # type: ignore[arg-type]
        return cls(
            settings,
            int(doc.get("file_bytes", 0)),  # type: ignore[call-overload]
            tuple(float(v) for v in doc["pp_samples"]),  # type: ignore[attr-defined]
            tuple(float(v) for v in doc["tg_samples"]),  # type: ignore[attr-defined]
        )


def _mean(v: tuple[float, ...]) -> float | None:
    return sum(v) / len(v) if v else None


def _stdev(v: tuple[float, ...]) -> float | None:
    """Sample standard deviation, 0 for a single value (as llama-bench)."""
    if not v:
        return None
    if len(v) == 1:
        return 0.0
    m = sum(v) / len(v)
    return math.sqrt(max(sum((x - m) ** 2 for x in v) / (len(v) - 1), 0.0))


def bench_default_threads() -> int:
    """llama-bench's default thread count on Linux: the physical cores (distinct sibling sets).

    Elsewhere, or when the topology cannot be read: the CPUs this process may run on.
    (On hybrid Intel CPUs llama-bench counts only performance cores; this does not.)
    """
    siblings = set()
    cpu = 0
    while True:
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings")
        try:
            siblings.add(path.read_text().strip())
        except OSError:
            break
        cpu += 1
    if siblings:
        return len(siblings)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Bench:
    """One loaded model and the llama.cpp calls of llama-bench's two tests."""

    def __init__(self, path: Path, s: SpeedSettings) -> None:
        self.ll, self.s = load_runtime(), s
        params = self.ll.llama_model_default_params()
        params.n_gpu_layers = s.n_gpu_layers
        self.model = self.ll.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise QualityError(f"llama.cpp cannot load {path.name} (not a model it supports?)")
        vocab = self.ll.llama_model_get_vocab(self.model)
        self.n_vocab = int(self.ll.llama_vocab_n_tokens(vocab))
        self.bos = int(self.ll.llama_vocab_bos(vocab)) if self.ll.llama_vocab_get_add_bos(vocab) else None
        self.rng = np.random.default_rng(_SEED)
        self.ctx = None

    def new_context(self, n_ctx: int) -> None:
        self.free_context()
        s, p = self.s, self.ll.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch = n_ctx, s.n_batch, s.n_ubatch
        p.n_threads = p.n_threads_batch = s.threads
        p.flash_attn_type = self.ll.LLAMA_FLASH_ATTN_TYPE_AUTO
        p.swa_full = False
        self.ctx = self.ll.llama_init_from_model(self.model, p)
        if not self.ctx:
            raise QualityError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.ll.llama_set_n_threads(self.ctx, s.threads, s.threads)

    def clear(self) -> None:
        self.ll.llama_memory_clear(self.ll.llama_get_memory(self.ctx), False)

    def _decode(self, tokens: np.ndarray) -> None:
        buf = (self.ll.llama_token * len(tokens))(*tokens.tolist())
        rc = self.ll.llama_decode(self.ctx, self.ll.llama_batch_get_one(buf, len(tokens)))
        if rc != 0:
            raise QualityError(f"llama.cpp failed to evaluate a batch of {len(tokens)} tokens (code {rc})")

    def _random(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.n_vocab, size=n, dtype=np.int32)

    def prompt_steps(self, n_prompt: int) -> Iterator[int]:
        """Decode ``n_prompt`` random tokens in batches of ``n_batch``; yields tokens done."""
        done = 0
        while done < n_prompt:
            tokens = self._random(min(n_prompt - done, self.s.n_batch))
            if done == 0 and self.bos is not None:
                tokens[0] = self.bos
            self._decode(tokens)
            done += len(tokens)
            yield done
        self.ll.llama_synchronize(self.ctx)

    def gen_steps(self, n_gen: int) -> Iterator[int]:
        """Decode ``n_gen`` tokens one at a time (the first BOS when added); yields tokens done.

        The random tokens are drawn up front and one batch is reused (its token rewritten), so
        the Python work per token stays far below llama.cpp's.
        """
        ll, ctx = self.ll, self.ctx
        following = self._random(n_gen).tolist()
        buf = (ll.llama_token * 1)(self.bos if self.bos is not None else following[-1])
        batch = ll.llama_batch_get_one(buf, 1)  # position: the next one in the cache
        for i in range(n_gen):
            rc = ll.llama_decode(ctx, batch)
            if rc != 0:
                raise QualityError(f"llama.cpp failed to evaluate a generated token (code {rc})")
            ll.llama_synchronize(ctx)
            buf[0] = following[i]
            yield i + 1

    def free_context(self) -> None:
        if self.ctx:
            self.ll.llama_free(self.ctx)
            self.ctx = None

    def close(self) -> None:
        self.free_context()
        if self.model:
            self.ll.llama_model_free(self.model)
            self.model = None


def _timed_run(
    steps: Iterator[int], stage: str, rep: int, n_tokens: int, reps: int
) -> Iterator[QualityProgress | float]:
    """Run one repetition; progress now and then (time spent outside not counted), then t/s."""
    paused, last = 0, time.perf_counter_ns()
    start = last
    for done in steps:
        now = time.perf_counter_ns()
        if now - last >= PROGRESS_EVERY_S * 1e9:
            yield QualityProgress(stage, rep + done / n_tokens, reps)
            last = time.perf_counter_ns()
            paused += last - now
    elapsed = time.perf_counter_ns() - start - paused
    yield 1e9 * n_tokens / max(elapsed, 1)


def _run_test(bench: _Bench, stage: str, n_tokens: int) -> Iterator[QualityProgress | tuple[float, ...]]:
    """One llama-bench test (``stage`` "pp" or "tg"): warm-up, then the timed repetitions."""
    s = bench.s
    steps = bench.prompt_steps if stage == "pp" else bench.gen_steps
    bench.new_context(n_tokens)
    bench.clear()
    yield QualityProgress(stage, 0, s.repetitions)
    if s.warmup:
        for _ in steps(n_tokens if stage == "pp" else 1):
            pass
    samples: list[float] = []
    for rep in range(s.repetitions):
        bench.clear()
        for item in _timed_run(steps(n_tokens), stage, rep, n_tokens, s.repetitions):
            if isinstance(item, QualityProgress):
                yield item
            else:
                samples.append(item)
        yield QualityProgress(stage, rep + 1, s.repetitions)
    bench.free_context()
    yield tuple(samples)


def iter_speed_here(
    path: str | os.PathLike[str], settings: SpeedSettings | None = None
) -> Iterator[QualityProgress | SpeedReport]:
    """Measure ``path``'s prompt (pp) and generation (tg) speed in this process.

    Progress, then a :class:`SpeedReport`. OpenMP's wait policy is the one this process started
    llama.cpp with; :func:`~.speed_process.iter_speed` measures in a fresh process as llama-bench runs.
    """
    s = (settings or SpeedSettings()).resolved()
    s.check()
    p = Path(path)
    if not p.is_file():
        raise QualityError(f"no such model file: {p}")
    bench = _Bench(p, s)
    results: dict[str, tuple[float, ...]] = {"pp": (), "tg": ()}
    try:
        for stage, n in (("pp", s.n_prompt), ("tg", s.n_gen)):
            if n <= 0:
                continue
            for item in _run_test(bench, stage, n):
                if isinstance(item, tuple):
                    results[stage] = item
                else:
                    yield item
    finally:
        bench.close()
    yield SpeedReport(s, p.stat().st_size, results["pp"], results["tg"])
