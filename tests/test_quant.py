"""host_tools.quant against TFLite Micro, element for element.

* Unit checks of the fixed-point primitives (no TFLM needed).
* The committed single-op fixtures in tests/fixtures/ops/ (made by
  make_ops.py with TensorFlow's converter or the flatbuffer writer), run live
  in the tflite-micro interpreter over every int8 input value (and every
  input pair for ADD/MUL), with the quantisation parameters parsed from the
  .tflite files.
* Sweeps over random scales / zero points / options with models written on
  the fly by make_ops.single_op_model (flatbuffers only, no TensorFlow).
"""

from __future__ import annotations

import math
import os
import random
import struct
import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "ops")
sys.path.insert(0, ROOT)
sys.path.insert(0, FIXTURES)

from host_tools import quant as Q  # noqa: E402
from tinyseg_mp import fixedpoint as F  # noqa: E402

tflite = pytest.importorskip("tflite")
import make_ops  # noqa: E402
from make_ops import OpSpec, TensorSpec, single_op_model  # noqa: E402

try:
    from tflite_micro.python.tflite_micro import runtime as tflm_runtime
except ImportError:  # pragma: no cover
    tflm_runtime = None

needs_tflm = pytest.mark.skipif(tflm_runtime is None,
                                reason="tflite-micro not installed")

ALL_I8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
ALL_U8 = np.arange(0, 256, dtype=np.uint8).reshape(1, 256)
BYTES_I8 = np.arange(256, dtype=np.uint8).view(np.int8).reshape(1, 256)


# ---------------------------------------------------------------------------
# reading models and running them in TFLM
# ---------------------------------------------------------------------------

_TYPE_NAMES = {v: k.lower() for k, v in vars(tflite.TensorType).items()
               if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items()
             if not k.startswith("_")}


@dataclass
class Tensor:
    dtype: str
    shape: tuple
    scale: float | None
    zero_point: int
    data: bytes | None


@dataclass
class OneOp:
    op: str
    inputs: list
    outputs: list
    options: object


def read_model(buf: bytes) -> OneOp:
    m = tflite.Model.GetRootAsModel(buf, 0)
    sg = m.Subgraphs(0)
    assert sg.OperatorsLength() == 1, "expected a single-op model"
    op = sg.Operators(0)
    oc = m.OperatorCodes(op.OpcodeIndex())
    name = _OP_NAMES[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]

    def tensor(i: int) -> Tensor:
        t = sg.Tensors(i)
        q = t.Quantization()
        scale = None
        zp = 0
        if q is not None and q.ScaleLength():
            scale = float(q.ScaleAsNumpy()[0])
            zp = int(q.ZeroPointAsNumpy()[0])
        b = m.Buffers(t.Buffer())
        data = b.DataAsNumpy().tobytes() if b.DataLength() else None
        return Tensor(_TYPE_NAMES[t.Type()], tuple(t.ShapeAsNumpy()), scale,
                      zp, data)

    opts = None
    table = op.BuiltinOptions()
    if table is not None:
        cls_name = {v: k for k, v in vars(tflite.BuiltinOptions).items()
                    if not k.startswith("_")}[op.BuiltinOptionsType()]
        opts = getattr(tflite, cls_name)()
        opts.Init(table.Bytes, table.Pos)
    return OneOp(name,
                 [tensor(op.Inputs(j)) for j in range(op.InputsLength())],
                 [tensor(op.Outputs(j)) for j in range(op.OutputsLength())],
                 opts)


def fixture(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name + ".tflite"), "rb") as f:
        return f.read()


def run_tflm(buf: bytes, *inputs: np.ndarray) -> np.ndarray:
    nbytes = sum(a.nbytes for a in inputs)
    interp = tflm_runtime.Interpreter.from_bytes(
        buf, arena_size=16 * nbytes + 64 * 1024)
    for i, a in enumerate(inputs):
        interp.set_input(a, i)
    interp.invoke()
    return np.array(interp.get_output(0))


def run_many(buf: bytes, batches) -> list:
    """Invoke one interpreter repeatedly (each item a tuple of inputs)."""
    first = batches[0]
    nbytes = sum(a.nbytes for a in first)
    interp = tflm_runtime.Interpreter.from_bytes(
        buf, arena_size=16 * nbytes + 64 * 1024)
    outs = []
    for item in batches:
        for i, a in enumerate(item):
            interp.set_input(a, i)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    return outs


