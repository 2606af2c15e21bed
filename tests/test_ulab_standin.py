"""Tests of the strict ulab stand-in (tests/ulab_standin): one or more per rule.

Each test asserts the ulab behaviour (or the rejection) directly, so a test
fails if the stand-in stops enforcing its rule.
"""

from __future__ import annotations

import array as pyarray
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as real_np
import pytest

STANDIN = pathlib.Path(__file__).resolve().parent / "ulab_standin"
if str(STANDIN) not in sys.path:
    sys.path.insert(0, str(STANDIN))

import ulab  # noqa: E402
from ulab import numpy as np  # noqa: E402
from ulab import _impl  # noqa: E402

F32 = _impl.FLOAT_BITS == 32
float32_only = pytest.mark.skipif(not F32, reason="float32 build emulation only")

U8, I8, U16, I16, FL = np.uint8, np.int8, np.uint16, np.int16, np.float


def vals(a):
    return np._to_numpy(a).tolist()


@pytest.fixture(autouse=True)
def _fresh_stats():
    np._reset_stats()
    yield


# ---------------------------------------------------------------- module surface

def test_import_is_the_standin():
    assert ulab._STANDIN and np._STANDIN
    assert ulab.numpy is np
    assert ulab.__version__.startswith("6.")
    assert pathlib.Path(np.__file__).resolve().is_relative_to(STANDIN)


def test_dtype_names_are_ulab_typecodes():
    assert (U8, I8, U16, I16, np.bool) == tuple(map(ord, "BbHh?"))
    assert np.float == (ord("f") if F32 else ord("d"))
    assert np.float is not float and np.bool is not bool
    assert np.zeros(3, dtype=I8).dtype == I8
    assert np.zeros(3).dtype == np.float


@pytest.mark.parametrize("name", ["float32", "float64", "int32", "uint32", "int64",
                                  "uint64", "float16", "double", "dtype"])
def test_missing_dtype_names_raise_attribute_error(name):
    with pytest.raises(AttributeError, match="ulab"):
        getattr(np, name)
    assert not hasattr(np, name)


@pytest.mark.parametrize("name", [
    "pad", "stack", "vstack", "hstack", "expand_dims", "squeeze", "ravel", "matmul",
    "tensordot", "einsum", "cumsum", "prod", "repeat", "tile", "broadcast_to",
    "astype", "fill", "view", "reshape", "transpose", "zeros_like", "ones_like",
    "empty_like", "full_like", "abs", "round", "newaxis"])
def test_absent_functions_raise_attribute_error(name):
    with pytest.raises(AttributeError, match="ulab lacks"):
        getattr(np, name)


def test_existing_but_unemulated_functions_say_so():
    with pytest.raises(AttributeError, match="not emulated"):
        np.linspace
    with pytest.raises(AttributeError):
        np.some_name_nobody_has


@pytest.mark.parametrize("name", [
    "array", "ndarray", "zeros", "ones", "full", "empty", "arange", "frombuffer",
    "concatenate", "take", "dot", "clip", "maximum", "minimum", "where", "argmax",
    "argmin", "sum", "max", "min", "floor", "ceil", "exp", "sqrt", "left_shift",
    "right_shift", "bitwise_and", "bitwise_or", "bitwise_xor"])
def test_present_api(name):
    assert callable(getattr(np, name))


@pytest.mark.parametrize("name", ["astype", "fill", "view", "ravel", "squeeze", "item",
                                  "sum", "max", "nbytes"])
def test_absent_array_methods(name):
    a = np.zeros(4, dtype=I8)
    with pytest.raises(AttributeError):
        getattr(a, name)


def test_matmul_operator_absent():
    a = np.ones((2, 2))
    with pytest.raises(TypeError):
        a @ a


def test_not_a_numpy_subclass():
    a = np.zeros(3)
    assert not isinstance(a, real_np.ndarray)
    assert isinstance(a, np.ndarray)


# ---------------------------------------------------------------- dimensions

@pytest.mark.parametrize("make", [
    lambda: np.zeros((2, 2, 2)),
    lambda: np.ones((1, 1, 1), dtype=I8),
    lambda: np.full((2, 1, 1), 3, dtype=U8),
    lambda: np.empty((1, 2, 3)),
    lambda: np.array([[[1.0]]]),
    lambda: np.zeros(8).reshape((2, 2, 2)),
    lambda: np.zeros(8).reshape((1, 1, 8)),
])
def test_three_dimensions_raise_value_error(make):
    with pytest.raises(ValueError, match="too many dimensions"):
        make()


def test_shape_setter_refuses_three_dims():
    a = np.zeros(8)
    with pytest.raises(ValueError, match="too many dimensions"):
        a.shape = (2, 2, 2)


