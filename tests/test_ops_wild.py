"""Ops and files from models nobody here made (issue 15), bit for bit against
TFLite Micro: nameless tensors and subgraphs; TRANSPOSE, RESIZE_BILINEAR,
ARG_MAX, HARD_SWISH and SUB on numpy, the ulab stand-in, the plain-Python
viper shim and the MicroPython unix port's viper; float I/O around an int8
body; MAC counts.

Fixtures: tests/fixtures/ops/*_wild_*.tflite (make_wild_ops.py; TensorFlow's
converter where it emits the op, the flatbuffer builder of make_ops.py
otherwise), plus models written on the fly with make_ops.single_op_model.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, REPO
from host_tools import tflite_import
from host_tools.compile import compile_model
from host_tools.runner import run_bundle

OPS_DIR = FIXTURES / "ops"
runtime_mod = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


def make_ops_module():
    if str(OPS_DIR) not in sys.path:
        sys.path.insert(0, str(OPS_DIR))
    import make_ops

    return make_ops


def tflm(path, x: np.ndarray) -> np.ndarray:
    it = runtime_mod.Interpreter.from_file(str(path), arena_size=4_000_000)
    it.set_input(x, 0)
    it.invoke()
    return it.get_output(0)


def test_nameless_tensors_and_subgraph_import_and_run(tmp_path):
    mk = make_ops_module()
    spec = mk.OpSpec("RELU", [mk.TensorSpec((1, 4, 4, 3), "int8", 0.1, 2)],
                     [mk.TensorSpec((1, 4, 4, 3), "int8", 0.05, -100)])
    path = tmp_path / "nameless.tflite"
    path.write_bytes(mk.single_op_model(spec, named=False))
    import tflite

    raw = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    assert raw.Subgraphs(0).Name() is None and raw.Subgraphs(0).Tensors(0).Name() is None
    graph = tflite_import.load(path)
    assert [t.name for t in graph.tensors] == ["tensor0", "tensor1"]
    compile_model(path, tmp_path / "nameless.tsb")
    x = np.arange(-128, 128, 256 // 48, dtype=np.int64)[:48].astype(np.int8).reshape(1, 4, 4, 3)
    ours, _ = run_bundle(str(tmp_path / "nameless.tsb"), x, "cpython", "numpy")
    assert np.array_equal(ours, tflm(path, x))


# --- the committed single-op fixtures, every target ---------------------------

import random  # noqa: E402

from test_ops_eltwise import (ALL_BYTES, TARGETS, equal_count, model_inputs, run_steps,  # noqa: E402
                              skip_unavailable)
from test_ops_eltwise import tflm as tflm_multi  # noqa: E402

WILD = sorted(p.stem for p in OPS_DIR.glob("*_wild_*.tflite"))


class _Bundles(dict):
    """Fixture name -> compiled bundle path, compiled on first use."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def __missing__(self, name: str) -> str:
        path = self[name] = str(self.out / f"{name}.tsb")
        compile_model(OPS_DIR / f"{name}.tflite", path)
        return path


@pytest.fixture(scope="module")
def wild_bundles(tmp_path_factory) -> dict[str, str]:
    return _Bundles(tmp_path_factory.mktemp("wild_bundles"))


def test_wild_fixtures_hold_the_ops_they_are_named_for():
    for name in WILD:
        kinds = [op.kind for op in tflite_import.load_raw(OPS_DIR / f"{name}.tflite").ops]
        assert name.split("_wild")[0].upper() in kinds or name.startswith("float_io"), (name, kinds)


def wild_inputs(path) -> list[np.ndarray]:
    """model_inputs, and for a float input two uniform draws over its range
    (the input QUANTIZE's int8 range, a little beyond) with ties and -0.0."""
    d = runtime_mod.Interpreter.from_file(str(path), arena_size=4_000_000).get_input_details(0)
    if d["dtype"] != np.float32:
        return model_inputs(path)
    graph = tflite_import.load(path)
    scale, zp = graph.tensors[graph.ops[0].outputs[0]].qparams()
    rng = np.random.default_rng(5)
    shape = tuple(d["shape"])
    xs = [rng.uniform((-140 - zp) * scale, (140 - zp) * scale, shape).astype(np.float32) for _ in range(2)]
    flat = xs[1].reshape(-1)
    flat[:4] = np.array([-0.0, 0.5 * scale, -1.5 * scale, (2.5 - zp) * scale], np.float32)
    return xs


