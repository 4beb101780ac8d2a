"""The inspector's HQQ comparison schemes: HQQ's own format beside the planned GGUF type."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor

from explorer.panels.inspector import HQQ_COLOR, METRICS, Inspector, metric_texts
from quant_core.hqq_native import SCHEMES

from .support import WAIT_MS

pytestmark = pytest.mark.gui
TENSOR = "blk.0.ffn_up.weight"


@pytest.fixture
def inspector(show, session):
    return show(Inspector(session), 450, 850)


def test_hqq_schemes_are_offered_and_drawn_with_statistics(qtbot, inspector, session):
    combo = inspector.compare_combo
    labels = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    assert {n: labels[n] for n in SCHEMES} == {
        "HQQ4_G64": "HQQ 4-bit g64 (4.5 bpw)",
        "HQQ3_G64": "HQQ 3-bit g64 (3.5 bpw)",
        "HQQ2_G64": "HQQ 2-bit g64 (2.5 bpw)",
    }
    session.select([TENSOR])
    index = combo.findData("HQQ4_G64")
    assert combo.model().item(index).isEnabled()
    assert "HQQ's own format" in combo.itemData(index, 3)  # Qt.ToolTipRole
    combo.setCurrentIndex(index)
    assert session.compare_type == "HQQ4_G64"

    def full() -> bool:
        i = session.inspection
        return i is not None and i.full and i.compare_type == "HQQ4_G64" and i.name == TENSOR

    qtbot.waitUntil(full, timeout=WAIT_MS)
    insp = session.inspection
    _, cy = inspector.compare_curve.getData()
    assert np.array_equal(cy, insp.compare_stats.hist_counts) and cy.sum() == 512 * 256
    assert inspector.compare_curve.opts["pen"].color() == QColor(HQQ_COLOR).darker(110)
    assert inspector.table.horizontalHeaderItem(1).text() == "HQQ4_G64"
    assert [inspector.table.item(r, 1).text() for r in range(len(METRICS))] == metric_texts(insp.compare_stats)


def test_an_hqq_encoded_tensor_is_inspected_as_hqq_writes_it(qtbot, inspector, session):
    from dataclasses import replace

    options = replace(session.state.options, encoders=((TENSOR, "hqq"),))
    session.set_state(replace(session.state, options=options), "HQQ")
    tp = session.plan.tensor(TENSOR)
    assert tp.encoder == "hqq"
    session.select([TENSOR])
    combo = inspector.compare_combo
    same = combo.findData(tp.type)
    assert combo.model().item(same).isEnabled()  # the planned type with ggml's encoder compares
    combo.setCurrentIndex(same)

    def full() -> bool:
        i = session.inspection
        return i is not None and i.full and i.compare_type == tp.type and i.encoder == "hqq"

    qtbot.waitUntil(full, timeout=WAIT_MS)
    insp = session.inspection
    assert insp.stats.rmse != insp.compare_stats.rmse
    assert inspector.table.horizontalHeaderItem(0).text() == f"{tp.type} (planned, HQQ)"
    assert inspector.table.horizontalHeaderItem(1).text() == f"{tp.type} (ggml)"


def test_error_statistics_are_kept_per_encoder(qtbot, session):
    from dataclasses import replace

    from .support import wait_idle

    name = "blk.1.ffn_up.weight"
    wait_idle(qtbot, session)
    ggml = session.evaluation(name)
    assert ggml is not None and ggml.encoder == "ggml"
    options = replace(session.state.options, encoders=((name, "hqq"),))
    session.set_state(replace(session.state, options=options), "HQQ")
    wait_idle(qtbot, session)
    hqq = session.evaluation(name)
    assert hqq is not None and (hqq.encoder, hqq.type) == ("hqq", ggml.type) and hqq.stats.rmse != ggml.stats.rmse
    session.undo_stack.undo()
    assert session.evaluation(name) is ggml  # both kept: undo needs no new measurement
