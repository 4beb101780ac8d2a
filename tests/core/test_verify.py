"""verify_written: a written file re-opened and compared with its plan and projected size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from quant_core.errors import QuantError
from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.size import project_size
from quant_core.verify import Verification, VerifyError, verify_written


@pytest.fixture(scope="module")
def written(small_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Q8_0 export of the small model, its plan and its projected size."""
    model = open_model(small_gguf)
    plan = build_plan(model, QuantOptions(preset="Q8_0"))
    out = tmp_path_factory.mktemp("verify") / "q8.gguf"
    for _ in iter_export(model, plan, out, threads=1):
        pass
    return out, plan, project_size(model, plan).file_bytes


def test_good_file_is_verified(written) -> None:
    out, plan, projected = written
    result = verify_written(out, plan, projected)
    assert result == Verification(out, len(plan.tensors), out.stat().st_size)
    assert result.summary() == f"verified: {out.stat().st_size} bytes = projected"


def test_truncated_file_cannot_be_reopened(written, tmp_path: Path) -> None:
    out, plan, projected = written
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(out.read_bytes()[: projected // 2])
    with pytest.raises(VerifyError, match=r"cannot be re-opened: cut\.gguf.* truncated") as err:
        verify_written(cut, plan, projected)
    assert isinstance(err.value, QuantError) and "\n" not in str(err.value)


def test_size_other_than_projected(written) -> None:
    out, plan, projected = written
    with pytest.raises(VerifyError, match=f"has {projected:,} bytes, projected {projected + 32:,}"):
        verify_written(out, plan, projected + 32)


def test_types_and_tensor_count_other_than_planned(written, small_gguf: Path) -> None:
    out, plan, projected = written
    other = build_plan(open_model(small_gguf), QuantOptions(preset="Q8_0", tensor_types=(("attn_q", "Q4_0"),)))
    with pytest.raises(VerifyError, match=r"blk\.0\.attn_q\.weight is Q8_0 in the file, planned Q4_0"):
        verify_written(out, other, projected)
    fewer = replace(plan, tensors=plan.tensors[:-1])
    n = len(plan.tensors)
    with pytest.raises(VerifyError, match=f"the file has {n} tensors, the plan {n - 1}"):
        verify_written(out, fewer, projected)