def test_two_dimensions_are_fine():
    assert np.zeros((3, 4)).shape == (3, 4)
    assert np.zeros(12).reshape((3, 4)).ndim == 2


# ---------------------------------------------------------------- floats

def test_array_defaults_to_float():
    assert np.array([1, 2, 3]).dtype == np.float
    i8 = np.array([1, -2], dtype=I8)
    converted = np.array(i8)
    assert converted.dtype == np.float and vals(converted) == [1.0, -2.0]


@float32_only
def test_floats_are_float32_by_default():
    a = np.array([1.0])
    assert a.itemsize == 4
    assert vals(a + 1e-8) == [1.0]  # float32 cannot hold 1 + 1e-8
    assert vals(np.array([0.1]))[0] == float(real_np.float32(0.1))


def _run_standin(code: str, float_bits: str) -> str:
    env = dict(os.environ, ULAB_STANDIN_FLOAT=float_bits)
    script = "import sys; sys.path.insert(0, %r)\n" % str(STANDIN) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_float64_mode_by_environment_variable():
    out = _run_standin("""
        from ulab import numpy as np
        a = np.array([1.0]) + 1e-8
        print(np.float == ord('d'), a.itemsize, np._to_numpy(a)[0] > 1.0)
        """, "64")
    assert out == "True 8 True"


def test_float32_mode_by_environment_variable():
    out = _run_standin("""
        from ulab import numpy as np
        print(np.float == ord('f'), np.zeros(1).itemsize)
        """, "32")
    assert out == "True 4"


# ---------------------------------------------------------------- promotion

def arr(values, dtype):
    return np.array(values, dtype=dtype)


@pytest.mark.parametrize("ld, rd, expected", [
    (U8, U8, U8), (I8, I8, I8), (U16, U16, U16), (I16, I16, I16), (FL, FL, FL),
    (U8, I8, I16), (I8, U8, I16), (I8, I16, I16), (I16, I8, I16),
    (U8, U16, U16), (U16, U8, U16), (U8, I16, I16), (I16, U8, I16),
    (U16, I16, FL), (I16, U16, FL),
    (U8, FL, FL), (I8, FL, FL), (U16, FL, FL), (FL, I16, FL),
])
@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_binary_promotion_table(ld, rd, expected, op):
    a, b = arr([3, 4], ld), arr([1, 2], rd)
    res = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert res.dtype == expected


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_int8_with_uint16_is_rejected(op):
    a, b = arr([1], I8), arr([1], U16)
    with pytest.raises(TypeError, match="int8 combined with uint16"):
        {"+": lambda: a + b, "-": lambda: b - a, "*": lambda: a * b}[op]()


def test_same_dtype_wraps():
    assert vals(arr([100, -100], I8) * arr([3, 3], I8)) == [44, -44]
    assert vals(arr([200], U8) + arr([100], U8)) == [44]
    assert vals(arr([0], U16) - arr([1], U16)) == [65535]
    assert vals(arr([30000], I16) + arr([30000], I16)) == [-5536]


def test_mixed_results_wrap_in_result_dtype():
    # u8 + u16 -> u16 wraps at 65536
    assert vals(arr([255], U8) + arr([65535], U16)) == [254]


def test_scalar_next_to_int8_stays_int8_and_wraps():
    r = arr([100, -100], I8) * 2
    assert r.dtype == I8 and vals(r) == [-56, 56]


@pytest.mark.parametrize("make, dtype, expected", [
    (lambda: arr([250], U8) + 300, U16, [550]),
    (lambda: arr([250], U8) + 6, U8, [0]),
    (lambda: arr([5], U8) + (-1), I16, [4]),
    (lambda: arr([100], I8) + 200, I16, [300]),
    (lambda: arr([100], I8) - 1, I8, [99]),
    (lambda: arr([1], I8) + 1.5, FL, [2.5]),
    (lambda: arr([1], U8) + 70000, FL, [70001.0]),
    (lambda: arr([1], I16) + 32767, I16, [-32768]),
    (lambda: arr([1], U16) + 2, U16, [3]),
    (lambda: arr([1], I8) + True, I16, [2]),
])
def test_python_scalars_get_the_smallest_fitting_dtype(make, dtype, expected):
    r = make()
    assert r.dtype == dtype and vals(r) == expected


def test_scalar_on_the_left_ignores_the_array_dtype():
    # ulab types the left scalar on its own: 2 -> uint8, uint8 * int8 -> int16
    r = 2 * arr([100], I8)
    assert r.dtype == I16 and vals(r) == [200]
    assert (10 - arr([3], U8)).dtype == U8


