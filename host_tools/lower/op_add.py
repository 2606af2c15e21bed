"""ADD, SUB and MUL (int8, broadcasting) -> device add / sub / mul steps.

All share one device kernel (tinyseg_mp/ops/op_add.py, param kind 0 = ADD
or SUB, 1 = MUL). SUB is ADD with the second input's table negated: TFLite
Micro's CalculateOpDataSub computes the same multipliers as ADD's and its
kernel subtracts the two scaled inputs. Everything TFLite Micro computes in Prepare comes from
host_tools.quant; on top of that the host tabulates ADD's per-input scaled
values and, for the exact float32 array path, the thresholds of the
requantisation step function.
"""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import Op, Tensor
from ..quant import (add_input_tables, add_params, mul_params, multiply_by_quantized_multiplier,
                     multiply_by_quantized_multiplier_smaller_than_one_exp)
from . import LowerContext

INF = 1 << 30  # threshold sentinels: beyond every raw value (|raw| < 2^28)
# The array path estimates the output in float32 from raw * multiplier; it is
# off by at most one (then corrected exactly) while |raw * multiplier| <= 2^19.
ARRAY_LIMIT = float(1 << 19)


def broadcast_levels(out_shape, a_shape, b_shape):
    """Fold numpy-style broadcasting into 3 loop levels: sizes n and each
    input's element strides (0 where it is broadcast). Output dims of size 1
    are dropped and neighbours with the same broadcast pattern merged. More
    than 3 levels (batch > 1) are unrolled here: returns the list of
    (out, a, b) element offsets of the device steps, then n, sa, sb."""
    rank = len(out_shape)

    def aligned(shape):
        shape = list(shape)
        while len(shape) > rank and shape[0] == 1:
            shape.pop(0)
        if len(shape) > rank:
            raise ValueError(f"input shape {shape} has more dims than the output {list(out_shape)}")
        return [1] * (rank - len(shape)) + shape

    a, b = aligned(a_shape), aligned(b_shape)
    groups: list[list] = []  # [size, a_full, b_full]
    for d, n in enumerate(out_shape):
        if a[d] not in (1, n) or b[d] not in (1, n):
            raise ValueError(f"shapes {list(a_shape)} and {list(b_shape)} do not broadcast to {list(out_shape)}")
        if n == 1:
            continue
        key = [a[d] == n, b[d] == n]
        if groups and groups[-1][1:] == key:
            groups[-1][0] *= n
        else:
            groups.append([n] + key)
    groups = [[1, False, False]] * max(0, 3 - len(groups)) + groups
    strides = [[0] * len(groups) for _ in range(3)]  # out, a, b
    for which in range(3):
        step = 1
        for lvl in range(len(groups) - 1, -1, -1):
            if which == 0 or groups[lvl][which]:
                strides[which][lvl] = step
                step *= groups[lvl][0]
    peel = len(groups) - 3
    starts = [(0, 0, 0)]
    for lvl in range(peel):
        starts = [(o + i * strides[0][lvl], x + i * strides[1][lvl], y + i * strides[2][lvl])
                  for o, x, y in starts for i in range(groups[lvl][0])]
    return starts, [g[0] for g in groups[peel:]], strides[1][peel:], strides[2][peel:]


def thresholds(fn, raw_lo: int, raw_hi: int, act_min: int, act_max: int) -> list[int]:
    """T[j] = least raw in [raw_lo, raw_hi + 1] with fn(raw) >= act_min + j for
    j = 1 .. act_max - act_min (raw_hi + 1: never), framed by -INF and +INF.
    fn is the op's monotone output function (int64 arrays in and out)."""
    ks = np.arange(act_min + 1, act_max + 1, dtype=np.int64)
    left = np.full(len(ks), raw_lo, np.int64)
    right = np.full(len(ks), raw_hi + 1, np.int64)
    while True:
        active = left < right
        if not active.any():
            break
        mid = (left + right) // 2
        ok = fn(mid) >= ks
        right = np.where(active & ok, mid, right)
        left = np.where(active & ~ok, mid + 1, left)
    return [-INF] + [int(t) for t in left] + [INF]


def operand(ctx: LowerContext, t: Tensor, blob: bytearray) -> tuple[int, int]:
    """(offset, src) of an input: the arena, or a constant's bytes appended to the blob."""
    if not t.is_const:
        return ctx.offset(t.index), 0
    blob += b"\0" * (-len(blob) % 4)
    off = len(blob)
    blob += np.asarray(t.data).astype(t.dtype).tobytes()
    return off, 1


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    a, b, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    for t in (a, b, out):
        if t.dtype != "int8":
            raise ValueError(f"{op.kind} (op {op.source_index}): tensor '{t.name}' is {t.dtype}; "
                             "only int8 is supported")
    (sa, za), (sb, zb), (so, zo) = a.qparams(), b.qparams(), out.qparams()
    act = op.options.get("activation", "NONE")
    blob = bytearray()
    if op.kind in ("ADD", "SUB"):
        q = add_params(sa, za, sb, zb, so, zo, act)
        lo, hi, mult, shift = q.act_min, q.act_max, q.output_multiplier, q.output_shift
        t1, t2 = add_input_tables(q)
        if op.kind == "SUB":
            t2 = [-v for v in t2]
        blob += np.array(t1 + t2, dtype="<i4").tobytes()
        raw_lo, raw_hi = min(t1) + min(t2), max(t1) + max(t2)

        def fn(raw):
            y = multiply_by_quantized_multiplier_smaller_than_one_exp(raw, mult, shift) + zo
            return np.clip(y, lo, hi)
    else:
        q = mul_params(sa, za, sb, zb, so, zo, act)
        lo, hi, mult, shift = q.act_min, q.act_max, q.output_multiplier, q.output_shift
        if shift > 15:  # TFLM's (raw << shift) would overflow int32
            raise ValueError(f"MUL (op {op.source_index}): output multiplier shift {shift} > 15 is not supported")
        corners = [(x - za) * (y - zb) for x in (-128, 127) for y in (-128, 127)]
        raw_lo, raw_hi = min(corners), max(corners)

        def fn(raw):
            return np.clip(multiply_by_quantized_multiplier(raw, mult, shift) + zo, lo, hi)

    t_off = len(blob)
    blob += np.array(thresholds(fn, raw_lo, raw_hi, lo, hi), dtype="<i4").tobytes()
    a_off, a_src = operand(ctx, a, blob)
    b_off, b_src = operand(ctx, b, blob)
    blob += b"\0" * (-len(blob) % 4)  # whole int32 words (the kernels read 16-bit halves)
    starts, n, s_a, s_b = broadcast_levels(out.shape, a.shape, b.shape)
    real = mult * 2.0 ** (shift - 31)
    arr_ok = int(max(abs(raw_lo), abs(raw_hi)) * real <= ARRAY_LIMIT)
    out_off = ctx.offset(out.index)
    steps = []
    for do, da, db in starts:
        params = dict(
            kind=0 if op.kind in ("ADD", "SUB") else 1, a_off=a_off + da, a_src=a_src, b_off=b_off + db, b_src=b_src,
            out_off=out_off + do, n0=n[0], n1=n[1], n2=n[2],
            sa0=s_a[0], sa1=s_a[1], sa2=s_a[2], sb0=s_b[0], sb1=s_b[1], sb2=s_b[2],
            a_zp=za, b_zp=zb, out_zp=zo, act_min=lo, act_max=hi, mult=mult, shift=shift, arr_ok=arr_ok, t_off=t_off,
        )
        steps.append(Step(op.kind.lower(), params, bytes(blob)))
    return steps
