"""GGUF header parsing through gguf-py's GGUFReader, with fast key/value arrays.

gguf-py's reader builds numpy views for every element of every metadata array; for a model
with a 150k-token vocabulary and its merges that is over a million views and tens of seconds.
This subclass parses arrays in one step (a numba scan for string arrays, ``frombuffer`` for
numbers) and keeps the values as :class:`MetaField` objects; tensors and data are gguf-py's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.gguf_reader import ReaderField
from numba import njit

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
            vtype = GGUFValueType(int(self._get(offs, np.uint32)[0]))
            offs += 4
            if vtype == GGUFValueType.ARRAY:
                offs, field = self._array(orig, key, offs)
                self._push_field(ReaderField(orig, key, [], [], [vtype, field.sub_type]), skip_sum=True)
            else:
                size, parts, idxs, types = self._get_field_parts(offs, vtype)
                offs += size
                raw = parts[-1]
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
