"""QUANTIZE float32 -> int8 (the input side of a float-I/O model, the TFLite
converter's default) -> device quantize_float: 255 integer thresholds on the
float's bit pattern (host_tools.quant.quantize_float_thresholds), so the
device needs no float arithmetic and matches TFLite Micro's
TfLiteRound(x / scale) + zero_point on every board. One difference, by
design: where |x / scale| >= 2^31 TFLite Micro's float -> int32 cast is
undefined behaviour (x86 gives INT32_MIN, so a huge positive input becomes
-128); here such inputs saturate (+huge -> 127, -huge -> -128)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import quantize_float_thresholds
from . import LowerContext


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if x.dtype != "float32" or out.dtype != "int8":
        raise ValueError(f"QUANTIZE (op {op.source_index}): {x.dtype} -> {out.dtype}; TFLite Micro quantises "
                         "float32 to int8 (not uint8): convert with inference_input_type=tf.int8 or tf.float32")
    if out.scale is None or len(out.scale) != 1:
        raise ValueError(f"QUANTIZE (op {op.source_index}): output '{out.name}' needs one scale (per-tensor)")
    scale, zp = out.qparams()
    blob = np.array(quantize_float_thresholds(scale, zp, out.dtype), "<i4").tobytes()
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), n=out.elements,
                  lo=-128 if out.dtype == "int8" else 0)
    return [Step("quantize_float", params, blob)]
