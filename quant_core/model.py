"""Open a GGUF model: tensors, categories and hyper-parameters, reading nothing but the header.

Weights stay on disk: :meth:`Model.rows_f32` reads the rows asked for with positional reads and
converts them to float32 (dequantizing already-quantized sources), so models larger than RAM
work, and a file truncated while it is read is a :class:`ModelError`, not a SIGBUS.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType

from .errors import QuantError
from .kernels import DEQUANTIZERS
from .quantize import dequantize
from .reader import HeaderError, HeaderReader, MetaField
from .split import SplitError
from .split_input import open_other_parts, split_count

_LAYER_RE = re.compile(r"^blk\.(\d+)\.")
_SEEK_LOCK = threading.Lock()


class ModelError(QuantError):
    """A file that cannot be opened as a GGUF model."""


# llama.cpp's tensor categories (src/llama-quant.cpp tensor_get_category), tested in this order
_CATEGORY_SUBSTRINGS: tuple[tuple[str, str], ...] = (
    ("attn_qkv.weight", "attn_qkv"),
    ("attn_kv_b.weight", "attn_kv_b"),
    ("attn_v.weight", "attn_v"),
    ("attn_k.weight", "attn_k"),
    ("attn_q.weight", "attn_q"),
    ("attn_output.weight", "attn_output"),
    ("ffn_up", "ffn_up"),
    ("ffn_gate", "ffn_gate"),
    ("ffn_down", "ffn_down"),
)
CATEGORIES: tuple[str, ...] = ("output", "token_embd") + tuple(c for _, c in _CATEGORY_SUBSTRINGS) + ("other",)


def tensor_category(name: str) -> str:
    """llama.cpp's quantization category of a tensor name."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for needle, category in _CATEGORY_SUBSTRINGS:
        if needle in name:
            return category
    return "other"


def tensor_layer(name: str) -> int | None:
    """Layer number from a ``blk.N.`` prefix, or None."""
    match = _LAYER_RE.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a model. ``shape`` is in ggml order: ``shape[0]`` is the row length (ne0)."""

    name: str
    shape: tuple[int, ...]
    src_type: str
    n_bytes: int
    data_offset: int
    layer: int | None
    category: str
    part: int = 0  # the file of a split model holding the data (0: the first or only file)

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_per_row(self) -> int:
        return self.shape[0]

    @property
    def n_rows(self) -> int:
        return self.n_elements // self.shape[0]


@dataclass
class Model:
    """An opened GGUF model (header parsed; tensor data read on demand)."""

    path: Path
    metadata: list[MetaField]
    tensors: list[TensorInfo]
    arch: str
    n_layer: int
    n_head: int
    n_head_kv: int
    n_expert: int
    file_size: int
    _reader: GGUFReader = field(repr=False)
    _by_name: dict[str, int] = field(default_factory=dict, repr=False)
    _fd: int = field(default=-1, repr=False)  # tensor data is read from here; -1: no file
    part_paths: tuple[Path, ...] = ()  # every file of a split model, first part first; () if unsplit
    _part_fds: tuple[int, ...] = field(default=(), repr=False)  # descriptors of parts 2..N

    def __post_init__(self) -> None:
        self._by_name = {t.name: i for i, t in enumerate(self.tensors)}

    def tensor(self, name: str) -> TensorInfo:
        try:
            return self.tensors[self._by_name[name]]
        except KeyError:
            raise ModelError(f"no tensor named {name!r} in {self.path.name}") from None

    def meta(self, key: str, default: Any = None) -> Any:
        for f in self.metadata:
            if f.key == key:
                return f.value
        return default

    @property
    def n_gqa(self) -> int:
        return self.n_head // self.n_head_kv if self.n_head_kv > 0 else 0

    @property
    def n_parameters(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    def raw(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The tensor's bytes ``[start:stop]`` in the file, read into a new uint8 array.

        Raises :class:`ModelError` if the file was truncated since it was opened.
        """
        t = self.tensor(name)
        stop = t.n_bytes if stop is None else min(stop, t.n_bytes)
        start = min(max(start, 0), stop)
        out = np.empty(stop - start, dtype=np.uint8)
        self._read_into(out, t.data_offset + start, t.part)
        return out

    def _read_into(self, out: np.ndarray, offset: int, part: int = 0) -> None:
        """Fill ``out`` from the file at ``offset`` with positional reads (not the memory map:
        touching a mapped page of a truncated file kills the process with SIGBUS)."""
        view = memoryview(out).cast("B")
        fd = self._fd if part == 0 else self._part_fds[part - 1]
        name = self.part_paths[part].name if self.part_paths else self.path.name
        done = 0
        while done < len(view):
            try:
                n = _pread_into(fd, view[done:], offset + done)
            except OSError as err:
                raise ModelError(f"{name}: read failed ({err.strerror or err})") from None
            if n == 0:
                raise ModelError(f"{name} changed on disk while being read (truncated)")
            done += n

    def _rows_raw(self, t: TensorInfo, row_bytes: int, rows: slice | np.ndarray | None) -> np.ndarray:
        """Selected rows of the tensor's bytes, shape (n, row_bytes); each run of consecutive
        rows is one read, so a sparse selection reads only its rows."""
        if rows is None:
            rows = slice(0, t.n_rows)
        if isinstance(rows, slice):
            start, stop, step = rows.indices(t.n_rows)
            if step == 1:
                out = np.empty((max(stop - start, 0), row_bytes), dtype=np.uint8)
                self._read_into(out, t.data_offset + start * row_bytes, t.part)
                return out
            rows = np.arange(start, stop, step)
        idx = np.asarray(rows)
        idx = np.flatnonzero(idx) if idx.dtype == np.bool_ else idx.astype(np.int64).ravel()
        if idx.size and (idx.min() < -t.n_rows or idx.max() >= t.n_rows):
            raise IndexError(f"row index out of range for {t.name} ({t.n_rows} rows)")
        idx = np.where(idx < 0, idx + t.n_rows, idx)
        out = np.empty((idx.size, row_bytes), dtype=np.uint8)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, idx.size], strict=True):
            if hi > lo:
                self._read_into(out[lo:hi], t.data_offset + int(idx[lo]) * row_bytes, t.part)
        return out

    def rows_f32(self, name: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Rows of the tensor as float32 (n_rows, ne0); a selection of rows reads only those."""
        t = self.tensor(name)
        qt_name = t.src_type
        if qt_name != "F32" and qt_name not in DEQUANTIZERS:
            raise ModelError(f"tensor {name} has type {qt_name}, which cannot be converted to float")
        from .qtypes import qtype

        data = self._rows_raw(t, qtype(qt_name).row_bytes(t.n_per_row), rows)
        if qt_name == "F32":
            return data.view(np.float32).reshape(-1, t.n_per_row)
        return dequantize(data, qt_name, t.n_per_row)


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """One positional read into ``view``; returns the byte count (0 at end of file)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    with _SEEK_LOCK:  # no preadv (Windows): seek and read under a lock, for threaded callers
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, min(len(view), 1 << 30))
        view[: len(data)] = data
        return len(data)


