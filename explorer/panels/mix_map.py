"""The mix map: a layer × tensor-kind grid of the plan, to select cells and paint types on them.

Cells are coloured by planned type (or, switched, by relative error) with the type written in
them; hand-chosen cells get a bold name and a dashed frame, shape fallbacks a corner mark. Click,
drag, shift/ctrl-click or click a header to select; the selection drives ``session.select``.
A palette of common types and a context menu assign a type through ``session.set_types``.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, QRectF, Qt
from PySide6.QtGui import QAction, QKeySequence, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from quant_core.plan import TensorPlan

from ..colors import error_color, text_color, type_color, type_tooltip
from ..flow_layout import FlowLayout
from ..hqq_toggle import add_hqq_action, choice_tooltip, hqq_choice, set_hqq
from ..session import ExplorerSession
from .mix_map_model import MixCellDelegate, MixMapModel
from .tensor_text import build_type_menu, first_problem, has_importance, is_explicit, ordered_types, representatives
from .type_ahead import add_type_ahead

PALETTE_TYPES = (
    "IQ2_XXS",
    "IQ2_XS",
    "Q2_K",
    "IQ3_XXS",
    "IQ3_S",
    "Q3_K",
    "IQ4_XS",
    "IQ4_NL",
    "Q4_0",
    "Q4_K",
    "Q5_0",
    "Q5_K",
    "Q6_K",
    "Q8_0",
    "F16",
)
_SCALE_STEPS = 24


def _chip_style(type_name: str) -> str:
    bg = type_color(type_name)
    return (
        f"background: {bg.name()}; color: {text_color(bg).name()}; border: 1px solid #555; "
        "border-radius: 3px; padding: 1px 5px;"
    )


class ErrorScale(QWidget):
    """Colour scale of the 'colour by error' mode: 0 … worst relative error."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worst = 0.0
        self.setMinimumSize(220, 22)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("Relative RMSE of each tensor at its planned type, from 0 to the worst on the map")

    def set_worst(self, worst: float) -> None:
        self.worst = worst
        self.update()

    def paintEvent(self, _event: object) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        fm = self.fontMetrics()
        if self.worst <= 0:
            painter.drawText(self.rect(), Qt.AlignVCenter | Qt.AlignLeft, "error scale: no statistics yet")
            return
        left, right = "0 %", f"{100 * self.worst:.2f} %"
        x0 = fm.horizontalAdvance(left) + 6
        x1 = self.width() - fm.horizontalAdvance(right) - 6
        bar = QRectF(x0, 3, max(10, x1 - x0), self.height() - 6)
        gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for i in range(_SCALE_STEPS + 1):
            f = i / _SCALE_STEPS
            gradient.setColorAt(f, error_color(f * self.worst, self.worst))
        painter.fillRect(bar, gradient)
        painter.drawText(self.rect(), Qt.AlignVCenter | Qt.AlignLeft, left)
        painter.drawText(self.rect(), Qt.AlignVCenter | Qt.AlignRight, right)