@pytest.mark.parametrize("runtime,backend_name", TARGETS)
@pytest.mark.parametrize("name", WILD)
def test_wild_single_op_models_equal_tflite_micro(wild_bundles, name, runtime, backend_name, monkeypatch):
    skip_unavailable(runtime, backend_name, monkeypatch)
    path = OPS_DIR / f"{name}.tflite"
    for x in wild_inputs(path):
        ours, stats = run_bundle(wild_bundles[name], x, runtime, backend_name)
        assert stats["backend"] == backend_name
        same, total = equal_count(ours, tflm(path, x))
        assert same == total, f"{name}: {same}/{total} equal"


# --- SUB and HARD_SWISH over random quantisations -----------------------------

@pytest.mark.parametrize("backend_name,count", [("numpy", 10), ("ulab", 4), ("viper", 2)])
def test_sub_all_pairs_random_quantisation(tmp_path, backend_name, count, monkeypatch):
    """Every int8 pair (256 x 256 broadcast) for random scales, zero points
    and fused activations."""
    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    rng = random.Random(40 + ("numpy", "ulab", "viper").index(backend_name))
    a, b = ALL_BYTES.reshape(256, 1), ALL_BYTES.reshape(1, 256)
    for _ in range(count):
        sa, sb = (10 ** rng.uniform(-2.5, -0.5) for _ in range(2))
        so = max(sa, sb) * 10 ** rng.uniform(-0.7, 0.8)
        za, zb, zo = (rng.randint(-128, 127) for _ in range(3))
        act = rng.choice([0, 1, 3])
        spec = mk.OpSpec("SUB", [mk.TensorSpec((256, 1), "int8", sa, za, name="a"),
                                 mk.TensorSpec((1, 256), "int8", sb, zb, name="b")],
                         [mk.TensorSpec((256, 256), "int8", so, zo, name="y")], "SubOptions",
                         {"FusedActivationFunction": act})
        path = tmp_path / "sub.tflite"
        path.write_bytes(mk.single_op_model(spec))
        same, total = equal_count(run_steps(path, [a, b], backend_name), tflm_multi(path, [a, b]))
        assert same == total, f"SUB {sa} {za} {sb} {zb} {so} {zo} act {act}: {same}/{total} equal"


def test_hard_swish_every_value_random_quantisation(tmp_path):
    """HARD_SWISH is a 256-byte table (host_tools.quant.lut_hard_swish, the
    reference kernel's int16 arithmetic): every input value, 40 random
    input/output quantisations, on the numpy and viper lookup kernels."""
    mk = make_ops_module()
    rng = random.Random(15)
    x = ALL_BYTES.reshape(1, 256)
    for _ in range(40):
        si = 10 ** rng.uniform(-3, 0)
        so = si * 10 ** rng.uniform(-1.5, 1.0)
        zi, zo = rng.randint(-128, 127), rng.randint(-128, 127)
        path = tmp_path / "hs.tflite"
        path.write_bytes(mk.unary_model("HARD_SWISH", "int8", si, zi, "int8", so, zo))
        ref = tflm(path, x)
        for backend_name in ("numpy", "viper"):
            same, total = equal_count(run_steps(path, [x], backend_name), ref)
            assert same == total, f"HARD_SWISH {si} {zi} {so} {zo} {backend_name}: {same}/{total}"


# --- streaming -------------------------------------------------------------

STREAMING_WILD = ["float_io_wild", "hard_swish_wild_img", "resize_bilinear_wild_2x", "resize_bilinear_wild_align",
                  "resize_bilinear_wild_down", "resize_bilinear_wild_half", "resize_bilinear_wild_half_odd",
                  "sub_wild_const", "sub_wild_pool", "sub_wild_same"]