def lut_expected(lut: bytes, in_dtype: str, out_dtype: str) -> np.ndarray:
    """Table applied to the canonical all-values input of ``in_dtype``."""
    x = ALL_I8 if in_dtype == "int8" else ALL_U8
    return Q.lut_apply(lut, x, out_dtype)


def tflm_all_values(buf: bytes, in_dtype: str) -> np.ndarray:
    return run_tflm(buf, ALL_I8 if in_dtype == "int8" else ALL_U8)


# ---------------------------------------------------------------------------
# primitives (no TFLM)
# ---------------------------------------------------------------------------

def _edge_ints():
    e = [0, 1, -1, 2, -2, 127, -128, 255, (1 << 15) - 1, 1 << 15,
         -(1 << 15), (1 << 24) - 1, -(1 << 24), (1 << 30) - 1, 1 << 30,
         -(1 << 30), Q.INT32_MAX, Q.INT32_MIN, Q.INT32_MIN + 1]
    return e


def test_srdhm_is_floor_of_nudged_product():
    rnd = random.Random(11)
    vals = _edge_ints() + [rnd.randint(Q.INT32_MIN, Q.INT32_MAX)
                           for _ in range(3000)]
    n = 0
    for a in vals[:400]:
        for b in vals[:60]:
            if a == b == Q.INT32_MIN:
                assert Q.srdhm(a, b) == Q.INT32_MAX
                continue
            assert Q.srdhm(a, b) == (a * b + (1 << 30)) >> 31
            n += 1
    assert n > 20000


def test_srdhm_rdbpot_numpy_match_python():
    rnd = np.random.default_rng(3)
    a = rnd.integers(Q.INT32_MIN, Q.INT32_MAX, 20000, endpoint=True)
    b = rnd.integers(Q.INT32_MIN, Q.INT32_MAX, 20000, endpoint=True)
    a[:3] = Q.INT32_MIN
    b[:2] = Q.INT32_MIN
    got = Q.srdhm(a, b)
    want = [Q.srdhm(int(x), int(y)) for x, y in zip(a, b)]
    assert got.tolist() == want
    e = rnd.integers(0, 32, 20000)
    got = Q.rounding_divide_by_pot(a, e)
    want = [Q.rounding_divide_by_pot(int(x), int(k)) for x, k in zip(a, e)]
    assert got.tolist() == want


def test_rounding_divide_by_pot_rounds_half_away():
    for x in list(range(-300, 301)) + _edge_ints():
        for e in range(0, 32):
            fr = Fraction(x, 1 << e)
            fl = math.floor(abs(fr) + Fraction(1, 2))
            want = fl if x >= 0 else -fl
            assert Q.rounding_divide_by_pot(x, e) == want


def test_quantize_multiplier_cases():
    assert Q.quantize_multiplier(0.0) == (0, 0)
    assert Q.quantize_multiplier(1.0) == (1 << 30, 1)
    assert Q.quantize_multiplier(0.5) == (1 << 30, 0)
    assert Q.quantize_multiplier(0.75) == (3 << 29, 0)
    # q * 2^31 rounds up to 2^31: carried into the exponent
    assert Q.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    assert Q.quantize_multiplier(2.0 ** -33) == (0, 0)
    # shifts below -31 flush to zero
    assert Q.quantize_multiplier(2.0 ** -40) == (0, 0)
    assert Q.quantize_multiplier(2.0 ** -32) == (1 << 30, -31)
    assert Q.quantize_multiplier(-0.75) == (-(3 << 29), 0)
    rnd = random.Random(5)
    for _ in range(5000):
        real = math.exp(rnd.uniform(-20, 5))
        m, s = Q.quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31)
        err = abs(m * 2.0 ** (s - 31) - real)
        assert err <= 2.0 ** (s - 32) * (1 + 1e-12)
        assert Q.quantize_multiplier(real) == (m, s)


def test_mbqm_int_and_array_agree():
    rnd = np.random.default_rng(9)
    x = rnd.integers(-(1 << 24), 1 << 24, 5000)
    m = rnd.integers(1 << 30, 1 << 31, 5000)
    s = rnd.integers(-31, 1, 5000)
    got = Q.multiply_by_quantized_multiplier(x, m, s)
    want = [Q.multiply_by_quantized_multiplier(int(a), int(b), int(c))
            for a, b, c in zip(x, m, s)]
    assert got.tolist() == want
    # the SmallerThanOneExp variant is the same function for shift <= 0
    got2 = Q.multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, s)
    assert got2.tolist() == want


