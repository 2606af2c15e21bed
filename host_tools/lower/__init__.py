"""Lowering: turn each IR op into device steps with everything precomputed.

One module per TFLite op family (`op_<name>.py`, mirroring the device's
`tinyseg_mp/ops/op_<name>.py`); each exposes `lower(ctx, op) -> list[Step]`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..bundle_writer import Step
from ..graph import Graph, Op, Tensor
from ..memplan import MemoryPlan

# TFLite op kind -> lowering module (host_tools/lower/op_<module>.py)
LOWERINGS = {
    "CONV_2D": "conv2d",
    "FULLY_CONNECTED": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d",
    "TRANSPOSE_CONV": "transpose_conv",
    "MAX_POOL_2D": "pool2d",
    "AVERAGE_POOL_2D": "pool2d",
    "CONCATENATION": "concatenation",
    "ADD": "add",
    "MUL": "mul",
    "SUB": "sub",
    "TRANSPOSE": "transpose",
    "RESIZE_BILINEAR": "resize_bilinear",
    "ARG_MAX": "arg_max",
    "PAD": "pad",
    "PADV2": "pad",
    "RESHAPE": "copy",
    "QUANTIZE": "lookup",
    "LOGISTIC": "lookup",
    "RELU": "lookup",
    "RELU6": "lookup",
    "LEAKY_RELU": "lookup",
    "HARD_SWISH": "lookup",
    "DEQUANTIZE": "dequantize",
    "SOFTMAX": "softmax",
    "RESIZE_NEAREST_NEIGHBOR": "resize_nearest",
    "MEAN": "mean",
    "SPILL": "spill",
    "CONCAT_CONV_2D": "concat_conv2d",
}


@dataclass
class LowerContext:
    graph: Graph
    plan: MemoryPlan
    max_blob: int | None = None  # largest weight block of a step (None: op_conv2d.MAX_BLOB_BYTES)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def offset(self, index: int) -> int:
        """Arena offset of an activation tensor."""
        return self.plan.tensor_offsets[index]

    def scratch(self, op: Op) -> int:
        return self.plan.scratch_offsets[op.index]


def hwc(t: Tensor) -> tuple[int, int, int]:
    """A batch-1 tensor seen as height x width x channels."""
    shape = list(t.shape)
    if shape and shape[0] == 1 and len(shape) > 1:
        shape = shape[1:]
    if len(shape) > 3:
        raise ValueError(f"tensor '{t.name}' shape {t.shape}: only batch 1 up to 3 more dims supported")
    while len(shape) < 3:
        shape.insert(0, 1)
    return shape[0], shape[1], shape[2]


def lower_graph(graph: Graph, plan: MemoryPlan) -> list[Step]:
    ctx = LowerContext(graph, plan)
    steps: list[Step] = []
    for op in graph.ops:
        module = importlib.import_module(f"{__name__}.op_{LOWERINGS[op.kind]}")
        try:
            lowered = module.lower(ctx, op)
        except (IndexError, KeyError, OverflowError, ZeroDivisionError, TypeError, AttributeError) as exc:
            from ..tflite_import import ModelError

            raise ModelError(f"{graph.name}: op {op.source_index} ({op.kind}): cannot lower it ({type(exc).__name__}: "
                             f"{exc}): its tensors or options are inconsistent; re-export the model") from None
        for step in lowered:
            step.source = step.source or f"op {op.source_index} {op.kind}"
            steps.append(step)
    return steps


def for_kernels(steps: list[Step], thumb: bool) -> list[Step]:
    """The steps with the blobs the target's kernels read. Lowerings append
    to a DEPTHWISE_CONV_2D blob the Thumb kernel's int32 weights and
    requantisation table (weights again, in its layout), and to a
    TRANSPOSE_CONV blob its phase blocks, which the Thumb and the viper
    kernels run on. A bundle for firmware without asm_thumb (no ARM core)
    leaves out the depthwise layout, and keeps a transpose's phase blocks
    only where its blob stays within the largest other blob: the weight
    buffer is as large as that, so they take no RAM there."""
    if thumb:
        return steps

    def bare(s: Step) -> Step:
        if s.op not in ("transpose_conv", "depthwise_conv2d"):
            return s
        return Step(s.op, s.params, s.blob[: s.params["w_bytes"] + 12 * s.params["out_c"]], s.source)

    out = [bare(s) for s in steps]
    room = max((len(s.blob) for s in out), default=0)
    return [s if s.op == "transpose_conv" and len(s.blob) <= room else b for s, b in zip(steps, out)]