@pytest.mark.parametrize("runtime,backend_name", [("cpython", "numpy"), ("micropython", "viper")])
@pytest.mark.parametrize("name", STREAMING_WILD)
def test_row_wise_wild_ops_stream_exactly(tmp_path, name, runtime, backend_name, monkeypatch):
    """SUB, HARD_SWISH and QUANTIZE from float are row-wise
    (host_tools.streaming.ROWWISE), RESIZE_BILINEAR reads the rows of its
    table from a ring (streaming.RESIZES): a budget just under the
    whole-tensor plan makes them stream, exactly."""
    from host_tools.compile import plan_model

    skip_unavailable(runtime, backend_name, monkeypatch)
    model = OPS_DIR / f"{name}.tflite"
    budget = plan_model(model).peak - 4
    compiled = compile_model(model, tmp_path / "m.tsb", budget)
    assert compiled.chosen.streamed is not None and compiled.chosen.peak <= budget
    streamed_kinds = {n.op.kind for n in compiled.chosen.streamed.nodes
                      if n.kind == "op" and n.band < n.out.rows}
    assert streamed_kinds & {"SUB", "HARD_SWISH", "QUANTIZE", "RESIZE_BILINEAR"}, streamed_kinds
    for x in wild_inputs(model):
        ours, _ = run_bundle(tmp_path / "m.tsb", x, runtime, backend_name)
        assert np.array_equal(ours, tflm(model, x))


# --- RESIZE_BILINEAR over random geometries -----------------------------------

def bilinear_model(mk, in_hw, out_hw, c, align, half, q=(0.05, -3)):
    size = np.array(out_hw, "<i4").tobytes()
    spec = mk.OpSpec("RESIZE_BILINEAR", [mk.TensorSpec((1, *in_hw, c), "int8", q[0], q[1], name="x"),
                                         mk.TensorSpec((2,), "int32", data=size, name="size")],
                     [mk.TensorSpec((1, *out_hw, c), "int8", q[0], q[1], name="y")], "ResizeBilinearOptions",
                     {"AlignCorners": align, "HalfPixelCenters": half})
    return mk.single_op_model(spec)


@pytest.mark.parametrize("backend_name", ["numpy", "ulab", "viper"])
def test_resize_bilinear_random_geometries(tmp_path, backend_name, monkeypatch):
    """Up- and downscaling by odd factors, 1-pixel sides, each corner mode,
    inputs at the int8 extremes (the half-pixel border weights extrapolate
    and TFLite Micro's int8 cast wraps)."""
    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    rng = random.Random(7)
    for k in range(12 if backend_name == "numpy" else 5):
        in_hw = (rng.randint(1, 9), rng.randint(1, 9))
        out_hw = (rng.randint(1, 13), rng.randint(1, 13))
        align, half = rng.choice([(False, False), (True, False), (False, True)])
        c = rng.randint(1, 4)
        path = tmp_path / "rb.tflite"
        path.write_bytes(bilinear_model(mk, in_hw, out_hw, c, align, half))
        gen = np.random.default_rng(k)
        x = gen.choice(np.array([-128, -127, 0, 126, 127, 5, -60], np.int8), (1, *in_hw, c))
        same, total = equal_count(run_steps(path, [x], backend_name), tflm(path, x))
        assert same == total, f"{in_hw} -> {out_hw} c {c} align {align} half {half}: {same}/{total}"


# --- ARG_MAX over random shapes and axes ---------------------------------------

@pytest.mark.parametrize("backend_name", ["numpy", "ulab", "viper"])
def test_arg_max_random_shapes_axes_and_ties(tmp_path, backend_name, monkeypatch):
    """Every axis of 2-D..4-D inputs, few distinct values (many ties: the
    first index of the maximum wins)."""
    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    rng = np.random.default_rng(3)
    for shape in [(1, 6, 7, 5), (1, 3, 4, 300), (9, 4), (1, 5, 3, 2), (1, 2, 600)]:
        for axis in range(len(shape)):
            if shape[axis] == 1:
                continue
            out_shape = shape[:axis] + shape[axis + 1:]
            spec = mk.OpSpec("ARG_MAX", [mk.TensorSpec(shape, "int8", 0.1, 0, name="x"),
                                         mk.TensorSpec((1,), "int32", data=np.array([axis], "<i4").tobytes(),
                                                       name="axis")],
                             [mk.TensorSpec(out_shape, "int32", name="y")], "ArgMaxOptions",
                             {"OutputType": 2})  # TensorType.INT32
            path = tmp_path / "am.tflite"
            path.write_bytes(mk.single_op_model(spec))
            x = rng.choice(np.array([-128, -5, 0, 3, 127], np.int8), shape)
            same, total = equal_count(run_steps(path, [x], backend_name), tflm(path, x))
            assert same == total, f"{shape} axis {axis}: {same}/{total}"


