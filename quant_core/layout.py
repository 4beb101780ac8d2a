"""The exact layout of the file export writes: metadata in order, tensor offsets, total bytes.

One function computes it and both the size projection and the exporter use it, so the size
shown before export is, to the byte, the size of the file written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gguf import GGUFValueType

from .encoders import encoder_metadata
from .model import MetaField, Model
from .plan import Plan, PlanError, TensorPlan
from .split import SplitSpec, assign_parts, part_metadata

ALIGNMENT = 32  # llama-quantize writes with GGUF_DEFAULT_ALIGNMENT whatever the input says
ALIGNMENT_KEY = "general.alignment"
# keys that describe the file layout itself: the writer sets them, a user cannot
RESERVED_KEYS = (ALIGNMENT_KEY,)
QUANTIZATION_VERSION = 2
_HEADER_BYTES = 4 + 4 + 8 + 8
_SPLIT_KEYS = ("split.no", "split.count", "split.tensors.count")
_SCALAR_BYTES = {
    GGUFValueType.UINT8: 1,
    GGUFValueType.INT8: 1,
    GGUFValueType.BOOL: 1,
    GGUFValueType.UINT16: 2,
    GGUFValueType.INT16: 2,
    GGUFValueType.UINT32: 4,
    GGUFValueType.INT32: 4,
    GGUFValueType.FLOAT32: 4,
    GGUFValueType.UINT64: 8,
    GGUFValueType.INT64: 8,
    GGUFValueType.FLOAT64: 8,
}


def pad(n: int, align: int = ALIGNMENT) -> int:
    return (n + align - 1) // align * align


@dataclass(frozen=True)
class Layout:
    """What export writes: metadata in order, per-tensor data offsets, and the byte counts."""

    metadata: tuple[MetaField, ...]
    offsets: tuple[int, ...]
    meta_bytes: int
    data_bytes: int

    @property
    def file_bytes(self) -> int:
        return self.meta_bytes + self.data_bytes


def output_dims(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ggml_n_dims: trailing dimensions of 1 are not written (at least one dimension stays)."""
    dims = list(shape)
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


def parse_override_kv(entry: str) -> MetaField:
    """``KEY=TYPE:VALUE`` as llama.cpp parses --override-kv (int is written as uint32 of |v|)."""
    key, sep, rest = entry.partition("=")
    kind, sep2, value = rest.partition(":")
    if not sep or not sep2 or not key:
        raise PlanError(f"malformed --override-kv {entry!r}: expected KEY=TYPE:VALUE")
    if len(key) > 127 or len(value) > 127:
        raise PlanError(f"--override-kv {entry!r}: key and value are limited to 127 characters")
    if key in RESERVED_KEYS:
        raise PlanError(f"--override-kv {entry!r}: {key} describes the file layout and cannot be overridden")
    try:
        if kind == "int":
            return MetaField(key, abs(int(value)) & 0xFFFFFFFF, GGUFValueType.UINT32)
        if kind == "float":
            return MetaField(key, float(np.float32(float(value))), GGUFValueType.FLOAT32)
        if kind == "bool":
            if value not in ("true", "false"):
                raise ValueError(value)
            return MetaField(key, value == "true", GGUFValueType.BOOL)
        if kind == "str":
            return MetaField(key, value.encode(), GGUFValueType.STRING)
    except ValueError:
        raise PlanError(f"--override-kv {entry!r}: invalid {kind} value {value!r}") from None
    raise PlanError(f"--override-kv {entry!r}: type must be int, float, bool or str")


