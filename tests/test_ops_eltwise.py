"""Element-wise and data-movement ops against TFLite Micro, bit for bit.

CONCATENATION, ADD, MUL, PAD/PADV2, RESHAPE, QUANTIZE, LOGISTIC, RELU, RELU6,
LEAKY_RELU, DEQUANTIZE, SOFTMAX and RESIZE_NEAREST_NEIGHBOR:

* the committed single-op models tests/fixtures/ops/*_ew_*.tflite (made by
  make_eltwise_ops.py), compiled and run on every target, equal to the live
  tflite-micro interpreter (every int8 value for the unary ops);
* ADD and MUL over every input pair for random quantisations, and SOFTMAX
  over random rows / betas, with models written on the fly by
  make_ops.single_op_model (no TensorFlow) and lowered/run step by step,
  since the bundle runner takes one input;
* the fixture models ops_zoo_a, ops_zoo_b and tiny_unet end to end.
"""
from __future__ import annotations

import random
import sys
from array import array
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import FIXTURES, REPO, micropython_exe
from host_tools import tflite_import
from host_tools.compile import compile_model
from host_tools.lower import lower_graph
from host_tools.memplan import plan_memory
from host_tools.runner import run_bundle
from tinyseg_mp import backend, ops

OPS_DIR = FIXTURES / "ops"
ULAB_STANDIN = REPO / "tests" / "ulab_standin"
MODELS = sorted(p.stem for p in OPS_DIR.glob("*_ew_*.tflite"))
TARGETS = [("cpython", "numpy"), ("cpython", "ulab"), ("cpython", "viper"), ("micropython", "viper")]

runtime_mod = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


def tflm(path, inputs: list[np.ndarray]) -> np.ndarray:
    it = runtime_mod.Interpreter.from_file(str(path), arena_size=4_000_000)
    for k, x in enumerate(inputs):
        it.set_input(x, k)
    it.invoke()
    return it.get_output(0)


def skip_unavailable(runtime: str, backend_name: str, monkeypatch) -> None:
    if backend_name == "ulab":
        if not (ULAB_STANDIN / "ulab").is_dir():
            pytest.skip("ulab stand-in not present")
        monkeypatch.syspath_prepend(str(ULAB_STANDIN))
    if runtime == "micropython" and micropython_exe() is None:
        pytest.skip("MicroPython unix port not installed")


def model_inputs(path) -> list[np.ndarray]:
    """Every value once (shuffled) for 256-element inputs, else two random draws."""
    d = runtime_mod.Interpreter.from_file(str(path), arena_size=4_000_000).get_input_details(0)
    shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
    info = np.iinfo(dtype)
    rng = np.random.default_rng(11)
    if int(np.prod(shape)) == 256:
        x = np.arange(info.min, info.max + 1).astype(dtype)
        rng.shuffle(x)
        return [x.reshape(shape)]
    return [rng.integers(info.min, info.max + 1, shape).astype(dtype) for _ in range(2)]


def equal_count(ours: np.ndarray, ref: np.ndarray) -> tuple[int, int]:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    if ref.dtype == np.float32:  # DEQUANTIZE: compare the float32 bit patterns
        return int((ours.view(np.uint32) == ref.view(np.uint32)).sum()), ref.size
    return int((ours == ref).sum()), ref.size


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("ew_bundles")
    paths = {}
    for name in MODELS + ["ops_zoo_a", "ops_zoo_b", "tiny_unet"]:
        src = OPS_DIR / f"{name}.tflite" if "_ew_" in name else FIXTURES / f"{name}.tflite"
        paths[name] = str(out / f"{name}.tsb")
        compile_model(src, paths[name])
    return paths


