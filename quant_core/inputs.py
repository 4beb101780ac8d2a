"""Reading small input files (recipes, tensor-type files, importance matrices) safely.

Only regular files are read: a FIFO or a device would block forever or never end, so it is
refused before a byte is read (the file is opened non-blocking and checked with ``fstat``).
Every failure is raised as the caller's one-line :class:`QuantError` subclass.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import QuantError

MAX_INPUT_BYTES = 1 << 31  # recipes and tensor-type files are tiny; imatrix files are < 2 GiB


def os_reason(err: OSError) -> str:
    """A short human reason for an OSError (its strerror, or a plainer wording)."""
    if err.errno == errno.ENAMETOOLONG:
        return "file name too long"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return err.strerror or str(err)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular_reason(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` (if it exists) is not a regular file, or None if it is one or is missing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


@contextmanager
def _regular_fd(name: str, what: str, error: type[QuantError]) -> Iterator[int]:
    """An open descriptor of ``name``, refused (without blocking) unless a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise error(f"cannot read {what} {name}: {os_reason(err)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"cannot read {what} {name}: it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > MAX_INPUT_BYTES:
            raise error(f"cannot read {what} {name}: {info.st_size} bytes is too large")
        yield fd
    except OSError as err:
        raise error(f"cannot read {what} {name}: {os_reason(err)}") from None
    finally:
        os.close(fd)


def read_input_bytes(path: str | os.PathLike[str], what: str, error: type[QuantError]) -> bytes:
    """The whole content of the regular file ``path``; ``what`` names it in the message."""
    name = os.fspath(path)
    with _regular_fd(name, what, error) as fd, os.fdopen(os.dup(fd), "rb") as f:
        return f.read()


def read_input_head(path: str | os.PathLike[str], what: str, error: type[QuantError], n: int) -> bytes:
    """The first ``n`` bytes of the regular file ``path`` (fewer if it is shorter)."""
    name = os.fspath(path)
    with _regular_fd(name, what, error) as fd:
        return os.read(fd, n) if n else b""


def decode_utf8(data: bytes, what: str, error: type[QuantError]) -> str:
    """``data`` decoded as UTF-8; an invalid byte raises ``error`` naming its offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{what} is not valid UTF-8 (byte {err.start})") from None


def read_input_text(path: str | os.PathLike[str], what: str, error: type[QuantError]) -> str:
    """The UTF-8 text of the regular file ``path``."""
    return decode_utf8(read_input_bytes(path, what, error), f"{what} {os.fspath(path)}", error)
