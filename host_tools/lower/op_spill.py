"""SPILL (inserted by host_tools.optimize) -> device spill step."""
from __future__ import annotations

from tinyseg_mp import compress

from ..bundle_writer import Step
from ..graph import Graph, Op
from . import LowerContext, hwc


def scratch_bytes(graph: Graph, op: Op) -> int:
    h, w, c = hwc(graph.tensors[op.inputs[0]])
    return compress.bound(w * c)


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    t = ctx.tensor(op.inputs[0])
    h, w, c = hwc(t)
    params = dict(src_off=ctx.offset(t.index), rows=h, row_bytes=w * c, slot=op.options["slot"],
                  tmp_off=ctx.scratch(op), r0=0)
    return [Step("spill", params, source=f"spill '{t.name}'")]
