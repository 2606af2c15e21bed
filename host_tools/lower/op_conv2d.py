"""CONV_2D and FULLY_CONNECTED -> device conv2d (FULLY_CONNECTED is a 1x1 conv)."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op, Tensor
from ..quant import (INT32_MAX, INT32_MIN, activation_range, channel_multipliers, fully_connected_multiplier,
                     multiply_by_quantized_multiplier)
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


# Output channels per group of the packed weight layout: the Thumb kernel
# keeps one accumulator per channel of a group in registers.
LANES = 8
PAIR_MIN_W = 12  # tinyseg_mp/ops/thumb/conv2d.py's _PAIR_MIN_W: narrower rows run on bytes


def paired_room(params: dict, blob_bytes: int) -> int:
    """Weight-buffer bytes the Thumb conv kernel needs to run a step on paired
    lanes: its blob (to a multiple of 4), then a group's weights expanded to
    16 bytes an input (ops/thumb/conv2d.py, _rows); 0 where it runs on bytes anyway."""
    if params["out_w"] < PAIR_MIN_W:
        return 0
    return (blob_bytes + 3) // 4 * 4 + 16 * params["k_h"] * params["k_w"] * params["in_c"]
# The packed layout's accumulators sum up to K products of two bytes (< 2^16).
MAX_K = (1 << 31) // (255 * 255)


def pack_weights(weights: np.ndarray) -> bytes:
    """OHWI int8 weights as groups of LANES output channels: for each group,
    for each k of the flattened (ky, kx, ci) window, one byte per channel of
    the group, w + 128 as uint8 (channels past out_c are weight 0)."""
    out_c = weights.shape[0]
    w = weights.reshape(out_c, -1).astype(np.int16)
    if w.shape[1] >= MAX_K:
        raise ValueError(f"a conv window of {w.shape[1]} inputs is too long for the int32 accumulators "
                         f"of the packed kernels (at most {MAX_K - 1})")
    groups = -(-out_c // LANES)
    packed = np.zeros((groups * LANES, w.shape[1]), np.int16)
    packed[:out_c] = w
    packed = packed.reshape(groups, LANES, -1).transpose(0, 2, 1)  # group, k, lane
    return (packed + 128).astype(np.uint8).tobytes()


def requant_table(bias: np.ndarray, in_zp: int, wsum: np.ndarray, mult: list[int], shift: list[int],
                  out_zp: int, lo: int, hi: int) -> np.ndarray:
    """Per channel, padded to whole groups, the ten int32 the Thumb kernel reads:
    bias folded for unsigned inputs and weights (x + 128, w + 128), the
    multiplier's low and high 16 bits, left shift, right shift, its rounding
    mask, the clamp threshold (low_threshold), output zero point, clamp low
    and high."""
    out_c = len(mult)
    right = np.maximum(-np.array(shift, np.int64), 0)
    mask = (np.int64(1) << right) - 1
    m = np.array(mult, np.int64)
    folded = bias - (128 + in_zp) * wsum
    cols = [folded, m & 0xFFFF, m >> 16, np.maximum(np.array(shift, np.int64), 0), right,
            mask, low_threshold(folded, m, np.array(shift, np.int64), out_zp, lo), np.full(out_c, out_zp),
            np.full(out_c, lo), np.full(out_c, hi)]
    table = np.zeros((-(-out_c // LANES) * LANES, len(cols)), np.int64)
    table[:out_c] = np.stack(cols, axis=1)
    return table


def low_threshold(folded: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_zp: int, lo: int) -> np.ndarray:
    """Per channel, the t for which a kernel sum a (before the folded bias)
    below t requantises to exactly `lo`: the smallest acc whose output is
    above lo, less the folded bias. The requantisation is monotone in acc, so
    a binary search finds it. INT32_MIN (never below) where that does not
    hold over every reachable sum: a left shift (it wraps), a folded bias so
    large that a + folded could wrap, or no acc at all giving lo."""
    def above(acc):
        return multiply_by_quantized_multiplier(acc, mult, shift) + out_zp > lo

    low = np.full(len(mult), INT32_MIN, np.int64)  # above(low) false, unless none is
    high = np.full(len(mult), INT32_MAX, np.int64)  # above(high) assumed true
    none = above(low)
    for _ in range(32):
        mid = (low + high) // 2
        up = above(mid)
        high = np.where(up, mid, high)
        low = np.where(up, low, mid)
    first = np.where(above(high), high, INT32_MAX + 1)  # the smallest acc above lo
    t = np.clip(first - folded, INT32_MIN, INT32_MAX)
    usable = ~none & (shift <= 0) & (np.abs(folded) < 1 << 29)
    return np.where(usable, t, INT32_MIN)


def conv_blob(weights: np.ndarray, bias: np.ndarray, in_zp: int, mult: list[int], shift: list[int],
              out_zp: int, lo: int, hi: int) -> tuple[bytes, int]:
    """Packed weights (pack_weights), then int32 tables of out_c each: folded
    bias (bias - in_zp * sum(w)), bias, multiplier, shift; then the Thumb
    kernel's requant_table."""
    w = pack_weights(weights)
    out_c = weights.shape[0]
    wsum = weights.reshape(out_c, -1).astype(np.int64).sum(axis=1)
    tables = np.concatenate([bias - in_zp * wsum, bias, np.array(mult), np.array(shift)])
    thumb = requant_table(bias, in_zp, wsum, mult, shift, out_zp, lo, hi)
    return w + tables.astype("<i4").tobytes() + thumb.astype("<i4").tobytes(), len(w)


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
    blob, w_bytes = conv_blob(weights, bias, in_zp, mult, shift, out_zp, lo, hi)
    # The whole tensor: every input row in place (a ring of in_h rows), every output row.
    params = dict(in_off=in_off, in_h=in_h, in_w=in_w, in_c=in_c, out_off=out_off, out_h=out_h, out_w=out_w,
                  out_c=out_c, in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi, w_bytes=w_bytes, co0=0,
                  out_stride=out_c, in_ring=in_h, oy0=0, **geometry)
    return params, blob


