"""A rule's reach is visible: the editor counts the tensors each line matches, the map marks rule cells."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt

from explorer.panels.mix_map import MixMap
from explorer.panels.mix_map_model import EXPLICIT_ROLE, RULE_ROLE
from explorer.panels.rules_editor import RulesEditor

pytestmark = pytest.mark.gui


@pytest.fixture
def editor(show, session):
    return show(RulesEditor(session), 400, 300)


def _expected(session, pattern: str) -> list[str]:
    return [tp.name for tp in session.plan.tensors if re.search(pattern, tp.name)]


def test_each_line_shows_how_many_tensors_it_matches_and_which(qtbot, editor, session):
    qtbot.keyClicks(editor.edit, "output=q8_0")
    qtbot.keyClick(editor.edit, Qt.Key_Return)
    qtbot.keyClicks(editor.edit, r"blk\.1\.attn_v=q6_k")
    assert editor.reach.isVisible() and editor.reach.count() == 2
    output = _expected(session, "output")
    assert "blk.0.attn_output.weight" in output and "output.weight" in output  # search, not full match
    first, second = editor.reach.item(0), editor.reach.item(1)
    assert first.text().endswith(f"matches {len(output)} tensors")
    assert first.toolTip().split("<br>") == output
    assert second.text().endswith("matches 1 tensor") and second.toolTip() == "blk.1.attn_v.weight"


def test_a_bad_line_is_left_out_and_an_empty_reach_is_said(qtbot, editor):
    editor.edit.setPlainText("nothing_here=q8_0\n(unclosed=q8_0")
    assert editor.reach.count() == 1
    item = editor.reach.item(0)
    assert item.text().endswith("matches 0 tensors") and "no tensor" in item.toolTip()
    editor.edit.setPlainText("")
    assert editor.reach.count() == 0 and not editor.reach.isVisible()


def test_rule_cells_are_marked_on_the_map(qtbot, show, session):
    mix = show(MixMap(session), 1100, 500)
    m = mix.model
    v1 = m.index(m.row_labels.index("blk.1"), m.kinds.index("attn_v"))
    q0 = m.index(m.row_labels.index("blk.0"), m.kinds.index("attn_q"))
    assert not v1.data(RULE_ROLE) and not q0.data(RULE_ROLE)
    with qtbot.waitSignal(session.plan_changed, timeout=5000):
        assert session.set_rules(((r"blk\.1\.attn_v", "Q6_K"),))
    assert v1.data(RULE_ROLE) and not v1.data(EXPLICIT_ROLE)
    assert not q0.data(RULE_ROLE)
    assert "set by a rule" in v1.data(Qt.ToolTipRole)
    assert "set by a rule" in mix.marks.text()
