"""PAD / PADV2 (8-bit) -> device pad with constant paddings (folded at import).

The pad value is the output zero point, or PADV2's constant (TFLite Micro
requires it to share the output's quantisation: host_tools.quant.pad_value).
Unpadded inner dimensions are merged into one contiguous run so an image pad
copies whole input rows."""
from __future__ import annotations

import numpy as np

from ..bundle_writer import Step
from ..graph import DTYPE_SIZES, Op
from ..quant import pad_value
from . import LowerContext


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, pads_t, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    where = f"{op.kind} (op {op.source_index})"
    if not pads_t.is_const:
        raise ValueError(f"{where}: paddings must be constant")
    if x.dtype not in ("int8", "uint8"):
        raise ValueError(f"{where}: {x.dtype} is not supported (int8/uint8 are)")
    pads = np.asarray(pads_t.data, np.int64).reshape(-1, 2)
    in_d, out_d = list(x.shape), list(out.shape)
    if len(pads) != len(in_d) or (pads < 0).any():
        raise ValueError(f"{where}: paddings {pads.tolist()} for shape {in_d}")
    if [i + a + b for i, (a, b) in zip(in_d, pads)] != out_d:
        raise ValueError(f"{where}: {in_d} padded by {pads.tolist()} is not {out_d}")
    const = None
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        const = int(np.asarray(ctx.tensor(op.inputs[2]).data).reshape(-1)[0])
    zp = out.qparams()[1] if out.scale is not None else 0
    value = pad_value(zp, const) if x.dtype == "int8" else (zp if const is None else const)
    size = DTYPE_SIZES[x.dtype]
    rank = len(in_d)
    ostride = [size] * rank
    for d in range(rank - 2, -1, -1):
        ostride[d] = ostride[d + 1] * out_d[d + 1]
    first = sum(int(pads[d][0]) * ostride[d] for d in range(rank))
    # The run: the innermost dim plus every outer dim whose inner neighbours are all unpadded.
    k, run = rank - 1, in_d[-1] * size if rank else size
    while k > 0 and not pads[k].any():
        run *= in_d[k - 1]
        k -= 1
    levels = [(in_d[d], ostride[d]) for d in range(k) if in_d[d] > 1]
    if len(levels) > 3:
        raise ValueError(f"{where}: padding of {rank}-D tensors on {len(levels)} outer dims is not supported")
    levels = [(1, 0)] * (3 - len(levels)) + levels
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index),
                  out_bytes=out.nbytes if pads.any() else 0, value=value,
                  n0=levels[0][0], n1=levels[1][0], n2=levels[2][0],
                  s0=levels[0][1], s1=levels[1][1], s2=levels[2][1], first=first, run=run)
    return [Step("pad", params, b"")]