def test_activation_range():
    assert Q.activation_range("NONE", 0.1, 3) == (-128, 127)
    assert Q.activation_range("RELU", 0.1, -5) == (-5, 127)
    assert Q.activation_range("RELU6", 0.05, -128) == (-128, -8)
    assert Q.activation_range("RELU6", 0.01, -128) == (-128, 127)
    assert Q.activation_range("RELU_N1_TO_1", 0.02, 3) == (-47, 53)
    assert Q.activation_range(1, 0.1, 200, "uint8") == (200, 255)


def test_channel_multipliers_shape_and_broadcast():
    ms, ss = Q.channel_multipliers(0.02, [0.001, 0.004, 0.3], 0.05)
    assert len(ms) == len(ss) == 3
    for m, s, fs in zip(ms, ss, [0.001, 0.004, 0.3]):
        real = Q.f32(0.02) * Q.f32(fs) / Q.f32(0.05)
        assert (m, s) == Q.quantize_multiplier(real)
    ms, ss = Q.channel_multipliers(0.02, [0.001], 0.05, num_channels=4)
    assert len(ms) == 4 and len(set(ms)) == 1


def test_resize_nearest_indices_examples():
    assert Q.resize_nearest_indices(3, 6, False, False) == [0, 0, 1, 1, 2, 2]
    assert Q.resize_nearest_indices(4, 2, False, True) == [1, 3]
    assert Q.resize_nearest_indices(3, 5, True, False) == [0, 1, 1, 2, 2]
    assert Q.resize_nearest_indices(1, 3, True, False) == [0, 0, 0]


def test_avg_pool_round_truncation():
    for acc in range(-600, 601):
        for count in range(1, 12):
            n = acc + count // 2 if acc > 0 else acc - count // 2
            want = int(n / count)  # C truncation toward zero
            assert Q.avg_pool_round(acc, count) == want
    a = np.arange(-600, 601)
    assert Q.avg_pool_round(a, 7).tolist() == [Q.avg_pool_round(int(v), 7)
                                               for v in a]


def test_concat_and_pad_rules():
    Q.check_concatenation([(0.1, 3), (np.float32(0.1), 3)], (0.1, 3))
    with pytest.raises(ValueError):
        Q.check_concatenation([(0.1, 3), (0.1, 4)], (0.1, 3))
    with pytest.raises(ValueError):
        Q.check_concatenation([(0.1000001, 3)], (0.1, 3))
    assert Q.pad_value(-7) == -7
    assert Q.pad_value(-7, 12) == 12


def test_add_input_tables_reproduce_add():
    p = Q.add_params(0.031, -3, 0.047, 9, 0.061, 2, "RELU")
    t1, t2 = Q.add_input_tables(p)
    x1 = np.arange(-128, 128).repeat(256)
    x2 = np.tile(np.arange(-128, 128), 256)
    want = Q.add_int8(x1, x2, p)
    raw = np.array(t1)[x1 & 0xFF] + np.array(t2)[x2 & 0xFF]
    assert max(abs(v) for v in t1 + t2) < (1 << 28)
    got = np.clip(Q.multiply_by_quantized_multiplier(
        raw, p.output_multiplier, p.output_shift) + p.output_offset,
        p.act_min, p.act_max)
    assert (got == want).all()


# ---------------------------------------------------------------------------
# committed fixtures, live in TFLM
# ---------------------------------------------------------------------------

def _q(t: Tensor):
    return t.scale, t.zero_point


LUT_FIXTURES = ["logistic", "logistic_narrow", "relu", "relu_offset", "relu6",
                "leaky_relu", "leaky_relu_small", "quantize_i8_i8",
                "quantize_i8_u8", "quantize_u8_i8", "dequantize_i8"]


