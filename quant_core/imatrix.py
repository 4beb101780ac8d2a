"""Importance matrices (imatrix) in the two formats llama.cpp writes, read as llama-quantize does.

* GGUF (llama-imatrix's default): keys ``imatrix.datasets`` / ``imatrix.chunk_count`` /
  ``imatrix.chunk_size`` and, per weight, ``<name>.in_sum2`` (sums of squared activations,
  ``n_mat x ne0``) plus ``<name>.counts`` (activation rows per matrix). The value used is
  ``in_sum2 / lround(count)``, or 1.0 for a matrix (expert) that was never activated.
* legacy ``.dat``: per entry the mean times ``ncall``; the reader divides by ``ncall``.
  An optional trailer holds the chunk count and the dataset name.

Values are float32 and computed with float32 divisions, exactly as llama-quantize does.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from .errors import ImatrixError, QuantError
from .inputs import read_input_bytes, read_input_head

if TYPE_CHECKING:
    from .model import TensorInfo
    from .reader import MetaField

KEY_DATASETS = "imatrix.datasets"
KEY_CHUNK_COUNT = "imatrix.chunk_count"
KEY_CHUNK_SIZE = "imatrix.chunk_size"
SUMS_SUFFIX = ".in_sum2"
COUNTS_SUFFIX = ".counts"
ACTIVATIONS_SUFFIX = ".in_sum"
DEFAULT_CHUNK_SIZE = 512
_C_STRING_MAX = 127  # llama_model_kv_override::val_str holds 127 bytes plus the terminator


@dataclass(frozen=True, eq=False)
class Imatrix:
    """An importance matrix as llama-quantize uses it.

    ``entries`` maps weight names to read-only float32 values (mean squared activation per
    input column; for stacked experts ``n_expert * ne0`` values, expert-major). ``chunk_size``
    is None for the legacy format, which does not store it. ``path`` is the path as given.
    """

    entries: dict[str, npt.NDArray[np.float32]]
    datasets: list[str]
    chunk_count: int
    chunk_size: int | None
    path: str
    format: str


def load_imatrix(path: str | os.PathLike[str]) -> Imatrix:
    """Read a GGUF or legacy ``.dat`` importance matrix (a file starting with "GGUF" is GGUF).

    Raises ImatrixError (one line) for a missing, truncated or malformed file.
    """
    name = os.fspath(path)
    if read_input_head(name, "importance matrix", ImatrixError, 4) == b"GGUF":  # FIFOs, devices refused
        return _load_gguf(name)
    return _parse_dat(read_input_bytes(name, "importance matrix", ImatrixError), name)


def filter_entries(imatrix: Imatrix, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Imatrix:
    """Keep the entries whose name contains one of ``include``, or drop those containing one
    of ``exclude`` (substring match, as llama-quantize's --include-weights/--exclude-weights).
    """
    if include and exclude:
        raise ImatrixError("include and exclude filters of the importance matrix cannot be combined")
    if exclude:
        kept = {k: v for k, v in imatrix.entries.items() if not any(p in k for p in exclude)}
    elif include:
        kept = {k: v for k, v in imatrix.entries.items() if any(p in k for p in include)}
    else:
        return imatrix
    return dataclasses.replace(imatrix, entries=kept)


def values_for_tensor(imatrix: Imatrix, name: str, ne0: int, n_expert: int = 1) -> npt.NDArray[np.float32] | None:
    """The importance values for tensor ``name`` (ne0 columns, n_expert stacked matrices).

    None when the imatrix has no entry for it. The result is flat, expert-major:
    ``v.reshape(n_expert, ne0)[e]`` is expert e's vector. A size mismatch or non-finite
    values raise ImatrixError (llama-quantize aborts there, except for token_embd.weight,
    whose mismatching entry it ignores: callers mimicking that catch the error).
    """
    values = imatrix.entries.get(name)
    if values is None:
        return None
    want = int(ne0) * int(n_expert)
    if values.size != want:
        shape = f"{ne0}" if n_expert == 1 else f"{n_expert} x {ne0}"
        raise ImatrixError(
            f"importance matrix entry {name} has {values.size} values but the tensor needs {want} ({shape})"
        )
    if not np.isfinite(values).all():
        raise ImatrixError(f"importance matrix entry {name} contains non-finite values")
    return values


def tensor_importance(imatrix: Imatrix | None, t: TensorInfo) -> npt.NDArray[np.float32] | None:
    """The importance values llama-quantize uses for source tensor ``t`` (None: quantize without).

    The one lookup every caller uses (export, statistics, the GUI): the entry named as the source
    tensor (a pruned model's renumbered tensors look up their source's name), ``ne0`` columns per
    stacked matrix (expert). A mismatching or non-finite entry raises ImatrixError, as it aborts
    llama-quantize, except for ``token_embd``, whose mismatching entry llama-quantize ignores.
    """
    if imatrix is None:
        return None
    n_expert = t.shape[2] if len(t.shape) > 2 else 1
    try:
        return values_for_tensor(imatrix, t.name, t.shape[0], n_expert)
    except ImatrixError:
        if t.category == "token_embd":
            return None
        raise


def has_importance(imatrix: Imatrix | None, t: TensorInfo) -> bool:
    """Whether ``imatrix`` holds a usable entry for source tensor ``t`` (a bad entry counts as none)."""
    try:
        return tensor_importance(imatrix, t) is not None
    except QuantError:
        return False


def metadata_keys(imatrix: Imatrix) -> list[tuple[str, str | int, GGUFValueType]]:
    """The ``quantize.imatrix.*`` keys llama-quantize appends to its output, in its order.

    file (path truncated to 127 bytes), dataset (the first one, if any), entries_count
    and chunks_count (only if > 0). Empty when no entry is left: llama-quantize then runs
    without an imatrix and writes none of them.
    """
    if not imatrix.entries:
        return []
    keys: list[tuple[str, str | int, GGUFValueType]] = [
        ("quantize.imatrix.file", _c_string(imatrix.path), GGUFValueType.STRING)
    ]
    if imatrix.datasets:
        keys.append(("quantize.imatrix.dataset", _c_string(imatrix.datasets[0]), GGUFValueType.STRING))
    keys.append(("quantize.imatrix.entries_count", len(imatrix.entries), GGUFValueType.UINT32))
    if imatrix.chunk_count > 0:
        keys.append(("quantize.imatrix.chunks_count", imatrix.chunk_count, GGUFValueType.UINT32))
    return keys


def write_imatrix_dat(
    path: str | os.PathLike[str],
    sums: Mapping[str, npt.ArrayLike],
    counts: Mapping[str, npt.ArrayLike],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_count: int | None = None,
    dataset: str = "",
) -> None:
    """Write a legacy ``.dat`` imatrix as ``llama-imatrix --output-format dat`` does.

    ``sums[name]`` holds the sums of squared activations, shape (n_mat, ne0) or (ne0,);
    ``counts[name]`` the activation rows per matrix (n_mat integers). Each value is stored as
    ``(sum / count) * ncall`` with ``ncall = ceil(max(count) / chunk_size)`` (1 for a matrix
    with count 0); entries whose counts are all 0 are skipped. ``chunk_count`` defaults to
    ``max(count) // chunk_size`` over all entries.
    """
    table = _checked_stats(sums, counts)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    chunks = _default_chunks(table, chunk_size) if chunk_count is None else int(chunk_count)
    stored = {k: v for k, v in table.items() if np.any(v[1] != 0)}
    out = bytearray(struct.pack("<i", len(stored)))
    for name in sorted(stored):
        s, c = stored[name]
        ncall = (int(c.max()) + chunk_size - 1) // chunk_size
        count = np.where(c == 0, 1, c).astype(np.float32)[:, None]
        value = np.where(c[:, None] == 0, np.float32(1.0), s)
        encoded = name.encode("utf-8")
        out += struct.pack("<i", len(encoded)) + encoded + struct.pack("<ii", ncall, s.size)
        out += ((value / count) * np.float32(ncall)).astype("<f4").tobytes()
    encoded_ds = dataset.encode("utf-8")
    out += struct.pack("<ii", chunks, len(encoded_ds)) + encoded_ds
    with open(path, "wb") as f:
        f.write(out)


def write_imatrix_gguf(
    path: str | os.PathLike[str],
    sums: Mapping[str, npt.ArrayLike],
    counts: Mapping[str, npt.ArrayLike],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_count: int | None = None,
    datasets: Sequence[str] = ("calibration.txt",),
) -> None:
    """Write a GGUF imatrix as llama-imatrix does (same keys, order, names and shapes).

    Arguments as for :func:`write_imatrix_dat`. gguf-py cannot write an empty array, so at
    least one dataset name is required.
    """
    table = _checked_stats(sums, counts)
    if not datasets:
        raise ValueError("a GGUF imatrix needs at least one dataset name")
    chunks = _default_chunks(table, chunk_size) if chunk_count is None else int(chunk_count)
    writer = GGUFWriter(path, arch="")  # an empty arch adds no general.architecture key
    writer.add_string("general.type", "imatrix")
    writer.add_array(KEY_DATASETS, list(datasets))
    writer.add_uint32(KEY_CHUNK_COUNT, chunks)
    writer.add_uint32(KEY_CHUNK_SIZE, int(chunk_size))
    for name in sorted(table):
        s, c = table[name]
        n_mat = s.shape[0]
        # ggml stores ne = [ne0, n_mat] and [1, n_mat]; trailing 1s are trimmed in the file
        writer.add_tensor(name + SUMS_SUFFIX, s.reshape(-1) if n_mat == 1 else s)
        writer.add_tensor(name + COUNTS_SUFFIX, c.astype(np.float32).reshape(-1 if n_mat == 1 else (n_mat, 1)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --- GGUF reading ---------------------------------------------------------------------------


def _load_gguf(path: str) -> Imatrix:
    # the model's header reader: metadata arrays parsed in one step, not one numpy view per element
    from .reader import HeaderReader

    try:
        reader = HeaderReader(path, "r")
    except Exception as err:  # noqa: BLE001  gguf-py raises assorted errors on corrupt files
        raise ImatrixError(f"{path} is not a valid GGUF importance matrix ({_short(err)})") from None
    if not reader.tensors:
        raise ImatrixError(f"{path}: no data in importance matrix")
    fields = {f.key: f for f in reader.meta_fields}
    datasets = _datasets_field(fields, path)
    chunk_count = _u32_field(fields, KEY_CHUNK_COUNT, path)
    chunk_size = _u32_field(fields, KEY_CHUNK_SIZE, path)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for t in reader.tensors:
        for suffix in (SUMS_SUFFIX, COUNTS_SUFFIX, ACTIVATIONS_SUFFIX):
            if t.name.endswith(suffix) and len(t.name) > len(suffix):
                if t.tensor_type != GGMLQuantizationType.F32:
                    raise ImatrixError(f"{path}: tensor {t.name} must be F32, not {t.tensor_type.name}")
                pairs.setdefault(t.name[: -len(suffix)], {})[suffix] = np.array(t.data, np.float32).reshape(-1)
                break
    entries = {name: _gguf_values(name, parts, path) for name, parts in sorted(pairs.items())}
    return Imatrix(entries, datasets, chunk_count, chunk_size, path, "gguf")


def _gguf_values(name: str, parts: dict[str, np.ndarray], path: str) -> np.ndarray:
    sums, counts = parts.get(SUMS_SUFFIX), parts.get(COUNTS_SUFFIX)
    act = parts.get(ACTIVATIONS_SUFFIX)
    if sums is None or counts is None or (act is not None and act.size != sums.size):
        raise ImatrixError(f"{path}: mismatched sums and counts for {name}")
    if counts.size == 0 or sums.size % counts.size:
        raise ImatrixError(f"{path}: {name} has {sums.size} sums for {counts.size} counts")
    c64 = counts.astype(np.float64)
    # lround (halves away from zero); NaN/inf become a huge negative long in C: "no data"
    rounded = np.where(np.isfinite(c64), np.copysign(np.floor(np.abs(c64) + 0.5), c64), -1.0)
    per_mat = sums.reshape(counts.size, -1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = per_mat / rounded.astype(np.float32)[:, None]
    values[rounded <= 0] = np.float32(1.0)
    return _frozen(values.reshape(-1))


def _datasets_field(fields: Mapping[str, MetaField], path: str) -> list[str]:
    field = fields.get(KEY_DATASETS)
    if field is None:
        raise ImatrixError(f"{path}: missing imatrix metadata ({KEY_DATASETS})")
    if field.vtype != GGUFValueType.ARRAY or field.sub_type != GGUFValueType.STRING:
        raise ImatrixError(f"{path}: {KEY_DATASETS} must be an array of strings")
    return [bytes(v).decode("utf-8", "replace") for v in field.value]


def _u32_field(fields: Mapping[str, MetaField], key: str, path: str) -> int:
    field = fields.get(key)
    if field is None:
        raise ImatrixError(f"{path}: missing imatrix metadata ({key})")
    if field.vtype != GGUFValueType.UINT32:
        raise ImatrixError(f"{path}: {key} must be a uint32")
    return int(field.value)


# --- legacy .dat reading -------------------------------------------------------------------


class _Cursor:
    """Little-endian reads from bytes that raise ImatrixError when the data runs out."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.pos, self.path = data, 0, path

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining():
            raise ImatrixError(f"{self.path}: not an importance matrix (truncated at {what})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def i32(self, what: str) -> int:
        return struct.unpack("<i", self.take(4, what))[0]


def _parse_dat(data: bytes, path: str) -> Imatrix:
    cur = _Cursor(data, path)
    n_entries = cur.i32("the entry count")
    if n_entries < 1:
        raise ImatrixError(f"{path}: not an importance matrix (no entries)")
    entries: dict[str, np.ndarray] = {}
    for i in range(1, n_entries + 1):
        name_len = cur.i32(f"entry {i}")
        raw = cur.take(name_len, f"the name of entry {i}").split(b"\0", 1)[0]
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImatrixError(f"{path}: not an importance matrix (entry {i} has no UTF-8 name)") from None
        ncall, nval = cur.i32(f"entry {i}"), cur.i32(f"entry {i}")
        if nval < 1:
            raise ImatrixError(f"{path}: not an importance matrix (entry {name} has {nval} values)")
        values = np.frombuffer(cur.take(4 * nval, f"the values of {name}"), dtype="<f4").astype(np.float32)
        if ncall > 0:
            values = values / np.float32(ncall)
        entries[name] = _frozen(values)
    chunk_count, datasets = 0, []
    if cur.remaining():
        chunk_count = cur.i32("the chunk count")
        ds_len = cur.i32("the dataset name")
        if ds_len > 0:
            datasets.append(cur.take(ds_len, "the dataset name").split(b"\0", 1)[0].decode("utf-8", "replace"))
    return Imatrix(entries, datasets, chunk_count, None, path, "dat")


# --- helpers -----------------------------------------------------------------------------


def _checked_stats(
    sums: Mapping[str, npt.ArrayLike], counts: Mapping[str, npt.ArrayLike]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if set(sums) != set(counts):
        raise ValueError("sums and counts must have the same entry names")
    table = {}
    for name in sums:
        s = np.asarray(sums[name], dtype=np.float32)
        s = s.reshape(1, -1) if s.ndim == 1 else s
        c = np.asarray(counts[name], dtype=np.int64).reshape(-1)
        if s.ndim != 2 or s.size == 0 or c.shape[0] != s.shape[0] or np.any(c < 0):
            raise ValueError(f"{name}: sums of shape {s.shape} need one count >= 0 per matrix, got {c.shape[0]}")
        table[name] = (s, c)
    return table


def _default_chunks(table: Mapping[str, tuple[np.ndarray, np.ndarray]], chunk_size: int) -> int:
    return max((int(c.max()) for _, c in table.values()), default=0) // int(chunk_size)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _c_string(text: str) -> str:
    """``text`` as strncpy into a 128-byte buffer keeps it (cut a split UTF-8 character)."""
    raw = text.encode("utf-8").split(b"\0", 1)[0][:_C_STRING_MAX]
    return raw.decode("utf-8", "ignore")


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


__all__ = [
    "Imatrix",
    "load_imatrix",
    "filter_entries",
    "values_for_tensor",
    "tensor_importance",
    "metadata_keys",
    "write_imatrix_dat",
    "write_imatrix_gguf",
]


def load_for_quantize(path: str, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> tuple[Imatrix, list]:
    """Read and filter an imatrix as llama-quantize does; also its output metadata fields."""
    from .reader import MetaField

    imatrix = filter_entries(load_imatrix(path), list(include), list(exclude))
    keys = [MetaField(k, v.encode() if isinstance(v, str) else v, t) for k, v, t in metadata_keys(imatrix)]
    return imatrix, keys
