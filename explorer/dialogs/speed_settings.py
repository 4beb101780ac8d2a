"""The speed settings of the Quality panel: llama-bench's -p, -n, -r and -t, chosen in a small dialog.

The defaults are llama-bench's (pp 512, tg 128, 5 repetitions, the physical cores). The choice is
kept in the application's settings (QSettings, as the recent files), so the next window measures
as the last one did. A mix measured with other settings is measured again (see
:class:`explorer.quality.QualityTracker`); each measurement keeps the settings it used.
"""

from __future__ import annotations

import os
from dataclasses import replace

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from quant_core.quality import QualityError, SpeedSettings, bench_default_threads

GROUP = "speed"
_KEYS = ("n_prompt", "n_gen", "repetitions", "threads")
MAX_TOKENS = 1 << 16
MAX_REPETITIONS = 1000
TIPS = {
    "n_prompt": "llama-bench -p, --n-prompt: prompt tokens decoded in one batch for the prompt speed (pp); "
    "0 skips the prompt test (default 512)",
    "n_gen": "llama-bench -n, --n-gen: tokens generated one at a time for the generation speed (tg); "
    "0 skips the generation test (default 128)",
    "repetitions": "llama-bench -r, --repetitions: timed runs of each test after a warm-up; the cells show "
    "their mean, the tooltip their standard deviation (default 5)",
    "threads": "llama-bench -t, --threads: CPU threads; 'auto' is llama-bench's default, the physical "
    "cores ({auto} here)",
}


def settings_store() -> QSettings:
    """The application's settings (the same place as the main window's recent files)."""
    return QSettings("QuantExplorer", "QuantExplorer")


def load_speed_settings(store: QSettings | None = None) -> SpeedSettings:
    """The speed settings chosen last time (llama-bench's defaults when none, or when unreadable)."""
    store = store or settings_store()
    default = SpeedSettings()
    values = {}
    for key in _KEYS:
        raw = store.value(f"{GROUP}/{key}")
        try:
            values[key] = int(raw) if raw is not None else getattr(default, key)
        except (TypeError, ValueError):
            values[key] = getattr(default, key)
    values["threads"] = values["threads"] or None
    chosen = replace(default, **values)
    try:
        chosen.check()
    except QualityError:  # a hand-edited settings file: fall back rather than refuse to measure
        return default
    return chosen


def save_speed_settings(settings: SpeedSettings, store: QSettings | None = None) -> None:
    """Keep ``settings`` for the next window (threads None is stored as 0, 'auto')."""
    store = store or settings_store()
    for key in _KEYS:
        store.setValue(f"{GROUP}/{key}", int(getattr(settings, key) or 0))
    store.sync()


def describe_speed_settings(s: SpeedSettings) -> str:
    """One short line, in llama-bench's terms: ``pp512 tg128, 5 repetitions, auto threads``."""
    tests = " ".join(t for t, n in ((f"pp{s.n_prompt}", s.n_prompt), (f"tg{s.n_gen}", s.n_gen)) if n)
    threads = f"{s.threads} thread{'s' if s.threads != 1 else ''}" if s.threads else "auto threads"
    if not s.threads:
        threads += f" ({bench_default_threads()})"
    return f"{tests}, {s.repetitions} repetitions, {threads}"


class SpeedSettingsDialog(QDialog):
    """Prompt tokens, generation tokens, repetitions and threads, with "Restore Defaults"."""

    def __init__(self, settings: SpeedSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Speed settings")
        self._base = settings  # what the dialog does not show (batch sizes, GPU layers) is kept
        self.spins: dict[str, QSpinBox] = {}
        form = QFormLayout()
        labels = {
            "n_prompt": "Prompt tokens (-p):",
            "n_gen": "Generation tokens (-n):",
            "repetitions": "Repetitions (-r):",
            "threads": "Threads (-t):",
        }
        ranges = {
            "n_prompt": (0, MAX_TOKENS),
            "n_gen": (0, MAX_TOKENS),
            "repetitions": (1, MAX_REPETITIONS),
            "threads": (0, max(os.cpu_count() or 1, 1) * 4),
        }
        for key in _KEYS:
            spin = QSpinBox()
            spin.setRange(*ranges[key])
            spin.setToolTip(TIPS[key].format(auto=bench_default_threads()))
            spin.valueChanged.connect(self._validate)
            self.spins[key] = spin
            label = QLabel(labels[key])
            label.setToolTip(spin.toolTip())
            form.addRow(label, spin)
        self.spins["threads"].setSpecialValueText("auto")
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #AA3377")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.Ok | QDialogButtonBox.Cancel | QDialogButtonBox.RestoreDefaults
        )
        restore = self.buttons.button(QDialogButtonBox.RestoreDefaults)
        restore.setToolTip("llama-bench's defaults: -p 512 -n 128 -r 5, threads auto")
        restore.clicked.connect(self.restore_defaults)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.set_settings(settings)

    def set_settings(self, s: SpeedSettings) -> None:
        """Show ``s`` in the spin boxes (threads None as 'auto')."""
        for key in _KEYS:
            self.spins[key].setValue(int(getattr(s, key) or 0))
        self._validate()

    def restore_defaults(self) -> None:
        """llama-bench's defaults (the hidden settings are kept)."""
        d = SpeedSettings()
        self.set_settings(
            replace(self._base, n_prompt=d.n_prompt, n_gen=d.n_gen, repetitions=d.repetitions, threads=None)
        )

    def settings(self) -> SpeedSettings:
        """The settings shown (threads 0 is 'auto', None)."""
        values = {key: self.spins[key].value() for key in _KEYS}
        values["threads"] = values["threads"] or None
        return replace(self._base, **values)

    def _validate(self) -> None:
        try:
            self.settings().check()
            message = ""
        except QualityError as err:
            message = str(err)
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not message)