def lut_for(model: OneOp):
    """The table (and output dtype) for a unary single-op model, with every
    parameter read from the model."""
    x, y = model.inputs[0], model.outputs[0]
    if model.op == "LOGISTIC":
        assert y.zero_point == -128
        return Q.lut_logistic(x.scale, x.zero_point), y.dtype
    if model.op == "RELU":
        return Q.lut_relu(x.scale, x.zero_point, y.scale, y.zero_point,
                          x.dtype), y.dtype
    if model.op == "RELU6":
        return Q.lut_relu6(x.scale, x.zero_point, x.dtype), y.dtype
    if model.op == "LEAKY_RELU":
        return Q.lut_leaky_relu(x.scale, x.zero_point, y.scale, y.zero_point,
                                model.options.Alpha(), x.dtype), y.dtype
    if model.op == "QUANTIZE":
        return Q.lut_requantize(x.scale, x.zero_point, y.scale, y.zero_point,
                                x.dtype, y.dtype), y.dtype
    if model.op == "DEQUANTIZE":
        return Q.lut_dequantize(x.scale, x.zero_point, x.dtype), y.dtype
    raise AssertionError(model.op)


def check_unary(buf: bytes) -> int:
    model = read_model(buf)
    lut, out_dtype = lut_for(model)
    in_dtype = model.inputs[0].dtype
    got = tflm_all_values(buf, in_dtype)
    if model.op == "DEQUANTIZE":
        x = ALL_I8 if in_dtype == "int8" else ALL_U8
        want = np.array([lut[int(v) & 0xFF] for v in x.ravel()],
                        np.float32).reshape(got.shape)
        assert got.dtype == np.float32
        assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()
    else:
        want = lut_expected(lut, in_dtype, out_dtype)
        assert got.dtype == want.dtype
        assert got.tolist() == want.tolist(), model.op
    return got.size


@needs_tflm
@pytest.mark.parametrize("name", LUT_FIXTURES)
def test_lut_fixture(name):
    assert check_unary(fixture(name)) == 256


@needs_tflm
@pytest.mark.parametrize("name", ["add", "add_relu", "mul"])
def test_binary_fixture_all_pairs(name):
    buf = fixture(name)
    model = read_model(buf)
    a, b, y = model.inputs[0], model.inputs[1], model.outputs[0]
    assert a.shape == b.shape == (256, 256)
    x1 = np.repeat(np.arange(-128, 128, dtype=np.int8), 256).reshape(256, 256)
    x2 = np.tile(np.arange(-128, 128, dtype=np.int8), 256).reshape(256, 256)
    act = model.options.FusedActivationFunction()
    if model.op == "ADD":
        p = Q.add_params(*_q(a), *_q(b), *_q(y), act)
        want = Q.add_int8(x1.astype(np.int64), x2.astype(np.int64), p)
    else:
        p = Q.mul_params(*_q(a), *_q(b), *_q(y), act)
        want = Q.mul_int8(x1.astype(np.int64), x2.astype(np.int64), p)
    got = run_tflm(buf, x1, x2)
    assert (got.astype(np.int64) == want).all()
    # and with the operands swapped
    got = run_tflm(buf, x2, x1)
    want2 = (Q.add_int8 if model.op == "ADD" else Q.mul_int8)(
        x2.astype(np.int64), x1.astype(np.int64), p)
    assert (got.astype(np.int64) == want2).all()


def _softmax_rows(rng: np.random.Generator, rows: int, depth: int):
    x = rng.integers(-128, 128, (rows, depth))
    x[0] = 0
    x[1] = -128
    x[2] = 127
    x[3] = -128
    x[3, 0] = 127
    if rows > 5:
        x[4] = np.linspace(-128, 127, depth).round()
        x[5] = rng.integers(100, 128, depth)
    return x.astype(np.int8)


def check_softmax(buf: bytes, rows_list) -> int:
    model = read_model(buf)
    x, y = model.inputs[0], model.outputs[0]
    assert y.scale == 1.0 / 256 and y.zero_point == -128
    p = Q.softmax_params(x.scale, model.options.Beta())
    table = Q.softmax_exp_table(p)
    e_hi, e_lo = Q.softmax_device_tables(p)
    acc = F.softmax_acc_table(e_hi, e_lo)
    outs = run_many(buf, [(r,) for r in rows_list])
    n = 0
    for rows, got in zip(rows_list, outs):
        for row, grow in zip(rows.tolist(), got.tolist()):
            want = Q.softmax_int8_reference(row, p)
            assert grow == want
            assert Q.softmax_int8_from_table(row, table) == want
            out = [0] * len(row)
            assert F.softmax_row(row, out, e_hi, e_lo, acc) == want
            n += len(row)
    return n


