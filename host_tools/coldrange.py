"""Cold-range analysis: where each activation sits alive but untouched.

A tensor's uses are the step that produces it and the steps that read it. Its
cold range is the longest stretch between two consecutive uses: during those
steps it only occupies memory. A U-Net's skip tensors have cold ranges that
span most of the network.
"""
from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph


@dataclass(frozen=True)
class ColdRange:
    tensor: int
    after: int  # last use before the gap (step)
    before: int  # first use after the gap (step)

    @property
    def length(self) -> int:
        """Steps strictly inside the gap."""
        return self.before - self.after - 1


def use_steps(graph: Graph, tensor: int) -> list[int]:
    t = graph.tensors[tensor]
    uses = set(t.consumers)
    uses.add(0 if t.producer is None else t.producer)
    return sorted(uses)


def cold_ranges(graph: Graph) -> dict[int, ColdRange]:
    """The longest idle gap of every activation tensor that has one."""
    result = {}
    for t in graph.tensors:
        if t.is_const or (t.producer is None and t.index not in graph.inputs):
            continue
        uses = use_steps(graph, t.index)
        best = None
        for a, b in zip(uses, uses[1:]):
            if b - a > 1 and (best is None or b - a > best.before - best.after):
                best = ColdRange(t.index, a, b)
        if best is not None:
            result[t.index] = best
    return result