def test_scalar_that_ulab_would_wrap_is_rejected():
    with pytest.raises(OverflowError):
        arr([1], I16) + 40000


def test_true_division_and_power_give_float():
    f = np.array([1.0, 2.0])
    i = arr([3, 4], I8)
    assert (i / f).dtype == np.float and vals(i / f) == [3.0, 2.0]
    assert (i / 2.0).dtype == np.float
    assert (i ** arr([2, 2], I8)).dtype == np.float
    assert vals(arr([3], U8) ** 2) == [9.0]


@pytest.mark.parametrize("make", [
    lambda: arr([4], I8) / arr([2], I8),
    lambda: arr([4], I16) / 2,
    lambda: 8 / arr([4], U8),
    lambda: arr([4], I16) // arr([3], I16),
    lambda: arr([4], U8) // 2,
])
def test_integer_division_is_rejected(make):
    with pytest.raises(TypeError, match="integer"):
        make()


def test_float_floor_division_and_modulo():
    assert vals(np.array([7.0, -7.0]) // 2.0) == [3.0, -4.0]
    with pytest.raises(TypeError):
        np.array([7.0]) % 2.0


# ---------------------------------------------------------------- maximum etc.

@pytest.mark.parametrize("make", [
    lambda a: np.maximum(a, 0),
    lambda a: np.minimum(a, 10),
    lambda a: np.clip(a, -128, 127),
    lambda a: np.clip(a, 0, 6),
    lambda a: np.where(a > 0, a, 0),
    lambda a: np.maximum(a, arr([0, 0, 0], U8)),
])
def test_int8_maximum_minimum_clip_where_return_int16(make):
    a = arr([-5, 3, 100], I8)
    assert make(a).dtype == I16


def test_int8_with_int8_array_stays_int8():
    a, b = arr([-5, 3], I8), arr([0, 10], I8)
    assert np.maximum(a, b).dtype == I8 and vals(np.maximum(a, b)) == [0, 10]


def test_maximum_minimum_clip_values():
    a = arr([-5, 3, 100], I8)
    assert vals(np.maximum(a, 0)) == [0, 3, 100]
    assert vals(np.minimum(a, 10)) == [-5, 3, 10]
    assert vals(np.clip(a, -1, 50)) == [-1, 3, 50]
    assert vals(np.clip(arr([0, 255], U8), 0, 255)) == [0, 255]
    assert np.clip(arr([0, 255], U8), 0, 255).dtype == U8
    assert np.clip(arr([-300, 300], I16), -128, 127).dtype == I16
    assert vals(np.clip(np.array([-1.5, 9.0]), 0, 6)) == [0.0, 6.0]


def test_clip_allocates_twice():
    a = arr([1, 2], I8)
    np._reset_stats()
    np.clip(a, 0, 1)
    assert np._stats["arrays_allocated"] == 2


def test_scalar_only_calls_return_scalars():
    assert np.maximum(3, 4) == 4 and isinstance(np.maximum(3, 4), int)
    assert np.clip(7, 0, 5) == 5
    assert np.minimum(2.5, 1) == 1.0


def test_where_values_and_promotion():
    c = np.array([1, 0, 1], dtype=np.bool)
    r = np.where(c, arr([1, 2, 3], U8), arr([7, 8, 9], U16))
    assert r.dtype == U16 and vals(r) == [1, 8, 3]
    assert np.where(c, arr([1, 2, 3], U16), arr([1, 2, 3], I16)).dtype == np.float


# ---------------------------------------------------------------- dot

def test_dot_shapes_and_float_results():
    m = arr([[1, 2], [3, 4]], I8)
    v = arr([1, 1], I8)
    mm = np.dot(m, m)
    assert mm.dtype == np.float and mm.shape == (2, 2) and vals(mm) == [[7, 10], [15, 22]]
    mv = np.dot(m, v)
    assert mv.dtype == np.float and mv.shape == (2,) and vals(mv) == [3, 7]
    vm = np.dot(v, arr([[1, 2, 3], [4, 5, 6]], I8))
    assert vm.shape == (3,) and vals(vm) == [5, 7, 9]
    r = np.dot(arr([1, 2, 3], I8), arr([4, 5, 6], I8))
    assert type(r) is float and r == 32.0


def test_dot_rejects_bad_arguments():
    with pytest.raises(ValueError):
        np.dot(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(TypeError):
        np.dot([1, 2], [3, 4])
    with pytest.raises(TypeError, match="out"):
        np.dot(np.zeros(2), np.zeros(2), out=np.zeros(1))


def test_dot_int8_is_exact_below_2_24():
    rng = real_np.random.default_rng(0)
    a = rng.integers(-128, 128, size=(5, 600))
    b = rng.integers(-128, 128, size=(600, 7))
    r = np.dot(np.array(a, dtype=I8), np.array(b, dtype=I8))
    assert vals(r) == (a @ b).astype(float).tolist()


@float32_only
def test_dot_accumulates_in_float32():
    # The exact sum 2**24 + 2 is representable in float32, but adding 1 to 2**24
    # one step at a time (as ulab's loop does) loses both ones.
    r = np.dot(arr([16384, 1, 1], I16), arr([1024, 1, 1], I16))
    assert r == 16777216.0
    f = np.dot(np.array([16777216.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]))
    assert f == 16777216.0


# ---------------------------------------------------------------- reductions

def test_sum_with_axis_accumulates_in_input_dtype():
    a = arr([[100, 1], [100, 2]], I8)
    s = np.sum(a, axis=0)
    assert s.dtype == I8 and vals(s) == [-56, 3]
    assert vals(np.sum(arr([[200, 100]], U8), axis=1)) == [44]
    assert np.sum(arr([100, 100], I8), axis=0) == -56  # 1-D with axis: a scalar


def test_sum_without_axis_and_float_sum():
    assert np.sum(arr([[100, 1], [100, 2]], I8)) == 203
    assert isinstance(np.sum(arr([1, 2], I8)), int)
    fs = np.sum(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=1)
    assert fs.dtype == np.float and vals(fs) == [3.0, 7.0]
    assert np.sum(np.array([0.5, 0.25])) == 0.75


def test_sum_keepdims():
    a = arr([[1, 2], [3, 4]], I16)
    assert np.sum(a, axis=1, keepdims=True).shape == (2, 1)


def test_max_min_argmax():
    a = arr([[1, 9, 9], [7, 2, 3]], I8)
    assert np.max(a) == 9 and type(np.max(a)) is int
    assert np.min(a) == 1
    assert np.argmax(a) == 1  # first occurrence
    assert np.argmin(a) == 0
    m = np.max(a, axis=0)
    assert m.dtype == I8 and vals(m) == [7, 9, 9]
    am = np.argmax(a, axis=1)
    assert am.dtype == I16 and vals(am) == [1, 0]
    assert np.max(np.array([0.5, 2.5])) == 2.5


@pytest.mark.parametrize("fn", [np.sum, np.max, np.min, np.argmax])
def test_reductions_reject_out(fn):
    with pytest.raises(TypeError, match="out"):
        fn(np.zeros(3), out=np.zeros(1))


# ---------------------------------------------------------------- conversions

def test_float_to_int_rounds_half_away_from_zero():
    f = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.49, -2.51])
    assert vals(np.array(f, dtype=I8)) == [1, 2, 3, -1, -3, 2, -3]


