"""Compile the numba kernels ahead of use, so that no type stalls the first time it is used.

:func:`iter_warmup` calls every type's quantizer and dequantizer, and the statistics kernels,
on tiny arrays of exactly the numba types the statistics path passes (C-contiguous float32
rows, writable; importance vector absent or present; read-only memory maps for the float
sources), so numba compiles them once and stores them in its on-disk cache, from which every
later process loads them in milliseconds. A marker file per type, in the cache directory and
stamped with the kernel sources' size and time, says which types are already compiled.

Compiling holds the GIL for long stretches and uses one core, so :func:`start_warmup_processes`
compiles in other processes, one per core (``python -m quant_core.warmup``), and
:func:`iter_processes_progress` reads their progress. Exports from F32 sources and requantization
of quantized files use read-only variants that are still compiled on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import _numba_cache
from .errors import QuantError
from .kernels import QUANTIZERS
from .kernels._common import first_nonfinite
from .qtypes import QTYPES, qtype
from .quantize import dequantize, quantize
from .reader import _string_spans
from .stats import StatsAccumulator, weight_histogram

COMMON = "statistics"
"""Marker name of the type-independent kernels (statistics, header reading)."""
_COLS = math.lcm(*(q.block_size for q in QTYPES.values()))  # a multiple of every block size
_PROGRESS = "progress"


@dataclass(frozen=True)
class WarmupProgress:
    """One type done: ``done`` of ``total``, ``seconds`` spent, ``cached`` if it was compiled before."""

    done: int
    total: int
    type_name: str
    seconds: float
    cached: bool

    def line(self) -> str:
        """The machine-readable line ``python -m quant_core.warmup`` prints."""
        return f"{_PROGRESS} {self.done} {self.total} {self.type_name} {self.seconds:.3f} {int(self.cached)}"

    @classmethod
    def parse(cls, line: str) -> WarmupProgress | None:
        """The progress a :meth:`line` holds (None for any other line)."""
        parts = line.split()
        if len(parts) != 6 or parts[0] != _PROGRESS:
            return None
        try:
            return cls(int(parts[1]), int(parts[2]), parts[3], float(parts[4]), parts[5] == "1")
        except ValueError:
            return None


def all_types() -> list[str]:
    """Every type that has a quantizer, in the type table's order."""
    return [name for name in QTYPES if name in QUANTIZERS]


def warmup_order(types: Sequence[str] | None = None, first: Sequence[str] = ()) -> list[str]:
    """``types`` (default: all) by canonical name, those in ``first`` first; unknown names raise."""
    chosen = [qtype(t).name for t in types] if types else all_types()
    wanted = [qtype(t).name for t in first]
    head = [t for t in dict.fromkeys(wanted) if t in chosen]
    return head + [t for t in dict.fromkeys(chosen) if t not in head]


# --- markers ------------------------------------------------------------------------------------


def marker_dir() -> Path | None:
    """Where the per-type markers live: inside numba's cache directory (None: no markers)."""
    cache = _numba_cache.cache_dir()
    return None if cache is None else cache / "warm"


def source_stamp() -> str:
    """Size and modification time of the kernel sources: numba recompiles when these change."""
    digest = hashlib.sha256()
    for path in _numba_cache.kernel_source_files():
        st = path.stat()
        digest.update(f"{path.name} {st.st_size} {st.st_mtime!r}\n".encode())
    return digest.hexdigest()[:16]


def is_warm(name: str) -> bool:
    """True when ``name`` (a type or :data:`COMMON`) was compiled into the current cache."""
    folder = marker_dir()
    try:
        return folder is not None and (folder / name).read_text() == source_stamp()
    except OSError:
        return False


def cold_types(types: Sequence[str] | None = None) -> list[str]:
    """The types (default: all) whose kernels are not in the cache yet; all of them when the
    statistics kernels are not."""
    order = warmup_order(types)
    if not is_warm(COMMON):
        return order
    return [t for t in order if not is_warm(t)]


def _mark_warm(name: str) -> None:
    folder = marker_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(source_stamp())
    except OSError:
        pass  # a read-only cache still serves kernels: only the skip next time is lost


# --- compiling ---------------------------------------------------------------------------------