# --- float I/O around an int8 body ---------------------------------------------

@pytest.mark.parametrize("backend_name", ["numpy", "ulab", "viper"])
def test_quantize_from_float_at_every_threshold(tmp_path, backend_name, monkeypatch):
    """QUANTIZE float32 -> int8 by integer thresholds on the float bits: the
    float at each threshold, its neighbours one ulp either side, ties, +-0,
    subnormals and values far beyond the int8 range, for several scales and
    zero points."""
    from host_tools.quant import key_float, quantize_float_thresholds

    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    rng = np.random.default_rng(0)
    for scale, zp in [(0.0173, 5), (0.5, -128), (0.0039215689, 0), (1e-3, 100), (3.0, -7)]:
        path = tmp_path / "qf.tflite"
        path.write_bytes(mk.unary_model("QUANTIZE", "float32", None, 0, "int8", scale, zp, shape=(1, 2048)))
        t = np.array(quantize_float_thresholds(scale, zp, "int8"))
        x = np.concatenate([key_float(t), key_float(t - 1), key_float(t + 1),
                            rng.uniform(-300 * scale, 300 * scale, 2048).astype(np.float32)])[:2048]
        x[-8:] = np.array([0.0, -0.0, 1e-30, -1e-30, 2e9 * scale, -2e9 * scale, 1.5 * scale, -2.5 * scale])
        x = x.astype(np.float32).reshape(1, 2048)
        same, total = equal_count(run_steps(path, [x], backend_name), tflm(path, x))
        assert same == total, f"scale {scale} zp {zp}: {same}/{total}"


def test_float_to_uint8_quantize_is_refused_like_tflite_micro(tmp_path):
    mk = make_ops_module()
    path = tmp_path / "qf_u8.tflite"
    path.write_bytes(mk.unary_model("QUANTIZE", "float32", None, 0, "uint8", 0.01, 128))
    with pytest.raises(ValueError, match=r"QUANTIZE \(op 0\): float32 -> uint8; TFLite Micro quantises float32 to int8"):
        compile_model(path, tmp_path / "qf_u8.tsb")
    assert not (tmp_path / "qf_u8.tsb").exists()


# --- dilated convolutions as SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND --

def atrous_model(mk, h, w, d, same, zp, batch=None):
    """The converter's (and TF1 DeepLab exports') form of a 3x3 dilated conv,
    3 -> 4 channels; `batch` overrides the blocks' stored batch (d*d)."""
    rng = np.random.default_rng(d * 100 + h)
    pt = 2 * d
    if same:
        top, ph, pw = pt // 2, (-(h + pt)) % d, (-(w + pt)) % d
        pads, crops, oh, ow = [top, pt - top + ph, top, pt - top + pw], [0, ph, 0, pw], h, w
    else:
        pads, crops, oh, ow = [0] * 4, [0] * 4, h - pt, w - pt
    bh, bw = (h + pads[0] + pads[1]) // d, (w + pads[2] + pads[3]) // d
    nb = d * d if batch is None else batch
    wt = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    T = mk.TensorSpec
    ts = [T((1, h, w, 3), "int8", 0.05, zp, name="x"),
          T((2,), "int32", data=np.array([d, d], "<i4").tobytes(), name="block"),
          T((2, 2), "int32", data=np.array(pads, "<i4").tobytes(), name="pads"),
          T((nb, bh, bw, 3), "int8", 0.05, zp, name="s2b"),
          T((4, 3, 3, 3), "int8", [0.01, 0.02, 0.015, 0.012], [0] * 4, data=wt.tobytes(), name="w"),
          T((4,), "int32", data=rng.integers(-500, 500, 4).astype("<i4").tobytes(), name="bias"),
          T((nb, bh - 2, bw - 2, 4), "int8", 0.08, -3, name="conv"),
          T((2, 2), "int32", data=np.array(crops, "<i4").tobytes(), name="crops"),
          T((1, oh, ow, 4), "int8", 0.08, -3, name="y")]
    ops_ = [("SPACE_TO_BATCH_ND", [0, 1, 2], [3], None, None),
            ("CONV_2D", [3, 4, 5], [6], "Conv2DOptions", {"Padding": 1, "StrideH": 1, "StrideW": 1}),
            ("BATCH_TO_SPACE_ND", [6, 1, 7], [8], None, None)]
    return mk.multi_op_model(ts, ops_, [0], [8])


