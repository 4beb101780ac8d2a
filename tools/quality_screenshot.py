"""Render the Quality panel for the README (docs/quality.png): presets and two hand-made mixes.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/quality_screenshot.py docs/quality.png

Measures llama.cpp's presets and two mixes of the demo model on its held-out text (cached in the
quality cache folder like any measurement in the app), prints the numbers and the time each one
took, and saves the panel as a PNG. Needs the ``quality`` extra.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# hand-made mixes shown next to the presets: (preset, tensor kinds, type they get)
MIXES = (("Q4_K_M", ("ffn_gate", "ffn_up"), "Q3_K"), ("Q3_K_M", ("token_embd",), "Q4_K"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="PNG to write")
    p.add_argument("--chunks", type=int, default=0, help="chunks of 512 tokens to evaluate (0: the whole text)")
    p.add_argument("--size", default="1150x470", help="panel size in pixels, WIDTHxHEIGHT")
    args = p.parse_args(argv)

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from explorer.panels.quality_panel import QualityPanel
    from explorer.session import ExplorerSession, PlanState
    from quant_core.assets import DEMO_MODEL
    from quant_core.plan import QuantOptions

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    session = ExplorerSession()
    if not session.open_model(DEMO_MODEL):
        return 1
    tracker = session.quality
    tracker.set_chunks(args.chunks)
    tracker.failed.connect(lambda message: print("failed:", message, file=sys.stderr))
    panel = QualityPanel(session)
    panel.resize(*(int(v) for v in args.size.split("x")))
    panel.show()

    def run(what: str, start) -> None:
        t0 = time.perf_counter()
        start()
        while tracker.running:
            app.processEvents()
            time.sleep(0.02)
        print(f"{what}: {time.perf_counter() - t0:.1f} s")

    run("presets", tracker.measure_presets)
    for preset, kinds, type_name in MIXES:
        session.set_state(PlanState(QuantOptions(preset=preset)), preset)
        session.set_types([tp.name for tp in session.plan.tensors if tp.source.category in kinds], type_name)
        run(f"{preset} with {'/'.join(kinds)} at {type_name}", tracker.measure_current)
    for m in panel.measurements():
        r = m.report
        print(
            f"{m.name:40s} {m.file_bytes:9d} B  {m.bpw:5.3f} bpw  PPL {r.ppl:8.3f}  KLD {r.kld_mean:.6f}  "
            f"99% {r.kld_p99:.6f}  same top {100 * r.same_top_p:.2f} %  ({r.tokens} tokens)"
        )
    app.processEvents()
    panel.grab().save(str(args.out))
    print(f"saved {args.out}")
    tracker.shutdown()
    session.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
