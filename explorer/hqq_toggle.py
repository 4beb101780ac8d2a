"""The "Encode with HQQ" toggle of the mix map and the tensor table: what it offers, and the change.

HQQ is offered only for tensors whose type it can encode and where it measurably wins on KLD
(:func:`quant_core.encoders.hqq_offered`); elsewhere the toggle is disabled and says why, with
the measured numbers. Switching it is a plan-state change like a type change: one undo step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from html import escape

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from quant_core.encoders import GGML, HQQ, hqq_encodable, hqq_offered, wanted_encoder
from quant_core.plan import TensorPlan
from quant_core.qtypes import HQQ_TYPES, QTYPES

from .session import ExplorerSession

ACTION_TEXT = "Encode with &HQQ"


@dataclass(frozen=True)
class HqqChoice:
    """What the toggle can do for a selection: the tensors it applies to, its state, or why not."""

    names: tuple[str, ...]
    checked: bool
    problem: str | None

    @property
    def enabled(self) -> bool:
        return self.problem is None


def hqq_choice(plans: Sequence[TensorPlan], with_imatrix: bool) -> HqqChoice:
    """The selected tensors HQQ may encode (type it can encode, and wins on KLD) and whether all do."""
    encodable = [tp for tp in plans if tp.quantizable and tp.converts and hqq_encodable(tp.type)]
    if not plans:
        return HqqChoice((), False, "select tensors first")
    if not encodable:
        types = ", ".join(sorted({tp.type for tp in plans}))
        known = ", ".join(n for n in QTYPES if n in HQQ_TYPES)
        return HqqChoice((), False, f"HQQ encodes {known} only; the selection is {types} (ggml's encoder)")
    offered = [tp for tp in encodable if hqq_offered(tp.type, with_imatrix)[0]]
    if not offered:
        notes = {hqq_offered(tp.type, with_imatrix)[1] for tp in encodable}
        return HqqChoice((), False, "; ".join(sorted(notes)))
    checked = all(tp.encoder == HQQ for tp in offered)
    return HqqChoice(tuple(tp.name for tp in offered), checked, None)


def choice_tooltip(choice: HqqChoice, with_imatrix: bool) -> str:
    """The toggle's tooltip: what it does, or why it is disabled (with the measured numbers)."""
    if choice.problem is not None:
        return f"HQQ not offered: {escape(choice.problem)}"
    verb = "Use ggml's encoder again for" if choice.checked else "Encode with HQQ"
    return (
        f"{verb} {len(choice.names)} tensor(s): same types and size, other scales and mins; the file is "
        "then not byte-identical to llama-quantize's. Undo with Ctrl+Z."
    )


def set_hqq(session: ExplorerSession, names: Sequence[str], on: bool) -> bool:
    """Encode the named tensors with HQQ (``on``) or ggml, as one undoable plan change."""
    options = session.state.options
    chosen = dict(options.encoders)
    for name in names:
        chosen.pop(name, None)
    base = replace(options, encoders=tuple(sorted(chosen.items())))
    patterns = [(re.compile(p), e) for p, e in base.tensor_encoders]
    wanted = HQQ if on else GGML
    for name in names:
        if wanted_encoder(base, name, patterns)[0] != wanted:  # the rules and default say otherwise
            chosen[name] = wanted
    new = replace(options, encoders=tuple(sorted(chosen.items())))
    text = f"{'HQQ' if on else 'ggml encoder'} for {len(names)} tensor(s)"
    return session.set_state(replace(session.state, options=new), text)


def add_hqq_action(
    menu: QMenu, session: ExplorerSession, plans: Sequence[TensorPlan], after: Callable[[], None] | None = None
) -> QAction:
    """Add the checkable "Encode with HQQ" action for ``plans`` to ``menu``."""
    with_imatrix = session.imatrix is not None
    choice = hqq_choice(plans, with_imatrix)
    act = menu.addAction(ACTION_TEXT)
    act.setObjectName("hqq_action")
    act.setCheckable(True)
    act.setChecked(choice.checked)
    act.setEnabled(choice.enabled)
    act.setToolTip(choice_tooltip(choice, with_imatrix))

    def toggled(on: bool) -> None:
        set_hqq(session, choice.names, on)
        if after is not None:
            after()

    act.toggled.connect(toggled)
    return act
