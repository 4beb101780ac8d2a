"""Check a written GGUF against its plan: re-open it (header only) and compare with the projection.

The CLI's ``quantize`` and the GUI's export dialog both run :func:`verify_written` after an
export; a file that cannot be re-opened, has other tensors or types, or another size than
projected raises :class:`VerifyError` with a one-line reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import QuantError
from .model import open_model
from .plan import Plan


class VerifyError(QuantError):
    """A written file that is not what the plan projected."""


@dataclass(frozen=True)
class Verification:
    """A written file that matches its plan: tensor count, every tensor's type, and size."""

    path: Path
    n_tensors: int
    file_bytes: int

    def summary(self) -> str:
        """The line the CLI prints: ``verified: N bytes = projected``."""
        return f"verified: {self.file_bytes} bytes = projected"


def verify_written(
    path: str | os.PathLike[str], plan: Plan, projected_bytes: int, part_bytes: Sequence[int] | None = None
) -> Verification:
    """Re-open ``path`` and check it holds the plan's tensors, types and ``projected_bytes`` bytes.

    For a split output, ``path`` is the first part and ``part_bytes`` the projected size of
    every part (``projected_bytes`` is then their sum).
    """
    out = Path(path)
    try:
        model = open_model(out)
    except QuantError as err:
        raise VerifyError(f"the written file cannot be re-opened: {err}") from None
    if part_bytes is not None:
        sizes = [p.stat().st_size for p in model.part_paths] or [model.file_size]
        if sizes != list(part_bytes):
            raise VerifyError(f"the parts have {sizes} bytes, projected {list(part_bytes)}")
    if len(model.tensors) != len(plan.tensors):
        raise VerifyError(f"the file has {len(model.tensors)} tensors, the plan {len(plan.tensors)}")
    written = {t.name: t.src_type for t in model.tensors}
    for tp in plan.tensors:
        if written.get(tp.name) != tp.type:
            raise VerifyError(f"{tp.name} is {written.get(tp.name, 'missing')} in the file, planned {tp.type}")
    if model.file_size != projected_bytes:
        raise VerifyError(f"the file has {model.file_size:,} bytes, projected {projected_bytes:,}")
    return Verification(out, len(model.tensors), model.file_size)
