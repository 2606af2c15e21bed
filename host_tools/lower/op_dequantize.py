"""DEQUANTIZE int8/uint8 -> float32: device dequantize copies 4 bytes per
element from a 256-entry float32 table (host_tools.quant.lut_dequantize,
TFLite Micro's float(double(scale) * (x - zero_point)))."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import lut_dequantize
from . import LowerContext


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if x.dtype not in ("int8", "uint8") or out.dtype != "float32":
        raise ValueError(f"DEQUANTIZE (op {op.source_index}): {x.dtype} -> {out.dtype}; "
                         "int8/uint8 -> float32 is supported")
    scale, zp = x.qparams()
    blob = np.array(lut_dequantize(scale, zp, x.dtype), dtype="<f4").tobytes()
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), n=x.elements)
    return [Step("dequantize", params, blob)]
