"""This project's own memory plan for the runtime's activation arena.

Every activation tensor of the folded graph and every scratch buffer our
kernels need becomes a planner buffer with its lifetime in op steps; the
planner gives offsets (stored in the bundle) and the peak.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from typing import Callable

from .graph import Graph, Op
from .lifetimes import tensor_lifetimes
from .planner import BestOrderPlanner, MemoryPlanner
from .tflm_baseline import scratch_requests

ScratchFn = Callable[[Graph, Op], int]


def tflm_scratch(graph: Graph, op: Op) -> int:
    """The scratch TFLite Micro's kernels request (the unoptimised baseline)."""
    return sum(size for _, size in scratch_requests(graph, op))

ARENA_ALIGNMENT = 4


def _align(n: int) -> int:
    return (n + ARENA_ALIGNMENT - 1) // ARENA_ALIGNMENT * ARENA_ALIGNMENT


@dataclass(frozen=True)
class PlannedBuffer:
    name: str
    tensor: int  # -1 for scratch
    op: int  # owning op for scratch, producer for tensors (-1 for inputs)
    size: int
    first: int
    last: int
    offset: int


@dataclass
class MemoryPlan:
    peak: int
    buffers: list[PlannedBuffer]
    tensor_offsets: dict[int, int] = field(default_factory=dict)
    scratch_offsets: dict[int, int] = field(default_factory=dict)  # op step -> offset

    def live_bytes(self, steps: int) -> list[int]:
        """Bytes alive at each op step (the memory timeline)."""
        live = [0] * steps
        for b in self.buffers:
            for s in range(b.first, b.last + 1):
                live[s] += b.size
        return live


def plan_memory(graph: Graph, scratch: ScratchFn = tflm_scratch, planner: MemoryPlanner | None = None) -> MemoryPlan:
    """Place every arena tensor and every op's scratch buffer; `scratch` says
    how many scratch bytes an op's kernel needs."""
    planner = planner or BestOrderPlanner()
    entries: list[tuple[str, int, int, int, int, int]] = []
    for lt in sorted(tensor_lifetimes(graph).values(), key=lambda lt: lt.tensor):
        t = graph.tensors[lt.tensor]
        if t.nbytes and not t.in_flash:
            producer = -1 if t.producer is None else t.producer
            entries.append((t.name, t.index, producer, _align(t.nbytes), lt.first, lt.last))
    for step, op in enumerate(graph.ops):
        size = scratch(graph, op)
        if size:
            entries.append((f"op{step} {op.kind} scratch", -1, step, _align(size), step, step))
    ids = [planner.add_buffer(size, f, l) for _, _, _, size, f, l in entries]
    buffers = [
        PlannedBuffer(name, tensor, op, size, f, l, planner.offset(bid))
        for (name, tensor, op, size, f, l), bid in zip(entries, ids)
    ]
    plan = MemoryPlan(peak=planner.peak(), buffers=buffers)
    for b in buffers:
        if b.tensor >= 0:
            plan.tensor_offsets[b.tensor] = b.offset
        else:
            plan.scratch_offsets[b.op] = b.offset
    return plan
