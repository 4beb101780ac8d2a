"""Public quantize / dequantize: validation, then dispatch through the kernel registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
import numpy.typing as npt

from .errors import ImatrixError, NonFiniteError, ShapeError, UnsupportedTypeError
from .kernels import DEQUANTIZERS, ENCODER_QUANTIZERS
from .kernels._common import NO_IMATRIX, first_nonfinite
from .kernels.floats import copy_f32_checked
from .qtypes import QType, check_encoder, qtype


def quantize(
    x: npt.ArrayLike,
    type_name: str | QType,
    imatrix: npt.ArrayLike | None = None,
    threads: int | None = None,
    encoder: str = "ggml",
) -> npt.NDArray[np.uint8]:
    """Quantize rows of float32 weights exactly as ggml's ``ggml_quantize_chunk`` does.

    Parameters
    ----------
    x : float array of shape (rows, n_per_row) (1-D is one row); any strides, read-only
        memory maps are accepted without copying when already C-contiguous float32.
    type_name : ggml type name, case-insensitive ("Q4_K", "q4_k", "iq4_xs", "bf16").
    imatrix : None, or float32[n_per_row] importance values as llama-quantize passes them.
    threads : number of threads (None: every core). The bytes do not depend on it.
    encoder : "ggml" (default): ggml's own search, byte-identical to llama-quantize. "hqq":
        HQQ's proximal optimiser chooses each group's scale and min, for the types of
        ``qtypes.HQQ_TYPES`` (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K); the blocks are ordinary blocks of
        the type, decoded unchanged by llama.cpp, but not the bytes llama-quantize writes. With
        an importance matrix, HQQ weighs each column by it (see ``kernels.hqq_affine``).

    Returns
    -------
    uint8 array of shape (rows, row_bytes).

    Raises
    ------
    QuantError subclasses with a one-line message for an unknown or unsupported type, a row
    length not divisible by the block size, non-finite weights, a bad importance matrix, or
    an encoder that is unknown or cannot write the type (EncoderError).
    """
    qt = qtype(type_name)
    kernel = ENCODER_QUANTIZERS.get(check_encoder(qt, encoder), {}).get(qt.name)
    if kernel is None:
        raise UnsupportedTypeError(f"quantizing to {qt.name} with the {encoder} encoder is not supported")
    rows = _as_rows(x)
    n_per_row = rows.shape[1]
    _check_row_length(qt, n_per_row)
    with _thread_count(threads):
        copied = None
        if qt.name == "F32":  # a plain copy, checked while copying: one pass over the weights
            copied = _copy_f32(rows)
        else:
            _check_finite(rows, "weights")
        weights = _check_imatrix(imatrix, n_per_row)
        if weights is None and qt.ggml_requires_imatrix:
            raise ImatrixError(f"{qt.name} cannot be quantized without an importance matrix")
        if copied is not None:
            return copied
        return kernel(rows, NO_IMATRIX if weights is None else weights)


def dequantize(
    q: npt.ArrayLike, type_name: str | QType, n_per_row: int, threads: int | None = None
) -> npt.NDArray[np.float32]:
    """Decode quantized rows to float32 (rows, n_per_row), bit-identical to gguf.dequantize.

    ``q`` is a uint8 array holding whole rows (any shape whose size is a multiple of the
    row size), for example what :func:`quantize` returned or a tensor's bytes in a GGUF file.
    """
    qt = qtype(type_name)
    kernel = DEQUANTIZERS.get(qt.name)
    if kernel is None:
        raise UnsupportedTypeError(f"dequantizing {qt.name} is not supported")
    _check_row_length(qt, n_per_row)
    data = np.ascontiguousarray(q)
    if data.dtype != np.uint8:
        data = data.view(np.uint8)
    row_bytes = qt.row_bytes(n_per_row)
    if row_bytes == 0 or data.size % row_bytes:
        raise ShapeError(
            f"{data.size} bytes are not whole rows of {n_per_row} {qt.name} values ({row_bytes} bytes each)"
        )
    with _thread_count(threads):
        return kernel(data.reshape(-1, row_bytes), n_per_row)


def _as_rows(x: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise ShapeError(f"weights must be a float array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ShapeError(f"weights must be a (rows, n_per_row) array, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_row_length(qt: QType, n_per_row: int) -> None:
    if n_per_row <= 0 or n_per_row % qt.block_size:
        raise ShapeError(f"row length {n_per_row} is not a multiple of {qt.name}'s block size {qt.block_size}")


def _check_finite(rows: np.ndarray, what: str) -> None:
    if rows.size == 0:
        return
    bad = first_nonfinite(rows)
    if bad >= 0:
        r, c = divmod(int(bad), rows.shape[1])
        raise NonFiniteError(f"{what} contain a non-finite value ({rows[r, c]}) at row {r}, column {c}")


def _copy_f32(rows: np.ndarray) -> np.ndarray:
    """F32 "quantization" is a copy: check the weights while copying them (one pass)."""
    out, finite = copy_f32_checked(rows)
    if not finite:
        _check_finite(rows, "weights")
    return out


def _check_imatrix(imatrix: npt.ArrayLike | None, n_per_row: int) -> np.ndarray | None:
    if imatrix is None:
        return None
    # a writable copy: the numba type of NO_IMATRIX, so a read-only (loaded) imatrix does not
    # compile a second specialization of every kernel
    qw = np.array(imatrix, dtype=np.float32).reshape(-1)
    if qw.shape[0] != n_per_row:
        raise ImatrixError(f"importance matrix has {qw.shape[0]} values but rows have {n_per_row} columns")
    if not np.isfinite(qw).all():
        raise ImatrixError("importance matrix contains non-finite values")
    return qw


@contextmanager
def _thread_count(threads: int | None) -> Iterator[None]:
    available = numba.config.NUMBA_NUM_THREADS
    wanted = available if threads is None or threads <= 0 else min(int(threads), available)
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
