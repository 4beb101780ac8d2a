"""GGUF header parsing through gguf-py's GGUFReader, with fast key/value arrays.

gguf-py's reader builds numpy views for every element of every metadata array; for a model
with a 150k-token vocabulary and its merges that is over a million views and tens of seconds.
This subclass parses arrays in one step (a numba scan for string arrays, ``frombuffer`` for
numbers) and keeps the values as :class:`MetaField` objects; tensors and data are gguf-py's.

It also applies the structural checks of ggml's ``gguf.cpp`` that gguf-py skips (tensor names,
dimensions, types, data offsets and their layout, duplicate keys), raising :class:`HeaderError`
with one line, so a file llama.cpp would refuse is refused here too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType
from gguf.gguf_reader import ReaderField
from numba import njit

MAX_NAME = 64  # GGML_MAX_NAME: a tensor name holds at most 63 bytes
MAX_DIMS = 4  # GGML_MAX_DIMS
_INT64_MAX = 2**63 - 1
# types whose block size in gguf-py's table disagrees with ggml's (gguf 0.19: Q8_1 40 bytes, ggml 36)
_WRONG_SIZES = {GGMLQuantizationType.Q8_1: 36}


class HeaderError(ValueError):
    """A structural defect of a GGUF header that llama.cpp refuses; the message is one line."""


_NUMPY_TYPES = {
    GGUFValueType.UINT8: np.uint8,
    GGUFValueType.INT8: np.int8,
    GGUFValueType.UINT16: np.uint16,
    GGUFValueType.INT16: np.int16,
    GGUFValueType.UINT32: np.uint32,
    GGUFValueType.INT32: np.int32,
    GGUFValueType.FLOAT32: np.float32,
    GGUFValueType.UINT64: np.uint64,
    GGUFValueType.INT64: np.int64,
    GGUFValueType.FLOAT64: np.float64,
    GGUFValueType.BOOL: np.bool_,
}


@dataclass(frozen=True)
class MetaField:
    """One metadata key/value pair, ready to be written back unchanged.

    Strings are kept as raw bytes, so a file is copied byte for byte even if a token is not
    valid UTF-8; arrays are lists with ``sub_type`` giving the element type.
    """

    key: str
    value: Any
    vtype: GGUFValueType
    sub_type: GGUFValueType | None = None

    def text(self) -> str:
        """The value for display (arrays summarised)."""
        if self.vtype == GGUFValueType.ARRAY:
            head = ", ".join(_show(v) for v in self.value[:8])
            more = f", … ({len(self.value)} items)" if len(self.value) > 8 else ""
            return f"[{head}{more}]"
        return _show(self.value)


def _show(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class StringArray(Sequence):
    """A metadata array of strings kept as one bytes block; items are sliced out on demand."""

    def __init__(self, raw: bytes, starts: np.ndarray, lengths: np.ndarray) -> None:
        self._raw, self._starts, self._lengths = raw, starts, lengths

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        start = int(self._starts[index])
        return self._raw[start : start + int(self._lengths[index])]

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw
        for start, n in zip(self._starts.tolist(), self._lengths.tolist()):
            yield raw[start : start + n]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def serialized_size(self) -> int:
        """Bytes of the elements in a GGUF file (a u64 length before each string)."""
        return 8 * len(self) + int(self._lengths.sum())


@njit(cache=True, nogil=True)
def _string_spans(buf, start, count):  # pragma: no cover - compiled
    """Start offsets and lengths of ``count`` GGUF strings from ``start``; end offset or -1 if cut."""
    starts = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    off = start
    size = buf.shape[0]
    for i in range(count):
        if off + 8 > size:
            return starts, lengths, -1
        n = np.int64(0)
        for k in range(8):
            n |= np.int64(buf[off + k]) << (8 * k)
        if n < 0 or off + 8 + n > size:
            return starts, lengths, -1
        starts[i] = off + 8
        lengths[i] = n
        off += 8 + n
    return starts, lengths, off


class HeaderReader(GGUFReader):
    """GGUFReader that also fills ``meta_fields`` (in file order) and parses arrays quickly."""

    meta_fields: list[MetaField]

    def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> np.ndarray:
        # slicing a plain ndarray view is ~10x cheaper than slicing the np.memmap itself
        plain = self.__dict__.get("_plain")
        if plain is None or plain.base is not self.data.base:
            plain = self.__dict__["_plain"] = self.data.view(np.ndarray)
        count = int(count)
        itemsize = np.dtype(dtype).itemsize
        arr = plain[offset : offset + itemsize * count].view(dtype=dtype)[:count]
        order = self.byte_order if override_order is None else override_order
        return arr.view(arr.dtype.newbyteorder(order))

    def _build_fields(self, offs: int, count: int) -> int:
        self.meta_fields = []
        if self.byte_order != "I":
            raise ValueError("byte-swapped (big-endian) GGUF files are not supported")
        for _ in range(int(count)):
            orig = offs
            klen, kdata = self._get_str(offs)
            offs += 8 + int(klen[0])
            key = bytes(kdata).decode("utf-8")
            if key in self.fields:
                raise HeaderError(f"duplicate metadata key {_clip(key)!r}")
            vtype = GGUFValueType(int(self._get(offs, np.uint32)[0]))
            offs += 4
            if vtype == GGUFValueType.ARRAY:
                offs, field = self._array(orig, key, offs)
                self._push_field(ReaderField(orig, key, [], [], [vtype, field.sub_type]), skip_sum=True)
            else:
                size, parts, idxs, types = self._get_field_parts(offs, vtype)
                offs += size
                raw = parts[-1]
                if vtype == GGUFValueType.STRING and len(raw) != int(parts[0][0]):
                    raise IndexError(f"metadata value {key} runs past the end of the file")
                value = bytes(raw) if vtype == GGUFValueType.STRING else raw.tolist()[0]
                field = MetaField(key, value, vtype)
                self._push_field(
                    ReaderField(orig, key, [klen, kdata, *parts], [i + 2 for i in idxs], types), skip_sum=True
                )
            self.meta_fields.append(field)
        return offs

    def _array(self, orig: int, key: str, offs: int) -> tuple[int, MetaField]:
        sub = GGUFValueType(int(self._get(offs, np.uint32)[0]))
        n = int(self._get(offs + 4, np.uint64)[0])
        offs += 12
        if sub == GGUFValueType.STRING:
            if n > (self.data.shape[0] - offs) // 8:
                raise IndexError(f"metadata array {key} runs past the end of the file")
            starts, lengths, end = _string_spans(self.data, offs, n)
            if end < 0:
                raise IndexError(f"metadata array {key} runs past the end of the file")
            values = StringArray(bytes(self.data[offs:end]), starts - offs, lengths)
            return end, MetaField(key, values, GGUFValueType.ARRAY, sub)
        dtype = _NUMPY_TYPES.get(sub)
        if dtype is None:
            raise ValueError(f"metadata array {key} has elements of type {sub.name}, which is not supported")
        size = n * np.dtype(dtype).itemsize
        if offs + size > self.data.shape[0]:
            raise IndexError(f"metadata array {key} runs past the end of the file")
        values = np.frombuffer(self.data, dtype=dtype, count=n, offset=offs).tolist()
        return offs + size, MetaField(key, values, GGUFValueType.ARRAY, sub)

    def _build_tensor_info(self, offs: int, count: int) -> tuple[int, list[ReaderField]]:
        fields: list[ReaderField] = []
        names: set[str] = set()
        for index in range(int(count)):
            field = self._get_tensor_info_field(offs)
            name = _check_tensor_info(index, field)
            if name in names:
                raise HeaderError(f"duplicate tensor name {name!r}")
            names.add(name)
            offs += sum(int(part.nbytes) for part in field.parts)
            fields.append(field)
        return offs, fields

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        # gguf.cpp: each tensor's data starts where the previous one's padded data ends
        align = int(self.alignment)
        expected = end = 0
        for field in fields:
            name, dims, gtype, offset = _info_values(field)
            if offset != expected:
                raise HeaderError(
                    f"tensor {name} has data offset {offset}, expected {expected} "
                    f"(tensors must be packed in order, aligned to {align} bytes)"
                )
            end = offset + _n_bytes(dims, gtype)
            expected = -(-end // align) * align
        size = self.data.shape[0]
        if fields and start_offs + end > size:
            raise HeaderError(f"truncated: tensor data needs {start_offs + end} bytes, the file has {size}")
        super()._build_tensors(start_offs, fields)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _info_values(field: ReaderField) -> tuple[str, list[int], GGMLQuantizationType, int]:
    _, _, _, dims, raw_dtype, offset = field.parts
    return field.name, [int(d) for d in dims], GGMLQuantizationType(int(raw_dtype[0])), int(offset[0])


def _n_bytes(dims: list[int], gtype: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[gtype]
    n = 1
    for d in dims:
        n *= d
    return n // block * size


def _check_tensor_info(index: int, field: ReaderField) -> str:
    """The tensor's name, after gguf.cpp's checks of one tensor info (HeaderError otherwise)."""
    name_len, name_data, n_dims, dims, raw_dtype, offset = field.parts
    if len(name_data) != int(name_len[0]) or not len(n_dims) or len(dims) != int(n_dims[0]):
        raise IndexError(f"tensor info {index} runs past the end of the file")
    if not len(raw_dtype) or not len(offset):
        raise IndexError(f"tensor info {index} runs past the end of the file")
    name = field.name
    if len(name_data) >= MAX_NAME:
        raise HeaderError(f"tensor name {_clip(name)!r} is {len(name_data)} bytes; ggml allows at most {MAX_NAME - 1}")
    shape = [int(d) for d in dims]
    if not 1 <= len(shape) <= MAX_DIMS:
        raise HeaderError(f"tensor {name} has {len(shape)} dimensions; ggml allows 1 to {MAX_DIMS}")
    if any(d > _INT64_MAX for d in shape):
        raise HeaderError(f"tensor {name} has a negative dimension {shape}")
    if 0 in shape:
        raise HeaderError(f"tensor {name} has a zero dimension {shape}; empty tensors are refused")
    n = 1
    for d in shape:
        n *= d
    if n > _INT64_MAX:
        raise HeaderError(f"tensor {name} has too many elements {shape} (more than 2^63 - 1)")
    try:
        gtype = GGMLQuantizationType(int(raw_dtype[0]))
        GGML_QUANT_SIZES[gtype]
    except (ValueError, KeyError):
        raise HeaderError(f"unsupported tensor type {int(raw_dtype[0])} for tensor {name}") from None
    if gtype in _WRONG_SIZES:
        block, size = GGML_QUANT_SIZES[gtype]
        raise HeaderError(
            f"tensor {name} has type {gtype.name}, whose size gguf-py gets wrong "
            f"({size} bytes per block, ggml {_WRONG_SIZES[gtype]}); such files are refused"
        )
    block = GGML_QUANT_SIZES[gtype][0]
    if shape[0] % block:
        raise HeaderError(f"tensor {name}: row length {shape[0]} is not a multiple of the {gtype.name} block ({block})")
    if int(offset[0]) > _INT64_MAX:
        raise HeaderError(f"tensor {name} has data offset {int(offset[0])}, beyond any file")
    return name