def output_metadata(model: Model, plan: Plan, imatrix_keys: list[MetaField] | None = None) -> list[MetaField]:
    """The output's key/value pairs in llama-quantize's order.

    Input pairs in order; ``general.quantization_version`` and ``general.file_type`` moved to
    the end; split keys dropped; then --override-kv entries, the imatrix keys, and the pruned
    block count, each replacing an existing key by appending it anew.

    A source declaring a ``general.alignment`` other than the 32 bytes the file is written
    with is refused (copying the key would produce a file llama.cpp cannot load).
    """
    fields = list(model.metadata)
    _check_alignment(fields)

    def put(f: MetaField) -> None:
        fields[:] = [g for g in fields if g.key != f.key]
        fields.append(f)

    put(MetaField("general.quantization_version", QUANTIZATION_VERSION, GGUFValueType.UINT32))
    put(MetaField("general.file_type", plan.file_type.ftype, GGUFValueType.UINT32))
    fields[:] = [f for f in fields if f.key not in _SPLIT_KEYS]
    for entry in plan.options.override_kv:
        put(parse_override_kv(entry))
    for f in imatrix_keys or []:
        put(f)
    if plan.pruned_block_count is not None:
        put(MetaField(f"{model.arch}.block_count", plan.pruned_block_count, GGUFValueType.UINT32))
    for f in encoder_metadata(plan):  # ours, only when some tensor is HQQ-encoded
        put(f)
    return fields


def _check_alignment(fields: list[MetaField]) -> None:
    for f in fields:
        if f.key == ALIGNMENT_KEY and (f.vtype != GGUFValueType.UINT32 or f.value != ALIGNMENT):
            raise PlanError(
                f"the source declares {ALIGNMENT_KEY} = {f.value!r}; export writes {ALIGNMENT}-byte "
                "aligned files only, so it is refused"
            )


def _value_bytes(value: object, vtype: GGUFValueType, sub_type: GGUFValueType | None) -> int:
    if vtype in _SCALAR_BYTES:
        return _SCALAR_BYTES[vtype]
    if vtype == GGUFValueType.STRING:
        return 8 + len(value if isinstance(value, bytes) else str(value).encode())
    assert vtype == GGUFValueType.ARRAY and sub_type is not None
    if hasattr(value, "serialized_size"):
        return 12 + value.serialized_size()
    items = list(value)  # type: ignore[call-overload]
    if sub_type in _SCALAR_BYTES:
        return 12 + len(items) * _SCALAR_BYTES[sub_type]
    return 12 + sum(_value_bytes(v, sub_type, None) for v in items)


def metadata_bytes(fields: list[MetaField]) -> int:
    """Serialized size of the key/value section."""
    return sum(8 + len(f.key.encode()) + 4 + _value_bytes(f.value, f.vtype, f.sub_type) for f in fields)


def compute_layout(model: Model, plan: Plan, imatrix_keys: list[MetaField] | None = None) -> Layout:
    """Metadata, tensor-info and data sizes of the output file, with every tensor's data offset."""
    return file_layout(output_metadata(model, plan, imatrix_keys), plan.tensors)


def file_layout(fields: Sequence[MetaField], tensors: Sequence[TensorPlan]) -> Layout:
    """The layout of one GGUF file holding ``fields`` and ``tensors`` (in this order)."""
    ti_bytes = sum(8 + len(tp.name.encode()) + 4 + 8 * len(output_dims(tp.source.shape)) + 4 + 8 for tp in tensors)
    offsets = []
    data = 0
    for tp in tensors:
        offsets.append(data)
        data += pad(tp.n_bytes)
    meta = pad(_HEADER_BYTES + metadata_bytes(list(fields)) + ti_bytes)
    return Layout(tuple(fields), tuple(offsets), meta, data)


@dataclass(frozen=True)
class PartLayout:
    """One file of a split output: its tensors (a range of the plan's) and its layout."""

    tensors: range
    layout: Layout


def compute_split_layout(
    model: Model, plan: Plan, spec: SplitSpec, imatrix_keys: list[MetaField] | None = None
) -> list[PartLayout]:
    """Every part of the split output, as llama-gguf-split would cut the unsplit file."""
    ranges = assign_parts([pad(tp.n_bytes) for tp in plan.tensors], spec)
    fields = output_metadata(model, plan, imatrix_keys)
    n = len(plan.tensors)
    return [
        PartLayout(r, file_layout(part_metadata(fields, i, len(ranges), n), plan.tensors[r.start : r.stop]))
        for i, r in enumerate(ranges)
    ]