def test_float_to_int_wraps_after_rounding():
    f = np.array([200.0, 127.5, -129.0, 70000.0])
    assert vals(np.array(f, dtype=I8)) == [-56, -128, 127, 112]
    assert vals(np.array(np.array([256.4, -1.0]), dtype=U8)) == [0, 255]


def test_float_to_int_rejects_undefined_values():
    with pytest.raises(ValueError):
        np.array(np.array([float("nan")]), dtype=I16)
    with pytest.raises(OverflowError):
        np.array(np.array([3e9]), dtype=I16)


def test_int_to_int_conversion_wraps():
    assert vals(np.array(arr([300, -1], I16), dtype=U8)) == [44, 255]
    assert vals(np.array([300, -1], dtype=U8)) == [44, 255]


def test_list_of_floats_into_int_dtype_is_a_type_error():
    with pytest.raises(TypeError):
        np.array([1.5, 2.0], dtype=I8)
    with pytest.raises(TypeError):
        np.full(3, 2.5, dtype=I8)


def test_no_astype():
    with pytest.raises(AttributeError, match="astype"):
        np.zeros(2).astype(I8)


def test_dtype_argument_is_checked():
    with pytest.raises(TypeError):
        np.zeros(3, dtype=float)
    with pytest.raises(TypeError):
        np.zeros(3, dtype=real_np.float32)


# ---------------------------------------------------------------- creation

def test_zeros_ones_full_empty():
    assert vals(np.zeros((2, 2), dtype=U16)) == [[0, 0], [0, 0]]
    assert vals(np.ones(3, dtype=I8)) == [1, 1, 1]
    assert vals(np.full((1, 2), 300, dtype=U8)) == [[44, 44]]
    assert vals(np.full(2, 7)) == [7.0, 7.0] and np.full(2, 7).dtype == np.float
    assert vals(np.empty(3, dtype=I16)) == [0, 0, 0]  # ulab's empty is zero-filled


