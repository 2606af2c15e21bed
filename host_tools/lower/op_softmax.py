"""SOFTMAX int8 -> int8 over the last axis -> device softmax.

The blob holds, for k = row max - x (0..255), TFLite Micro's exp value
(gemmlowp exp_on_negative_values of the beta-scaled difference, 0 where TFLM
skips the element) split as high (>> 15) and low (& 0x7FFF) uint16 parts,
then its Rescale<12> accumulator share as uint32."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import (SOFTMAX_ACCUMULATION_INTEGER_BITS, f32, rounding_divide_by_pot, softmax_exp_table,
                     softmax_params)
from . import LowerContext


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    where = f"SOFTMAX (op {op.source_index})"
    if x.dtype != "int8" or out.dtype != "int8":
        raise ValueError(f"{where}: {x.dtype} -> {out.dtype}; only int8 -> int8 is supported")
    (si, _), (so, zo) = x.qparams(), out.qparams()
    if zo != -128 or f32(so) != f32(1.0 / 256):
        raise ValueError(f"{where}: TFLite Micro needs output scale 1/256 and zero point -128 (got {so}, {zo})")
    depth = x.shape[-1] if x.shape else 1
    if depth >= 512:  # the sum of exps could need a shift TFLM rejects (and 32-bit limbs overflow)
        raise ValueError(f"{where}: rows of {depth} values; at most 511 are supported")
    exp = softmax_exp_table(softmax_params(si, op.options.get("beta", 1.0)))
    acc = [rounding_divide_by_pot(e, SOFTMAX_ACCUMULATION_INTEGER_BITS) for e in exp]
    blob = (np.array([e >> 15 for e in exp], "<u2").tobytes() + np.array([e & 0x7FFF for e in exp], "<u2").tobytes()
            + np.array(acc, "<u4").tobytes())
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), rows=x.elements // depth, depth=depth)
    return [Step("softmax", params, blob)]
