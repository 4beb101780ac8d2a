"""GUI start-up: ``quant-explorer [MODEL.gguf] [--recipe FILE] [--screenshot OUT.png]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .resources import DEMO_MODEL

SCREENSHOT_TIMEOUT_MS = 600_000  # a cold start compiles the kernels first


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="quant-explorer",
        description="Quant Explorer desktop app "
        "(subcommands: quantize, plan, stats, eval, bench, warmup; see --help of each)",
    )
    p.add_argument("model", nargs="?", help="GGUF model to open (default: the synthetic demo model)")
    p.add_argument("--recipe", help="recipe to apply after opening")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the window once statistics are shown, save, exit")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .kernel_warmup import KernelWarmup
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Quant Explorer")
    app.setOrganizationName("QuantExplorer")
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    window = MainWindow()
    window.show()
    shown = time.perf_counter()
    path = Path(args.model) if args.model else DEMO_MODEL
    if not window.open_path(path):
        if args.screenshot:
            return 1
    elif args.recipe:
        window.session.load_recipe(args.recipe)
    # after the plan exists (its types compile first), before the first statistics job is queued
    warmup = KernelWarmup(window, window.session)
    warmup.start()
    app.aboutToQuit.connect(warmup.stop)
    app.aboutToQuit.connect(window.session.shutdown)  # also when quitting without closing the window
    if args.screenshot:
        _arm_screenshot(window, args.screenshot, app, shown)
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: app.exit(3))
    return app.exec()


def _arm_screenshot(window, out: str, app, shown: float) -> None:
    """Save a PNG once statistics are on screen (overview done, one tensor inspected), then quit.

    Prints how long after the window appeared the first histogram was shown.
    """
    from PySide6.QtCore import QTimer

    session = window.session
    first: list[float] = []
    session.inspection_ready.connect(lambda _item: first or first.append(time.perf_counter() - shown))
    if not session.selected and session.plan is not None:
        downs = [tp.name for tp in session.plan.tensors if tp.source.category == "ffn_down"]
        if downs:
            session.select([downs[0]])

    def ready() -> None:
        if not session.idle:
            QTimer.singleShot(200, ready)
            return
        QTimer.singleShot(300, shoot)

    def shoot() -> None:
        window.grab().save(out)
        took = f"first histogram {first[0]:.1f} s after the window appeared" if first else "no histogram"
        print(f"saved {out} ({took})")
        app.exit(0)

    QTimer.singleShot(500, ready)
