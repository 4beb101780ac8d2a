"""The recipe file the GUI saves is written as compact rules and reloads to the same types."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from explorer.plan_state import PlanState
from explorer.session import ExplorerSession
from quant_core.assets import DEMO_MODEL


def _types(session: ExplorerSession) -> dict[str, str]:
    assert session.plan is not None
    return session.plan.types()


def _layer_names(session: ExplorerSession, kind: str) -> list[str]:
    assert session.plan is not None
    return [tp.name for tp in session.plan.tensors if tp.name.endswith(f".{kind}.weight")]


def _save_and_reload(session: ExplorerSession, path) -> dict:
    """Save, scramble the plan, reload; returns the saved JSON document."""
    assert session.save_recipe(path)
    assert session.set_preset("Q8_0")
    assert session.load_recipe(path)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def demo(tmp_path):
    s = ExplorerSession()
    assert s.open_model(DEMO_MODEL)
    yield s
    s.shutdown()


@pytest.mark.parametrize("which", ["session", "demo"])
def test_hand_mix_is_saved_as_one_rule_per_kind(which, request, tmp_path) -> None:
    session = request.getfixturevalue(which)
    session.set_preset("Q4_K_M")
    session.set_rules((("token_embd", "Q8_0"),))
    ffn_up = _layer_names(session, "ffn_up")
    assert len(ffn_up) >= 2
    assert session.set_types(ffn_up, "Q6_K")
    want = _types(session)
    doc = _save_and_reload(session, tmp_path / "r.json")
    assert doc["explicit"] == {}
    rules = doc["options"]["tensor_types"]
    assert rules[-1] == "token_embd=Q8_0"  # the user's rule is kept, after the compact ones
    assert sum("ffn_up" in r for r in rules) == 1
    assert len(rules) <= 3
    assert session.state.options.preset == "Q4_K_M"
    assert _types(session) == want


def test_auto_mix_reloads_to_the_same_types(session, tmp_path) -> None:
    session.set_preset("Q4_K_M")
    names = _layer_names(session, "attn_output") + _layer_names(session, "ffn_gate")
    auto = dict.fromkeys(names[: len(names) // 2 + 1], "Q5_K")
    state = PlanState(session.state.options, tuple(sorted(auto.items())), auto_mixed=tuple(sorted(auto)))
    assert session.set_state(state, "auto mix")
    want = _types(session)
    doc = _save_and_reload(session, tmp_path / "r.json")
    assert doc["explicit"] == {}
    assert _types(session) == want


def test_options_survive_the_readable_form(session, tmp_path) -> None:
    assert session.set_state(
        replace(session.state, options=replace(session.state.options, preset="Q5_K_S", pure=True)), "o"
    )
    want = _types(session)
    doc = _save_and_reload(session, tmp_path / "r.json")
    assert doc["options"]["pure"] is True
    assert session.state.options.preset == "Q5_K_S" and session.state.options.pure
    assert _types(session) == want


def test_reset_on_rule_set_cells_changes_nothing(session, tmp_path) -> None:
    """Reloaded hand choices are rules: "Reset to preset" leaves them (the rule must be edited)."""
    ffn_up = _layer_names(session, "ffn_up")
    assert session.set_types(ffn_up, "Q6_K")
    _save_and_reload(session, tmp_path / "r.json")
    steps = session.undo_stack.count()
    assert not session.reset_types(ffn_up)
    assert session.undo_stack.count() == steps
    assert {_types(session)[n] for n in ffn_up} == {"Q6_K"}
