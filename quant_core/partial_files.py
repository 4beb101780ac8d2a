"""Partial export files: a recognisable name, and the sweep of those a killed export left behind.

An export writes ``.<output name>.<pid>.<random>.part`` next to the output and renames it at
the end. A SIGKILL or a power cut leaves that file behind; the next export to the same folder
removes every such file of ours (same owner) whose writer is gone: its process id is not
running, or is running but started after the file was last written (the id was reused).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

SUFFIX = ".part"
_RANDOM = 8  # characters tempfile adds
_PATTERN = re.compile(r"^\..+\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.part$", re.DOTALL)
_DEFAULT_NAME_MAX = 255


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return _DEFAULT_NAME_MAX


def _prefix(out: Path, limit: int) -> str:
    """``.<name>.<pid>.``, the output name cut (at a character boundary) to fit ``limit`` bytes."""
    tail = f".{os.getpid()}."
    budget = max(1, limit - 1 - len(tail) - _RANDOM - len(SUFFIX))
    name = out.name.encode("utf-8", "surrogateescape")[:budget].decode("utf-8", "ignore")
    return f".{name}{tail}"


def create_partial(out: Path) -> Path:
    """Create the (empty) partial file for ``out`` in its folder; OSError as the OS raises it."""
    fd, name = tempfile.mkstemp(prefix=_prefix(out, name_max(out.parent)), suffix=SUFFIX, dir=out.parent)
    os.close(fd)
    return Path(name)


def is_partial_name(name: str) -> bool:
    """Whether ``name`` is a partial export file name (of any process)."""
    return _PATTERN.match(name) is not None


def _writer_gone(pid: int, written_at: float) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, someone else's
        return False
    started = _process_start(pid)
    return started is not None and started > written_at + 1.0


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from Linux's /proc; else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time in ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def sweep_partials(folder: Path) -> list[Path]:
    """Remove the partial files of dead exports in ``folder``; returns those removed.

    Never raises: a file that cannot be examined or removed is left alone.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    uid = os.getuid()
    for name in names:
        match = _PATTERN.match(name)
        if match is None:
            continue
        path = folder / name
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != uid:
                continue
            if _writer_gone(int(match["pid"]), info.st_mtime):
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed
