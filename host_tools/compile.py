"""`tinyseg compile`: model -> optimised memory plan -> device steps -> .tsb bundle."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from tinyseg_mp import bundle

from . import tflite_import
from .bundle_writer import Step, write_bundle
from .lower import hwc, lower_graph
from .optimize import Optimized, explain_peak, optimize


@dataclass
class Compiled:
    optimized: Optimized
    steps: list[Step]
    bundle_bytes: int

    @property
    def plan(self):
        return self.optimized.plan


class BudgetError(ValueError):
    pass


def compile_model(model: str | Path, out: str | Path, budget: int | None = None) -> Compiled:
    """Compile `model`; with a budget, spill until the planned arena fits it."""
    graph = tflite_import.load(model)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise tflite_import.ModelError(f"{model}: {len(graph.inputs)} inputs, {len(graph.outputs)} outputs; one of each is supported")
    opt = optimize(graph, budget)
    if not opt.met:
        raise BudgetError(f"{model}: cannot fit a budget of {budget:,d} bytes; the smallest peak reached is "
                          f"{opt.plan.peak:,d} bytes (with {len(opt.spills)} spills): {explain_peak(opt)}. "
                          "Use a budget of at least that.")
    steps = lower_graph(graph, opt.plan)
    x, y = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    meta = {
        "arena_bytes": opt.plan.peak,
        "blob_bytes": max((len(s.blob) for s in steps), default=0),
        "in_off": opt.plan.tensor_offsets[x.index], "in_bytes": x.nbytes, "in_dtype": bundle.DTYPES.index(x.dtype),
        "out_off": opt.plan.tensor_offsets[y.index], "out_bytes": y.nbytes, "out_dtype": bundle.DTYPES.index(y.dtype),
    }
    meta.update(zip(("in_h", "in_w", "in_c"), hwc(x)))
    meta.update(zip(("out_h", "out_w", "out_c"), hwc(y)))
    info = {
        "model": Path(model).name,
        "input": {"shape": list(x.shape), "dtype": x.dtype, "scale": _q(x)[0], "zero_point": _q(x)[1]},
        "output": {"shape": list(y.shape), "dtype": y.dtype, "scale": _q(y)[0], "zero_point": _q(y)[1]},
        "steps": [s.source for s in steps],
        "spills": [graph.tensors[s.tensor].name for s in opt.spills],
    }
    extra = {}
    if opt.spills:
        extra[b"SPIL"] = struct.pack(f"<{2 * len(opt.spills)}i", *(v for s in opt.spills for v in (s.rows, s.row_bytes)))
    size = write_bundle(out, meta, steps, info, extra)
    return Compiled(opt, steps, size)


def _q(t) -> tuple[float | None, int | None]:
    return (float(t.scale[0]), int(t.zero_point[0])) if t.scale is not None else (None, None)
