"""The activation arena TFLite Micro would allocate for a model.

Mirrors TFLite Micro's allocator: every non-constant tensor of the file (the
unfolded graph, shape chains included) plus the scratch buffers its reference
kernels request in Prepare, sizes rounded up to 16 bytes, lifetimes counted in
TFLM's allocation scopes (model inputs at 0, op i at i+1), placed by the
greedy planner. The plan's peak is what `print_allocations()` reports as the
"Arena allocation head".
"""
from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph, Op
from .planner import GreedyPlanner

ALIGNMENT = 16


def align(n: int, to: int = ALIGNMENT) -> int:
    return (n + to - 1) // to * to


def scratch_requests(graph: Graph, op: Op) -> list[tuple[str, int]]:
    """Scratch buffers TFLM's reference kernel for `op` requests, in order."""
    t = graph.tensors
    if op.kind == "TRANSPOSE_CONV" and t[op.inputs[2]].dtype == "int8":
        return [("transpose_conv int32 accumulator", t[op.outputs[0]].elements * 4)]
    if op.kind == "MEAN":
        rank = len(t[op.inputs[0]].shape)
        num_axis = t[op.inputs[1]].elements
        reqs = []
        if t[op.inputs[0]].dtype in ("int8", "int16"):
            reqs.append(("mean int32 accumulator", 4 * t[op.outputs[0]].elements))
        reqs += [("mean input iterator", 4 * rank), ("mean resolved axes", 4 * num_axis)]
        return reqs
    return []


@dataclass(frozen=True)
class Buffer:
    name: str
    tensor: int  # -1 for a scratch buffer
    size: int  # bytes, aligned
    first: int  # allocation scope
    last: int
    offset: int


@dataclass(frozen=True)
class BaselinePlan:
    arena_head: int
    buffers: list[Buffer]


def tflm_plan(raw: Graph) -> BaselinePlan:
    """Plan `raw` (the graph as the file has it) the way TFLite Micro does."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in raw.inputs:
        first.setdefault(i, 0)
        last[i] = 0
    scratch: list[tuple[str, int, int]] = []
    for k, op in enumerate(raw.ops):
        scope = k + 1
        for o in op.outputs:
            first.setdefault(o, scope)
        for i in op.inputs:
            if i >= 0:
                last[i] = scope
        for o in op.outputs:
            last[o] = scope
        for name, size in scratch_requests(raw, op):
            scratch.append((f"op{k} {op.kind}: {name}", size, scope))
    end = len(raw.ops)
    for o in raw.outputs:
        first.setdefault(o, end)
        last[o] = end

    planner = GreedyPlanner()
    entries: list[tuple[str, int, int, int, int]] = []
    for t in raw.tensors:  # TFLM adds tensors in index order, then scratch buffers
        if t.is_const or t.nbytes == 0 or t.index not in first:
            continue
        size = align(t.nbytes)
        entries.append((t.name, t.index, size, first[t.index], last[t.index]))
    for name, size, scope in scratch:
        entries.append((name, -1, align(size), scope, scope))
    ids = [planner.add_buffer(size, f, l) for _, _, size, f, l in entries]
    buffers = [
        Buffer(name, tensor, size, f, l, planner.offset(bid))
        for (name, tensor, size, f, l), bid in zip(entries, ids)
    ]
    return BaselinePlan(arena_head=align(planner.peak()), buffers=buffers)
