"""Multiply-accumulate counts of a graph's ops (the usual convention: the
weighted layers only; element-wise ops, pooling, resizing and data movement
count 0). `tinyseg inspect` prints them; the benchmark divides cycles by
them (cycles per MAC)."""
from __future__ import annotations

from .graph import Graph, Op


def _elements(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def op_macs(graph: Graph, op: Op) -> int:
    """MACs of one op: CONV_2D out_elements x KH x KW x in_channels (of its
    group); DEPTHWISE_CONV_2D out_elements x KH x KW; TRANSPOSE_CONV
    in_elements x KH x KW x out_channels (each input pixel scattered through
    the whole filter); FULLY_CONNECTED out_elements x in_features;
    CONCAT_CONV_2D (the fused concat + conv) as the conv; every other op 0."""
    t = graph.tensors
    out = t[op.outputs[0]]
    if op.kind in ("CONV_2D", "CONCAT_CONV_2D"):
        w = t[op.inputs[1]] if op.kind == "CONV_2D" else _concat_conv_filter(graph, op)
        _, kh, kw, ci = w.shape
        return _elements(out.shape) * kh * kw * ci
    if op.kind == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = t[op.inputs[1]].shape
        return _elements(out.shape) * kh * kw
    if op.kind == "TRANSPOSE_CONV":
        co, kh, kw, _ = t[op.inputs[1]].shape
        return _elements(t[op.inputs[2]].shape) * kh * kw * co
    if op.kind == "FULLY_CONNECTED":
        return _elements(out.shape) * t[op.inputs[1]].shape[-1]
    return 0


def _concat_conv_filter(graph: Graph, op: Op):
    """The filter of a fused CONCAT_CONV_2D: the input after its n_sources sources."""
    return graph.tensors[op.inputs[op.options["n_sources"]]]


def graph_macs(graph: Graph) -> list[int]:
    """op_macs of every op of graph.ops, in order (sum() is the model's total)."""
    return [op_macs(graph, op) for op in graph.ops]
