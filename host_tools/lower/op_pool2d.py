"""MAX_POOL_2D / AVERAGE_POOL_2D -> device max_pool2d / average_pool2d.

TFLM's int8 pools work on the raw values (input and output must share scale
and zero point); padded cells are ignored (max) or left out of the count
(average), then the fused activation range clamps.
"""
from __future__ import annotations

from ..bundle_writer import Step
from ..graph import Op
from ..quant import activation_range, compute_padding, f32
from . import LowerContext, hwc


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    x, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    in_scale, in_zp = x.qparams()
    out_scale, out_zp = out.qparams()
    if abs(f32(in_scale) - f32(out_scale)) > 1e-6 or in_zp != out_zp:
        raise ValueError(f"{op.kind} op {op.source_index}: TFLite Micro needs equal input/output quantisation, "
                         f"got ({in_scale}, {in_zp}) -> ({out_scale}, {out_zp})")
    in_h, in_w, c = hwc(x)
    out_h, out_w, out_c = hwc(out)
    o = op.options
    oh, pad_t, _ = compute_padding(in_h, o["filter_h"], o["stride_h"], o["padding"])
    ow, pad_l, _ = compute_padding(in_w, o["filter_w"], o["stride_w"], o["padding"])
    if (oh, ow, c) != (out_h, out_w, out_c):
        raise ValueError(f"{op.kind} op {op.source_index}: output {out.shape}, padding rule gives {oh}x{ow}x{c}")
    lo, hi = activation_range(o.get("activation", "NONE"), out_scale, out_zp, out.dtype)
    params = dict(
        in_off=ctx.offset(x.index), in_h=in_h, in_w=in_w, c=c,
        out_off=ctx.offset(out.index), out_h=out_h, out_w=out_w,
        f_h=o["filter_h"], f_w=o["filter_w"], stride_h=o["stride_h"], stride_w=o["stride_w"],
        pad_top=pad_t, pad_left=pad_l, act_min=lo, act_max=hi,
        in_ring=in_h, oy0=0,  # the whole tensor
    )
    name = "max_pool2d" if op.kind == "MAX_POOL_2D" else "average_pool2d"
    return [Step(name, params)]