@needs_tflm
@pytest.mark.parametrize("name", ["softmax", "softmax_wide"])
def test_softmax_fixture(name):
    buf = fixture(name)
    shape = read_model(buf).inputs[0].shape
    rng = np.random.default_rng(21)
    rows_list = [_softmax_rows(rng, *shape) for _ in range(4)]
    # rows concentrated near their max exercise the low table entries
    near = rng.integers(-12, 1, shape) + rng.integers(-128, 128, (shape[0], 1))
    rows_list.append(np.clip(near, -128, 127).astype(np.int8))
    assert check_softmax(buf, rows_list) == 5 * shape[0] * shape[1]


def check_mean(buf: bytes, inputs) -> int:
    model = read_model(buf)
    x, y = model.inputs[0], model.outputs[0]
    axes = np.frombuffer(model.inputs[1].data, np.int32).tolist()
    assert sorted(axes) == [1, 2]
    keep = bool(model.options.KeepDims())
    n = x.shape[1] * x.shape[2]
    p = Q.mean_params(*_q(x), *_q(y), n)
    outs = run_many(buf, [(a,) for a in inputs])
    for a, got in zip(inputs, outs):
        want = Q.mean_hw_int8(a, p, keep_dims=keep)
        assert got.shape == want.shape
        assert (got == want).all()
    return sum(o.size for o in outs)


def _mean_inputs(shape, rng, count=40):
    xs = [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]
    for _ in range(count):
        lo = int(rng.integers(-128, 128))
        hi = int(rng.integers(lo, 128)) + 1
        xs.append(rng.integers(lo, hi, shape).astype(np.int8))
    return xs


@needs_tflm
@pytest.mark.parametrize("name", ["mean_keep", "mean_nokeep"])
def test_mean_fixture(name):
    buf = fixture(name)
    shape = read_model(buf).inputs[0].shape
    rng = np.random.default_rng(5)
    assert check_mean(buf, _mean_inputs(shape, rng)) == 42 * shape[3]


@needs_tflm
@pytest.mark.parametrize("name", ["avg_pool_same", "avg_pool_valid",
                                  "max_pool_same"])
def test_pool_fixture(name):
    buf = fixture(name)
    model = read_model(buf)
    x, y = model.inputs[0], model.outputs[0]
    o = model.options
    assert (x.scale, x.zero_point) == (y.scale, y.zero_point)
    padding = "SAME" if o.Padding() == tflite.Padding.SAME else "VALID"
    lo, hi = Q.activation_range(o.FusedActivationFunction(), *_q(y))
    rng = np.random.default_rng(8)
    inputs = [rng.integers(-128, 128, x.shape).astype(np.int8)
              for _ in range(30)]
    inputs += [np.full(x.shape, v, np.int8) for v in (-128, 127, -1, 1)]
    fn = Q.max_pool_int8 if model.op == "MAX_POOL_2D" else Q.avg_pool_int8
    for a, got in zip(inputs, run_many(buf, [(a,) for a in inputs])):
        want = fn(a, (o.FilterHeight(), o.FilterWidth()),
                  (o.StrideH(), o.StrideW()), padding, lo, hi)
        assert got.shape == want.shape
        assert (got == want).all()


@needs_tflm
@pytest.mark.parametrize("name", ["resize_nn_up", "resize_nn_up_align",
                                  "resize_nn_up_half", "resize_nn_down_half",
                                  "resize_nn_down_align"])
def test_resize_nearest_fixture(name):
    buf = fixture(name)
    model = read_model(buf)
    x, y = model.inputs[0], model.outputs[0]
    assert (x.scale, x.zero_point) == (y.scale, y.zero_point)
    o = model.options
    ac, hp = bool(o.AlignCorners()), bool(o.HalfPixelCenters())
    iy = Q.resize_nearest_indices(x.shape[1], y.shape[1], ac, hp)
    ix = Q.resize_nearest_indices(x.shape[2], y.shape[2], ac, hp)
    a = np.random.default_rng(1).integers(-128, 128, x.shape).astype(np.int8)
    got = run_tflm(buf, a)
    want = a[:, iy][:, :, ix]
    assert (got == want).all()


# ---------------------------------------------------------------------------
# sweeps over random parameters with models written on the fly
# ---------------------------------------------------------------------------

