"""Tensor lifetimes: the op steps at which each activation is first and last used."""
from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph


@dataclass(frozen=True)
class Lifetime:
    tensor: int
    first: int  # op step that creates it (0 for model inputs)
    last: int  # last op step that reads it (the final step for model outputs)


def tensor_lifetimes(graph: Graph) -> dict[int, Lifetime]:
    """Lifetimes of every non-constant tensor, in op steps 0..len(ops)-1."""
    first: dict[int, int] = {i: 0 for i in graph.inputs}
    last: dict[int, int] = {i: 0 for i in graph.inputs}
    for step, op in enumerate(graph.ops):
        for o in op.outputs:
            first.setdefault(o, step)
            last[o] = max(last.get(o, step), step)
        for i in op.inputs:
            if i >= 0 and not graph.tensors[i].is_const:
                last[i] = step
    end = max(len(graph.ops) - 1, 0)
    for o in graph.outputs:
        first.setdefault(o, end)
        last[o] = end
    return {t: Lifetime(t, first[t], last[t]) for t in first}
