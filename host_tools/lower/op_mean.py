"""MEAN over H and W of an int8 NHWC tensor -> device mean.

TFLM (reduce_common.cc, reference_ops::QuantizedMeanOrSum): int32 sums of the
raw values, minus in_zp * count, then MultiplyByQuantizedMultiplier with the
in/out scale ratio's multiplier with 1/count folded in (quant.mean_params),
plus out_zp, clamped to int8. Equal and different in/out quantisation take
the same path in TFLM, so the device needs no special case.
"""
from __future__ import annotations

from ..bundle_writer import Step
from ..graph import Op
from ..quant import mean_params
from . import LowerContext, hwc


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    x, axis_t, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if x.dtype != "int8" or out.dtype != "int8":
        raise ValueError(f"MEAN op {op.source_index}: only int8 -> int8 is supported, got {x.dtype} -> {out.dtype}")
    if axis_t.data is None:
        raise ValueError(f"MEAN op {op.source_index}: the axis must be a constant tensor")
    rank = len(x.shape)
    axes = {int(a) + rank if int(a) < 0 else int(a) for a in axis_t.data.reshape(-1)}
    if rank != 4 or x.shape[0] != 1 or axes != {1, 2}:
        raise ValueError(f"MEAN op {op.source_index}: only the mean over H and W of a batch-1 NHWC tensor is supported "
                         f"(input {x.shape}, axis {sorted(axes)})")
    in_h, in_w, c = hwc(x)
    if out.elements != c:
        raise ValueError(f"MEAN op {op.source_index}: output {out.shape} does not hold {c} channels")
    in_scale, in_zp = x.qparams()
    out_scale, out_zp = out.qparams()
    n = in_h * in_w
    mp = mean_params(in_scale, in_zp, out_scale, out_zp, n)
    params = dict(
        in_off=ctx.offset(x.index), in_h=in_h, in_w=in_w, c=c, out_off=ctx.offset(out.index),
        bias=-in_zp * n, out_zp=out_zp, mult=mp.multiplier, shift=mp.shift,
        acc_off=0, begin=1, end=1,  # the whole tensor in one step (band steps: streaming.py)
    )
    return [Step("mean", params)]