def _rand_scale(rnd: random.Random, lo=1e-3, hi=0.5) -> float:
    return Q.f32(math.exp(rnd.uniform(math.log(lo), math.log(hi))))


@needs_tflm
def test_sweep_unary_ops():
    rnd = random.Random(2024)
    n_models = 0
    n_values = 0
    for i in range(25):
        s_in = _rand_scale(rnd)
        z_in = rnd.randint(-128, 127)
        s_out = _rand_scale(rnd)
        z_out = rnd.randint(-128, 127)
        models = [
            make_ops.unary_model("LOGISTIC", "int8", s_in, z_in, "int8",
                                 1.0 / 256, -128),
            make_ops.unary_model("RELU", "int8", s_in, z_in, "int8", s_out,
                                 z_out),
            make_ops.unary_model("RELU6", "int8", s_in, z_in, "int8", s_out,
                                 z_out),
            make_ops.unary_model("LEAKY_RELU", "int8", s_in, z_in, "int8",
                                 s_out, z_out, options="LeakyReluOptions",
                                 option_fields={"Alpha": rnd.choice(
                                     [0.01, 0.1, 0.2, 0.3, 0.5, 1.5, -0.25,
                                      round(rnd.uniform(-1, 1), 3)])}),
            make_ops.unary_model("QUANTIZE", "int8", s_in, z_in, "int8",
                                 s_out, z_out),
            make_ops.unary_model("QUANTIZE", "int8", s_in, z_in, "uint8",
                                 s_out, z_out + 128),
            make_ops.unary_model("QUANTIZE", "uint8", s_in, z_in + 128,
                                 "int8", s_out, z_out),
            make_ops.unary_model("DEQUANTIZE", "int8", s_in, z_in, "float32",
                                 None, 0),
            make_ops.unary_model("DEQUANTIZE", "uint8", s_in, z_in + 128,
                                 "float32", None, 0),
        ]
        # the same-scale int8 <-> uint8 fast path (XOR 0x80)
        if i == 0:
            models.append(make_ops.unary_model("QUANTIZE", "int8", s_in, z_in,
                                               "uint8", s_in, z_in + 128))
            models.append(make_ops.unary_model("QUANTIZE", "uint8", s_in,
                                               z_in + 128, "int8", s_in, z_in))
        for buf in models:
            n_values += check_unary(buf)
            n_models += 1
    assert n_models == 25 * 9 + 2
    assert n_values == n_models * 256


@needs_tflm
def test_sweep_add_mul():
    rnd = random.Random(77)
    x1 = np.repeat(np.arange(-128, 128, dtype=np.int8), 256).reshape(256, 256)
    x2 = np.tile(np.arange(-128, 128, dtype=np.int8), 256).reshape(256, 256)
    acts = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
    act_code = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
    count = 0
    for i in range(16):
        s1, s2, so = (_rand_scale(rnd, 2e-3, 0.2) for _ in range(3))
        z1, z2, zo = (rnd.randint(-128, 127) for _ in range(3))
        if i == 1:
            s2 = s1  # equal input scales
        act = acts[i % 4]
        for op, opts, params, fn in (
                ("ADD", "AddOptions", Q.add_params, Q.add_int8),
                ("MUL", "MulOptions", Q.mul_params, Q.mul_int8)):
            buf = single_op_model(OpSpec(
                op, [TensorSpec((256, 256), "int8", s1, z1),
                     TensorSpec((256, 256), "int8", s2, z2)],
                [TensorSpec((256, 256), "int8", so, zo)], opts,
                {"FusedActivationFunction": act_code[act]}))
            p = params(s1, z1, s2, z2, so, zo, act)
            want = fn(x1.astype(np.int64), x2.astype(np.int64), p)
            got = run_tflm(buf, x1, x2)
            assert (got.astype(np.int64) == want).all(), (op, i)
            count += got.size
    assert count == 16 * 2 * 65536