def open_model(path: str | os.PathLike[str]) -> Model:
    """Parse a GGUF file's header (metadata and tensor table); tensor data is read on demand.

    Raises :class:`ModelError` with one line for a missing file, a file that is not GGUF, a
    truncated file, a tensor type this version of gguf does not know, a header that gguf.cpp
    would refuse (see :mod:`quant_core.reader`) and hyper-parameters llama.cpp's loader would
    refuse (wrong type, empty or mis-sized per-layer arrays).
    """
    p = Path(path)
    reader = _read_header(p)
    tensors = [_tensor_info(rt) for rt in reader.tensors]
    metadata = _metadata(reader)
    try:
        hp = _hyperparameters(metadata)
        n_parts = split_count(p, metadata)
        others = _other_parts(p, n_parts, metadata, [t.name for t in tensors])
    except (HeaderError, SplitError) as err:
        raise ModelError(f"{p.name}: {_one_line(str(err))}") from None
    for index, (_, part) in enumerate(others, start=1):
        tensors += [_tensor_info(rt, index) for rt in part.tensors]
    paths = [p] + [q for q, _ in others]
    # tensor data is read from descriptors opened now: a later rename over a path keeps
    # reading the file that was opened
    fds: list[int] = []
    try:
        for q in paths:
            fds.append(_open_fd(q))
    except ModelError:
        for fd in fds:
            os.close(fd)
        raise
    size = sum(q.stat().st_size for q in paths)
    model = Model(
        p,
        metadata,
        tensors,
        file_size=size,
        _reader=reader,
        _fd=fds[0],
        part_paths=tuple(paths) if n_parts > 1 else (),
        _part_fds=tuple(fds[1:]),
        **hp,
    )
    for fd in fds:
        weakref.finalize(model, os.close, fd)
    return model


def _read_header(p: Path) -> HeaderReader:
    """Parse one GGUF file's header; ModelError with one line if it is not a readable GGUF."""
    if not p.is_file():
        raise ModelError(f"{p}: no such file")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelError(f"{p.name} is not a GGUF file")
    try:
        return HeaderReader(p, "r")
    except ValueError as err:
        raise ModelError(f"{p.name}: {_one_line(_reader_error(err))}") from None
    except (IndexError, OverflowError, TypeError, UnicodeDecodeError, MemoryError):
        raise ModelError(f"{p.name} is truncated or corrupt (its header cannot be parsed)") from None


