"""TinySeg's memory optimisations as graph rewrites, then a spill planner.

1. Identity PADs (all-zero paddings, left by shape folding) are removed.
2. A channel CONCATENATION whose only reader is a CONV_2D becomes one
   CONCAT_CONV_2D op that gathers input rows from its sources as it needs
   them, so the concatenated tensor never exists.
3. While the planned peak is over the budget: among the tensors whose cold
   range (up to and including the fused consumer that ends it) spans the peak
   step, spill the one with the longest cold range (then the fewest bytes): a
   SPILL op after its last early use writes it to flash, and the fused
   consumer at the far end fetches it row by row.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from tinyseg_mp import compress

from .coldrange import ColdRange, cold_ranges
from .graph import Graph, Op
from .lower import LOWERINGS, hwc
from .lower.op_conv2d import leading_padding
from .memplan import MemoryPlan, plan_memory

# Ops that read a spilled input back row by row while they compute.
FETCH_CONSUMERS = ("CONCAT_CONV_2D", "CONCATENATION")


def runtime_scratch(graph: Graph, op: Op) -> int:
    """Scratch bytes this project's kernel for `op` needs (each lowering module says)."""
    module = importlib.import_module(f"host_tools.lower.op_{LOWERINGS[op.kind]}")
    fn = getattr(module, "scratch_bytes", None)
    return fn(graph, op) if fn else 0


@dataclass
class Spill:
    tensor: int
    flash_tensor: int
    slot: int
    cold: ColdRange
    nbytes: int
    rows: int
    row_bytes: int

    @property
    def worst_case_bytes(self) -> int:
        return self.rows * compress.bound(self.row_bytes)

    def steps(self, graph: Graph) -> tuple[int, int]:
        """(the SPILL step, the step that fetches it) in the final graph; the
        cold range's own indices predate the SPILL ops inserted into it."""
        flash = graph.tensors[self.flash_tensor]
        return flash.producer, flash.consumers[0]


@dataclass
class Optimized:
    graph: Graph
    plan: MemoryPlan
    budget: int | None
    spills: list[Spill] = field(default_factory=list)
    fusions: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return self.budget is None or self.plan.peak <= self.budget


def elide_identity_pads(graph: Graph) -> list[str]:
    notes = []
    for op in list(graph.ops):
        if op.kind not in ("PAD", "PADV2") or op.outputs[0] in graph.outputs:
            continue
        pads = graph.tensors[op.inputs[1]]
        src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if pads.is_const and not pads.data.any() and src.shape == dst.shape and src.qparams() == dst.qparams():
            for other in graph.ops:
                other.inputs = [op.inputs[0] if i == op.outputs[0] else i for i in other.inputs]
            graph.ops.remove(op)
            notes.append(f"removed identity PAD (op {op.source_index})")
    graph.relink()
    return notes


def _folding_reader(graph: Graph, pad: Op) -> Op | None:
    """The CONV_2D or DEPTHWISE_CONV_2D that `pad` can be folded into, if any."""
    if pad.kind not in ("PAD", "PADV2"):
        return None
    x, paddings, out = (graph.tensors[i] for i in pad.inputs[:2] + pad.outputs)
    if not paddings.is_const or x.dtype != "int8" or len(x.shape) != 4 or x.shape[0] != 1:
        return None
    pads = np.asarray(paddings.data, np.int64).reshape(-1, 2)
    if pads.shape != (4, 2) or (pads < 0).any() or pads[0].any() or pads[3].any():
        return None  # only height and width padding can become conv padding
    if x.scale is None or out.scale is None or x.qparams() != out.qparams():
        return None
    # TFLM's pad.cc fills int8 with the output zero point, or PADV2's raw constant.
    if pad.kind == "PADV2" and len(pad.inputs) > 2 and pad.inputs[2] >= 0:
        fill = graph.tensors[pad.inputs[2]]
        if not fill.is_const or int(np.asarray(fill.data).reshape(-1)[0]) != out.qparams()[1]:
            return None
    if out.index in graph.outputs or len(out.consumers) != 1:
        return None
    conv = graph.ops[out.consumers[0]]
    if conv.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D") or conv.inputs[0] != out.index:
        return None
    return conv


def fold_pads(graph: Graph) -> list[str]:
    """Fold each spatial PAD that fills with its zero point into the CONV_2D or
    DEPTHWISE_CONV_2D that alone reads it, as EXPLICIT top/left padding: the
    device kernels skip taps outside the input, and a zero-point tap adds
    nothing either. Bottom/right padding needs no field: the output keeps its
    shape and taps past the input's end are skipped. Pools are left alone:
    their windows treat padding unlike a PAD's cells."""
    notes = []
    # Last first, so that in PAD -> PAD -> conv the outer PAD folds too.
    for pad in reversed(list(graph.ops)):
        conv = _folding_reader(graph, pad)
        if conv is None:
            continue
        padded, w, out = (graph.tensors[i] for i in (pad.outputs[0], conv.inputs[1], conv.outputs[0]))
        top, left = leading_padding(conv, padded.shape[1:3], w.shape[1:3], out.shape[1:3])
        pads = np.asarray(graph.tensors[pad.inputs[1]].data, np.int64).reshape(4, 2)
        conv.options = dict(conv.options, padding="EXPLICIT", pad_top=int(pads[1, 0]) + top,
                            pad_left=int(pads[2, 0]) + left)
        conv.inputs = [pad.inputs[0], *conv.inputs[1:]]
        graph.ops.remove(pad)
        graph.relink()
        notes.append(f"folded {pad.kind} (op {pad.source_index}) into {conv.kind} (op {conv.source_index})")
    return notes