def test_arange_dtypes():
    a = np.arange(5)
    assert a.dtype == I16 and vals(a) == [0, 1, 2, 3, 4]
    assert vals(np.arange(1, 7, 2)) == [1, 3, 5]
    f = np.arange(0, 1, 0.25)
    assert f.dtype == np.float and vals(f) == [0.0, 0.25, 0.5, 0.75]
    assert np.arange(40000).dtype == np.float
    assert np.arange(3, dtype=U8).dtype == U8


def test_concatenate():
    a, b = arr([[1, 2]], I8), arr([[3, 4]], I8)
    assert vals(np.concatenate((a, b))) == [[1, 2], [3, 4]]
    assert vals(np.concatenate((a, b), axis=1)) == [[1, 2, 3, 4]]
    with pytest.raises(TypeError):
        np.concatenate([a, b])
    with pytest.raises(ValueError):
        np.concatenate((a, arr([[3, 4]], U8)))


def test_take_and_take_out():
    a = arr([[10, 11, 12], [20, 21, 22]], I16)
    assert vals(np.take(a, [5, 0])) == [22, 10]
    assert vals(np.take(a, [2, 0], axis=1)) == [[12, 10], [22, 20]]
    assert vals(np.take(a, (-1,), axis=0)) == [[20, 21, 22]]
    out = np.zeros((2, 2), dtype=I16)
    assert np.take(a, [1, 1], axis=1, out=out) is out
    assert vals(out) == [[11, 11], [21, 21]]
    assert vals(np.take(a, [7], mode="clip")) == [22]
    with pytest.raises(ValueError):
        np.take(a, [6])
    with pytest.raises(ValueError):
        np.take(a, [1, 1], axis=1, out=np.zeros((2, 2), dtype=I8))
    with pytest.raises(TypeError):
        np.take(a, [1.0])


def test_take_out_does_not_allocate():
    a = arr([1, 2, 3], U8)
    out = np.zeros(2, dtype=U8)
    np._reset_stats()
    np.take(a, [2, 0], out=out)
    assert np._stats["arrays_allocated"] == 0


# ---------------------------------------------------------------- math functions

@pytest.mark.parametrize("fn, expected", [
    (np.floor, [1.0, -2.0]), (np.ceil, [2.0, -1.0]),
])
def test_floor_ceil_return_float(fn, expected):
    r = fn(np.array([1.5, -1.5]))
    assert r.dtype == np.float and vals(r) == expected
    assert fn(arr([3, -3], I8)).dtype == np.float


def test_exp_sqrt_and_scalars():
    assert vals(np.exp(arr([0], I8))) == [1.0]
    assert vals(np.sqrt(np.array([4.0, 9.0]))) == [2.0, 3.0]
    assert type(np.exp(0)) is float and np.exp(0) == 1.0


def test_unary_math_out():
    x = np.array([0.0, 1.0])
    out = np.zeros(2)
    np._reset_stats()
    assert np.exp(x, out=out) is out
    assert np._stats["arrays_allocated"] == 0
    assert vals(out)[0] == 1.0
    assert np.floor(x, out=x) is x
    with pytest.raises(ValueError, match="float"):
        np.exp(x, out=np.zeros(2, dtype=I16))
    with pytest.raises(ValueError):
        np.exp(x, out=np.zeros(3))
    with pytest.raises(ValueError, match="dense"):
        np.exp(x, out=np.zeros(4)[::2])


@pytest.mark.parametrize("call", [
    lambda: np.maximum(np.zeros(2), np.zeros(2), out=np.zeros(2)),
    lambda: np.minimum(np.zeros(2), 1, out=np.zeros(2)),
    lambda: np.where(np.zeros(2), 1, 2, out=np.zeros(2)),
    lambda: np.bitwise_and(arr([1], U8), 1, out=np.zeros(1, dtype=U8)),
    lambda: np.clip(np.zeros(2), 0, 1, out=np.zeros(2)),
])
def test_out_is_rejected_outside_unary_math_and_take(call):
    with pytest.raises(TypeError, match="out"):
        call()


# ---------------------------------------------------------------- bitwise and shifts

def test_shifts():
    r = np.right_shift(arr([-128, 64, 3], I16), 2)
    assert r.dtype == I16 and vals(r) == [-32, 16, 0]
    l = np.left_shift(arr([1, 129], U8), 1)
    assert l.dtype == U8 and vals(l) == [2, 2]
    # the scalar is typed alone here: int8 with uint8 -> int16
    assert np.right_shift(arr([-8], I8), 1).dtype == I16


