"""``--like REF.gguf``: clone a reference file's mix onto the model (plan, quantize, stats, eval).

The reference's header is read once; its ``general.file_type`` names the preset when the command
is given none, so the output's file type matches the reference's too.
"""

from __future__ import annotations

import argparse
import sys

from ..clone import apply_clone, clone_mix
from ..compare import open_reference
from ..errors import QuantError
from ..ftypes import file_type
from ..model import Model
from ..plan import Plan

_CACHE = "_like_reference"


def add_like_option(group: argparse._ArgumentGroup) -> None:
    """Add ``--like REF.gguf`` to an argument group."""
    group.add_argument(
        "--like",
        metavar="REF.gguf",
        help="clone this GGUF's mix: same type per tensor kind and relative depth (PRESET defaults to its file type)",
    )


def reference(args: argparse.Namespace) -> Model | None:
    """The ``--like`` reference (opened once per command), or None without the option."""
    path = getattr(args, "like", None)
    if not path:
        return None
    if getattr(args, _CACHE, None) is None:
        setattr(args, _CACHE, open_reference(path))
    return getattr(args, _CACHE)


def reference_preset(ref: Model) -> str | None:
    """The preset named by the reference's ``general.file_type``, or None when it names none."""
    number = ref.meta("general.file_type")
    if not isinstance(number, int):
        return None
    try:
        return file_type(number).name
    except QuantError:
        return None


def like_preset(args: argparse.Namespace) -> str:
    """The preset of a command given ``--like`` and no PRESET: the reference's file type."""
    ref = reference(args)
    preset = reference_preset(ref) if ref is not None else None
    if preset is None:
        where = f"{ref.path.name} names no known general.file_type" if ref is not None else "no --like given"
        raise QuantError(f"PRESET is required ({where})")
    return preset


def apply_like(args: argparse.Namespace, plan: Plan) -> Plan:
    """``plan`` with the ``--like`` reference's mix cloned on top (a note goes to stderr)."""
    ref = reference(args)
    if ref is None:
        return plan
    clone = clone_mix(plan, ref)
    note = f"cloned {len(clone.types)} tensor types from {clone.reference}"
    if clone.fallbacks:
        note += f", {len(clone.fallbacks)} with a shape fallback"
    if clone.kept:
        note += f"; {len(clone.kept)} kept the preset's type: " + ", ".join(clone.kept[:3])
        note += ", …" if len(clone.kept) > 3 else ""
    print(note, file=sys.stderr)
    return apply_clone(plan, clone)