class MixMap(QWidget):
    """Layer × category grid of planned types with a type palette, legend and error colouring."""

    def __init__(self, session: ExplorerSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self.menu: QMenu | None = None
        self.model = MixMapModel(session, self)
        self._build()
        session.model_changed.connect(self._on_model_changed)
        session.plan_changed.connect(self._on_plan_changed)
        session.stats_updated.connect(self._on_stats_updated)
        session.selection_changed.connect(self._on_session_selection)
        session.imatrix_changed.connect(self._update_controls)
        self._on_model_changed()

    # ----- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        palette_box = QWidget()
        palette = FlowLayout(palette_box)  # wraps on a narrow window instead of widening it
        palette.addWidget(QLabel("Assign:"))
        self.type_buttons: dict[str, QToolButton] = {}
        for name in PALETTE_TYPES:
            button = QToolButton()
            button.setText(name)
            bg = type_color(name)
            faded = text_color(bg)
            faded.setAlphaF(0.4)
            button.setStyleSheet(
                f"QToolButton {{ {_chip_style(name)} }} QToolButton:disabled {{ color: "
                f"rgba({faded.red()}, {faded.green()}, {faded.blue()}, 110); border-style: dotted; }}"
            )
            button.setToolTip(type_tooltip(name) + "<br><i>Click: give the selected cells this type.</i>")
            button.setFocusPolicy(Qt.TabFocus)
            button.clicked.connect(lambda _=False, n=name: self.assign_selected(n))
            palette.addWidget(button)
            self.type_buttons[name] = button
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Give the selected cells the preset's type again (Delete)")
        self.reset_button.clicked.connect(self.reset_selected)
        palette.addWidget(self.reset_button)
        self.hqq_button = QToolButton()
        self.hqq_button.setText("HQQ")
        self.hqq_button.setCheckable(True)
        self.hqq_button.setFocusPolicy(Qt.TabFocus)
        self.hqq_button.clicked.connect(self._on_hqq_clicked)
        palette.addWidget(self.hqq_button)
        self.error_toggle = QCheckBox("Colour by error")
        self.error_toggle.setToolTip(
            "Colour cells by the relative error of their planned type instead of by type "
            "(grey until the statistics are measured)"
        )
        self.error_toggle.toggled.connect(self._on_error_toggled)
        palette.addWidget(self.error_toggle)

        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(MixCellDelegate(self.view))
        self.view.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectItems)
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setTabKeyNavigation(False)  # Tab leaves the map; arrows move between cells
        self.view.setShowGrid(False)
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.view.horizontalHeader().setMinimumSectionSize(70)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.view.setToolTip(
            "Click, drag, Shift/Ctrl-click or click a header to select; Ctrl+Space / Shift+Space: "
            "the current column / row; right-click to assign a type (type its name to find it)"
        )
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
        self.model.modelReset.connect(self._size_rows)
        self.select_column_action = self._view_action("Select map column", "Ctrl+Space", self.select_current_column)
        self.select_row_action = self._view_action("Select map row", "Shift+Space", self.select_current_row)

        self.legend = QHBoxLayout()
        self.legend.setSpacing(4)
        self.legend.setContentsMargins(0, 0, 0, 0)
        self.legend_box = QWidget()
        self.legend_box.setLayout(self.legend)
        self.legend_box.setToolTip("Types on the map, with how many tensors have each")
        self.scale = ErrorScale()
        self.scale.setVisible(False)
        self.marks = QLabel(
            "<b>bold, dashed frame</b> = chosen by hand or by auto-mix · dotted frame = set by a rule"
            " · dark corner = shape fallback · <b>H</b> = HQQ-encoded"
        )
        self.marks.setWordWrap(True)  # a long legend line must not widen the window
        self.marks.setToolTip(
            "A fallback happens when the row length is not a multiple of the type's block "
            "(llama-quantize then picks a compatible type). H badge (left): the tensor's blocks are "
            "encoded with HQQ: same type and size, other scales and mins, not llama-quantize's bytes"
        )
        bottom = QHBoxLayout()
        bottom.addWidget(self.legend_box)
        bottom.addWidget(self.scale, 1)
        bottom.addStretch(0)
        bottom.addWidget(self.marks)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(palette_box)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)

    def _view_action(self, text: str, keys: str, slot) -> QAction:
        act = QAction(text, self)
        act.setShortcut(QKeySequence(keys))
        act.setShortcutContext(Qt.WidgetWithChildrenShortcut)
        act.triggered.connect(slot)
        self.view.addAction(act)
        return act

    # ----- session -> widget ------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        self.setEnabled(self.session.plan is not None)
        self._size_rows()
        self._on_session_selection(self.session.selected)
        self._on_plan_changed()

    def _size_rows(self) -> None:
        if self.model.has_global_row:  # two lines there: tensor name and type
            self.view.verticalHeader().resizeSection(0, 2 * self.fontMetrics().height() + 10)

    def _on_plan_changed(self) -> None:
        self._update_legend()
        self._update_controls()
        self.scale.set_worst(self.model.worst_error)

    def _on_stats_updated(self, _names: list[str]) -> None:
        if self.model.color_by_error:
            self.scale.set_worst(self.model.worst_error)

    def _on_session_selection(self, names: list[str]) -> None:
        """Select the cells holding ``names`` without sending the selection back."""
        if names == self.selected_names():
            return
        selection = QItemSelection()
        first = None
        for name in names:
            cell = self.model.cell_of(name)
            if cell is not None:
                idx = self.model.index(*cell)
                selection.select(idx, idx)
                first = first or idx
        sm = self.view.selectionModel()
        self._syncing = True
        try:
            sm.select(selection, QItemSelectionModel.ClearAndSelect)
            if first is not None:
                sm.setCurrentIndex(first, QItemSelectionModel.NoUpdate)
                self.view.scrollTo(first)
        finally:
            self._syncing = False
        self._update_controls()

    def _update_legend(self) -> None:
        while self.legend.count():
            item = self.legend.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()
        used = self.model.used_types()
        rank = {t: i for i, t in enumerate(ordered_types())}
        for name in sorted(used, key=lambda t: (rank.get(t, len(rank)), t)):
            chip = QLabel(f"{name} ×{used[name]}")
            chip.setObjectName(f"legend_{name}")
            chip.setStyleSheet(_chip_style(name))
            chip.setToolTip(type_tooltip(name))
            self.legend.addWidget(chip)

    def _update_controls(self) -> None:
        plans = self.selected_plans()
        distinct = representatives(plans, self._has_importance)
        for name, button in self.type_buttons.items():
            problem = first_problem(distinct, name) if plans else "select cells first"
            button.setEnabled(problem is None)
            button.setToolTip(
                type_tooltip(name)
                + (
                    "<br><i>Click: give the selected cells this type.</i>"
                    if problem is None
                    else f"<br><i>Cannot apply: {problem}</i>"
                )
            )
        self.reset_button.setEnabled(any(is_explicit(tp) for tp in plans))
        self._hqq = hqq_choice(plans, self.session.imatrix is not None)
        self.hqq_button.setEnabled(self._hqq.enabled)
        self.hqq_button.setChecked(self._hqq.checked)
        self.hqq_button.setToolTip(choice_tooltip(self._hqq, self.session.imatrix is not None))

    def _on_hqq_clicked(self, on: bool) -> None:
        if not set_hqq(self.session, self._hqq.names, on):
            self._update_controls()

    # ----- widget -> session ------------------------------------------------------------------
    def _on_view_selection(self, *_args: object) -> None:
        if not self._syncing:
            names = self.selected_names()
            if names != self.session.selected:
                self.session.select(names)
        self._update_controls()

    def _on_error_toggled(self, on: bool) -> None:
        self.model.set_color_by_error(on)
        self.legend_box.setVisible(not on)
        self.scale.setVisible(on)
        self.scale.set_worst(self.model.worst_error)

    def _on_context_menu(self, pos: QPoint) -> None:
        idx = self.view.indexAt(pos)
        sm = self.view.selectionModel()
        if idx.isValid() and self.model.names_at(idx.row(), idx.column()) and not sm.isSelected(idx):
            sm.select(idx, QItemSelectionModel.ClearAndSelect)
            sm.setCurrentIndex(idx, QItemSelectionModel.NoUpdate)
        plans = self.selected_plans()
        if not plans:
            return
        self.menu = build_type_menu(self, plans, self.assign_selected, self.reset_selected, self._has_importance)
        add_hqq_action(self.menu, self.session, plans)
        for act in self.menu.actions():
            if act.menu() is not None:
                add_type_ahead(act.menu())
        self.menu.popup(self.view.viewport().mapToGlobal(pos))

    def _has_importance(self, tp: TensorPlan) -> bool:
        return has_importance(self.session, tp)

    def assign_selected(self, type_name: str) -> bool:
        """Give the selected cells ``type_name`` (cells it cannot fit are skipped by the session)."""
        names = self.selected_names()
        return bool(names) and self.session.set_types(names, type_name)

    def reset_selected(self) -> bool:
        names = self.selected_names()
        return bool(names) and self.session.reset_types(names)

    def select_current_column(self) -> None:
        """Select the whole column of the current cell (Ctrl+Space, as in spreadsheets)."""
        current = self.view.currentIndex()
        if current.isValid():
            self.view.selectColumn(current.column())

    def select_current_row(self) -> None:
        """Select the whole row of the current cell (Shift+Space)."""
        current = self.view.currentIndex()
        if current.isValid():
            self.view.selectRow(current.row())

    # ----- selection helpers -------------------------------------------------------------------
    def selected_names(self) -> list[str]:
        """Tensor names of the selected cells: the current cell first, then row by row."""
        sm = self.view.selectionModel()
        cells = sorted(sm.selectedIndexes(), key=lambda i: (i.row(), i.column()))
        names = [n for i in cells for n in self.model.names_at(i.row(), i.column())]
        current = sm.currentIndex()
        if current.isValid() and sm.isSelected(current):
            head = self.model.names_at(current.row(), current.column())
            names = head + [n for n in names if n not in head]
        return names

    def selected_plans(self) -> list[TensorPlan]:
        return [self.model.tensor_plan(n) for n in self.selected_names()]
