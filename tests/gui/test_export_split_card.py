"""Export dialog: split into parts with their projected sizes, a model card per ladder; split models open."""

from __future__ import annotations

from dataclasses import fields

import pytest
from PySide6.QtCore import Qt

from explorer.dialogs.export_dialog import ExportDialog
from explorer.dialogs.export_options import BY_TENSORS
from explorer.quality_store import Measurement
from quant_core.model import open_model
from quant_core.quality import QualityReport
from quant_core.size import project_parts
from quant_core.split import SplitSpec, part_paths

from .support import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui


def _export(qtbot, dialog: ExportDialog, out) -> None:
    dialog.path_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    assert dialog.worker is not None, dialog.result_label.text()
    with qtbot.waitSignal(dialog.worker.signals.finished, timeout=WAIT_MS):
        pass
    assert dialog.finished_ok, dialog.result_label.text()


def test_split_export_shows_and_writes_the_projected_parts(qtbot, show, session, tmp_path):
    wait_idle(qtbot, session)
    dialog = show(ExportDialog(session))
    opts = dialog.output_options
    assert not opts.parts_label.isVisible() and not opts.limit_spin.isEnabled()
    qtbot.mouseClick(opts.split_check, Qt.LeftButton)
    opts.mode_combo.setCurrentIndex(BY_TENSORS)
    assert opts.limit_spin.value() == 128  # llama-gguf-split's default
    opts.limit_spin.setValue(8)
    out = tmp_path / "m.gguf"
    dialog.path_edit.setText(str(out))
    expected = project_parts(session.model, session.plan, SplitSpec(max_tensors=8), session.imatrix_keys)
    assert opts.parts == expected and len(expected) > 1
    assert opts.parts_label.text().startswith(f"{len(expected)} parts: ")
    assert f"open m-00001-of-{len(expected):05d}.gguf" in opts.parts_label.text()
    _export(qtbot, dialog, out)
    files = part_paths(out, len(expected))
    assert [f.stat().st_size for f in files] == expected and not out.exists()
    assert f"{sum(expected):,}</b> bytes" in dialog.result_label.text()
    assert f"and {len(expected) - 1} more part(s)" in dialog.result_label.text()
    dialog.path_edit.clear()
    dialog.path_edit.setText(str(out))  # again: the parts exist now
    assert f"{len(expected)} of the parts exist" in dialog.path_note.text()


def test_model_card_lists_the_ladder_with_measured_quality(qtbot, show, session, tmp_path):
    wait_idle(qtbot, session)
    tracker = session.quality
    values = {f.name: (3 if f.type == "int" else 0.25) for f in fields(QualityReport)}
    report = QualityReport(**{**values, "kld_mean": 0.0123, "ppl": 11.5})
    key = tracker.current_key()
    assert key is not None
    size = session.size
    tracker.measurements.append(Measurement(key, "Q4_K_M", "preset", session.state, size.file_bytes, size.bpw, report))
    dialog = show(ExportDialog(session))
    dialog.output_options.card_check.setChecked(True)
    first = tmp_path / "small-Q4_K_M.gguf"
    _export(qtbot, dialog, first)
    card = tmp_path / "small-Q4_K_M.md"
    assert "Model card: small-Q4_K_M.md" in dialog.result_label.text()
    text = card.read_text()
    assert "| `small-Q4_K_M.gguf` | Q4_K_M |" in text and "0.012300" in text and "11.5000" in text
    assert f"on `{tracker.text_path.name}`" in text
    assert session.set_preset("Q8_0")
    wait_idle(qtbot, session)
    second = ExportDialog(session)
    qtbot.addWidget(second)
    second.output_options.card_check.setChecked(True)
    _export(qtbot, second, tmp_path / "small-Q8_0.gguf")
    ladder = (tmp_path / "small-Q8_0.md").read_text()
    assert "`small-Q4_K_M.gguf`" in ladder and "`small-Q8_0.gguf`" in ladder
    assert "2 quantizations" in ladder
    row_q8 = next(line for line in ladder.splitlines() if line.startswith("| `small-Q8_0.gguf`"))
    assert row_q8.count("—") == 4  # Q8_0 was not measured


def test_session_opens_a_split_model_from_its_first_part(qtbot, session, tmp_path):
    from quant_core.export import iter_export

    model, plan = session.model, session.plan
    for _ in iter_export(model, plan, tmp_path / "s.gguf", split=SplitSpec(max_tensors=6)):
        pass
    parts = sorted(tmp_path.glob("s-*-of-*.gguf"))
    errors = []
    session.error.connect(errors.append)
    assert not session.open_model(parts[1])
    assert errors and "open the first part" in errors[0]
    assert session.open_model(parts[0])
    assert [t.name for t in session.model.tensors] == [t.name for t in open_model(parts[0]).tensors]
    assert len(session.model.tensors) == len(plan.tensors)
    assert session.model.file_size == sum(p.stat().st_size for p in parts)


def test_card_hashes_the_source_off_the_gui_thread(qtbot, show, session, tmp_path, monkeypatch):
    import hashlib
    import threading

    import quant_core.card_data as card_data

    threads = []
    real = card_data.sha256_of

    def recording(path):
        threads.append(threading.current_thread())
        return real(path)

    monkeypatch.setattr(card_data, "sha256_of", recording)
    wait_idle(qtbot, session)
    dialog = show(ExportDialog(session))
    dialog.output_options.card_check.setChecked(True)
    _export(qtbot, dialog, tmp_path / "small-Q4_K_M.gguf")
    assert threads and all(t is not threading.main_thread() for t in threads)
    digest = hashlib.sha256(session.model.path.read_bytes()).hexdigest()
    assert digest in (tmp_path / "small-Q4_K_M.md").read_text()