@pytest.mark.parametrize("runtime,backend_name", TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_single_op_models_equal_tflite_micro(bundles, name, runtime, backend_name, monkeypatch):
    skip_unavailable(runtime, backend_name, monkeypatch)
    path = OPS_DIR / f"{name}.tflite"
    for x in model_inputs(path):
        ours, stats = run_bundle(bundles[name], x, runtime, backend_name)
        assert stats["backend"] == backend_name
        same, total = equal_count(ours, tflm(path, [x]))
        assert same == total, f"{name}: {same}/{total} equal"


@pytest.mark.parametrize("runtime,backend_name", TARGETS)
@pytest.mark.parametrize("name", ["ops_zoo_a", "ops_zoo_b", "tiny_unet"])
def test_zoo_models_equal_tflite_micro(bundles, name, runtime, backend_name, monkeypatch):
    if name == "tiny_unet" and (runtime, backend_name) == ("cpython", "viper"):
        pytest.skip("plain-Python viper shim: minutes for the U-Net's convolutions")
    skip_unavailable(runtime, backend_name, monkeypatch)
    first = np.load(FIXTURES / f"{name}.input.npy")
    info = np.iinfo(first.dtype)
    rand = np.random.default_rng(7).integers(info.min, info.max + 1, first.shape).astype(first.dtype)
    for x in (first, rand):
        ours, _ = run_bundle(bundles[name], x, runtime, backend_name, heap=1024 * 1024)
        same, total = equal_count(ours, tflm(FIXTURES / f"{name}.tflite", [x]))
        assert same == total, f"{name}: {same}/{total} equal"


def test_fixture_lowerings_use_the_exact_array_path(tmp_path):
    """The ADD/MUL fixtures must not silently fall back to the viper kernel."""
    for name in MODELS:
        if name.startswith(("add_", "mul_")):
            steps = compile_model(OPS_DIR / f"{name}.tflite", tmp_path / "m.tsb").steps
            assert all(s.params["arr_ok"] == 1 for s in steps if s.op in ("add", "mul")), name


# --- multi-input models, lowered and run step by step -------------------------

def run_steps(path, inputs: list[np.ndarray], backend_name: str) -> np.ndarray:
    """Lower a (multi-input) model and run its steps on `backend_name`."""
    graph = tflite_import.load(path)
    plan = plan_memory(graph)
    steps = lower_graph(graph, plan)
    arena = bytearray(plan.peak)
    for index, x in zip(graph.inputs, inputs):
        off = plan.tensor_offsets[index]
        arena[off : off + x.nbytes] = np.ascontiguousarray(x).tobytes()
    previous = backend.name
    backend.select(backend_name)
    try:
        m = SimpleNamespace(arena=arena)
        for s in steps:
            mod = ops.load(ops.NAMES.index(s.op))
            blob = bytearray(s.blob) + bytearray(-len(s.blob) % 4)
            mod.run(m, array("i", [int(s.params[k]) for k in mod.PARAMS]), memoryview(blob)[: len(s.blob)])
    finally:
        backend.select(previous or "numpy")
    out = graph.tensors[graph.outputs[0]]
    off = plan.tensor_offsets[out.index]
    return np.frombuffer(bytes(arena[off : off + out.nbytes]), dtype=out.dtype).reshape(out.shape)


def make_ops_module():
    if str(OPS_DIR) not in sys.path:
        sys.path.insert(0, str(OPS_DIR))
    return pytest.importorskip("make_ops")


def binary_model(tmp_path, mk, kind, qa, qb, qo, act, a_shape=(256, 1), b_shape=(1, 256)):
    out_shape = tuple(np.broadcast_shapes(a_shape, b_shape))
    spec = mk.OpSpec(kind, [mk.TensorSpec(a_shape, "int8", qa[0], qa[1], name="a"),
                            mk.TensorSpec(b_shape, "int8", qb[0], qb[1], name="b")],
                     [mk.TensorSpec(out_shape, "int8", qo[0], qo[1], name="y")],
                     "AddOptions" if kind == "ADD" else "MulOptions", {"FusedActivationFunction": act})
    path = tmp_path / f"{kind.lower()}.tflite"
    path.write_bytes(mk.single_op_model(spec))
    return path


def binary_configs(kind: str, count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        sa, sb = (10 ** rng.uniform(-2.5, -0.5) for _ in range(2))
        if kind == "ADD":
            so = max(sa, sb) * 10 ** rng.uniform(-0.7, 0.8)
        else:
            so = sa * sb * 128 * 10 ** rng.uniform(-2.5, 1.0)  # multipliers 1/1280 .. 2.5
        zps = [rng.randint(-128, 127) for _ in range(3)]
        act = rng.choice([0, 1, 3])  # NONE, RELU, RELU6
        yield (sa, zps[0]), (sb, zps[1]), (so, zps[2]), act


ALL_BYTES = np.arange(256, dtype=np.uint8).view(np.int8)


@pytest.mark.parametrize("backend_name,count", [("numpy", 12), ("ulab", 6), ("viper", 2)])
@pytest.mark.parametrize("kind", ["ADD", "MUL"])
def test_binary_all_pairs_random_quantisation(tmp_path, kind, backend_name, count, monkeypatch):
    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    a, b = ALL_BYTES.reshape(256, 1), ALL_BYTES.reshape(1, 256)
    seed = 10 * ("ADD", "MUL").index(kind) + ("numpy", "ulab", "viper").index(backend_name)
    for qa, qb, qo, act in binary_configs(kind, count, seed):
        path = binary_model(tmp_path, mk, kind, qa, qb, qo, act)
        ours = run_steps(path, [a, b], backend_name)
        same, total = equal_count(ours, tflm(path, [a, b]))
        assert same == total, f"{kind} {qa} {qb} {qo} act {act}: {same}/{total} equal"


@pytest.mark.parametrize("backend_name", ["numpy", "ulab"])
def test_binary_fallback_when_float32_estimate_is_too_coarse(tmp_path, backend_name, monkeypatch):
    """An output scale far below the inputs' makes the float estimate unsafe:
    the host clears arr_ok and the array backends run the integer kernel."""
    skip_unavailable("cpython", backend_name, monkeypatch)
    mk = make_ops_module()
    path = binary_model(tmp_path, mk, "ADD", (0.5, 3), (0.25, -7), (0.00002, 0), 0)
    graph = tflite_import.load(path)
    assert lower_graph(graph, plan_memory(graph))[0].params["arr_ok"] == 0
    a, b = ALL_BYTES.reshape(256, 1), ALL_BYTES.reshape(1, 256)
    same, total = equal_count(run_steps(path, [a, b], backend_name), tflm(path, [a, b]))
    assert same == total


@pytest.mark.parametrize("a_shape,b_shape", [((2, 3, 4, 5), (1, 3, 1, 5)), ((1, 1, 4, 1), (1, 3, 1, 5)),
                                             ((3, 1), (3, 300)), ((700,), (700,)), ((), (4, 5))])
def test_binary_broadcast_layouts(tmp_path, a_shape, b_shape, monkeypatch):
    skip_unavailable("cpython", "ulab", monkeypatch)
    mk = make_ops_module()
    rng = np.random.default_rng(3)
    for kind in ("ADD", "MUL"):
        qo = (0.05, 4) if kind == "ADD" else (0.02, -9)
        path = binary_model(tmp_path, mk, kind, (0.03, -5), (0.045, 12), qo, 0, a_shape, b_shape)
        a = rng.integers(-128, 128, a_shape).astype(np.int8)
        b = rng.integers(-128, 128, b_shape).astype(np.int8)
        ref = tflm(path, [a, b])
        for backend_name in ("numpy", "ulab", "viper"):
            same, total = equal_count(run_steps(path, [a, b], backend_name), ref)
            assert same == total, f"{kind} {a_shape} {b_shape} {backend_name}: {same}/{total}"


@pytest.mark.parametrize("backend_name", ["numpy", "viper"])
def test_softmax_random_rows_and_betas(tmp_path, backend_name):
    mk = make_ops_module()
    rng = random.Random(5)
    for depth in (1, 2, 5, 16, 100, 300):
        scale, zp, beta = 10 ** rng.uniform(-2.5, -0.3), rng.randint(-128, 127), rng.choice([0.5, 1.0, 1.7, 4.0])
        shape = (max(1, 600 // depth), depth)
        spec = mk.OpSpec("SOFTMAX", [mk.TensorSpec(shape, "int8", scale, zp, name="x")],
                         [mk.TensorSpec(shape, "int8", 1.0 / 256, -128, name="y")], "SoftmaxOptions", {"Beta": beta})
        path = tmp_path / "softmax.tflite"
        path.write_bytes(mk.single_op_model(spec))
        x = np.random.default_rng(depth).integers(-128, 128, shape).astype(np.int8)
        x[0] = 127  # ties at the maximum
        same, total = equal_count(run_steps(path, [x], backend_name), tflm(path, [x]))
        assert same == total, f"depth {depth} scale {scale} beta {beta}: {same}/{total}"


# --- 32-bit safety of the viper kernels -------------------------------------

def _int32_tracer(functions):
    """sys.settrace hook: fail when a local int of `functions` leaves int32
    (the unix port's viper is 64-bit, the boards' is 32-bit)."""
    codes = {f.__code__ for f in functions}

    def local(frame, event, arg):
        if event in ("line", "return"):
            for name, v in frame.f_locals.items():
                if type(v) is int and not -(2**31) <= v < 2**31:
                    raise AssertionError(f"{frame.f_code.co_name}: {name} = {v} exceeds int32")
        return local

    return lambda frame, event, arg: local if frame.f_code in codes else None


def test_viper_kernels_keep_values_in_int32(tmp_path):
    mk = make_ops_module()
    add = ops.load(ops.NAMES.index("add"))
    softmax = ops.load(ops.NAMES.index("softmax"))
    edge = np.array([0, 1, 2, 63, 64, 127, 128, 129, 191, 192, 254, 255], np.uint8).view(np.int8)
    a, b = ALL_BYTES.reshape(256, 1), edge.reshape(1, -1)
    cases = [("ADD", (0.9, -128), (0.001, 127), (0.9, 0)), ("ADD", (0.02, 127), (0.02, -128), (0.0005, 0)),
             ("MUL", (0.5, -128), (0.5, -128), (0.5 ** 14, 0)), ("MUL", (0.01, 127), (0.02, 3), (0.9, -1))]
    sys.settrace(_int32_tracer([add._binary_viper, softmax._softmax]))
    try:
        for kind, qa, qb, qo in cases:
            path = binary_model(tmp_path, mk, kind, qa, qb, qo, 0, (256, 1), (1, len(edge)))
            same, total = equal_count(run_steps(path, [a, b], "viper"), tflm(path, [a, b]))
            assert same == total, f"{kind} {qa} {qb} {qo}: {same}/{total}"
        for depth, scale in ((511, 0.2), (3, 0.001), (40, 1.0)):
            spec = mk.OpSpec("SOFTMAX", [mk.TensorSpec((4, depth), "int8", scale, 0, name="x")],
                             [mk.TensorSpec((4, depth), "int8", 1.0 / 256, -128, name="y")], "SoftmaxOptions",
                             {"Beta": 1.0})
            path = tmp_path / "softmax.tflite"
            path.write_bytes(mk.single_op_model(spec))
            x = np.random.default_rng(depth).integers(-128, 128, (4, depth)).astype(np.int8)
            x[1] = 127  # a row of equal maxima: the largest sum of exps
            same, total = equal_count(run_steps(path, [x], "viper"), tflm(path, [x]))
            assert same == total, f"softmax depth {depth}: {same}/{total}"
    finally:
        sys.settrace(None)


def test_fixtures_regenerate_identically(tmp_path):
    pytest.importorskip("tensorflow")
    import subprocess

    names = ["add_ew_pool_bcast", "concatenation_ew_3in", "softmax_ew_beta25", "resize_nearest_ew_half"]
    out = subprocess.run([sys.executable, str(OPS_DIR / "make_eltwise_ops.py"), str(tmp_path)] + names,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for n in names:
        assert (tmp_path / f"{n}.tflite").read_bytes() == (OPS_DIR / f"{n}.tflite").read_bytes(), n