def channel_groups(params: dict, blob: bytes, weights: np.ndarray, max_bytes: int) -> list[tuple[dict, bytes]]:
    """Split a conv step into steps over output-channel groups (whole groups
    of LANES) whose blobs fit max_bytes."""
    out_c = params["out_c"]
    if len(blob) <= max_bytes:
        return [(params, blob)]
    k = weights[0].size
    per_group = LANES * (k + 4 * 4 + 4 * 10)
    group = LANES * max(1, max_bytes // per_group)
    tables = np.frombuffer(blob[params["w_bytes"]:], dtype="<i4")[: 4 * out_c].reshape(4, out_c).astype(np.int64)
    in_zp, out_zp, lo, hi = params["in_zp"], params["out_zp"], params["act_min"], params["act_max"]
    steps = []
    for co0 in range(0, out_c, group):
        co1 = min(out_c, co0 + group)
        b, w_bytes = conv_blob(weights[co0:co1], tables[1, co0:co1], in_zp, list(tables[2, co0:co1]),
                               list(tables[3, co0:co1]), out_zp, lo, hi)
        steps.append((dict(params, out_c=co1 - co0, co0=co0, w_bytes=w_bytes), b))
    return steps


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    x, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    bias_t = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    params, blob = conv_step(op, hwc(x), x.qparams(), w, bias_t, out, ctx.offset(x.index), ctx.offset(out.index))
    weights = w.data if op.kind != "FULLY_CONNECTED" else w.data.reshape(w.shape[0], 1, 1, -1)
    return [Step("conv2d", p, b) for p, b in channel_groups(params, blob, weights, ctx.max_blob or MAX_BLOB_BYTES)]
