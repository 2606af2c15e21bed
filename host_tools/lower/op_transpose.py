"""TRANSPOSE (8-bit, constant permutation) -> device transpose: the output,
read in order, is the input walked with the permuted strides. Output dims of
size 1 are dropped and neighbours that stay contiguous in the input merged,
so the NCHW <-> NHWC permutations of exported models become one matrix
transpose (HW x C <-> C x HW); at most 3 loop levels remain."""
from __future__ import annotations

from ..bundle_writer import Step
from ..graph import Op
from . import LowerContext


def loop_levels(shape, perm) -> list[tuple[int, int]]:
    """(size, input element stride) per loop level, outermost first, padded
    to 3 levels; ValueError if the permutation needs more."""
    rank = len(shape)
    strides = [1] * rank
    for d in range(rank - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    levels: list[list[int]] = []
    for p in perm:
        n, s = shape[p], strides[p]
        if n == 1:
            continue
        if levels and levels[-1][1] == s * n:
            levels[-1] = [levels[-1][0] * n, s]
        else:
            levels.append([n, s])
    if len(levels) > 3:
        raise ValueError(f"permutation {list(perm)} of shape {list(shape)} needs {len(levels)} loop levels; "
                         "at most 3 are supported")
    return [(1, 0)] * (3 - len(levels)) + [tuple(v) for v in levels]


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    x, p, out = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    where = f"TRANSPOSE (op {op.source_index})"
    if x.dtype not in ("int8", "uint8") or out.dtype != x.dtype:
        raise ValueError(f"{where}: {x.dtype} -> {out.dtype}; 8-bit tensors are supported")
    if not p.is_const:
        raise ValueError(f"{where}: the permutation '{p.name}' is computed at run time; it must be a constant")
    rank = len(x.shape)
    perm = [int(v) % rank if rank else 0 for v in p.data.reshape(-1)]
    if sorted(perm) != list(range(rank)):
        raise ValueError(f"{where}: {list(p.data.reshape(-1))} is not a permutation of {rank} dims")
    if tuple(x.shape[d] for d in perm) != tuple(out.shape):
        raise ValueError(f"{where}: input {list(x.shape)} permuted by {perm} is not the output {list(out.shape)}")
    try:
        (n0, s0), (n1, s1), (n2, s2) = loop_levels(x.shape, perm)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    params = dict(in_off=ctx.offset(x.index), out_off=ctx.offset(out.index), n0=n0, n1=n1, n2=n2,
                  s0=s0, s1=s1, s2=s2)
    return [Step("transpose", params)]
