"""Streaming export: tensor by tensor, chunk by chunk, to a temporary file renamed at the end.

``iter_export`` is a generator yielding :class:`ExportProgress`; a caller cancels by closing
it (or simply not iterating further and dropping it), which removes the partial file. Peak
memory is a few chunks of rows, never the model size.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

from .errors import QuantError
from .imatrix import Imatrix, tensor_importance
from .inputs import not_regular_reason, os_reason
from .kernels import DEQUANTIZERS, QUANTIZERS
from .layout import Layout, compute_layout, compute_split_layout, output_dims
from .model import MetaField, Model
from .partial_files import create_partial, name_max, sweep_partials
from .plan import Plan, TensorPlan
from .qtypes import is_float_type
from .quantize import quantize
from .split import SplitSpec, part_paths

CHUNK_ELEMENTS = 16 * 1024 * 1024  # float32 elements converted at once (64 MiB)


class ExportError(QuantError):
    """Export could not complete; no output file was left behind."""


@dataclass(frozen=True)
class ExportProgress:
    """Where an export stands. ``bytes_*`` count output tensor bytes."""

    tensor_index: int
    n_tensors: int
    tensor_name: str
    bytes_done: int
    bytes_total: int
    elapsed_s: float
    done: bool = False

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_done / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.bytes_done / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (self.bytes_total - self.bytes_done) / rate if rate > 0 else None


def check_output_path(
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    other_inputs: Sequence[str | os.PathLike[str] | None] = (),
) -> Path:
    """The output path as export will use it (``~`` expanded); raises ExportError if unusable.

    Refused: no path, the input file or any of ``other_inputs`` (importance matrix, recipe,
    tensor-type file) under any name, a directory, a device, FIFO or socket, a name too long
    for the file system, a directory that does not exist or is not writable. The CLI and the
    export dialog both ask this function.
    """
    text = os.fspath(out_path).strip()
    if not text:
        raise ExportError("no output file given; choose one")
    out = Path(text).expanduser()
    for given in (input_path, *other_inputs):
        if given and _same_file(out, Path(given)):
            raise ExportError(f"the output path is the input file {given}; choose another name")
    if out.is_dir():
        raise ExportError(f"{out} is a directory; choose a file name")
    kind = not_regular_reason(out)
    if kind is not None:
        raise ExportError(f"{out} is {kind}; choose a regular file name")
    parent = out.parent
    if not parent.is_dir():
        raise ExportError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ExportError(f"output directory {parent} is not writable")
    size, limit = len(out.name.encode("utf-8", "surrogateescape")), name_max(parent)
    if size > limit:
        raise ExportError(f"output file name is too long ({size} bytes; this file system allows {limit})")
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_export(model: Model, plan: Plan, out_path: Path, imatrix: Imatrix | None) -> None:
    """Everything llama-quantize refuses, checked before a single byte is written."""
    check_output_path(model.path, out_path)
    for tp in plan.tensors:
        if tp.converts:
            _check_conversion(plan, tp, imatrix)


def _check_conversion(plan: Plan, tp: TensorPlan, imatrix: Imatrix | None) -> None:
    src = tp.source.src_type
    if not is_float_type(src):
        if not plan.options.allow_requantize:
            raise ExportError(f"{tp.source.name} is already {src}; requantizing needs --allow-requantize")
        if src not in DEQUANTIZERS:
            raise ExportError(f"{tp.source.name}: source type {src} cannot be converted")
    if tp.type not in QUANTIZERS:
        raise ExportError(f"{tp.name}: quantizing to {tp.type} is not supported")
    if tp.requires_imatrix and tensor_importance(imatrix, tp.source) is None:
        raise ExportError(f"{tp.name} -> {tp.type} needs an importance matrix with an entry for it")


def iter_export(
    model: Model,
    plan: Plan,
    out_path: str | os.PathLike[str],
    imatrix: Imatrix | None = None,
    threads: int | None = None,
    imatrix_keys: list[MetaField] | None = None,
    split: SplitSpec | None = None,
) -> Iterator[ExportProgress]:
    """Write the planned GGUF to ``out_path``, yielding progress after every chunk.

    With ``split``, the parts ``NAME-00001-of-0000N.gguf`` are written next to ``out_path``
    (``NAME.gguf``) in llama-gguf-split's format; every part is renamed into place only once
    all are complete.
    """
    inputs = (plan.options.imatrix, imatrix.path if imatrix is not None else None, *model_paths(model)[1:])
    out = check_output_path(model.path, out_path, inputs)
    check_export(model, plan, out, imatrix)
    files = _output_files(model, plan, out, imatrix_keys, split, inputs)
    sweep_partials(out.parent)
    tmps: list[Path] = []
    counter = _Counter(len(plan.tensors), sum(tp.n_bytes for tp in plan.tensors))
    completed = False
    target = out
    try:
        for target, _, _ in files:
            tmps.append(create_partial(target))
        for tmp, (path, layout, tensors) in zip(tmps, files, strict=True):
            target = path  # named in an error message
            yield from _write(model, layout, tensors, tmp, imatrix, threads, counter)
            written = tmp.stat().st_size
            if written != layout.file_bytes:
                raise ExportError(f"internal error: wrote {written} bytes, expected {layout.file_bytes}")
        for tmp, (target, _, _) in zip(tmps, files, strict=True):
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        completed = True
    except OSError as err:
        raise ExportError(_os_message(err, target) + "".join(_remove_partial(t) for t in tmps)) from None
    finally:
        if not completed:
            for tmp in tmps:
                _remove_partial(tmp)
    yield counter.progress("", done=True)


def _output_files(
    model: Model,
    plan: Plan,
    out: Path,
    imatrix_keys: list[MetaField] | None,
    split: SplitSpec | None,
    inputs: tuple[str | Path | None, ...],
) -> list[tuple[Path, Layout, Sequence[TensorPlan]]]:
    """(path, layout, tensors) of every file the export writes."""
    if split is None:
        return [(out, compute_layout(model, plan, imatrix_keys), plan.tensors)]
    parts = compute_split_layout(model, plan, split, imatrix_keys)
    paths = part_paths(out, len(parts))
    for path in paths:
        check_output_path(model.path, path, inputs)
    return [
        (path, part.layout, plan.tensors[part.tensors.start : part.tensors.stop])
        for path, part in zip(paths, parts, strict=True)
    ]


def model_paths(model: Model) -> tuple[Path, ...]:
    """Every file the model reads from (its parts, for a split model)."""
    return model.part_paths or (model.path,)


class _Counter:
    """Progress over all the files of one export."""

    def __init__(self, n_tensors: int, total: int) -> None:
        self.n_tensors, self.total = n_tensors, total
        self.index = self.done = 0
        self.start = time.perf_counter()

    def progress(self, name: str, done: bool = False) -> ExportProgress:
        elapsed = time.perf_counter() - self.start
        return ExportProgress(self.index, self.n_tensors, name, self.done, self.total, elapsed, done)


def _remove_partial(tmp: Path) -> str:
    """Delete the partial file; never raises. Returns "" or what to add to the error message."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError as err:
        return f"; the partial file {tmp} could not be removed either ({os_reason(err)})"
    return ""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _os_message(err: OSError, out: Path) -> str:
    if err.errno == errno.ENOSPC:
        return f"disk full (no space or no free inodes) while writing {out.name}"
    if err.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {out.name}"
    if err.errno == errno.ENAMETOOLONG:
        return f"cannot write {out}: file name too long"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {out}: permission denied"
    return f"cannot write {out}: {err.strerror or err}"


