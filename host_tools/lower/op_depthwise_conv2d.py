"""DEPTHWISE_CONV_2D -> device depthwise_conv2d (TFLM's DepthwiseConvPerChannel)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op
from ..quant import activation_range, channel_multipliers, compute_padding
from . import LowerContext, hwc
from .op_conv2d import explicit_padding, requant_table


def dw_blob(weights: np.ndarray, bias: np.ndarray, mult: list[int], shift: list[int],
            in_c: int, dm: int) -> tuple[bytes, int]:
    """Weights [1, kh, kw, out_c] (out channel oc = ic * dm + m) reordered to
    (dm, kh*kw, in_c) int8, padded to 4 bytes, then int32 tables bias,
    multiplier, shift, each in the same m-major order (entry m * in_c + ic)."""
    _, k_h, k_w, _ = weights.shape
    w = weights.reshape(k_h * k_w, in_c, dm).transpose(2, 0, 1)  # (dm, taps, in_c)
    raw = np.ascontiguousarray(w).astype(np.int8).tobytes()
    raw += b"\0" * (-len(raw) % 4)

    def order(v) -> np.ndarray:
        return np.asarray(v, np.int64).reshape(in_c, dm).T.reshape(-1)

    tables = np.concatenate([order(bias), order(mult), order(shift)]).astype("<i4")
    return raw + tables.tobytes(), len(raw)


def thumb_layout(weights: np.ndarray, bias: np.ndarray, in_zp: int, mult: list[int], shift: list[int],
                 out_zp: int, lo: int, hi: int) -> bytes:
    """The Thumb kernel's layout (tinyseg_mp/ops/thumb/depthwise_conv2d.py),
    appended after the tables: per group of 8 output channels (natural
    order), for each tap (ky, kx) 8 int32 weights (channels past out_c 0);
    then requant_table with the bias folded for x + 128 inputs."""
    _, k_h, k_w, out_c = weights.shape
    taps = k_h * k_w
    groups = -(-out_c // 8)
    w = np.zeros((groups * 8, taps), np.int64)
    w[:out_c] = weights.reshape(taps, out_c).T
    packed = w.reshape(groups, 8, taps).transpose(0, 2, 1)  # group, tap, lane
    wsum = weights.reshape(taps, out_c).astype(np.int64).sum(axis=0)
    table = requant_table(bias, in_zp, wsum, mult, shift, out_zp, lo, hi)
    return packed.astype("<i4").tobytes() + table.astype("<i4").tobytes()


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    x, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    bias_t = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    in_scale, in_zp = x.qparams()
    out_scale, out_zp = out.qparams()
    in_h, in_w, in_c = hwc(x)
    out_h, out_w, out_c = hwc(out)
    weights = w.data
    if weights.ndim != 4 or weights.shape[0] != 1 or weights.shape[3] != out_c or out_c % in_c:
        raise ValueError(f"DEPTHWISE_CONV_2D op {op.source_index}: filter {weights.shape} does not fit "
                         f"input {x.shape} / output {out.shape}")
    _, k_h, k_w, _ = weights.shape
    dm = out_c // in_c
    o = op.options
    geometry = {}
    if o["padding"] == "EXPLICIT":
        geometry["pad_top"], geometry["pad_left"] = explicit_padding(op, (in_h, in_w), (k_h, k_w), (out_h, out_w))
    else:
        for axis, size, k, out_size in (("h", in_h, k_h, out_h), ("w", in_w, k_w, out_w)):
            n, pad, _ = compute_padding(size, k, o["stride_" + axis], o["padding"], o["dilation_" + axis])
            if n != out_size:
                raise ValueError(f"DEPTHWISE_CONV_2D op {op.source_index}: output {axis} is {out_size}, "
                                 f"padding rule gives {n}")
            geometry["pad_top" if axis == "h" else "pad_left"] = pad
    bias = bias_t.data.astype(np.int64) if bias_t is not None else np.zeros(out_c, np.int64)
    mult, shift = channel_multipliers(in_scale, w.scale, out_scale, num_channels=out_c)
    lo, hi = activation_range(o.get("activation", "NONE"), out_scale, out_zp, out.dtype)
    blob, w_bytes = dw_blob(weights, bias, mult, shift, in_c, dm)
    blob += thumb_layout(weights, bias, in_zp, mult, shift, out_zp, lo, hi)  # for_kernels drops it off ARM
    params = dict(
        in_off=ctx.offset(x.index), in_h=in_h, in_w=in_w, in_c=in_c,
        out_off=ctx.offset(out.index), out_h=out_h, out_w=out_w, out_c=out_c,
        k_h=k_h, k_w=k_w, stride_h=o["stride_h"], stride_w=o["stride_w"],
        dil_h=o["dilation_h"], dil_w=o["dilation_w"], depth_mult=dm,
        in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi, w_bytes=w_bytes,
        in_ring=in_h, oy0=0, **geometry,  # the whole tensor
    )
    return [Step("depthwise_conv2d", params, blob)]