def _sample(rows: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_t(4.0, size=(rows, _COLS)).astype(np.float32) * np.float32(0.02)
    w = (rng.gamma(2.0, 0.5, size=_COLS) + 1e-3).astype(np.float32)
    return x, w


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


def _warm_common(threads: int | None) -> None:
    """What statistics need whatever the types: error and weight histograms, non-finite check."""
    x, w = _sample()
    for weights in (None, w):
        acc = StatsAccumulator(weights)
        acc.add(x, x * np.float32(0.5))
        other = StatsAccumulator(weights)
        other.add(x, x)
        acc.merge(other)
        acc.result()
    weight_histogram(x)
    first_nonfinite(x)
    _warm_reader()


def _warm_reader() -> None:
    """The GGUF header's string scan runs on the file's read-only memory map."""
    with tempfile.TemporaryDirectory(prefix="quant-explorer-") as tmp:
        path = Path(tmp) / "strings.bin"
        path.write_bytes(np.array([1], dtype="<u8").tobytes() + b"a")
        data = np.memmap(path, mode="r")
        _string_spans(data, 0, 1)
        del data


def _warm_type(name: str, threads: int | None) -> None:
    """Quantize and dequantize a few rows, without and with an importance matrix; a float type
    also reads rows from a read-only memory map (a model's source tensors during export)."""
    qt = qtype(name)
    x, w = _sample()
    for weights in (None, _readonly(w)):  # a loaded imatrix is read-only
        if weights is None and qt.ggml_requires_imatrix:
            continue
        q = quantize(x, qt, imatrix=weights, threads=threads)
        dequantize(q, qt, _COLS, threads=threads)
        quantize(x[:1], qt, imatrix=weights, threads=threads)  # the inspector's one-row call
    if qt.is_float:
        dequantize(_readonly(q), qt, _COLS, threads=threads)
        first_nonfinite(_readonly(x))


def iter_warmup(
    types: Sequence[str] | None = None,
    first: Sequence[str] = (),
    threads: int | None = None,
    common: bool = True,
) -> Iterator[WarmupProgress]:
    """Compile the kernels of ``types`` (default: every type), ``first`` ones first.

    Yields one :class:`WarmupProgress` per type; a type already compiled into the current
    cache is skipped (``cached``). The type-independent kernels are compiled before the first
    type that needs compiling (unless ``common`` is False: another process does them). Stop
    iterating (or ``close()``) to cancel between two types.
    """
    order = warmup_order(types, first)
    for done, name in enumerate(order, start=1):
        start = time.perf_counter()
        cached = is_warm(name) and (is_warm(COMMON) or not common)
        if not cached:
            if common and not is_warm(COMMON):
                _warm_common(threads)
                _mark_warm(COMMON)
            _warm_type(name, threads)
            _mark_warm(name)
        yield WarmupProgress(done, len(order), name, time.perf_counter() - start, cached)


# --- in other processes -----------------------------------------------------------------------


def start_warmup_processes(
    types: Sequence[str] | None = None, first: Sequence[str] = (), jobs: int | None = None, nice: int = 10
) -> list[subprocess.Popen[str]]:
    """Compile ``types`` (default: all) in ``jobs`` processes at once (default: one per core).

    numba compiles on one core, so the types are dealt out round-robin, ``first`` ones first;
    the first process also compiles the shared kernels. Each process runs at normal priority
    until its ``first`` types are done, then ``nice`` steps lower. Read their progress with
    :func:`iter_processes_progress` (``len(warmup_order(types))`` in all).
    """
    order = warmup_order(types, first)
    wanted = set(warmup_order(first)) if first else set()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(order)))
    env = dict(os.environ)
    cache = _numba_cache.cache_dir()
    if cache is not None:  # the very cache this process uses, even if it was set in code
        env["NUMBA_CACHE_DIR"] = str(cache)
    procs = []
    for job in range(jobs):
        group = order[job::jobs]
        cmd = [sys.executable, "-m", "quant_core.warmup", "--nice", str(nice), "--types", *group]
        cmd += ["--first", *[t for t in group if t in wanted]] if wanted & set(group) else []
        cmd += [] if job == 0 else ["--no-common"]
        procs.append(
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env
            )
        )
    return procs


def iter_processes_progress(procs: Sequence[subprocess.Popen[str]], total: int) -> Iterator[WarmupProgress]:
    """The progress the warm-up processes print, counted together (``done`` of ``total``), until
    they all end; closing this stops them. Raises QuantError (one line) when one fails."""
    lines: queue.Queue[str | None] = queue.Queue()
    for proc in procs:
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    try:
        done, running = 0, len(procs)
        while running:
            line = lines.get()
            if line is None:
                running -= 1
            elif (progress := WarmupProgress.parse(line)) is not None:
                done += 1
                yield replace(progress, done=done, total=total)
        failed = [code for code in (proc.wait() for proc in procs) if code != 0]
        if failed:
            raise QuantError(f"kernel warm-up process exited with status {failed[0]}")
    finally:
        stop_processes(procs)


def stop_processes(procs: Sequence[subprocess.Popen[str]]) -> None:
    """Kill the warm-up processes still running (what they compiled stays cached)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            lines.put(line)
    lines.put(None)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m quant_core.warmup [--types T ...] [--first T ...]``: one progress line per type."""
    p = argparse.ArgumentParser(prog="python -m quant_core.warmup", description=main.__doc__)
    p.add_argument("--types", nargs="+", metavar="TYPE", help="types to compile (default: all)")
    p.add_argument("--first", nargs="+", default=[], metavar="TYPE", help="types to compile first")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--nice", type=int, default=0, help="lower the priority by N once the --first types are done")
    p.add_argument("--no-common", action="store_true", help="leave the shared kernels to another process")
    args = p.parse_args(argv)
    n_first = len(set(warmup_order(args.first)) & set(warmup_order(args.types))) if args.first else 0
    if not n_first:
        _lower_priority(args.nice)
    for progress in iter_warmup(args.types, args.first, args.threads, common=not args.no_common):
        print(progress.line(), flush=True)
        if progress.done == n_first:
            _lower_priority(args.nice)
    return 0


def _lower_priority(steps: int) -> None:
    if steps > 0 and hasattr(os, "nice"):
        os.nice(steps)


if __name__ == "__main__":
    sys.exit(main())
