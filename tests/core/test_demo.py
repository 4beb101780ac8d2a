"""The synthetic demo model: deterministic generator, committed asset that opens with the expected shape."""

from __future__ import annotations

import numpy as np
import pytest

from quant_core.assets import SYNTHETIC_MODEL
from quant_core.demo import DEMO_NAME, DemoShape, demo_tensor_shapes, write_demo_model
from quant_core.model import open_model

ASSET = SYNTHETIC_MODEL
SMALL = DemoShape(n_embd=256, n_layer=2, n_ff=512, n_vocab=256)


def _name(model) -> str:
    value = model.meta("general.name")
    return value.decode() if isinstance(value, bytes) else value


def test_generator_is_deterministic(tmp_path):
    a = write_demo_model(tmp_path / "a.gguf", shape=SMALL)
    b = write_demo_model(tmp_path / "b.gguf", shape=SMALL)
    c = write_demo_model(tmp_path / "c.gguf", seed=1, shape=SMALL)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_generated_weights_have_heavy_tails_and_outlier_channels(tmp_path):
    model = open_model(write_demo_model(tmp_path / "d.gguf", shape=SMALL))
    x = model.rows_f32("blk.0.attn_q.weight").astype(np.float64)
    col = np.abs(x).mean(axis=0)
    strong = np.sort(col)[-SMALL.outlier_channels :]
    rest = np.median(col)
    assert strong.min() > 4 * rest  # a few input channels 5-10x larger
    y = model.rows_f32("blk.1.attn_output.weight").astype(np.float64)  # no outlier channels here
    assert np.sort(np.abs(y).mean(axis=0))[-1] < 2 * np.median(np.abs(y).mean(axis=0))
    kurtosis = ((y - y.mean()) ** 4).mean() / y.var() ** 2
    assert kurtosis > 5  # Student-t tails (a Gaussian has 3)
    assert 0.008 < y.std() < 0.04
    norm = model.rows_f32("blk.0.attn_norm.weight")
    assert model.tensor("blk.0.attn_norm.weight").src_type == "F32"
    assert 0.7 < norm.mean() < 1.3 and norm.std() > 0.01


@pytest.mark.skipif(not ASSET.is_file(), reason="demo asset not checked out")
def test_committed_asset_opens_with_expected_name_and_shapes():
    model = open_model(ASSET)
    assert _name(model) == DEMO_NAME
    assert "synthetic" in _name(model).lower() and "synthetic" in ASSET.name
    assert model.arch == "llama" and model.n_layer == 4
    assert (model.n_head, model.n_head_kv) == (4, 1)
    assert [(t.name, t.shape) for t in model.tensors] == demo_tensor_shapes()
    for t in model.tensors:
        assert t.src_type == ("F32" if len(t.shape) == 1 else "F16"), t.name
        if len(t.shape) > 1:
            assert t.n_per_row % 256 == 0, t.name  # every K-quant applies
    assert model.file_size < 8 * 1024 * 1024