@needs_tflm
def test_sweep_softmax():
    rnd = random.Random(99)
    rng = np.random.default_rng(99)
    total = 0
    for depth in (1, 2, 3, 8, 33, 100, 255):
        for _ in range(3):
            s_in = _rand_scale(rnd, 5e-3, 0.3)
            z_in = rnd.randint(-128, 127)
            beta = rnd.choice([1.0, 0.5, 2.0, round(rnd.uniform(0.1, 3), 3)])
            rows = 64
            buf = single_op_model(OpSpec(
                "SOFTMAX", [TensorSpec((rows, depth), "int8", s_in, z_in)],
                [TensorSpec((rows, depth), "int8", 1.0 / 256, -128)],
                "SoftmaxOptions", {"Beta": beta}))
            total += check_softmax(buf, [_softmax_rows(rng, rows, depth)
                                         for _ in range(2)])
    assert total == 3 * 2 * 64 * (1 + 2 + 3 + 8 + 33 + 100 + 255)


@needs_tflm
def test_sweep_mean():
    rnd = random.Random(4)
    rng = np.random.default_rng(4)
    axes = struct.pack("<2i", 1, 2)
    n_checked = 0
    for h, w in ((1, 1), (1, 2), (2, 2), (3, 5), (4, 4), (6, 7), (8, 8),
                 (12, 11), (16, 16), (32, 24)):
        for keep in (True, False):
            s_in = _rand_scale(rnd, 5e-3, 0.2)
            s_out = Q.f32(s_in * rnd.uniform(0.3, 1.5))
            z_in, z_out = rnd.randint(-128, 127), rnd.randint(-128, 127)
            c = 6
            out_shape = (1, 1, 1, c) if keep else (1, c)
            buf = single_op_model(OpSpec(
                "MEAN", [TensorSpec((1, h, w, c), "int8", s_in, z_in),
                         TensorSpec((2,), "int32", None, 0, data=axes)],
                [TensorSpec(out_shape, "int8", s_out, z_out)],
                "ReducerOptions", {"KeepDims": keep}))
            n_checked += check_mean(buf, _mean_inputs((1, h, w, c), rng, 12))
    assert n_checked == 20 * 14 * 6


def _mbqm_single_rounding(x: int, m: int, shift: int) -> int:
    # what TFLITE_SINGLE_ROUNDING builds would compute
    total = 31 - shift
    return (x * m + (1 << (total - 1))) >> total


@needs_tflm
def test_wheel_uses_double_rounding():
    """The live interpreter agrees with the double-rounding tables and
    disagrees with single rounding, i.e. TFLITE_SINGLE_ROUNDING is off."""
    rnd = random.Random(1)
    differing = 0
    for _ in range(20):
        s_in, s_out = _rand_scale(rnd), _rand_scale(rnd)
        z_in, z_out = rnd.randint(-128, 127), rnd.randint(-128, 127)
        buf = make_ops.unary_model("QUANTIZE", "int8", s_in, z_in, "int8",
                                   s_out, z_out)
        got = tflm_all_values(buf, "int8").ravel().tolist()
        m, s = Q.requantize_params(s_in, s_out)
        double = [min(max(Q.multiply_by_quantized_multiplier(v - z_in, m, s)
                          + z_out, -128), 127) for v in range(-128, 128)]
        single = [min(max(_mbqm_single_rounding(v - z_in, m, s) + z_out,
                          -128), 127) for v in range(-128, 128)]
        assert got == double
        differing += got != single
    assert differing > 0


# ---------------------------------------------------------------------------
# conv / fully-connected output stage (channel_multipliers) and the device's
# float32 array requantisation, against TFLM
# ---------------------------------------------------------------------------

def _device_requant(acc: np.ndarray, mults, shifts, zp, lo, hi) -> np.ndarray:
    """tinyseg_mp.fixedpoint.requant_rows on float32 numpy arrays."""
    p = F.requant_arrays(np, [m >> 15 for m in mults],
                         [m & 0x7FFF for m in mults], shifts,
                         dtype=np.float32)
    y = F.requant_rows(np, acc.astype(np.float32), p, zp, lo, hi)
    assert y.dtype == np.float32
    return y.astype(np.int64)


