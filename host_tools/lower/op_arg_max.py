"""ARG_MAX (int8 in, int32 out, constant axis) -> device arg_max: the input
seen as outer x k x inner (k along the axis); the first index of the largest
value wins, as in TFLite Micro's reference ArgMinMax (strictly greater)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from . import LowerContext


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, axis_t, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    where = f"ARG_MAX (op {op.source_index})"
    if x.dtype != "int8" or out.dtype != "int32":
        raise ValueError(f"{where}: {x.dtype} -> {out.dtype}; TFLite Micro takes int8 -> int32 "
                         "(export with output_type=tf.int32)")
    if not axis_t.is_const or axis_t.data.size != 1:
        raise ValueError(f"{where}: the axis '{axis_t.name}' must be one constant")
    rank = len(x.shape)
    axis = int(axis_t.data.reshape(-1)[0]) % rank
    k = x.shape[axis]
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1 :], dtype=np.int64))
    if out.elements != outer * inner:
        raise ValueError(f"{where}: output {list(out.shape)} does not hold {outer * inner} indices")
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), outer=outer, k=k, inner=inner)
    return [Step("arg_max", params)]
