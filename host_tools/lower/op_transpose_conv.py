"""TRANSPOSE_CONV -> device transpose_conv (TFLM's reference_integer_ops::TransposeConv).

Inputs: output_shape (constant), weights OHWI, input, optional bias. The
device gathers every output pixel's contributions directly, so TFLM's int32
scratch of the whole output is not needed by this kernel.
"""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import activation_range, channel_multipliers, compute_padding
from . import LowerContext, hwc
from .op_conv2d import pack_weights, requant_table


def phase_blocks(weights: np.ndarray, bias: np.ndarray, in_zp: int, mult: list[int], shift: list[int],
                 out_zp: int, lo: int, hi: int, s_h: int, s_w: int) -> bytes:
    """The Thumb kernel's form of a transpose conv: for each output phase
    (oy, ox modulo the strides) an ordinary stride-1 conv of the input with
    the taps of that phase, rows ky ascending, columns kx descending (so input
    columns ascend), packed as op_conv2d.pack_weights, then its
    requant_table (the folded bias depends on the phase's taps). Empty when a
    stride exceeds the kernel (a phase with no taps)."""
    out_c, k_h, k_w, _ = weights.shape
    if k_h < s_h or k_w < s_w:
        return b""
    blocks = b""
    for py in range(s_h):
        for px in range(s_w):
            sub = weights[:, py::s_h][:, :, px::s_w][:, :, ::-1]
            wsum = sub.reshape(out_c, -1).astype(np.int64).sum(axis=1)
            table = requant_table(bias, in_zp, wsum, mult, shift, out_zp, lo, hi)
            blocks += pack_weights(sub) + table.astype("<i4").tobytes()
    return blocks


def tconv_blob(weights: np.ndarray, bias: np.ndarray, mult: list[int], shift: list[int], thumb: bytes
               ) -> tuple[bytes, int]:
    """Weights OHWI reordered to (kh, in_c, kw, out_c) int8, so each kernel row
    is one (in_c, kw*out_c) matrix; padded to 4 bytes, then int32 x out_c:
    bias, multiplier, shift; then the phase blocks of the Thumb kernel."""
    w = np.ascontiguousarray(weights.transpose(1, 3, 2, 0)).astype(np.int8).tobytes()
    w += b"\0" * (-len(w) % 4)
    tables = np.concatenate([bias, np.array(mult), np.array(shift)]).astype("<i4")
    return w + tables.tobytes() + thumb, len(w)


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    w, x, out = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]], g.tensors[op.outputs[0]]
    bias_t = g.tensors[op.inputs[3]] if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    in_scale, in_zp = x.qparams()
    out_scale, out_zp = out.qparams()
    in_h, in_w, in_c = hwc(x)
    out_h, out_w, out_c = hwc(out)
    weights = w.data
    if weights.ndim != 4 or weights.shape[0] != out_c or weights.shape[3] != in_c:
        raise ValueError(f"TRANSPOSE_CONV op {op.source_index}: filter {weights.shape} does not fit "
                         f"input {x.shape} / output {out.shape}")
    _, k_h, k_w, _ = weights.shape
    o = op.options
    # TFLM pads as if convolving the output back to the input: ComputePaddingHeightWidth
    # on the output size (dilation 1).
    pad_t = compute_padding(out_h, k_h, o["stride_h"], o["padding"])[1]
    pad_l = compute_padding(out_w, k_w, o["stride_w"], o["padding"])[1]
    bias = bias_t.data.astype(np.int64) if bias_t is not None else np.zeros(out_c, np.int64)
    mult, shift = channel_multipliers(in_scale, w.scale, out_scale, num_channels=out_c)
    lo, hi = activation_range(o.get("activation", "NONE"), out_scale, out_zp, out.dtype)
    thumb = phase_blocks(weights, bias, in_zp, mult, shift, out_zp, lo, hi, o["stride_h"], o["stride_w"])
    blob, w_bytes = tconv_blob(weights, bias, mult, shift, thumb)
    params = dict(
        in_off=ctx.offset(x.index), in_h=in_h, in_w=in_w, in_c=in_c,
        out_off=ctx.offset(out.index), out_h=out_h, out_w=out_w, out_c=out_c,
        k_h=k_h, k_w=k_w, stride_h=o["stride_h"], stride_w=o["stride_w"], pad_top=pad_t, pad_left=pad_l,
        in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi, w_bytes=w_bytes,
        in_ring=in_h, oy0=0,  # the whole tensor
    )
    return [Step("transpose_conv", params, blob)]
