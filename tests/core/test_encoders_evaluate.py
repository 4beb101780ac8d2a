"""Error statistics follow each tensor's encoder: an HQQ-encoded tensor is measured as HQQ writes it."""

from __future__ import annotations

import numpy as np

from quant_core.evaluate import evaluate_tensor, iter_evaluate, sample_rows
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan

NAME = "blk.1.ffn_up.weight"


def test_iter_evaluate_uses_the_planned_encoder(small_gguf) -> None:
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q4_K_M", encoders=((NAME, "hqq"),)))
    tp = plan.tensor(NAME)
    assert (tp.type, tp.encoder) == ("Q4_K", "hqq")
    (ev,) = iter_evaluate(model, plan, [NAME], max_rows=32)
    rows = sample_rows(tp.source.n_rows, 32)
    hqq = evaluate_tensor(model, tp.source, "Q4_K", rows, encoder="hqq")
    ggml = evaluate_tensor(model, tp.source, "Q4_K", rows)
    assert ev.encoder == "hqq" and ev.stats.rmse == hqq.rmse and ev.stats.rmse != ggml.rmse
    assert np.array_equal(ev.stats.hist_counts, hqq.hist_counts)
    (other,) = iter_evaluate(model, plan, [NAME], max_rows=32, types={NAME: "Q6_K"})
    assert other.encoder == "ggml" and other.type == "Q6_K"  # another type: ggml's encoder
