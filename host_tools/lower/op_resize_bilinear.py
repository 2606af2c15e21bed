"""RESIZE_BILINEAR (int8 NHWC) -> device resize_bilinear with the row and
column tables of TFLite Micro's ResizeBilinearInteger (10-bit scales,
align_corners / half_pixel_centers: host_tools.quant.resize_bilinear_axis).
Input and output share one quantisation (TFLite Micro does not rescale)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import resize_bilinear_axis
from . import LowerContext, hwc


def axis_table(entries) -> bytes:
    """(lower, upper, weight) per output index as int16 x 4 (last one 0)."""
    return np.array([(lo, hi, w, 0) for lo, hi, w in entries], "<i2").tobytes()


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    where = f"RESIZE_BILINEAR (op {op.source_index})"
    if x.dtype != "int8" or out.dtype != "int8" or len(x.shape) != 4 or x.shape[0] != 1:
        raise ValueError(f"{where}: batch-1 NHWC int8 is supported (TFLite Micro: float32 or int8), "
                         f"got {x.dtype} {list(x.shape)}")
    if x.qparams() != out.qparams():
        raise ValueError(f"{where}: input quantisation {x.qparams()} differs from the output's {out.qparams()}; "
                         "TFLite Micro does not rescale here: re-export with equal scales")
    (in_h, in_w, c), (out_h, out_w, _) = hwc(x), hwc(out)
    align, half = op.options.get("align_corners", False), op.options.get("half_pixel_centers", False)
    ytab = axis_table(resize_bilinear_axis(in_h, out_h, align, half))
    xtab = axis_table(resize_bilinear_axis(in_w, out_w, align, half))
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), in_h=in_h, in_w=in_w, c=c,
                  out_h=out_h, out_w=out_w, x_off=len(ytab))
    return [Step("resize_bilinear", params, ytab + xtab)]
