"""CONCATENATION (any axis, 8-bit) -> device concatenation.

TFLite Micro's int8 kernel refuses inputs whose scale or zero point differ
from the output's (converters insert QUANTIZE ops instead), so this is a
copy; host_tools.quant.check_concatenation enforces the same rule."""
from __future__ import annotations

import numpy as np

from tinyseg_mp import compress

from ..bundle_writer import Step
from ..graph import DTYPE_SIZES, Graph, Op
from ..quant import check_concatenation
from . import LowerContext, hwc
from .op_add import operand

SRC_FLASH = 2


def _fetch_row_bytes(graph: Graph, op: Op) -> int:
    """Largest image row of an input fetched from the spill store (0: none)."""
    return max((hwc(graph.tensors[i])[1] * hwc(graph.tensors[i])[2] for i in op.inputs
                if graph.tensors[i].in_flash), default=0)


def scratch_bytes(graph: Graph, op: Op) -> int:
    row = _fetch_row_bytes(graph, op)
    return row + compress.bound(row) if row else 0


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    ins = [ctx.tensor(i) for i in op.inputs]
    out = ctx.tensor(op.outputs[0])
    where = f"CONCATENATION (op {op.source_index})"
    if op.options.get("activation", "NONE") != "NONE":
        raise ValueError(f"{where}: fused activation is not supported (TFLite Micro rejects it too)")
    if out.dtype in ("int8", "uint8"):
        try:
            check_concatenation([t.qparams() for t in ins], out.qparams())
        except ValueError as exc:
            raise ValueError(f"{where}: {exc} (TFLite Micro rejects such a model)") from None
    rank = len(out.shape)
    axis = op.options.get("axis", -1)
    axis = axis + rank if axis < 0 else axis
    size = DTYPE_SIZES[out.dtype]
    outer = int(np.prod(out.shape[:axis], dtype=np.int64))
    out_inner = int(np.prod(out.shape[axis:], dtype=np.int64)) * size
    blob = bytearray(16 * len(ins))
    table, col = [], 0
    for t in ins:
        if len(t.shape) != rank or t.dtype != out.dtype:
            raise ValueError(f"{where}: input '{t.name}' {t.dtype} {list(t.shape)} vs output {list(out.shape)}")
        inner = int(np.prod(t.shape[axis:], dtype=np.int64)) * size
        if t.in_flash:  # spilled: fetched row by row (channel concat of an image, see optimize.py)
            off, src = ctx.graph.ops[t.producer].options["slot"], SRC_FLASH
        else:
            off, src = operand(ctx, t, blob)
        table += [off, src, inner, col]
        col += inner
    if col != out_inner:
        raise ValueError(f"{where}: inputs give {col} bytes per row, the output has {out_inner}")
    blob[: 16 * len(ins)] = np.array(table, "<i4").tobytes()
    fetch = _fetch_row_bytes(ctx.graph, op)
    scratch = ctx.scratch(op) if fetch else 0
    params = dict(out_off=ctx.offset(out.index), outer=outer, out_inner=out_inner, n_in=len(ins),
                  rows=hwc(out)[0], row_off=scratch, enc_off=scratch + fetch)
    return [Step("concatenation", params, bytes(blob))]
