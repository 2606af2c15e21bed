"""RESIZE_NEAREST_NEIGHBOR (8-bit NHWC) -> device resize_nearest with the
source row and column maps (host_tools.quant.resize_nearest_indices, TFLite
Micro's GetNearestNeighbor in float32)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import resize_nearest_indices
from . import LowerContext, hwc


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if x.dtype not in ("int8", "uint8") or len(x.shape) != 4 or x.shape[0] != 1:
        raise ValueError(f"RESIZE_NEAREST_NEIGHBOR (op {op.source_index}): batch-1 NHWC int8/uint8 is supported")
    (in_h, in_w, c), (out_h, out_w, _) = hwc(x), hwc(out)
    align, half = op.options.get("align_corners", False), op.options.get("half_pixel_centers", False)
    ymap = resize_nearest_indices(in_h, out_h, align, half)
    xmap = resize_nearest_indices(in_w, out_w, align, half)
    ybytes = np.array(ymap, "<u2").tobytes()
    ybytes += b"\0" * (-len(ybytes) % 4)
    blob = ybytes + np.array(xmap, "<u2").tobytes()
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), in_w=in_w, c=c,
                  out_h=out_h, out_w=out_w, x_off=len(ybytes))
    return [Step("resize_nearest", params, blob)]
