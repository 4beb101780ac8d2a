"""One cache of statistics in the session, cleared once when the model or the imatrix changes.

The map and table models and the inspector keep no copies: they read the session's cache, so
what they show changes exactly when the cache does.
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.panels.inspector import Inspector
from explorer.panels.mix_map_model import MixMapModel
from explorer.panels.tensor_table_model import TensorTableModel
from quant_core.imatrix import write_imatrix_gguf

from .support import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui
TENSOR = "blk.0.ffn_up.weight"


def test_plan_changes_keep_the_cache_and_undo_reuses_it(qtbot, session):
    wait_idle(qtbot, session)
    clears = session.stats.clears
    before = session.evaluation(TENSOR)
    assert before is not None
    assert session.set_types([TENSOR], "Q8_0")
    wait_idle(qtbot, session)
    assert session.evaluation(TENSOR).type == "Q8_0"
    session.undo_stack.undo()
    assert session.evaluation(TENSOR) is before  # no recomputation: same object, at once
    assert session.stats.clears == clears


def test_imatrix_change_clears_once_and_every_view_follows(qtbot, session, tmp_path):
    table, grid = TensorTableModel(session), MixMapModel(session)
    session.select([TENSOR])
    wait_idle(qtbot, session)
    old = session.evaluation(TENSOR)
    row = table.row_of(TENSOR)
    assert table.evaluation(table.tensor_plan(row)) is old and grid.evaluation(TENSOR) is old
    assert session.stats.inspection(session.inspection_key()) is session.inspection

    clears = session.stats.clears
    path = tmp_path / "im.gguf"
    rng = np.random.default_rng(3)
    write_imatrix_gguf(path, {TENSOR: rng.uniform(0.1, 4.0, 256).astype(np.float32)}, {TENSOR: np.array([1])})
    with qtbot.waitSignal(session.imatrix_changed, timeout=WAIT_MS):
        assert session.set_imatrix(str(path))
    assert session.stats.clears == clears + 1
    # nothing stale anywhere: the views read the emptied cache
    assert session.evaluation(TENSOR) is None and session.inspection is None
    assert table.evaluation(table.tensor_plan(row)) is None and grid.evaluation(TENSOR) is None
    wait_idle(qtbot, session)
    new = session.evaluation(TENSOR)
    assert new is not None and new is not old
    assert table.evaluation(table.tensor_plan(row)) is new and grid.evaluation(TENSOR) is new
    assert session.inspection.stats.weighted_mse is not None
    assert session.stats.clears == clears + 1  # once, not once per view


def test_inspector_shows_what_the_session_cache_holds(qtbot, show, session):
    inspector = show(Inspector(session), 450, 850)
    session.select([TENSOR])
    qtbot.waitUntil(lambda: session.inspection is not None and session.inspection.full, timeout=WAIT_MS)
    assert inspector.shown is session.inspection
    session.select(["blk.1.ffn_up.weight"])
    session.select([TENSOR])
    assert inspector.shown is session.stats.inspection((TENSOR, session.plan.tensor(TENSOR).type, None, "ggml"))
    session.stats.clear()
    session.select(["blk.1.ffn_up.weight"])
    session.select([TENSOR])
    assert inspector.shown is None and inspector.rows_label.text() == "measuring…"
