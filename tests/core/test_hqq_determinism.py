"""HQQ bytes do not depend on the compilation: a fresh compile in another process (empty kernel
cache) writes the same bytes as this process (kernels loaded from the cache or compiled here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quant_core import quantize

SCRIPT = """
import sys
import numpy as np
from quant_core import quantize
x = np.random.default_rng(1234).standard_normal((512, 4096)).astype(np.float32) * 0.02
imp = np.random.default_rng(7).lognormal(0.0, 1.0, 4096).astype(np.float32)
np.save(sys.argv[1], np.concatenate([quantize(x, t, imatrix=imp, encoder="hqq").ravel() for t in sys.argv[2:]]))
"""
TYPES = ["Q4_1", "Q5_1"]


@pytest.mark.slow
def test_fresh_compile_and_cached_kernels_write_the_same_hqq_bytes(tmp_path: Path) -> None:
    env = dict(os.environ, QUANT_EXPLORER_CACHE=str(tmp_path / "cache"))  # empty: compiled, then loaded
    env.pop("NUMBA_CACHE_DIR", None)
    runs = []
    for name in ("compiled", "cached"):
        out = tmp_path / f"{name}.npy"
        subprocess.run([sys.executable, "-c", SCRIPT, str(out), *TYPES], env=env, check=True, timeout=900)
        runs.append(np.load(out))
    x = np.random.default_rng(1234).standard_normal((512, 4096)).astype(np.float32) * 0.02
    imp = np.random.default_rng(7).lognormal(0.0, 1.0, 4096).astype(np.float32)
    here = np.concatenate([quantize(x, t, imatrix=imp, encoder="hqq").ravel() for t in TYPES])
    assert np.array_equal(runs[0], runs[1])
    assert np.array_equal(runs[0], here)