def _other_parts(p: Path, n_parts: int, metadata: list[MetaField], names: list[str]) -> list[tuple[Path, HeaderReader]]:
    """Parts 2..N of a split model (none for an unsplit one), headers parsed and checked."""
    if n_parts <= 1:
        return []

    def read(q: Path) -> tuple[HeaderReader, list[MetaField], list[str]]:
        try:
            header = _read_header(q)
        except ModelError as err:
            raise SplitError(str(err)) from None
        return header, _metadata(header), [str(rt.name) for rt in header.tensors]

    return open_other_parts(p, n_parts, metadata, read, names)


def _open_fd(p: Path) -> int:
    try:
        return os.open(p, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise ModelError(f"{p.name}: cannot read ({err.strerror or err})") from None


def _one_line(text: str, limit: int = 400) -> str:
    """Names and keys come from the file: escape control characters, cap the length."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def _reader_error(err: ValueError) -> str:
    text = str(err)
    if isinstance(err, HeaderError):
        return text
    if "alignment" in text:
        return f"general.alignment must be a UINT32 power of two ({text})"
    if "is not a valid GGMLQuantizationType" in text:
        return f"unsupported tensor type ({text})"
    if "GGUF magic" in text:
        return "not a GGUF file"
    return f"truncated or corrupt header ({text})"


def _tensor_info(rt: Any, part: int = 0) -> TensorInfo:
    name = str(rt.name)
    return TensorInfo(
        name=name,
        shape=tuple(int(d) for d in rt.shape),
        src_type=GGMLQuantizationType(rt.tensor_type).name,
        n_bytes=int(rt.n_bytes),
        data_offset=int(rt.data_offset),
        layer=tensor_layer(name),
        category=tensor_category(name),
        part=part,
    )


def _metadata(reader: HeaderReader) -> list[MetaField]:
    return list(reader.meta_fields)


# llama.cpp's loader reads these as uint32 (GGUFMeta::GKV checks the type strictly); the head
# counts may instead be per-layer arrays of n_layer integers (get_key_or_arr)
_INT_ARRAY_TYPES = (GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.BOOL)
# other hyper-parameters llama.cpp's loader reads with a strict type, checked when present
_OTHER_UINT32 = ("context_length", "embedding_length", "rope.dimension_count", "expert_used_count")
_PER_LAYER = ("feed_forward_length",)
_FLOAT32 = ("attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon", "rope.freq_base")


def _hparam(fields: dict[str, MetaField], key: str, default: int, n_layer: int | None = None) -> int:
    """A uint32 hyper-parameter, or layer 0 of a per-layer array when ``n_layer`` is given."""
    f = fields.get(key)
    if f is None:
        return default
    if f.vtype == GGUFValueType.UINT32:
        return int(f.value)
    if n_layer is None or f.vtype != GGUFValueType.ARRAY:
        raise HeaderError(f"{key} has type {f.vtype.name}; llama.cpp requires UINT32")
    if f.sub_type not in _INT_ARRAY_TYPES:
        raise HeaderError(f"{key} is an array of {f.sub_type.name}; llama.cpp requires UINT32 or INT32")
    if not f.value:
        raise HeaderError(f"{key} is an empty array; llama.cpp needs one value per layer")
    if n_layer and len(f.value) != n_layer:
        raise HeaderError(f"{key} has {len(f.value)} values for {n_layer} layers")
    return int(f.value[0])  # llama.cpp's n_gqa() looks at layer 0


def _check_types(fields: dict[str, MetaField], arch: str, n_layer: int) -> None:
    for name in _OTHER_UINT32:
        _hparam(fields, f"{arch}.{name}", 0)
    for name in _PER_LAYER:
        _hparam(fields, f"{arch}.{name}", 0, n_layer)
    for name in _FLOAT32:
        f = fields.get(f"{arch}.{name}")
        if f is not None and f.vtype != GGUFValueType.FLOAT32:
            raise HeaderError(f"{f.key} has type {f.vtype.name}; llama.cpp requires FLOAT32")


def _hyperparameters(metadata: list[MetaField]) -> dict[str, Any]:
    fields = {f.key: f for f in metadata}
    arch_field = fields.get("general.architecture")
    if arch_field is not None and arch_field.vtype != GGUFValueType.STRING:
        raise HeaderError(f"general.architecture has type {arch_field.vtype.name}; llama.cpp requires STRING")
    arch = arch_field.value.decode("utf-8", "replace") if arch_field is not None else ""
    n_layer = _hparam(fields, f"{arch}.block_count", 0)
    n_head = _hparam(fields, f"{arch}.attention.head_count", 0, n_layer)
    _check_types(fields, arch, n_layer)
    return dict(
        arch=arch,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=_hparam(fields, f"{arch}.attention.head_count_kv", n_head, n_layer),
        n_expert=_hparam(fields, f"{arch}.expert_count", 0),
    )