@pytest.mark.parametrize("backend_name", ["numpy", "ulab", "viper"])
def test_space_to_batch_dilated_conv_folds_exactly(tmp_path, backend_name, monkeypatch):
    """SAME with a zero point of 0 becomes a SAME dilated conv; with another
    zero point a PADV2 of raw 0 (what TFLite Micro's SPACE_TO_BATCH_ND pads
    with) and a VALID dilated conv; no padding, a VALID one."""
    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    cases = [((12, 12, 2, True, 0), ["CONV_2D"]), ((12, 12, 2, True, 7), ["PADV2", "CONV_2D"]),
             ((11, 9, 3, True, -128), ["PADV2", "CONV_2D"]), ((12, 10, 2, False, 7), ["CONV_2D"])]
    for (h, w, d, same, zp), kinds in cases:
        path = tmp_path / "atrous.tflite"
        path.write_bytes(atrous_model(mk, h, w, d, same, zp))
        graph = tflite_import.load(path)
        assert [op.kind for op in graph.ops] == kinds
        assert graph.ops[-1].options["dilation_h"] == d
        x = np.random.default_rng(h).integers(-128, 128, (1, h, w, 3)).astype(np.int8)
        same_count, total = equal_count(run_steps(path, [x], backend_name), tflm_fresh(path, x))
        assert same_count == total, f"{h}x{w} d {d} same {same} zp {zp}: {same_count}/{total}"


def tflm_fresh(path, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's output in a new process. Its SPACE_TO_BATCH_ND /
    BATCH_TO_SPACE_ND pair reads bytes it never wrote: after other tests in
    the same process its output on the SAME zero-point-0 case varied (388 and
    406 of 576 bytes equal to a fresh process's, in two runs), where a new
    process's zero-filled memory gives the same answer every time."""
    import subprocess

    inp = Path(str(path) + ".in.npy")
    np.save(inp, x)
    code = ("import sys, numpy as np\nfrom tflite_micro.python.tflite_micro import runtime\n"
            "it = runtime.Interpreter.from_file(sys.argv[1], arena_size=4_000_000)\n"
            "it.set_input(np.load(sys.argv[2]), 0)\nit.invoke()\nnp.save(sys.argv[3], it.get_output(0))\n")
    out = Path(str(path) + ".out.npy")
    subprocess.run([sys.executable, "-c", code, str(path), str(inp), str(out)], check=True)
    return np.load(out)


def test_dynamic_batch_space_to_batch_is_refused_with_the_fix(tmp_path):
    """A dynamic-batch export stores batch 1 where d*d blocks run: TFLite
    Micro then computes only the first block (TF's interpreter resizes), so
    plan refuses it in one line that says how to re-export."""
    import subprocess

    mk = make_ops_module()
    path = tmp_path / "atrous_dyn.tflite"
    path.write_bytes(atrous_model(mk, 12, 12, 2, True, 0, batch=1))
    out = subprocess.run([sys.executable, "-m", "host_tools.cli", "plan", str(path)], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert ("op #0: SPACE_TO_BATCH_ND (a dilated convolution exported with a dynamic batch: the file gives 's2b' "
            "batch 1, not 4, and TFLite Micro computes only its first block; re-export with a fixed batch "
            "(keras.Input(..., batch_size=1)))") in out.stderr