def test_bitwise_functions_and_operators():
    a, b = arr([0b1100], U8), arr([0b1010], U8)
    assert vals(np.bitwise_and(a, b)) == [8]
    assert vals(np.bitwise_or(a, b)) == [14]
    assert vals(np.bitwise_xor(a, b)) == [6]
    assert vals(a & b) == [8]
    m = (arr([1, 2], U8) > 1) & (arr([1, 2], U8) < 5)
    assert vals(m) == [False, True]


def test_bitwise_rejections():
    with pytest.raises(ValueError):
        np.bitwise_and(np.zeros(2), 1)
    with pytest.raises(TypeError):
        np.zeros(2) & 1
    with pytest.raises(TypeError):
        arr([1], I16) & arr([1], U16)
    with pytest.raises(TypeError):
        arr([8], I16) >> 1
    with pytest.raises(ValueError):
        np.left_shift(arr([1], U8), arr([-1], I8))


# ---------------------------------------------------------------- methods and properties

def test_properties():
    a = np.zeros((3, 4), dtype=I16)
    assert a.shape == (3, 4) and a.size == 12 and a.itemsize == 2
    assert a.strides == (8, 2) and a.ndim == 2 and a.dtype == I16
    assert a[:, ::2].strides == (8, 4)


def test_reshape_tuple_int_and_unknown():
    a = np.zeros(6, dtype=U8)
    assert a.reshape((2, 3)).shape == (2, 3)
    assert a.reshape(6).shape == (6,)
    assert a.reshape((-1, 2)).shape == (3, 2)
    with pytest.raises(ValueError):
        a.reshape((4, 2))


def test_dense_reshape_is_a_view_and_strided_reshape_copies():
    a = np.zeros(6, dtype=U8)
    v = a.reshape((2, 3))
    v[1, 1] = 7
    assert a[4] == 7
    b = np.zeros((2, 6), dtype=U8)
    c = b[:, ::2].reshape(6)
    c[0] = 9
    assert b[0, 0] == 0


def test_transpose_flatten_copy():
    a = arr([[1, 2, 3], [4, 5, 6]], I8)
    t = a.transpose()
    assert t.shape == (3, 2) and vals(a.T) == vals(t)
    t[0, 1] = 40
    assert a[1, 0] == 40  # transpose is a view
    one = arr([1, 2], I8)
    assert one.transpose() is one
    f = a.flatten()
    assert vals(f) == [1, 2, 3, 40, 5, 6]
    f[0] = 0
    assert a[0, 0] == 1
    c = a.copy()
    c[0, 0] = 99
    assert a[0, 0] == 1 and c.dtype == I8


def test_tobytes_dense_only_and_aliasing():
    a = arr([1, -1], I16)
    tb = a.tobytes()
    assert bytes(tb) == b"\x01\x00\xff\xff"
    tb[0] = 5  # ulab returns the array's own memory
    assert a[0] == 5
    with pytest.raises(ValueError, match="dense"):
        np.zeros(4)[::2].tobytes()
    assert bytes(a) == b"\x05\x00\xff\xff"
    with pytest.raises(ValueError):
        bytes(np.zeros(4)[::2])


def test_memoryview_follows_the_buffer_protocol_rule():
    a = arr([1, 2, 3], U8)
    if sys.version_info >= (3, 12):
        assert bytes(memoryview(a)) == b"\x01\x02\x03"
        with pytest.raises(TypeError):
            memoryview(a[::2])
    else:
        with pytest.raises(TypeError):
            memoryview(a)
        with pytest.raises(ValueError):
            bytearray(a)  # would silently iterate on CPython 3.11


def test_shape_setter_on_dense_arrays():
    a = np.zeros(6)
    a.shape = (2, 3)
    assert a.shape == (2, 3)
    with pytest.raises(ValueError):
        b = np.zeros((2, 4))[:, ::2]
        b.shape = 4


# ---------------------------------------------------------------- indexing

def test_integer_indexing_gives_python_scalars():
    a = arr([[1, 2], [3, 4]], I8)
    assert type(a[1, 1]) is int and a[1, 1] == 4
    f = np.array([1.5, 2.5])
    assert type(f[0]) is float and float(f[1]) == 2.5
    assert int(a[0, 1]) == 2
    b = np.array([1, 0], dtype=np.bool)
    assert b[0] is True and b[1] is False


def test_slices_are_views_sharing_memory():
    a = np.zeros(10, dtype=I16)
    v = a[1:9:3]
    assert v.shape == (3,)
    v[1] = 5
    assert a[4] == 5
    a[7] = 6
    assert v[2] == 6
    r = a[::-1]
    assert r[5] == 5
    m = np.zeros((3, 4), dtype=U8)
    col = m[:, 1]
    col[2] = 9
    assert m[2, 1] == 9
    row = m[1]
    row[0] = 3
    assert m[1, 0] == 3


