"""Opening a split model from its first part, with the checks llama.cpp's loader makes.

The first part names the others: its file name ends in ``-00001-of-0000N.gguf`` and its
``split.count`` is N. Every other part must exist, carry its own ``split.no``, and the parts
together must hold ``split.tensors.count`` distinct tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from gguf import GGUFValueType

from .reader import MetaField
from .split import SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT, SplitError, parse_part_name, part_path

R = TypeVar("R")


def split_count(path: Path, metadata: Sequence[MetaField]) -> int:
    """The number of parts the file says the model has (1 for an unsplit model)."""
    fields = {f.key: f for f in metadata}
    count = fields.get(SPLIT_COUNT)
    if count is None:
        return 1
    _require(path, count, GGUFValueType.UINT16)
    n = int(count.value)
    if n <= 1:
        return 1
    no = fields.get(SPLIT_NO)
    if no is None:
        raise SplitError(f"{path.name} has {SPLIT_COUNT} = {n} but no {SPLIT_NO}")
    _require(path, no, GGUFValueType.UINT16)
    if int(no.value) != 0:
        parsed = parse_part_name(path)
        first = part_path(parsed[0], 0, n).name if parsed is not None else f"…-00001-of-{n:05d}.gguf"
        raise SplitError(f"this is part {int(no.value) + 1} of {n}; open the first part, {first}")
    parsed = parse_part_name(path)
    if parsed is None or parsed[1:] != (0, n):
        raise SplitError(f"{path.name} is the first of {n} parts, but its name does not end in -00001-of-{n:05d}.gguf")
    return n


def open_other_parts(
    first: Path,
    count: int,
    metadata: Sequence[MetaField],
    read: Callable[[Path], tuple[R, Sequence[MetaField], Sequence[str]]],
    first_names: Sequence[str],
) -> list[tuple[Path, R]]:
    """Parts 2..N of a split model, each as ``read(path)`` returns it (header, metadata, names).

    Raises :class:`SplitError` with one line if a part is missing, is not the part its name
    says, repeats a tensor, or the parts do not hold the model's tensor count.
    """
    parsed = parse_part_name(first)
    assert parsed is not None
    prefix = parsed[0]
    seen = set(first_names)
    parts = []
    for index in range(1, count):
        path = part_path(prefix, index, count)
        if not path.is_file():
            raise SplitError(f"part {index + 1} of {count} is missing: {path.name}")
        header, fields, names = read(path)
        no = next((f for f in fields if f.key == SPLIT_NO), None)
        if no is None:
            raise SplitError(f"{path.name} has no {SPLIT_NO}; it is not a part of this split model")
        _require(path, no, GGUFValueType.UINT16)
        if int(no.value) != index:
            raise SplitError(f"{path.name} says it is part {int(no.value) + 1}, expected part {index + 1}")
        for name in names:
            if name in seen:
                raise SplitError(f"tensor {name!r} is in more than one part (again in {path.name})")
            seen.add(name)
        parts.append((path, header))
    expected = next((f for f in metadata if f.key == SPLIT_TENSORS_COUNT), None)
    if expected is None:
        raise SplitError(f"{first.name} has no {SPLIT_TENSORS_COUNT}")
    if int(expected.value) != len(seen):
        raise SplitError(f"the {count} parts hold {len(seen)} tensors; {first.name} says {int(expected.value)}")
    return parts


def _require(path: Path, f: MetaField, vtype: GGUFValueType) -> None:
    if f.vtype != vtype:
        raise SplitError(f"{path.name}: {f.key} has type {f.vtype.name}; llama.cpp requires {vtype.name}")
