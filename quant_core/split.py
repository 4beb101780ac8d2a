"""llama.cpp's split GGUF format, as ``llama-gguf-split`` writes it: limits, names, keys, parts.

A split model is a set of files ``NAME-00001-of-0000N.gguf``. Every part is a complete GGUF
file holding a contiguous run of the tensors in their original order. The first part carries
all the metadata; every part carries ``split.no`` (u16, from 0), ``split.tensors.count`` (i32,
the tensors of the whole model) and ``split.count`` (u16), in that order: gguf-split sets the
count last, which moves its key behind the others.

Tensors are assigned as gguf-split assigns them. With a size limit, a new part starts when the
padded tensor data of the current part would exceed the limit (metadata is not counted); with
a tensor limit, every ``N`` tensors. This module is pure: no file is read or written here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gguf import GGUFValueType

from .errors import QuantError
from .reader import MetaField

SPLIT_NO = "split.no"
SPLIT_COUNT = "split.count"
SPLIT_TENSORS_COUNT = "split.tensors.count"
SPLIT_KEYS = (SPLIT_NO, SPLIT_COUNT, SPLIT_TENSORS_COUNT)
MAX_PARTS = 0xFFFF  # split.count is a u16
_PART_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>[0-9]{5})-of-(?P<count>[0-9]{5})\.gguf$", re.DOTALL)
_UNITS = {"M": 1000**2, "G": 1000**3}  # gguf-split: decimal megabytes and gigabytes
_SIZE = re.compile(r"^\s*(?P<n>[0-9]+)\s*(?P<unit>[MG])\s*$")


class SplitError(QuantError):
    """A split limit that cannot be applied, or split parts that do not fit together."""


@dataclass(frozen=True)
class SplitSpec:
    """How to split an output: at most ``max_bytes`` of tensor data or ``max_tensors`` per part."""

    max_bytes: int | None = None
    max_tensors: int | None = None

    def __post_init__(self) -> None:
        if (self.max_bytes is None) == (self.max_tensors is None):
            raise SplitError("give either a maximum size or a maximum tensor count per part, not both")
        limit = self.max_bytes if self.max_bytes is not None else self.max_tensors
        if limit is None or limit < 1:
            raise SplitError("the split limit must be a positive number")

    def describe(self) -> str:
        """The limit as the command line spells it (``--split-max-size 2G``)."""
        if self.max_tensors is not None:
            return f"--split-max-tensors {self.max_tensors}"
        n = self.max_bytes or 0
        unit = "G" if n % _UNITS["G"] == 0 else "M"
        return f"--split-max-size {n // _UNITS[unit]}{unit}" if n % _UNITS["M"] == 0 else f"max {n} bytes"


def parse_split_size(text: str) -> int:
    """``N`` followed by ``M`` (10^6 bytes) or ``G`` (10^9 bytes), as ``--split-max-size`` takes it."""
    match = _SIZE.match(text)
    if match is None:
        raise SplitError(f"split size {text!r}: expected a whole number followed by M or G (e.g. 500M, 2G)")
    n = int(match["n"])
    if n <= 0:
        raise SplitError(f"split size {text!r} must be positive")
    return n * _UNITS[match["unit"]]


def split_prefix(out: str | os.PathLike[str]) -> Path:
    """The prefix the part names are built on: the output path without its ``.gguf``."""
    p = Path(out)
    return p.with_name(p.name[: -len(".gguf")]) if p.name.lower().endswith(".gguf") and len(p.name) > 5 else p


def part_path(prefix: str | os.PathLike[str], index: int, count: int) -> Path:
    """llama_split_path: ``PREFIX-00001-of-00003.gguf`` for ``index`` 0 of 3."""
    p = Path(prefix)
    return p.with_name(f"{p.name}-{index + 1:05d}-of-{count:05d}.gguf")


def part_paths(out: str | os.PathLike[str], count: int) -> list[Path]:
    """The ``count`` part files an export to ``out`` writes."""
    prefix = split_prefix(out)
    return [part_path(prefix, i, count) for i in range(count)]


def parse_part_name(path: str | os.PathLike[str]) -> tuple[Path, int, int] | None:
    """(prefix, 0-based part number, part count) of a part file name, or None if not one."""
    p = Path(path)
    match = _PART_NAME.match(p.name)
    if match is None:
        return None
    return p.with_name(match["prefix"]), int(match["no"]) - 1, int(match["count"])


def assign_parts(padded_sizes: Sequence[int], spec: SplitSpec) -> list[range]:
    """The tensors of each part (index ranges), given each tensor's padded data size in order."""
    starts = [0]
    current = 0
    for i, n in enumerate(padded_sizes):
        if spec.max_bytes is not None:
            split = current + n > spec.max_bytes
            current = n if split else current + n
        else:
            split = i > 0 and i % (spec.max_tensors or 1) == 0
        if split:
            if i == starts[-1]:
                raise SplitError(
                    f"the first tensor alone has {n:,} bytes, more than the split size "
                    f"{spec.max_bytes:,}; choose a larger size"
                )
            starts.append(i)
    if len(starts) > MAX_PARTS:
        raise SplitError(f"{len(starts)} parts; a split model has at most {MAX_PARTS}")
    ends = starts[1:] + [len(padded_sizes)]
    return [range(a, b) for a, b in zip(starts, ends, strict=True)]


def part_metadata(fields: Sequence[MetaField], index: int, count: int, n_tensors: int) -> list[MetaField]:
    """The key/value pairs of part ``index``: the model's (first part only), then the split keys."""
    head = [f for f in fields if f.key not in SPLIT_KEYS] if index == 0 else []
    return head + [
        MetaField(SPLIT_NO, index, GGUFValueType.UINT16),
        MetaField(SPLIT_TENSORS_COUNT, n_tensors, GGUFValueType.INT32),
        MetaField(SPLIT_COUNT, count, GGUFValueType.UINT16),
    ]