def test_slice_assignment_copies():
    a = np.zeros(4, dtype=I16)
    src = arr([1, 2], I16)
    a[1:3] = src
    src[0] = 100
    assert vals(a) == [0, 1, 2, 0]
    a[:] = 7
    assert vals(a) == [7, 7, 7, 7]
    a[0] = 2.5  # converted like np.array(..., dtype=int16): rounds half away
    assert a[0] == 3
    a[1] = -1.5
    assert a[1] == -2
    m = np.zeros((2, 3), dtype=U8)
    m[:, :] = arr([1, 2, 3], U8)
    assert vals(m) == [[1, 2, 3], [1, 2, 3]]
    with pytest.raises(ValueError):
        a[0:2] = arr([1, 2, 3], I16)


@pytest.mark.parametrize("index", [
    [0, 1],
    (0, [1]),
])
def test_fancy_list_indexing_is_rejected(index):
    a = np.zeros((3, 3))
    with pytest.raises(TypeError):
        a[index]


def test_integer_array_indexing_is_rejected():
    a = np.zeros(5)
    with pytest.raises(TypeError, match="take"):
        a[arr([0, 2], U8)]


@pytest.mark.parametrize("index", [None, Ellipsis, (None, 0), (Ellipsis, 0)])
def test_newaxis_and_ellipsis_are_rejected(index):
    with pytest.raises(TypeError):
        np.zeros((2, 2))[index]


def test_boolean_mask_on_1d():
    a = arr([1, 5, 2, 8], I8)
    picked = a[a > 2]
    assert vals(picked) == [5, 8]
    a[a > 2] = 0
    assert vals(a) == [1, 0, 2, 0]


def test_index_errors():
    a = np.zeros((2, 2))
    with pytest.raises(IndexError):
        a[2, 0]
    with pytest.raises(IndexError):
        a[0, 0, 0]
    with pytest.raises(TypeError):
        a[True]


def test_len_iteration_and_scalar_conversion():
    m = arr([[1, 2], [3, 4]], I8)
    assert len(m) == 2 and len(m[0]) == 2
    rows = list(m)
    assert [vals(r) for r in rows] == [[1, 2], [3, 4]]
    rows[0][0] = 10
    assert m[0, 0] == 10  # rows are views
    assert list(arr([1, 2], U8)) == [1, 2]
    with pytest.raises(TypeError):
        float(np.zeros(1))
    with pytest.raises(TypeError):
        int(arr([1], I8))
    with pytest.raises(TypeError):
        bool(arr([1], I8))


# ---------------------------------------------------------------- in-place

def test_inplace_keeps_left_dtype_and_wraps():
    a = arr([100, -100], I8)
    a += arr([100, 1000], I16)
    assert a.dtype == I8 and vals(a) == [-56, -124]  # 200, 900 wrapped
    b = arr([250], U8)
    b *= 2
    assert b.dtype == U8 and vals(b) == [244]
    b -= 250
    assert vals(b) == [250]
    f = np.array([1.0, 2.0])
    f += arr([1, 1], I8)
    assert f.dtype == np.float and vals(f) == [2.0, 3.0]


@pytest.mark.parametrize("rhs", [1.5, np.array([1.0, 2.0])])
def test_inplace_float_into_int_raises(rhs):
    a = arr([1, 2], I16)
    with pytest.raises(TypeError):
        a += rhs
    with pytest.raises(TypeError):
        a *= rhs


def test_inplace_writes_through_views_and_does_not_allocate():
    a = np.zeros((2, 3), dtype=I16)
    row = a[1]
    rhs = arr([1, 2, 3], I16)
    np._reset_stats()
    row += rhs
    assert np._stats["arrays_allocated"] == 0
    assert vals(a) == [[0, 0, 0], [1, 2, 3]]


def test_binary_operator_allocates_once_and_inplace_zero():
    acc = np.zeros(4)
    x = np.ones(4)
    np._reset_stats()
    acc = acc + x
    assert np._stats["arrays_allocated"] == 1
    np._reset_stats()
    acc += x
    assert np._stats["arrays_allocated"] == 0
    m, v = np.ones((4, 2)), np.ones(2)
    np._reset_stats()
    acc = acc + np.dot(m, v)  # the notes: twice per step ...
    assert np._stats["arrays_allocated"] == 2
    np._reset_stats()
    acc += np.dot(m, v)  # ... and once with +=
    assert np._stats["arrays_allocated"] == 1


def test_inplace_divide_needs_float_left_side():
    a = arr([4], I16)
    with pytest.raises(TypeError):
        a /= 2.0
    f = np.array([4.0])
    f /= 2
    assert vals(f) == [2.0]


