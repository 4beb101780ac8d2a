"""The "which tensors matter" heat map: computed in the background, laid out like the mix map."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from explorer.sensitivity_view import SENSITIVITY, SensitivityView
from explorer.session import ExplorerSession
from quant_core.quality import cache as quality_cache
from quant_core.sensitivity import SensitivitySettings
from tests.core.quality_fixtures import sample_text, write_tiny_llama

N_CTX = 128
SETTINGS = SensitivitySettings(n_ctx=N_CTX, chunks=2, sample_elements=4096, slope_units=2)


@pytest.fixture
def view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, show):
    monkeypatch.setenv(quality_cache.ENV_VAR, str(tmp_path / "cache"))
    text = tmp_path / "text.txt"
    text.write_bytes(sample_text(3 * N_CTX) + b"\n")
    session = ExplorerSession()
    assert session.open_model(write_tiny_llama(tmp_path / "tiny.gguf"))
    v = SensitivityView(session)
    v.job.text_path, v.job.settings = text, SETTINGS
    show(v, 700, 400)
    yield v
    v.shutdown()
    session.shutdown()


def _values(view: SensitivityView) -> dict[str, float]:
    out = {}
    for row in range(view.grid.rowCount()):
        for col in range(view.grid.columnCount()):
            item = view.grid.item(row, col)
            if item is not None:
                out[item.data(256)] = (float(item.text()), item.background().color().name())
    return out


def test_compute_fills_the_heat_map_in_the_background(qtbot, view):
    assert view.compute_button.isEnabled()
    view.compute_button.click()
    assert view.cancel_button.isEnabled() and view.progress.isVisible()
    qtbot.waitUntil(lambda: view.table is not None and not view.job.running, timeout=300_000)
    assert view.grid.rowCount() == 3  # token_embd / output, blk.0, blk.1
    assert view.grid.verticalHeaderItem(1).text() == "blk.0"
    kinds = [view.grid.horizontalHeaderItem(c).text() for c in range(view.grid.columnCount())]
    assert kinds[:3] == ["attn_q", "attn_k", "attn_v"]
    shown = _values(view)
    assert set(shown) == set(view.table.costs)
    assert view.type_box.currentText() == "Q4_K"
    for name, (value, _color) in shown.items():
        assert value == pytest.approx(view.table.costs[name]["Q4_K"], rel=0.06)
    colours = {c for _v, c in shown.values()}
    assert len(colours) > 3  # a heat map, not one colour
    worst = max(shown, key=lambda n: shown[n][0])
    assert "S = " in view.grid.item(*_where(view, worst)).toolTip()
    view.type_box.setCurrentText("Q2_K")
    q2 = _values(view)
    assert all(q2[n][0] > shown[n][0] for n in shown)
    view.type_box.setCurrentText(SENSITIVITY)
    assert _values(view)[worst][0] == pytest.approx(view.table.sensitivity[worst], rel=0.06)


def _where(view: SensitivityView, name: str) -> tuple[int, int]:
    for row in range(view.grid.rowCount()):
        for col in range(view.grid.columnCount()):
            item = view.grid.item(row, col)
            if item is not None and item.data(256) == name:
                return row, col
    raise KeyError(name)


def test_cancel_stops_and_says_it_resumes(qtbot, view):
    view.compute_button.click()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=120_000)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not view.job.running, timeout=120_000)
    assert view.table is None
    assert "resumes" in view.status.text()
    assert view.compute_button.isEnabled() and not view.cancel_button.isEnabled()


def test_a_new_model_or_imatrix_clears_the_map(view):
    from quant_core.sensitivity import SensitivityTable

    table = SensitivityTable(
        costs={"blk.0.attn_q.weight": {"Q4_K": 1e-3}},
        sensitivity={"blk.0.attn_q.weight": 0.5},
        errors={"blk.0.attn_q.weight": {"Q4_K": 2e-3}},
        beta=1.0,
        unit_of={"blk.0.attn_q.weight": "blk.0.attn_q.weight"},
        probes={"blk.0.attn_q.weight": ("Q3_K",)},
        measured={},
        floor=0.0,
    )
    view.set_table(table)
    assert view.grid.item(0, 0).text() == "0.001"  # no row for token_embd / output here
    view.session.imatrix_changed.emit()
    assert view.table is None and view.grid.rowCount() == 0
