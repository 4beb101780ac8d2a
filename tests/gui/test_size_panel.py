"""The size panel shows the exact projected size and follows every plan change at once."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.panels.plot_common import category_color, format_bytes
from explorer.panels.size_panel import SizePanel

pytestmark = pytest.mark.gui
MIB = 1024.0**2


@pytest.fixture
def panel(show, session):
    return show(SizePanel(session), 900, 450)


def bar_width(panel: SizePanel) -> float:
    return float(panel.bar.opts["width"][0])


def test_shows_exact_bytes_bpw_and_change_against_source(panel, session):
    size = session.size
    assert f"{size.file_bytes:,} bytes" in panel.total_label.text()
    assert f"{size.bpw:.3f}" in panel.total_label.text()
    assert "small.gguf" in panel.source_label.text()
    pct = 100.0 * (size.file_bytes - session.model.file_size) / session.model.file_size
    assert f"{abs(pct):.1f} %" in panel.source_label.text() and "\u2212" in panel.source_label.text()
    assert "exact size Export writes" in panel.total_label.text()
    assert "exactly the bytes Export writes" in panel.total_label.toolTip()
    assert panel.unit == "MiB"
    assert bar_width(panel) == pytest.approx(size.file_bytes / MIB)


def test_presets_and_source_marked_on_the_same_bar(panel, session):
    assert set(session.preset_sizes) == {"Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"}
    for name, n in session.preset_sizes.items():
        line = panel.markers[name]
        assert line.isVisible() and line.value() == pytest.approx(n / MIB)
        assert name in panel.presets_label.text()
    assert panel.markers["source"].value() == pytest.approx(session.model.file_size / MIB)
    # the default preset is Q4_K_M: same size, marked as "this preset"
    assert session.state.options.preset == "Q4_K_M"
    assert "Q4_K_M" in panel.presets_label.text() and "(this preset)" in panel.presets_label.text()
    assert bar_width(panel) == pytest.approx(panel.markers["Q4_K_M"].value())


def test_size_labels_change_with_the_plan_and_undo(qtbot, panel, session):
    before_text, before_width = panel.total_label.text(), bar_width(panel)
    with qtbot.waitSignal(session.plan_changed, timeout=2000):
        assert session.set_preset("Q8_0")
    assert panel.total_label.text() != before_text
    assert f"{session.size.file_bytes:,} bytes" in panel.total_label.text()
    assert bar_width(panel) == pytest.approx(session.preset_sizes["Q8_0"] / MIB)
    assert bar_width(panel) > before_width
    assert "Q8_0" in panel.types_label.text()
    session.undo_stack.undo()
    assert panel.total_label.text() == before_text
    assert bar_width(panel) == pytest.approx(before_width)


def test_breakdown_by_category_and_layer(qtbot, panel, session):
    size = session.size
    div, unit = panel.category_unit
    assert unit == "KiB" and panel.category_plot.getPlotItem().getAxis("bottom").labelText == "KiB"
    for cat, n in size.by_category.items():
        assert panel.category_values[cat] == pytest.approx(n / div)
    brushes = panel.category_bars.opts["brushes"]
    cats = list(panel.category_values)
    assert [b.color().name() for b in brushes] == [category_color(c).name() for c in cats]
    assert cats.index("token_embd") < cats.index("attn_q") < cats.index("ffn_down") < cats.index("output")

    xs, _layer_cats, sizes = panel.stacked_layers()
    totals = {x: sum(n for xx, n in zip(xs, sizes) if xx == x) for x in set(xs)}
    assert totals[0] == size.by_layer["0"] and totals[1] == size.by_layer["1"]
    assert totals[-1] == size.by_category["token_embd"]
    assert totals[2] == size.by_category["output"] + size.by_tensor["output_norm.weight"]
    heights = np.asarray(panel.layer_bars.opts["height"])
    assert heights.sum() == pytest.approx(size.tensor_bytes / panel.layer_unit[0])

    # one tensor to Q8_0: its category and layer grow, the others stay
    before = dict(panel.category_values)
    with qtbot.waitSignal(session.plan_changed, timeout=2000):
        assert session.set_types(["blk.1.ffn_down.weight"], "Q8_0")
    assert panel.category_values["ffn_down"] > before["ffn_down"]
    assert panel.category_values["attn_q"] == before["attn_q"]
    xs2, _, sizes2 = panel.stacked_layers()
    assert sum(n for x, n in zip(xs2, sizes2) if x == 1) > totals[1]
    assert sum(n for x, n in zip(xs2, sizes2) if x == 0) == totals[0]


@pytest.fixture
def big_vocab_session(tmp_path):
    from explorer.session import ExplorerSession
    from tests.core.synthetic import write_llama_gguf

    from .support import SMALL

    s = ExplorerSession()
    assert s.open_model(write_llama_gguf(tmp_path / "wide.gguf", **dict(SMALL, n_vocab=8192)))
    yield s
    s.shutdown()


def test_by_layer_breaks_the_axis_for_an_embedding_that_dwarfs_the_layers(show, big_vocab_session):
    session = big_vocab_session
    panel = show(SizePanel(session), 900, 450)
    size = session.size
    embd, layer = size.by_category["token_embd"], max(size.by_layer["0"], size.by_layer["1"])
    assert embd > 3 * layer  # the situation: one tensor dwarfs the layers
    div = panel.layer_unit[0]
    _lo, top = panel.layer_plot.getPlotItem().viewRange()[1]
    assert top * div < 2 * layer  # the layers fill the chart instead of a sliver of it
    xs = np.asarray(panel.layer_bars.opts["x"])
    heights = np.asarray(panel.layer_bars.opts["height"])
    assert heights[xs == 0].sum() * div == pytest.approx(size.by_layer["0"])  # layers are not cut
    assert heights[xs == -1].sum() * div < 2 * layer  # the embedding is cut …
    assert set(panel.break_labels) == {-1, 2}  # … and so is the untied output
    assert format_bytes(embd) in panel.break_labels[-1].toPlainText()  # with its true size written


def test_no_break_when_no_tensor_dwarfs_the_layers(panel):
    assert panel.break_labels == {}
    heights = np.asarray(panel.layer_bars.opts["height"])
    assert heights.sum() * panel.layer_unit[0] == pytest.approx(panel.session.size.tensor_bytes)


def test_layers_are_stacked_by_type_in_the_map_colours(qtbot, panel, session):
    from explorer.colors import type_color

    assert panel.by_type_box.isChecked()
    with qtbot.waitSignal(session.plan_changed, timeout=2000):
        assert session.set_types(["blk.1.ffn_down.weight"], "Q8_0")
    xs, keys, sizes = panel.stacked_layers(by_type=True)
    plan_types = {tp.type for tp in session.plan.tensors}
    assert set(keys) == plan_types and "Q8_0" in keys
    q8 = sum(n for x, k, n in zip(xs, keys, sizes) if x == 1 and k == "Q8_0")
    assert q8 == session.size.by_tensor["blk.1.ffn_down.weight"]
    brushes = [b.color().name() for b in panel.layer_bars.opts["brushes"]]
    assert brushes == [type_color(k).name() for k in keys]
    for name in session.size.by_type:  # the type chips use the same colours
        assert type_color(name).name() in panel.types_label.text()

    panel.by_type_box.setChecked(False)  # back to categories
    _xs, cats, _sizes = panel.stacked_layers()
    assert [b.color().name() for b in panel.layer_bars.opts["brushes"]] == [category_color(c).name() for c in cats]
