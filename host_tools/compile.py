"""`tinyseg compile`: model -> memory plan -> device steps -> .tsb bundle."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyseg_mp import bundle

from . import tflite_import
from .bundle_writer import Step, write_bundle
from .graph import Graph
from .lower import hwc, lower_graph
from .memplan import MemoryPlan, plan_memory


@dataclass
class Compiled:
    graph: Graph
    plan: MemoryPlan
    steps: list[Step]
    bundle_bytes: int


def compile_model(model: str | Path, out: str | Path) -> Compiled:
    graph = tflite_import.load(model)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise tflite_import.ModelError(f"{model}: {len(graph.inputs)} inputs, {len(graph.outputs)} outputs; one of each is supported")
    plan = plan_memory(graph)
    steps = lower_graph(graph, plan)
    x, y = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    meta = {
        "arena_bytes": plan.peak,
        "blob_bytes": max((len(s.blob) for s in steps), default=0),
        "in_off": plan.tensor_offsets[x.index], "in_bytes": x.nbytes, "in_dtype": bundle.DTYPES.index(x.dtype),
        "out_off": plan.tensor_offsets[y.index], "out_bytes": y.nbytes, "out_dtype": bundle.DTYPES.index(y.dtype),
    }
    meta.update(zip(("in_h", "in_w", "in_c"), hwc(x)))
    meta.update(zip(("out_h", "out_w", "out_c"), hwc(y)))
    info = {
        "model": Path(model).name,
        "input": {"shape": list(x.shape), "dtype": x.dtype, "scale": _q(x)[0], "zero_point": _q(x)[1]},
        "output": {"shape": list(y.shape), "dtype": y.dtype, "scale": _q(y)[0], "zero_point": _q(y)[1]},
        "steps": [s.source for s in steps],
    }
    size = write_bundle(out, meta, steps, info)
    return Compiled(graph, plan, steps, size)


def _q(t) -> tuple[float | None, int | None]:
    return (float(t.scale[0]), int(t.zero_point[0])) if t.scale is not None else (None, None)