def _write(
    model: Model,
    layout: Layout,
    tensors: Sequence[TensorPlan],
    tmp: Path,
    imatrix: Imatrix | None,
    threads: int | None,
    counter: _Counter,
) -> Iterator[ExportProgress]:
    writer = GGUFWriter(tmp, arch="")  # an empty arch adds no key: we write the metadata ourselves
    for f in layout.metadata:
        writer.add_key_value(f.key, f.value, f.vtype, f.sub_type)
    for tp in tensors:
        dims = output_dims(tp.source.shape)
        writer.add_tensor_info(
            tp.name, dims[::-1], np.dtype(np.float32), tp.n_bytes, raw_dtype=GGMLQuantizationType[tp.type]
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    fout = writer.fout[0]
    writer.write_padding(fout, fout.tell())
    try:
        for tp in tensors:
            for n in _tensor_chunks(model, tp, imatrix, threads, fout):
                counter.done += n
                yield counter.progress(tp.name)
            writer.write_padding(fout, tp.n_bytes)
            counter.index += 1
        fout.flush()
        os.fsync(fout.fileno())
    finally:
        writer.close()


def _tensor_chunks(
    model: Model, tp: TensorPlan, imatrix: Imatrix | None, threads: int | None, fout: Any
) -> Iterator[int]:
    """Write one tensor's data, yielding the byte count of each chunk written."""
    if not tp.converts:
        step = max(1, CHUNK_ELEMENTS * 4)
        for start in range(0, tp.source.n_bytes, step):
            part = model.raw(tp.source.name, start, start + step)
            fout.write(part.data)
            yield part.shape[0]
        return
    shape = tp.source.shape
    ne0 = shape[0]
    rows_per_matrix = shape[1] if len(shape) > 1 else 1
    n_matrices = tp.source.n_rows // rows_per_matrix
    weights = tensor_importance(imatrix, tp.source)
    chunk_rows = max(1, CHUNK_ELEMENTS // ne0)
    for m in range(n_matrices):
        qw = None if weights is None else weights[m * ne0 : (m + 1) * ne0]
        for r0 in range(0, rows_per_matrix, chunk_rows):
            first = m * rows_per_matrix + r0
            rows = model.rows_f32(tp.source.name, slice(first, min(first + chunk_rows, (m + 1) * rows_per_matrix)))
            try:
                q = quantize(rows, tp.type, imatrix=qw, threads=threads, encoder=tp.encoder)
            except QuantError as err:
                raise ExportError(f"{tp.source.name}: {err}") from None
            fout.write(q.tobytes())
            yield q.nbytes
