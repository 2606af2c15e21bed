"""CONCAT_CONV_2D (made by host_tools.optimize) -> device concat_conv2d.

The conv's input rows are gathered from the concatenation's sources into a
ring of rows in scratch; spilled sources are fetched from flash row by row.
"""
from __future__ import annotations

from tinyseg_mp import compress

from ..bundle_writer import Step
from ..graph import Graph, Op
from . import LowerContext, hwc
from .op_conv2d import conv_step

KIND_ARENA = 1
KIND_FLASH = 2


def _layout(graph: Graph, op: Op) -> tuple[int, int, int]:
    """(ring bytes, largest source row, fetch buffer bytes) of the scratch."""
    n = op.options["n_sources"]
    srcs = [graph.tensors[i] for i in op.inputs[:n]]
    h, w, _ = hwc(srcs[0])
    total_c = sum(hwc(t)[2] for t in srcs)
    k_h = graph.tensors[op.inputs[n]].shape[1]
    ring = ((k_h - 1) * op.options["dilation_h"] + 1) * w * total_c
    row = max(w * hwc(t)[2] for t in srcs if t.in_flash) if any(t.in_flash for t in srcs) else 0
    return ring, row, compress.bound(row) if row else 0


def scratch_bytes(graph: Graph, op: Op) -> int:
    return sum(_layout(graph, op))


def lower(ctx: LowerContext, op: Op) -> list[Step]:
    g = ctx.graph
    n = op.options["n_sources"]
    srcs = [g.tensors[i] for i in op.inputs[:n]]
    w, out = g.tensors[op.inputs[n]], g.tensors[op.outputs[0]]
    bias_t = g.tensors[op.inputs[n + 1]] if len(op.inputs) > n + 1 and op.inputs[n + 1] >= 0 else None
    h, width, _ = hwc(srcs[0])
    total_c = sum(hwc(t)[2] for t in srcs)
    ring, row, _ = _layout(g, op)
    scratch = ctx.scratch(op)
    # The conv sees one input of all channels, quantised like every source,
    # through the ring of rows at the start of the scratch (the device sizes
    # it the same way).
    params, blob = conv_step(op, (h, width, total_c), srcs[0].qparams(), w, bias_t, out, scratch,
                             ctx.offset(out.index))
    params.update(in_ring=(params["k_h"] - 1) * params["dil_h"] + 1)
    for k in range(3):
        kind = ref = c = 0
        if k < n:
            t = srcs[k]
            c = hwc(t)[2]
            if t.in_flash:
                kind, ref = KIND_FLASH, g.ops[t.producer].options["slot"]
            else:
                kind, ref = KIND_ARENA, ctx.offset(t.index)
        params.update({f"src{k}_kind": kind, f"src{k}_ref": ref, f"src{k}_c": c})
    params.update(row_off=scratch + ring, enc_off=scratch + ring + row)
    return [Step("concat_conv2d", params, blob)]
