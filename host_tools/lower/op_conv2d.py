"""CONV_2D and FULLY_CONNECTED -> device conv2d (FULLY_CONNECTED is a 1x1 conv)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op, Tensor
from ..quant import activation_range, channel_multipliers, fully_connected_multiplier
from . import LowerContext, hwc

# Largest weight block of one step: the device's weight buffer is this big,
# so bigger convolutions are split into steps over groups of output channels.
MAX_BLOB_BYTES = 16 * 1024


def same_padding(in_size: int, k: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite's leading padding for SAME (ComputePaddingHeightWidth)."""
    effective = (k - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2


def explicit_padding(op: Op, in_hw: tuple[int, int], k_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """(pad_top, pad_left) of a conv with EXPLICIT padding (a PAD folded in by
    optimize.fold_pads). Its bottom/right padding is implicit, as the kernels
    skip taps past the input: the output size must be
    (in + pad_top + pad_bottom - effective_k) // stride + 1 for some pad_bottom >= 0."""
    o = op.options
    pads = (o["pad_top"], o["pad_left"])
    for axis, size, k, out_size, pad in zip("hw", in_hw, k_hw, out_hw, pads):
        effective = (k - 1) * o["dilation_" + axis] + 1
        least = max((size + pad - effective) // o["stride_" + axis] + 1, 1)  # with pad_bottom = 0
        if pad < 0:
            raise ValueError(f"{op.kind} op {op.source_index}: negative explicit padding {pad} on {axis}")
        if out_size < least:
            raise ValueError(f"{op.kind} op {op.source_index}: output {axis} is {out_size}, explicit padding "
                             f"{pad} before an input of {size} gives at least {least}")
    return pads


def leading_padding(op: Op, in_hw: tuple[int, int], k_hw: tuple[int, int], out_hw: tuple[int, int]
                    ) -> tuple[int, int]:
    """(pad_top, pad_left) of a CONV_2D or DEPTHWISE_CONV_2D: SAME as TFLite
    computes it, EXPLICIT from its options (checked), VALID none."""
    o = op.options
    if o["padding"] == "EXPLICIT":
        return explicit_padding(op, in_hw, k_hw, out_hw)
    if o["padding"] == "SAME":
        return (same_padding(in_hw[0], k_hw[0], o["stride_h"], o["dilation_h"], out_hw[0]),
                same_padding(in_hw[1], k_hw[1], o["stride_w"], o["dilation_w"], out_hw[1]))
    return 0, 0


def conv_blob(weights: np.ndarray, bias: np.ndarray, in_zp: int, mult: list[int], shift: list[int]) -> tuple[bytes, int]:
    """Weights (OHWI int8, padded to 4 bytes) then int32 tables: folded bias, bias, multiplier, shift."""
    w = weights.astype(np.int8).tobytes()
    w += b"\0" * (-len(w) % 4)
    out_c = weights.shape[0]
    wsum = weights.reshape(out_c, -1).astype(np.int64).sum(axis=1)
    folded = bias - in_zp * wsum
    tables = np.concatenate([folded, bias, np.array(mult), np.array(shift)]).astype("<i4")
    return w + tables.tobytes(), len(w)


def conv_step(op: Op, in_hwc: tuple[int, int, int], in_q: tuple[float, int], w: Tensor, bias_t: Tensor | None,
              out: Tensor, in_off: int, out_off: int) -> tuple[dict, bytes]:
    """Params and blob of a device conv2d step reading an input of shape
    in_hwc quantised as in_q (scale, zero point)."""
    in_scale, in_zp = in_q
    out_scale, out_zp = out.qparams()
    if op.kind == "FULLY_CONNECTED":
        out_c, k = w.shape
        weights = w.data.reshape(out_c, 1, 1, k)
        in_h = in_w = out_h = out_w = 1
        in_c = k
        geometry = {"k_h": 1, "k_w": 1, "stride_h": 1, "stride_w": 1, "dil_h": 1, "dil_w": 1, "pad_top": 0,
                    "pad_left": 0}
    else:
        weights = w.data
        out_c, k_h, k_w, _ = weights.shape
        in_h, in_w, in_c = in_hwc
        out_h, out_w, _ = hwc(out)
        o = op.options
        pad_top, pad_left = leading_padding(op, (in_h, in_w), (k_h, k_w), (out_h, out_w))
        geometry = {"k_h": k_h, "k_w": k_w, "stride_h": o["stride_h"], "stride_w": o["stride_w"],
                    "dil_h": o["dilation_h"], "dil_w": o["dilation_w"], "pad_top": pad_top, "pad_left": pad_left}
    bias = bias_t.data.astype(np.int64) if bias_t is not None else np.zeros(out_c, np.int64)
    if op.kind == "FULLY_CONNECTED" and len(w.scale) == 1:
        m, sh = fully_connected_multiplier(in_scale, float(w.scale[0]), out_scale)
        mult, shift = [m] * out_c, [sh] * out_c
    else:
        mult, shift = channel_multipliers(in_scale, np.broadcast_to(w.scale, (out_c,)), out_scale)
    lo, hi = activation_range(op.options.get("activation", "NONE"), out_scale, out_zp, out.dtype)
    blob, w_bytes = conv_blob(weights, bias, in_zp, mult, shift)
    # The whole tensor: every input row in place (a ring of in_h rows), every output row.
    params = dict(in_off=in_off, in_h=in_h, in_w=in_w, in_c=in_c, out_off=out_off, out_h=out_h, out_w=out_w,
                  out_c=out_c, in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi, w_bytes=w_bytes, co0=0,
                  out_stride=out_c, in_ring=in_h, oy0=0, **geometry)
    return params, blob


def channel_groups(params: dict, blob: bytes, weights: np.ndarray, max_bytes: int) -> list[tuple[dict, bytes]]:
    """Split a conv step into steps over output-channel groups whose blobs fit max_bytes."""
    out_c = params["out_c"]
    if len(blob) <= max_bytes:
        return [(params, blob)]
    per_channel = weights[0].size + 16
    group = max(1, max_bytes // per_channel)
    tables = np.frombuffer(blob[params["w_bytes"]:], dtype="<i4").reshape(4, out_c)
    steps = []
    for co0 in range(0, out_c, group):
        co1 = min(out_c, co0 + group)
        w = weights[co0:co1].astype(np.int8).tobytes()
        w += b"\0" * (-len(w) % 4)
        steps.append((dict(params, out_c=co1 - co0, co0=co0, w_bytes=len(w)),
                      w + tables[:, co0:co1].astype("<i4").tobytes()))
    return steps


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    x, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    bias_t = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    params, blob = conv_step(op, hwc(x), x.qparams(), w, bias_t, out, ctx.offset(x.index), ctx.offset(out.index))
    weights = w.data if op.kind != "FULLY_CONNECTED" else w.data.reshape(w.shape[0], 1, 1, -1)
    return [Step("conv2d", p, b) for p, b in channel_groups(params, blob, weights, ctx.max_blob or MAX_BLOB_BYTES)]
