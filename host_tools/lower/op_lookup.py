"""QUANTIZE (8-bit <-> 8-bit), LOGISTIC, RELU, RELU6, LEAKY_RELU, HARD_SWISH -> device
lookup: a 256-byte table by input byte, TFLite Micro's kernel evaluated on
the host for every input value (tables from host_tools.quant)."""
from __future__ import annotations

from ..bundle_writer import Step
from ..graph import Op
from ..quant import lut_hard_swish, lut_leaky_relu, lut_logistic, lut_relu, lut_relu6, lut_requantize
from . import LowerContext


def table(op: Op, x, out) -> bytes:
    (si, zi), (so, zo) = x.qparams(), out.qparams()
    where = f"{op.kind} (op {op.source_index})"
    if op.kind == "QUANTIZE":
        if (x.dtype, out.dtype) not in (("int8", "int8"), ("int8", "uint8"), ("uint8", "int8")):
            raise ValueError(f"{where}: {x.dtype} -> {out.dtype} is not supported "
                             "(int8 -> int8, int8 <-> uint8 are; quantise float inputs on the host)")
        return lut_requantize(si, zi, so, zo, x.dtype, out.dtype)
    if x.dtype != out.dtype:
        raise ValueError(f"{where}: input {x.dtype}, output {out.dtype}")
    if op.kind == "LOGISTIC":
        if x.dtype != "int8" or zo != -128:
            raise ValueError(f"{where}: TFLite Micro needs int8 with output zero point -128 (got {x.dtype}, {zo})")
        return lut_logistic(si, zi)
    if op.kind == "RELU":
        return lut_relu(si, zi, so, zo, x.dtype)
    if op.kind == "RELU6":
        return lut_relu6(si, zi, x.dtype)  # TFLM only clamps (no rescale to the output scale)
    if op.kind == "LEAKY_RELU":
        return lut_leaky_relu(si, zi, so, zo, op.options["alpha"], x.dtype)
    if op.kind == "HARD_SWISH":
        if x.dtype != "int8":
            raise ValueError(f"{where}: TFLite Micro's quantised HARD_SWISH is int8 only (got {x.dtype})")
        try:
            return lut_hard_swish(si, zi, so, zo)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}; re-quantise with an output scale at least the input's / 128") from None
    raise ValueError(f"{where}: no lookup table for this op")


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if op.kind == "QUANTIZE" and x.dtype == "float32":
        from . import op_quantize_float

        return op_quantize_float.lower(ctx, op)
    for t in (x, out):
        if t.dtype not in ("int8", "uint8"):
            raise ValueError(f"{op.kind} (op {op.source_index}): tensor '{t.name}' is {t.dtype}; "
                             "only int8/uint8 are supported")
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), n=out.elements)
    return [Step("lookup", params, table(op, x, out))]