# ---------------------------------------------------------------- comparisons

def test_comparisons_return_boolean_arrays():
    a = arr([1, 5, 9], U8)
    for r in (a < 5, a <= 5, a > 5, a >= 5, a == 5, a != 5):
        assert r.dtype == U8  # ulab reports Boolean arrays as uint8 ...
        assert all(isinstance(x, bool) for x in r)  # ... whose items are bools
    assert vals(a == 5) == [False, True, False]
    assert vals(arr([-1], I8) < arr([1], U16)) == [True]
    assert vals(a > 300) == [False, False, False]


# ---------------------------------------------------------------- frombuffer

def test_frombuffer_shares_memory_with_bytearray_both_ways():
    buf = bytearray(8)
    a = np.frombuffer(buf, dtype=I16)
    assert a.shape == (4,)
    a[1] = -2
    assert buf[2:4] == b"\xfe\xff"
    buf[0] = 7
    assert a[0] == 7


def test_frombuffer_memoryview_slice_is_writable_and_shared():
    buf = bytearray(range(16))
    v = np.frombuffer(memoryview(buf)[4:12], dtype=U16)
    assert v.size == 4 and v[0] == 4 + 5 * 256
    v[0] = 0xFFFF
    assert buf[4:6] == b"\xff\xff"
    buf[6] = 0
    buf[7] = 1
    assert v[1] == 256


def test_frombuffer_offset_count_and_dtype_default():
    buf = bytearray(range(8))
    a = np.frombuffer(buf, dtype=U8, offset=2, count=3)
    assert vals(a) == [2, 3, 4]
    assert np.frombuffer(bytearray(8)).dtype == np.float
    assert vals(np.frombuffer(bytes([1, 2]), dtype=U8)) == [1, 2]
    assert vals(np.frombuffer(pyarray.array("h", [5, -5]), dtype=I16)) == [5, -5]


def test_frombuffer_requires_whole_items_even_with_count():
    buf = bytearray(7)
    with pytest.raises(ValueError, match="multiple"):
        np.frombuffer(buf, dtype=I16, count=2)
    with pytest.raises(ValueError, match="multiple"):
        np.frombuffer(buf, dtype=I16, offset=2, count=1)
    # the documented way: slice with a memoryview first
    assert np.frombuffer(memoryview(buf)[2:6], dtype=I16).size == 2


def test_frombuffer_other_errors():
    with pytest.raises(ValueError):
        np.frombuffer(bytearray(4), dtype=I16, count=3)
    with pytest.raises(ValueError):
        np.frombuffer(bytearray(4), dtype=U8, offset=5)
    with pytest.raises(ValueError, match="misaligned"):
        np.frombuffer(memoryview(bytearray(9))[1:9], dtype=I16)
    with pytest.raises(TypeError):
        np.frombuffer([1, 2], dtype=U8)


def test_frombuffer_of_bytes_is_read_only():
    a = np.frombuffer(b"\x00\x01", dtype=U8)
    with pytest.raises(ValueError):
        a[0] = 1


def test_frombuffer_is_zero_copy():
    np._reset_stats()
    np.frombuffer(bytearray(64), dtype=np.float)
    assert np._stats["arrays_allocated"] == 0 and np._stats["views_created"] == 1


# ---------------------------------------------------------------- stats and hygiene

def test_stats_counts_arrays_and_bytes():
    np._reset_stats()
    np.zeros(10, dtype=I16)
    np.zeros((2, 3), dtype=np.float)
    assert np._stats["arrays_allocated"] == 2
    assert np._stats["bytes_allocated"] == 20 + 6 * np.zeros(1).itemsize
    np._reset_stats()
    assert np._stats["arrays_allocated"] == 0 and np._stats["bytes_allocated"] == 0


def test_stats_counts_scalar_temporaries_and_views():
    a = np.zeros(4, dtype=U8)
    np._reset_stats()
    a + 1
    a[1:3]
    assert np._stats["scalar_temporaries"] == 1
    assert np._stats["views_created"] == 1


def test_real_numpy_operands_are_rejected():
    a = np.zeros(2)
    with pytest.raises(TypeError):
        a + real_np.ones(2)
    with pytest.raises(TypeError):
        real_np.ones(2) + a
    with pytest.raises(TypeError):
        a * real_np.float32(2.0)


def test_unary_operators():
    a = arr([-128, 5], I8)
    assert vals(abs(a)) == [-128, 5]  # C: -(-128) wraps
    assert vals(-arr([1], U8)) == [255]
    assert vals(~arr([0], U8)) == [255]
    assert vals(~(a > 0)) == [True, False]
    with pytest.raises(ValueError):
        ~np.zeros(1)
