"""Write the header of the file a plan would export (its types and shapes) over a sparse file.

Comparing and cloning read only a reference's header, so a header with the plan's tensor table
stands for a real quantized file in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from quant_core.ftypes import file_type
from quant_core.model import Model
from quant_core.plan import Plan


def write_plan_header(path: Path, model: Model, plan: Plan, types: dict[str, str] | None = None) -> Path:
    """A GGUF whose tensors have ``plan``'s names, shapes and types (``types`` overrides some)."""
    w = gguf.GGUFWriter(str(path), model.arch)
    w.add_block_count(model.n_layer)
    w.add_head_count(model.n_head)
    w.add_head_count_kv(model.n_head_kv)
    w.add_file_type(file_type(plan.options.preset).ftype)
    total = 0
    for tp in plan.tensors:
        type_name = (types or {}).get(tp.name, tp.type)
        qt = gguf.GGMLQuantizationType[type_name]
        block, size = gguf.GGML_QUANT_SIZES[qt]
        n_bytes = tp.source.n_elements // block * size
        w.add_tensor_info(tp.name, tp.source.shape[::-1], np.dtype(np.float32), n_bytes, raw_dtype=qt)
        total += gguf.GGUFWriter.ggml_pad(n_bytes, w.data_alignment)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    fout.truncate(fout.tell() + total)
    w.close()
    return path
