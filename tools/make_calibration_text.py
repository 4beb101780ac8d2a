"""Write the demo's calibration text: a slice of the training part of the Canterbury texts.

Sensitivity runs (and importance matrices) calibrate on this text, so that quality measured on the
held-out ``assets/demo-eval.txt`` is out of sample. The slice (40-52 % of each text, cut at line
starts) lies inside the part ``tools/train_demo_model.py`` trains on; ``tools/prove_automix.py
--canterbury`` calibrates on the same slice.

    python tools/make_calibration_text.py /tmp/brotli/brotli-1.2.1/tests/testdata [assets/demo-calibration.txt]
"""

from __future__ import annotations

import sys
from pathlib import Path

from prove_automix import calibration_slice

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "assets" / "demo-calibration.txt"
    out.write_text(calibration_slice(Path(argv[0])), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