def elide_flattens(graph: Graph) -> list[str]:
    """Remove a RESHAPE whose readers are all FULLY_CONNECTED: TFLM's FC reads
    its input flattened to (batch, depth) anyway, so the copy is not needed."""
    notes = []
    for op in list(graph.ops):
        if op.kind != "RESHAPE" or op.outputs[0] in graph.outputs:
            continue
        src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        readers = [graph.ops[c] for c in dst.consumers]
        if (src.is_const or src.scale is None or dst.scale is None or src.qparams() != dst.qparams()
                or src.shape[0] != dst.shape[0] or not readers
                or any(r.kind != "FULLY_CONNECTED" or r.inputs[1:].count(dst.index) for r in readers)):
            continue
        for r in readers:
            r.inputs[0] = src.index
        graph.ops.remove(op)
        graph.relink()
        notes.append(f"removed RESHAPE (op {op.source_index}): FULLY_CONNECTED reads its input flattened")
    return notes


def fuse_concat_conv(graph: Graph) -> list[str]:
    notes = []
    for cat in list(graph.ops):
        if cat.kind != "CONCATENATION" or cat.options["activation"] != "NONE":
            continue
        out = graph.tensors[cat.outputs[0]]
        if len(out.shape) != 4 or cat.options["axis"] not in (-1, 3) or out.index in graph.outputs:
            continue
        if len(out.consumers) != 1 or len(cat.inputs) > 3:
            continue
        conv = graph.ops[out.consumers[0]]
        if conv.kind != "CONV_2D" or conv.inputs[0] != out.index:
            continue
        if any(graph.tensors[i].qparams() != out.qparams() for i in cat.inputs):
            continue  # TFLM would requantise the inputs: keep the plain ops
        fused = Op(index=conv.index, kind="CONCAT_CONV_2D", inputs=cat.inputs + conv.inputs[1:],
                   outputs=conv.outputs, options=dict(conv.options, n_sources=len(cat.inputs)),
                   source_index=conv.source_index)
        graph.ops[graph.ops.index(conv)] = fused
        graph.ops.remove(cat)
        graph.relink()
        notes.append(f"fused CONCATENATION (op {cat.source_index}) into CONV_2D (op {conv.source_index})")
    return notes


def _spillable(graph: Graph, cold: ColdRange) -> bool:
    t = graph.tensors[cold.tensor]
    consumer = graph.ops[cold.before]
    if consumer.kind == "CONCATENATION" and consumer.options["axis"] not in (-1, 3):
        return False  # row-by-row fetching is for channel concatenation of images
    return (t.dtype in ("int8", "uint8") and not t.in_flash and t.index not in graph.outputs
            and len(t.shape) == 4 and consumer.kind in FETCH_CONSUMERS
            and cold.before == max(t.consumers))


def spill_tensor(graph: Graph, cold: ColdRange, slot: int) -> Spill:
    """Insert a SPILL after the gap's start; the far consumer reads the flash copy."""
    t = graph.tensors[cold.tensor]
    flash = graph.add_tensor(t, f"{t.name} (spilled)", in_flash=True)
    consumer = graph.ops[cold.before]
    consumer.inputs = [flash.index if i == t.index else i for i in consumer.inputs]
    spill = Op(index=-1, kind="SPILL", inputs=[t.index], outputs=[flash.index], options={"slot": slot},
               source_index=-1)
    graph.ops.insert(cold.after + 1, spill)
    graph.relink()
    h, w, c = hwc(t)
    return Spill(t.index, flash.index, slot, cold, t.nbytes, h, w * c)


def peak_step(plan: MemoryPlan, steps: int) -> int:
    live = plan.live_bytes(steps)
    return max(range(steps), key=lambda s: live[s])


def explain_peak(opt: Optimized) -> str:
    """Why the plan cannot go lower: the op at the peak and what it holds."""
    graph, plan = opt.graph, opt.plan
    step = peak_step(plan, len(graph.ops))
    alive = sorted((b for b in plan.buffers if b.first <= step <= b.last), key=lambda b: -b.size)
    held = ", ".join(f"{b.name[:40]} ({b.size:,d} B)" for b in alive[:4])
    return (f"the peak is at {graph.ops[step].label}, which holds {held}; no tensor alive there "
            f"is idle long enough to spill with a fused fetch")


def optimize(graph: Graph, budget: int | None = None) -> Optimized:
    """Rewrite `graph` in place and plan it; spill until the peak fits `budget`."""
    fusions = elide_identity_pads(graph) + fuse_concat_conv(graph)
    result = Optimized(graph, plan_memory(graph, runtime_scratch), budget, fusions=fusions)
    while not result.met:
        step = peak_step(result.plan, len(graph.ops))
        # The fetch is fused into the consumer, so a spill frees RAM through the consumer's step too.
        candidates = [c for c in cold_ranges(graph).values()
                      if c.after < step <= c.before and _spillable(graph, c)]
        if not candidates:
            break
        best = max(candidates, key=lambda c: (c.length, -graph.tensors[c.tensor].nbytes))
        result.spills.append(spill_tensor(graph, best, len(result.spills)))
        result.plan = plan_memory(graph, runtime_scratch)
    return result
