"""RESHAPE -> device copy (input and output are separate arena buffers)."""
from __future__ import annotations

from ..bundle_writer import Step
from ..graph import Op
from . import LowerContext


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if x.is_const:
        raise ValueError(f"RESHAPE (op {op.source_index}) of a constant tensor is not supported")
    if x.nbytes != out.nbytes:
        raise ValueError(f"RESHAPE (op {op.source_index}): {x.nbytes} bytes in, {out.nbytes} out")
    return [Step("copy", dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), n=out.nbytes))]