@needs_tflm
def test_conv1x1_per_channel_output_stage():
    rnd = random.Random(12)
    rng = np.random.default_rng(12)
    act_code = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
    checked = 0
    for trial in range(12):
        cin, cout = rnd.choice([(3, 8), (16, 16), (64, 5), (200, 4)])
        s_in = _rand_scale(rnd, 5e-3, 0.1)
        z_in = rnd.randint(-128, 127)
        f_scales = [_rand_scale(rnd, 1e-4, 2e-2) for _ in range(cout)]
        s_out = _rand_scale(rnd, 5e-3, 0.5)
        z_out = rnd.randint(-128, 127)
        act = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"][trial % 4]
        w = rng.integers(-127, 128, (cout, 1, 1, cin)).astype(np.int8)
        bias = rng.integers(-20000, 20000, cout).astype(np.int32)
        b_scales = [Q.f32(s_in * fs) for fs in f_scales]
        buf = single_op_model(OpSpec(
            "CONV_2D",
            [TensorSpec((1, 6, 7, cin), "int8", s_in, z_in),
             TensorSpec((cout, 1, 1, cin), "int8", f_scales, [0] * cout,
                        data=w.tobytes()),
             TensorSpec((cout,), "int32", b_scales, [0] * cout,
                        data=bias.tobytes())],
            [TensorSpec((1, 6, 7, cout), "int8", s_out, z_out)],
            "Conv2DOptions",
            {"Padding": tflite.Padding.VALID, "StrideW": 1, "StrideH": 1,
             "FusedActivationFunction": act_code[act]}))
        x = rng.integers(-128, 128, (1, 6, 7, cin)).astype(np.int8)
        got = run_tflm(buf, x)
        acc = ((x.reshape(-1, cin).astype(np.int64) - z_in)
               @ w.reshape(cout, cin).astype(np.int64).T) + bias
        mults, shifts = Q.channel_multipliers(s_in, f_scales, s_out)
        lo, hi = Q.activation_range(act, s_out, z_out)
        want = Q.requantize_output(acc, np.array(mults), np.array(shifts),
                                   z_out, lo, hi)
        assert (got.reshape(-1, cout).astype(np.int64) == want).all()
        assert np.abs(acc).max() < (1 << 24)
        dev = _device_requant(acc, mults, shifts, z_out, lo, hi)
        assert (dev == want).all()
        checked += want.size
    assert checked > 0


@needs_tflm
def test_fully_connected_per_tensor_output_stage():
    rnd = random.Random(13)
    rng = np.random.default_rng(13)
    for trial in range(12):
        k, units = rnd.choice([(10, 4), (64, 16), (300, 3)])
        s_in = _rand_scale(rnd, 5e-3, 0.1)
        z_in = rnd.randint(-128, 127)
        s_w = _rand_scale(rnd, 1e-4, 2e-2)
        s_out = _rand_scale(rnd, 5e-3, 0.5)
        z_out = rnd.randint(-128, 127)
        w = rng.integers(-127, 128, (units, k)).astype(np.int8)
        bias = rng.integers(-5000, 5000, units).astype(np.int32)
        buf = single_op_model(OpSpec(
            "FULLY_CONNECTED",
            [TensorSpec((32, k), "int8", s_in, z_in),
             TensorSpec((units, k), "int8", s_w, 0, data=w.tobytes()),
             TensorSpec((units,), "int32", Q.f32(s_in * s_w), 0,
                        data=bias.tobytes())],
            [TensorSpec((32, units), "int8", s_out, z_out)],
            "FullyConnectedOptions", {"FusedActivationFunction": 0}))
        x = rng.integers(-128, 128, (32, k)).astype(np.int8)
        got = run_tflm(buf, x)
        acc = (x.astype(np.int64) - z_in) @ w.astype(np.int64).T + bias
        m, s = Q.fully_connected_multiplier(s_in, s_w, s_out)
        want = Q.requantize_output(acc, m, s, z_out, -128, 127)
        assert (got.astype(np.int64) == want).all()
        dev = _device_requant(acc, [m] * units, [s] * units, z_out, -128, 127)
        assert (dev == want).all()


# ---------------------------------------------------------------------------
# the committed fixtures are what make_ops.py produces (needs TensorFlow)
# ---------------------------------------------------------------------------

def _have_tensorflow() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


@pytest.mark.skipif(not _have_tensorflow(), reason="TensorFlow not installed")
def test_fixtures_regenerate_identically(tmp_path):
    import subprocess
    names = ["logistic", "add", "softmax", "mean_keep", "quantize_i8_u8"]
    out = subprocess.run(
        [sys.executable, os.path.join(FIXTURES, "make_ops.py"), str(tmp_path)]
        + names, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for n in names:
        assert (tmp_path / (n + ".tflite")).read_bytes() == fixture(n), n
