"""MAC counts (host_tools.macs) and `tinyseg inspect`'s MAC column, on
fixtures whose counts are worked out by hand below."""
from __future__ import annotations

import subprocess
import sys

from conftest import FIXTURES, REPO, model_path
from host_tools import tflite_import
from host_tools.macs import graph_macs, op_macs


def test_macs_of_the_classifier_zoo_by_hand():
    graph = tflite_import.load(model_path("ops_zoo_b"))
    assert graph_macs(graph) == [
        16 * 16 * 8 * (3 * 3 * 3),  # CONV_2D 3x3, 3 -> 8 channels, 16x16 output
        0,  # PAD
        9 * 9 * 12 * (3 * 3 * 8),  # CONV_2D 3x3 stride 2, 8 -> 12 channels, 9x9 output
        0, 0,  # AVERAGE_POOL_2D, RESHAPE
        5 * 192,  # FULLY_CONNECTED 192 -> 5
        0,  # MEAN
        5 * 12,  # FULLY_CONNECTED 12 -> 5
        0, 0, 0, 0,  # RESHAPE, ADD, SOFTMAX, DEQUANTIZE
    ]


def test_macs_of_depthwise_and_transpose_conv_by_hand():
    dw = tflite_import.load(FIXTURES / "ops" / "dwconv_3x3_s2_valid_dm2.tflite")
    assert [op_macs(dw, op) for op in dw.ops] == [4 * 4 * 6 * 3 * 3]  # one 3x3 tap set per output element
    tc = tflite_import.load(FIXTURES / "ops" / "tconv_3x3_s2_same.tflite")
    # every input element (5x6x3) scattered through the 3x3 filter into 4 output channels
    assert [op_macs(tc, op) for op in tc.ops] == [5 * 6 * 3 * 3 * 3 * 4]


def test_fused_concat_conv_counts_as_its_conv():
    from host_tools.optimize import fuse_concat_conv

    graph = tflite_import.load(model_path("tiny_unet"))
    before = dict(zip((op.source_index for op in graph.ops), graph_macs(graph)))
    fuse_concat_conv(graph)
    fused = [op for op in graph.ops if op.kind == "CONCAT_CONV_2D"]
    assert fused
    for op in fused:
        assert op_macs(graph, op) == before[op.source_index] > 0
    assert sum(graph_macs(graph)) == sum(before.values())


def test_inspect_prints_macs_per_op_and_in_total():
    out = subprocess.run([sys.executable, "-m", "host_tools.cli", "inspect", str(model_path("ops_zoo_b"))],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "12 ops (0 shape ops folded), 23 tensors, 126,300 MACs" in out.stdout
    assert "  op   2 CONV_2D                         69,984 MACs  in[" in out.stdout
    assert "  op   3 AVERAGE_POOL_2D                      0 MACs  in[" in out.stdout
    assert "  total 126,300 MACs" in out.stdout
