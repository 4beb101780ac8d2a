"""What llama-imatrix collects from each graph node llama.cpp shows its evaluation callback.

The scheduler first *asks* about a node (``ask=True``): we want every ``MUL_MAT_ID`` (experts)
and the ``MUL_MAT`` nodes whose weight is a ``blk.*`` tensor (or ``output.weight`` when asked
to), whose input is float32 and holds at least 16 rows (llama-imatrix skips smaller batches).
It then computes up to that node and calls again (``ask=False``) with the result: its inputs are
the weight (``src[0]``), the activations (``src[1]``) and, for experts, the routing ids
(``src[2]``).

Per weight, the sums of squared activations per input column are kept in float32 and a count of
activation rows: one for a dense weight, one per expert for stacked experts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ImatrixError
from ._kernels import add_squares_dense, add_squares_experts
from .ggml_view import GGML_TYPE_F32, OpNames, ggml_base, tensor_array, weight_name

MIN_ROWS = 16  # llama-imatrix ignores matrix products over fewer activation rows


@dataclass
class Entry:
    """Sums (n_mat, ne0) float32 and counts (one per expert, or a single one for a dense weight)."""

    sums: np.ndarray
    counts: np.ndarray
    experts: bool

    def file_sums(self) -> np.ndarray:
        """Sums as llama-imatrix stores them: one row per count (a dense 3-D weight as one row)."""
        return self.sums if self.experts else self.sums.reshape(1, -1)


@dataclass
class Collector:
    """Accumulates the importance statistics of one model over any number of decodes."""

    process_output: bool = False
    entries: dict[str, Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._op = OpNames()
        self._lib = ggml_base()

    def wants(self, t: Any) -> bool:
        """The answer to the scheduler's question about node ``t`` (a GgmlTensor)."""
        op = self._op(t.op)
        if op == "MUL_MAT_ID":
            return True
        if op != "MUL_MAT":
            return False
        src1 = t.src[1].contents
        if src1.ne[1] < MIN_ROWS or src1.type != GGML_TYPE_F32:
            return False
        name = weight_name(t.src[0].contents)
        return name.startswith("blk.") or (self.process_output and name == "output.weight")

    def collect(self, t: Any) -> None:
        """Add the activations of the computed node ``t`` (a GgmlTensor)."""
        if self._op(t.op) == "MUL_MAT_ID":
            self._collect_experts(t)
        else:
            self._collect_dense(t)

    def _collect_dense(self, t: Any) -> None:
        src0, src1 = t.src[0].contents, t.src[1]
        name = weight_name(src0)
        n02, n03 = int(src0.ne[2]), int(src0.ne[3])
        ne0 = int(src1.contents.ne[0])
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = Entry(np.zeros((n02 * n03, ne0), np.float32), np.zeros(1, np.int64), False)
        elif entry.sums.shape != (n02 * n03, ne0):
            raise ImatrixError(f"inconsistent activation size for {name}")
        x = np.ascontiguousarray(tensor_array(src1, np.float32))
        add_squares_dense(entry.sums, x, n02, n03)
        if not np.isfinite(entry.sums).all():
            raise ImatrixError(f"non-finite activations in {name}")
        entry.counts[0] += int(self._lib.ggml_nrows(src1)) // (n02 * n03)

    def _collect_experts(self, t: Any) -> None:
        src0, src1, ids_ptr = t.src[0].contents, t.src[1], t.src[2]
        name = weight_name(src0)
        n_as = int(src0.ne[2])
        s1 = src1.contents
        ne0, n_tokens = int(s1.ne[0]), int(s1.ne[2])
        if int(s1.ne[3]) != 1:
            raise ImatrixError(f"activations of {name} have more than 3 dimensions")
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = Entry(np.zeros((n_as, ne0), np.float32), np.zeros(n_as, np.int64), True)
        elif entry.sums.shape != (n_as, ne0):
            raise ImatrixError(f"inconsistent activation size for {name}")
        x = np.ascontiguousarray(tensor_array(src1, np.float32)[0])  # (n_tokens, ne1, ne0)
        ids = np.ascontiguousarray(tensor_array(ids_ptr, np.int32)[0, 0])  # (n_tokens, n_used)
        if ids.shape[0] != n_tokens:
            raise ImatrixError(f"routing ids of {name} do not match its {n_tokens} tokens")
        touched = np.zeros(n_as, np.bool_)
        if not add_squares_experts(entry.sums, entry.counts, touched, x, ids):
            raise ImatrixError(f"expert id out of range in {name}")
        if not np.isfinite(entry.sums[touched]).all():
            raise ImatrixError(f"non-finite activations in {name}")

    def chunk_count(self, chunk_size: int) -> int:
        """Chunks seen, as llama-imatrix counts them: the largest count over ``chunk_size``."""
        return max((int(e.counts.max()) for e in self.entries.values()), default=0) // chunk_size

    def file_tables(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Sums and counts per weight name, shaped for :func:`quant_core.imatrix.write_imatrix_gguf`."""
        sums = {name: e.file_sums() for name, e in self.entries.items()}
        counts = {name: e.counts for name, e in self.entries.items()}
        return sums, counts
