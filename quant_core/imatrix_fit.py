"""Whether an importance matrix was made for a model: checked once, when it is loaded.

llama-quantize finds out tensor by tensor while it writes; the explorer refuses a matrix that
does not fit before applying it, with one line naming the first mismatch.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ImatrixError
from .imatrix import Imatrix, tensor_importance
from .model import Model


def check_imatrix_fits(model: Model, imatrix: Imatrix) -> None:
    """Raise ImatrixError (one line) unless ``imatrix`` fits ``model``.

    It fits when at least one matrix weight of the model has an entry and every entry named
    like a model tensor has the length that tensor needs (``token_embd`` excepted, as
    llama-quantize ignores its mismatching entry).
    """
    file = Path(imatrix.path).name
    matched = 0
    for t in model.tensors:
        if t.name not in imatrix.entries:
            continue
        matched += 1
        try:
            tensor_importance(imatrix, t)
        except ImatrixError as err:
            raise ImatrixError(f"{file} does not fit {model.path.name}: {err}") from None
    if matched == 0:
        some = ", ".join(sorted(imatrix.entries)[:2])
        raise ImatrixError(
            f"{file} was not made for {model.path.name}: none of its {len(imatrix.entries)} entries "
            f"({some}, …) names one of its tensors"
        )
