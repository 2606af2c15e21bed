"""Exact host-side mirrors of TFLite Micro's int8 quantisation arithmetic.

Everything here runs on the host (CPython) ahead of time, so the device never
has to plan: it receives integer multipliers, shifts, clamp bounds and lookup
tables that are bit-for-bit what TFLite Micro (TFLM) computes in its kernels'
Prepare() and Eval() functions.

Rounding mode: the TFLM build that the ``tflite-micro`` Python wheel ships
(Bazel, ``tflm_copts()/tflm_defines()``) does NOT define
``TFLITE_SINGLE_ROUNDING``, so ``MultiplyByQuantizedMultiplier`` is the
default *double rounding* form::

    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M), right)

and ``QuantizeMultiplier`` neither saturates shifts above 30 nor caps
``PreprocessSoftmaxScaling`` at 2^30 - 1.  The tests check this against the
live wheel.

Numbers: scalar functions take and return Python ints (exact, unbounded);
wherever it is noted, the same function also accepts numpy ``int64`` arrays
(element-wise, exact because every intermediate fits in 63 bits).  Scales are
always passed through float32 first, because TFLM stores them as ``float``.

This module is original code written for tinyseg-mp; each function names the
TFLM function whose arithmetic it reproduces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

IntOrArray = Union[int, np.ndarray]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_DTYPE_RANGE = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (INT32_MIN, INT32_MAX),
}


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def f32(x: float) -> float:
    """The float32 value TFLM would hold for ``x`` (as a Python float)."""
    return float(np.float32(x))


def _is_array(*xs: object) -> bool:
    return any(isinstance(x, np.ndarray) for x in xs)


def wrap32(x: IntOrArray) -> IntOrArray:
    """Two's-complement wrap to int32 (what a C++ int32_t store does)."""
    if _is_array(x):
        return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return ((int(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_half_away(v: float) -> int:
    """TfLiteRound / std::round on a double (or a float widened exactly)."""
    f = math.floor(v)
    d = v - f  # exact for |v| < 2**52
    if d > 0.5 or (d == 0.5 and v > 0):
        return int(f) + 1
    return int(f)


def dtype_range(dtype: str) -> tuple[int, int]:
    return _DTYPE_RANGE[dtype]


def byte_to_value(b: int, dtype: str) -> int:
    """Value of a tensor element whose storage byte is ``b`` (0..255)."""
    if dtype == "int8":
        return b - 256 if b >= 128 else b
    if dtype == "uint8":
        return b
    raise ValueError(dtype)


def _clamp(x: IntOrArray, lo: int, hi: int) -> IntOrArray:
    if _is_array(x):
        return np.minimum(np.maximum(x, lo), hi)
    return min(max(x, lo), hi)


# ---------------------------------------------------------------------------
# gemmlowp fixed-point primitives (fixedpoint/fixedpoint.h)
# ---------------------------------------------------------------------------

def srdhm(a: IntOrArray, b: IntOrArray) -> IntOrArray:
    """gemmlowp::SaturatingRoundingDoublingHighMul<int32_t>, literally:
    nudge of +2^30 / (1 - 2^30) by the sign of a*b, then C++ truncating
    division by 2^31; a == b == INT32_MIN saturates to INT32_MAX.
    Python ints or numpy int64 arrays."""
    if _is_array(a, b):
        a64 = np.asarray(a, np.int64)
        b64 = np.asarray(b, np.int64)
        ab = a64 * b64
        n = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
        q = np.where(n >= 0, n >> 31, -((-n) >> 31))
        return np.where((a64 == b64) & (a64 == INT32_MIN), INT32_MAX, q)
    a = int(a)
    b = int(b)
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    n = ab + ((1 << 30) if ab >= 0 else (1 - (1 << 30)))
    return n >> 31 if n >= 0 else -((-n) >> 31)


def rounding_divide_by_pot(x: IntOrArray, exponent: IntOrArray) -> IntOrArray:
    """gemmlowp::RoundingDivideByPOT (round half away from zero), with its
    mask/threshold formulation.  Python ints or numpy int64 arrays."""
    if _is_array(x, exponent):
        x64 = np.asarray(x, np.int64)
        e = np.asarray(exponent, np.int64)
        mask = np.left_shift(np.int64(1), e) - 1
        remainder = x64 & mask
        threshold = (mask >> 1) + (x64 < 0)
        return (x64 >> e) + (remainder > threshold)
    x = int(x)
    exponent = int(exponent)
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def saturating_rounding_multiply_by_pot(x: int, exponent: int) -> int:
    """gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> on int32: a
    saturating left shift for exponent > 0, RoundingDivideByPOT for < 0."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def rounding_half_sum(a: int, b: int) -> int:
    """gemmlowp::RoundingHalfSum<int32_t>: (a + b + sign) / 2, truncating."""
    s = a + b
    s += 1 if s >= 0 else -1
    return s // 2 if s >= 0 else -((-s) // 2)


# ---------------------------------------------------------------------------
# multipliers (kernels/internal/common.{h,cc}, quantization_util.cc)
# ---------------------------------------------------------------------------

def multiply_by_quantized_multiplier(x: IntOrArray, m: IntOrArray,
                                     shift: IntOrArray) -> IntOrArray:
    """tflite::MultiplyByQuantizedMultiplier(int32_t x, int32_t M, int shift),
    double-rounding build.  ``x * (1 << left_shift)`` wraps like the int32
    arithmetic of the C++ code.  Python ints, or numpy int64 arrays (``m`` and
    ``shift`` may be per-channel arrays that broadcast against ``x``)."""
    if _is_array(x, m, shift):
        s = np.asarray(shift, np.int64)
        left = np.maximum(s, 0)
        right = np.maximum(-s, 0)
        a = wrap32(np.asarray(x, np.int64) * np.left_shift(np.int64(1), left))
        return rounding_divide_by_pot(srdhm(a, np.asarray(m, np.int64)), right)
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(srdhm(wrap32(int(x) * (1 << left)), m), right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(
        x: IntOrArray, m: IntOrArray, left_shift: IntOrArray) -> IntOrArray:
    """tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp (double
    rounding): RoundingDivideByPOT(SRDHM(x, M), -left_shift).  Equal to
    multiply_by_quantized_multiplier whenever left_shift <= 0."""
    if _is_array(x, m, left_shift):
        return rounding_divide_by_pot(srdhm(x, m),
                                      -np.asarray(left_shift, np.int64))
    return rounding_divide_by_pot(srdhm(x, m), -left_shift)


def multiply_by_quantized_multiplier_greater_than_one(
        x: int, m: int, left_shift: int) -> int:
    """tflite::MultiplyByQuantizedMultiplierGreaterThanOne (double rounding):
    SRDHM(x * 2^left_shift, M)."""
    return srdhm(wrap32(x * (1 << left_shift)), m)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier(double, int32_t*, int*) without
    TFLITE_SINGLE_ROUNDING: frexp, q*2^31 rounded half away from zero, the
    q == 2^31 carry into the exponent, and shifts below -31 flushed to (0, 0).
    Returns (quantized_multiplier, shift) with real ~= M * 2^(shift - 31)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * float(1 << 31))
    if q_fixed > (1 << 31):
        raise ValueError("QuantizeMultiplier: q_fixed > 2^31")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > INT32_MAX:
        raise ValueError("QuantizeMultiplier: q_fixed out of int32")
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplierSmallerThanOneExp (checks 0 < real < 1)."""
    if not 0.0 < real < 1.0:
        raise ValueError("multiplier must be in (0, 1): %r" % real)
    m, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError("shift must be <= 0")
    return m, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplierGreaterThanOne (checks real > 1)."""
    if not real > 1.0:
        raise ValueError("multiplier must be > 1: %r" % real)
    m, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError("shift must be >= 0")
    return m, shift


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """tflite::CalculateInputRadius (the double-precision branch)."""
    max_input_rescaled = math.ldexp(
        float((1 << input_integer_bits) - 1),
        total_signed_bits - input_integer_bits - input_left_shift)
    return int(math.floor(max_input_rescaled))


# ---------------------------------------------------------------------------
# activation ranges, per-channel multipliers, generic requantisation
# ---------------------------------------------------------------------------

_FUSED = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")


def fused_activation_name(code: Union[int, str]) -> str:
    """Map a tflite ActivationFunctionType code (0 NONE, 1 RELU,
    2 RELU_N1_TO_1, 3 RELU6) or a name to the name used here."""
    if isinstance(code, str):
        return code.upper()
    if 0 <= code < len(_FUSED):
        return _FUSED[code]
    raise ValueError("unsupported fused activation %r" % code)


def _quantize_float_f32(f: float, scale: float, zero_point: int) -> int:
    # kernel_util.cc Quantize(): TfLiteRound(f / scale) in float, + zero point
    tmp = float(np.float32(f) / np.float32(scale))
    return zero_point + round_half_away(tmp)


def activation_range(fused_activation: Union[str, int], scale: float,
                     zero_point: int, dtype: str = "int8") -> tuple[int, int]:
    """tflite::CalculateActivationRangeQuantized: clamp bounds for a fused
    activation ('NONE' | 'RELU' | 'RELU6' | 'RELU_N1_TO_1') on an output
    tensor with the given (float32) scale and zero point."""
    act = fused_activation_name(fused_activation)
    qmin, qmax = _DTYPE_RANGE[dtype]
    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, _quantize_float_f32(0.0, scale, zero_point)), qmax
    if act == "RELU6":
        return (max(qmin, _quantize_float_f32(0.0, scale, zero_point)),
                min(qmax, _quantize_float_f32(6.0, scale, zero_point)))
    if act == "RELU_N1_TO_1":
        return (max(qmin, _quantize_float_f32(-1.0, scale, zero_point)),
                min(qmax, _quantize_float_f32(1.0, scale, zero_point)))
    raise ValueError("unsupported fused activation %r" % fused_activation)


def channel_multipliers(input_scale: float, filter_scales: Sequence[float],
                        output_scale: float,
                        num_channels: int | None = None
                        ) -> tuple[list[int], list[int]]:
    """Per-output-channel (multiplier, shift) lists for CONV_2D,
    DEPTHWISE_CONV_2D, TRANSPOSE_CONV and per-channel FULLY_CONNECTED:
    tflite::PopulateConvolutionQuantizationParams (and the identical loop in
    fully_connected_common.cc) compute, in double from the float32 scales,
    ``double(input_scale) * double(filter_scale) / double(output_scale)`` and
    QuantizeMultiplier it.  A single filter scale is broadcast to
    ``num_channels`` entries when given."""
    scales = [f32(s) for s in np.atleast_1d(np.asarray(filter_scales,
                                                        np.float64))]
    if num_channels is not None and len(scales) == 1:
        scales = scales * num_channels
    s_in = f32(input_scale)
    s_out = f32(output_scale)
    mults: list[int] = []
    shifts: list[int] = []
    for fs in scales:
        m, s = quantize_multiplier(s_in * fs / s_out)
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def fully_connected_multiplier(input_scale: float, filter_scale: float,
                               output_scale: float) -> tuple[int, int]:
    """Per-tensor FULLY_CONNECTED: tflite::GetQuantizedConvolutionMultipler
    multiplies the two scales in *float* before widening:
    ``double(float(input_scale * filter_scale)) / double(output_scale)``."""
    prod = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(prod / f32(output_scale))


def requantize_output(acc: IntOrArray, multiplier: IntOrArray,
                      shift: IntOrArray, output_zero_point: int,
                      act_min: int, act_max: int) -> IntOrArray:
    """Output stage of the int8 reference conv / depthwise / FC / transpose
    conv kernels: MBQM(acc, M, shift) + zero point, clamped to the activation
    range.  ``acc`` already includes the bias.  ints or int64 arrays (per
    channel M/shift broadcast along the last axis)."""
    y = multiply_by_quantized_multiplier(acc, multiplier, shift)
    return _clamp(y + output_zero_point, act_min, act_max)


# ---------------------------------------------------------------------------
# ADD / MUL (int8)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class AddParams:
    """What tflite::CalculateOpDataAdd computes for int8."""
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def add_params(input1_scale: float, input1_zero_point: int,
               input2_scale: float, input2_zero_point: int,
               output_scale: float, output_zero_point: int,
               fused_activation: Union[str, int] = "NONE") -> AddParams:
    """Mirror of CalculateOpDataAdd (micro/kernels/add_common.cc), int8."""
    s1, s2, so = f32(input1_scale), f32(input2_scale), f32(output_scale)
    left_shift = 20
    twice_max_input_scale = 2.0 * max(s1, s2)
    real1 = s1 / twice_max_input_scale
    real2 = s2 / twice_max_input_scale
    real_out = twice_max_input_scale / (float(1 << left_shift) * so)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real2)
    mo, sho = quantize_multiplier_smaller_than_one_exp(real_out)
    lo, hi = activation_range(fused_activation, so, output_zero_point)
    return AddParams(-input1_zero_point, -input2_zero_point, output_zero_point,
                     left_shift, m1, sh1, m2, sh2, mo, sho, lo, hi)


def add_scaled_input(x: IntOrArray, offset: int, multiplier: int,
                     shift: int, left_shift: int = 20) -> IntOrArray:
    """One input's half of reference_integer_ops::AddFunc:
    MBQMSmallerThanOneExp((x + offset) << left_shift, M, shift)."""
    v = (np.asarray(x, np.int64) if _is_array(x) else int(x)) + offset
    return multiply_by_quantized_multiplier_smaller_than_one_exp(
        v * (1 << left_shift), multiplier, shift)


def add_int8(x1: IntOrArray, x2: IntOrArray, p: AddParams) -> IntOrArray:
    """reference_integer_ops::AddFunc, element-wise (ints or int64 arrays;
    arrays broadcast like numpy, which matches TFLM's broadcasting)."""
    a = add_scaled_input(x1, p.input1_offset, p.input1_multiplier,
                         p.input1_shift, p.left_shift)
    b = add_scaled_input(x2, p.input2_offset, p.input2_multiplier,
                         p.input2_shift, p.left_shift)
    raw = multiply_by_quantized_multiplier_smaller_than_one_exp(
        a + b, p.output_multiplier, p.output_shift) + p.output_offset
    return _clamp(raw, p.act_min, p.act_max)


def add_input_tables(p: AddParams, dtype: str = "int8"
                     ) -> tuple[list[int], list[int]]:
    """Device helper: the two scaled inputs of AddFunc depend on one byte
    each, so the host can tabulate them (256 entries, indexed by the input
    byte, values |v| < 2^28).  On the device an ADD is then
    ``clamp(MBQM(t1[b1] + t2[b2], output_multiplier, output_shift)
    + output_offset)``."""
    vals = [byte_to_value(b, dtype) for b in range(256)]
    t1 = [add_scaled_input(v, p.input1_offset, p.input1_multiplier,
                           p.input1_shift, p.left_shift) for v in vals]
    t2 = [add_scaled_input(v, p.input2_offset, p.input2_multiplier,
                           p.input2_shift, p.left_shift) for v in vals]
    return t1, t2


@dataclass(frozen=True)
class MulParams:
    """What tflite::CalculateOpDataMul computes for int8."""
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def mul_params(input1_scale: float, input1_zero_point: int,
               input2_scale: float, input2_zero_point: int,
               output_scale: float, output_zero_point: int,
               fused_activation: Union[str, int] = "NONE") -> MulParams:
    """Mirror of CalculateOpDataMul (micro/kernels/mul_common.cc), int8."""
    real = f32(input1_scale) * f32(input2_scale) / f32(output_scale)
    m, s = quantize_multiplier(real)
    lo, hi = activation_range(fused_activation, output_scale,
                              output_zero_point)
    return MulParams(-input1_zero_point, -input2_zero_point,
                     output_zero_point, m, s, lo, hi)


def mul_int8(x1: IntOrArray, x2: IntOrArray, p: MulParams) -> IntOrArray:
    """reference_integer_ops::MulElementwise / BroadcastMul6DSlow."""
    if _is_array(x1, x2):
        a = np.asarray(x1, np.int64) + p.input1_offset
        b = np.asarray(x2, np.int64) + p.input2_offset
    else:
        a = int(x1) + p.input1_offset
        b = int(x2) + p.input2_offset
    raw = p.output_offset + multiply_by_quantized_multiplier(
        a * b, p.output_multiplier, p.output_shift)
    return _clamp(raw, p.act_min, p.act_max)


# ---------------------------------------------------------------------------
# gemmlowp transcendental functions (fixedpoint.h), exact on Python ints
# ---------------------------------------------------------------------------

_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
               (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    # gemmlowp: Taylor expansion around -1/8 in Q0.31
    constant_term = 1895147668          # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp::exp_on_negative_values for FixedPoint<int32_t, integer_bits>
    input, returning the raw Q0.31 result."""
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter,
                                            integer_bits))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            if remainder & (1 << (frac_bits + exponent)):
                result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp::one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson, Q0.31 in
    and out, Q2.29 inside)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = wrap32(constant_48_over_17
               + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = wrap32((1 << 29) - half_denominator_times_x)
        x = wrap32(x + saturating_rounding_multiply_by_pot(
            srdhm(x, one_minus), 2))
    return saturating_rounding_multiply_by_pot(x, 1)


def logistic_fixed(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic for FixedPoint<int32_t, integer_bits>, raw Q0.31."""
    if a > 0:
        abs_input = a
    else:
        abs_input = wrap32(-a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap32(-abs_input), integer_bits))
    result_if_negative = wrap32(INT32_MAX - result_if_positive)
    if a == 0:
        return 1 << 30
    return result_if_positive if a > 0 else result_if_negative


def count_leading_zeros32(x: int) -> int:
    """tflite::CountLeadingZeros on uint32_t."""
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """tflite::GetReciprocal: returns (shifted_scale Q0.31 raw,
    num_bits_over_unit)."""
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap32(
        (((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
            num_bits_over_unit)


# ---------------------------------------------------------------------------
# 256-entry lookup tables for unary int8/uint8 ops
# ---------------------------------------------------------------------------
# A table is indexed by the input's storage byte (``x & 0xFF``) and holds the
# output's storage byte, so a device applies it to an int8 buffer reinterpreted
# as uint8 (e.g. bytes.translate / a uint8 gather).

def _table(fn, in_dtype: str, out_dtype: str) -> bytes:
    out = bytearray(256)
    lo, hi = _DTYPE_RANGE[out_dtype]
    for b in range(256):
        y = fn(byte_to_value(b, in_dtype))
        if not lo <= y <= hi:
            raise AssertionError("table value out of range")
        out[b] = y & 0xFF
    return bytes(out)


def lut_apply(lut: bytes, x: np.ndarray, out_dtype: str = "int8"
              ) -> np.ndarray:
    """Apply a byte table to an int8/uint8 numpy array (host-side helper)."""
    idx = np.asarray(x).astype(np.int64) & 0xFF
    table = np.frombuffer(lut, dtype=np.dtype(out_dtype))
    return table[idx]


@dataclass(frozen=True)
class LogisticParams:
    """What CalculateArithmeticOpDataLogistic computes for int8."""
    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def logistic_params(input_scale: float, input_zero_point: int
                    ) -> LogisticParams:
    """Mirror of CalculateArithmeticOpDataLogistic (logistic_common.cc),
    int8: input_real_multiplier = scale * 2^(31-4), frexp, TfLiteRound of
    q*2^31 cast to int32 (no carry fix-up here: a q rounding to 2^31 wraps to
    INT32_MIN, as the x86 conversion does), radius CalculateInputRadius(4,
    shift, 31)."""
    real = f32(input_scale) * float(1 << (31 - 4))
    q, left_shift = math.frexp(real)
    mult = wrap32(round_half_away(q * float(1 << 31)))
    radius = calculate_input_radius(4, left_shift, 31)
    return LogisticParams(input_zero_point, mult, left_shift, radius)


def logistic_int8(x: int, p: LogisticParams) -> int:
    """reference_integer_ops::Logistic (int8) for one element."""
    v = x - p.input_zero_point
    if v <= -p.input_range_radius:
        return -128
    if v >= p.input_range_radius:
        return 127
    input_in_q4 = multiply_by_quantized_multiplier(v, p.input_multiplier,
                                                   p.input_left_shift)
    output_in_q0 = logistic_fixed(input_in_q4, 4)
    out = rounding_divide_by_pot(output_in_q0, 31 - 8) - 128
    return min(max(out, -128), 127)


def lut_logistic(input_scale: float, input_zero_point: int) -> bytes:
    """LOGISTIC int8 table.  TFLM requires output zero point -128 and uses a
    fixed output scale of 1/256; the output params do not enter the math."""
    p = logistic_params(input_scale, input_zero_point)
    return _table(lambda v: logistic_int8(v, p), "int8", "int8")


@dataclass(frozen=True)
class ReluParams:
    """ReluOpData.params from CalculateReluOpData<int8_t>."""
    input_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def relu_params(input_scale: float, input_zero_point: int,
                output_scale: float, output_zero_point: int,
                dtype: str = "int8") -> ReluParams:
    """Mirror of CalculateReluOpData (activations_common.cc): the multiplier
    is double(float(input_scale / output_scale)) (a float32 division), the
    lower clamp max(qmin, zp + roundf(0 / scale)) and the upper the dtype
    maximum."""
    real = float(np.float32(input_scale) / np.float32(output_scale))
    m, s = quantize_multiplier(real)
    qmin, qmax = _DTYPE_RANGE[dtype]
    act_min = max(qmin, output_zero_point
                  + round_half_away(float(np.float32(0.0)
                                          / np.float32(output_scale))))
    return ReluParams(input_zero_point, output_zero_point, m, s, act_min, qmax)


def relu_quantized(x: IntOrArray, p: ReluParams) -> IntOrArray:
    """tflite::ReluQuantized: requantise, then clamp."""
    v = (np.asarray(x, np.int64) if _is_array(x) else int(x)) - p.input_offset
    y = p.output_offset + multiply_by_quantized_multiplier(
        v, p.output_multiplier, p.output_shift)
    return _clamp(y, p.act_min, p.act_max)


def lut_relu(input_scale: float, input_zero_point: int, output_scale: float,
             output_zero_point: int, dtype: str = "int8") -> bytes:
    """RELU table (int8 or uint8 storage; TFLM runs RELU for int8/int16)."""
    p = relu_params(input_scale, input_zero_point, output_scale,
                    output_zero_point, dtype)
    return _table(lambda v: relu_quantized(v, p), dtype, dtype)


def relu6_bounds(input_scale: float, input_zero_point: int,
                 dtype: str = "int8") -> tuple[int, int]:
    """Relu6Prepare: (zero, six) = (input zp, FloatToQuantizedType(6.0f,
    input scale, input zp)).  TFLM's int8 RELU6 only clamps the *input*
    values to [zero, six]: it does not requantise, and the output tensor's
    scale/zero point are ignored."""
    qmin, qmax = _DTYPE_RANGE[dtype]
    six = round_half_away(float(np.float32(6.0) / np.float32(input_scale)))
    six = min(max(six + input_zero_point, qmin), qmax)
    return input_zero_point, six


def lut_relu6(input_scale: float, input_zero_point: int,
              dtype: str = "int8") -> bytes:
    """RELU6 table: Relu6Quantized(zero, six) on the raw input values."""
    zero, six = relu6_bounds(input_scale, input_zero_point, dtype)
    return _table(lambda v: six if v > six else (zero if v < zero else v),
                  dtype, dtype)


@dataclass(frozen=True)
class LeakyReluParams:
    """LeakyReluOpData from CalculateOpDataLeakyRelu."""
    input_zero_point: int
    output_zero_point: int
    output_multiplier_alpha: int
    output_shift_alpha: int
    output_multiplier_identity: int
    output_shift_identity: int


def leaky_relu_params(input_scale: float, input_zero_point: int,
                      output_scale: float, output_zero_point: int,
                      alpha: float) -> LeakyReluParams:
    """Mirror of CalculateOpDataLeakyRelu (leaky_relu_common.cc): both real
    multipliers are float32 expressions widened to double:
    (input_scale * alpha / output_scale) and (input_scale / output_scale)."""
    si, so, al = np.float32(input_scale), np.float32(output_scale), \
        np.float32(alpha)
    ma, sa = quantize_multiplier(float((si * al) / so))
    mi, s_i = quantize_multiplier(float(si / so))
    return LeakyReluParams(input_zero_point, output_zero_point, ma, sa, mi, s_i)


def leaky_relu_quantized(x: int, p: LeakyReluParams,
                         dtype: str = "int8") -> int:
    """reference_ops::QuantizeLeakyRelu for one element (negative alpha is
    applied as a negated non-negative multiplier, as in current TFLM)."""
    v = x - p.input_zero_point
    out = p.output_zero_point
    if v >= 0:
        out += multiply_by_quantized_multiplier(
            v, p.output_multiplier_identity, p.output_shift_identity)
    else:
        ma = p.output_multiplier_alpha
        scaled = multiply_by_quantized_multiplier(v, -ma if ma < 0 else ma,
                                                  p.output_shift_alpha)
        out += -scaled if ma < 0 else scaled
    lo, hi = _DTYPE_RANGE[dtype]
    return min(max(out, lo), hi)


def lut_leaky_relu(input_scale: float, input_zero_point: int,
                   output_scale: float, output_zero_point: int,
                   alpha: float, dtype: str = "int8") -> bytes:
    """LEAKY_RELU table."""
    p = leaky_relu_params(input_scale, input_zero_point, output_scale,
                          output_zero_point, alpha)
    return _table(lambda v: leaky_relu_quantized(v, p, dtype), dtype, dtype)


def requantize_params(input_scale: float, output_scale: float
                      ) -> tuple[int, int]:
    """PrepareQuantizeReference: QuantizeMultiplier(double(in)/double(out))."""
    return quantize_multiplier(f32(input_scale) / f32(output_scale))


def lut_requantize(input_scale: float, input_zero_point: int,
                   output_scale: float, output_zero_point: int,
                   in_dtype: str = "int8", out_dtype: str = "int8") -> bytes:
    """QUANTIZE between 8-bit types: reference_ops::Requantize (its
    int8<->uint8 XOR-0x80 fast path gives the same bytes as the general
    formula).  TFLM accepts int8->int8, int8->uint8 and uint8->int8;
    uint8->uint8 is computed with the same formula although TFLM rejects
    that type pair."""
    m, s = requantize_params(input_scale, output_scale)
    lo, hi = _DTYPE_RANGE[out_dtype]

    def fn(v: int) -> int:
        y = multiply_by_quantized_multiplier(v - input_zero_point, m, s)
        return min(max(y + output_zero_point, lo), hi)

    return _table(fn, in_dtype, out_dtype)


def lut_dequantize(scale: float, zero_point: int, dtype: str = "int8"
                   ) -> list[float]:
    """DEQUANTIZE table (256 float32 values as Python floats, by byte):
    reference_ops::Dequantize computes static_cast<float>(double(scale) *
    (x - zero_point))."""
    s = f32(scale)
    return [float(np.float32(s * (byte_to_value(b, dtype) - zero_point)))
            for b in range(256)]


# ---------------------------------------------------------------------------
# HARD_SWISH (int8 -> int8): a 256-entry table
# ---------------------------------------------------------------------------

INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1


def _wrap16(x: int) -> int:
    return ((int(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _sat16(x: int) -> int:
    return max(INT16_MIN, min(INT16_MAX, int(x)))


def srdhm16(a: int, b: int) -> int:
    """gemmlowp::SaturatingRoundingDoublingHighMul<int16_t>: nudge 2^14 or
    1 - 2^14 by the sign of a*b, C++ truncating division by 2^15;
    a == b == -2^15 saturates."""
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    n = ab + ((1 << 14) if ab >= 0 else 1 - (1 << 14))
    return _wrap16(n >> 15 if n >= 0 else -((-n) >> 15))


def sdhm16(a: int, b: int) -> int:
    """reference_ops::SaturatingDoublingHighMul (hard_swish.h): like srdhm16
    but truncating towards zero, no nudge."""
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    return _wrap16(ab >> 15 if ab >= 0 else -((-ab) >> 15))


def downscale_multiplier_to_int16(m: int) -> int:
    """tflite::DownScaleInt32ToInt16Multiplier: (m + 2^15) >> 16, saturated."""
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


@dataclass(frozen=True)
class HardSwishParams:
    """What HardSwishPrepare (micro/kernels/hard_swish_common.cc) computes."""
    input_zero_point: int
    output_zero_point: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int


def hard_swish_params(input_scale: float, input_zero_point: int,
                      output_scale: float, output_zero_point: int) -> HardSwishParams:
    """Mirror of HardSwishPrepare for int8 (float32 scale arithmetic, then
    double multipliers through QuantizeMultiplier and the int16 downscale)."""
    f = np.float32
    hires = f(1.0 / 128.0) * f(input_scale)
    out_m, out_e = quantize_multiplier(float(hires / f(output_scale)))
    if out_e > 0:
        raise ValueError("HARD_SWISH: output multiplier exponent > 0 (TFLM refuses it)")
    rel_m, rel_e = quantize_multiplier(float(hires / (f(3.0) / f(32768.0))))
    return HardSwishParams(int(input_zero_point), int(output_zero_point),
                           downscale_multiplier_to_int16(out_m), out_e,
                           downscale_multiplier_to_int16(rel_m), rel_e)


def hard_swish_int8(x: int, p: HardSwishParams) -> int:
    """reference_ops::HardSwish<int8_t> (quantized), one value, every
    intermediate an int16 as in the C++."""
    v = _wrap16(x - p.input_zero_point)
    hires = _wrap16(v * (1 << 7))
    preshift = srdhm16(hires, p.output_multiplier_fixedpoint_int16)
    r = hires
    if p.reluish_multiplier_exponent > 0:
        r = _sat16(r * (1 << (p.reluish_multiplier_exponent - 1)))
    r = srdhm16(r, p.reluish_multiplier_fixedpoint_int16)
    if p.reluish_multiplier_exponent > 0:
        r = _sat16(r * 2)
    if p.reluish_multiplier_exponent < 0:
        r = _wrap16(rounding_divide_by_pot(r, -p.reluish_multiplier_exponent))
    r = _wrap16((r + (1 << 15)) >> 1)
    out = sdhm16(r, preshift)
    out = _wrap16(rounding_divide_by_pot(out, -p.output_multiplier_exponent))
    out = _wrap16(out + p.output_zero_point)
    return max(-128, min(127, out))


def lut_hard_swish(input_scale: float, input_zero_point: int,
                   output_scale: float, output_zero_point: int) -> bytes:
    p = hard_swish_params(input_scale, input_zero_point, output_scale, output_zero_point)
    return _table(lambda x: hard_swish_int8(x, p), "int8", "int8")


# ---------------------------------------------------------------------------
# RESIZE_BILINEAR (int8): reference_ops::ResizeBilinearInteger
# ---------------------------------------------------------------------------

def _cdiv(a: int, b: int) -> int:
    """C++ integer division (truncates towards zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def resize_bilinear_axis(in_size: int, out_size: int, align_corners: bool,
                         half_pixel_centers: bool) -> list[tuple[int, int, int]]:
    """Per output index along one axis: (lower, upper, weight) of
    ComputeInterpolationValuesInteger, weight = scaled - 1024 * lower (the
    upper source's weight out of 1024; negative at a half-pixel border, as in
    TFLite Micro), with the 10-bit scale of ResizeBilinearInteger."""
    scale = _cdiv((1 << 10) * in_size + out_size // 2, out_size)
    if align_corners and out_size > 1:
        scale = _cdiv((1 << 10) * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    out = []
    for v in range(out_size):
        s = v * scale + _cdiv(scale, 2) - (1 << 9) if half_pixel_centers else v * scale
        lo = max(_cdiv(s, 1 << 10), 0)
        hi = min(_cdiv(s + (1 << 10) - 1, 1 << 10), in_size - 1)
        out.append((lo, hi, s - (1 << 10) * lo))
    return out


def resize_bilinear_int8(x: np.ndarray, out_h: int, out_w: int, align_corners: bool,
                         half_pixel_centers: bool) -> np.ndarray:
    """ResizeBilinearInteger on an (H, W, C) int8 array (double-rounding
    build: (sum + sign * 2^19) / 2^20, truncating)."""
    ys = resize_bilinear_axis(x.shape[0], out_h, align_corners, half_pixel_centers)
    xs = resize_bilinear_axis(x.shape[1], out_w, align_corners, half_pixel_centers)
    v = np.asarray(x, np.int64)
    out = np.zeros((out_h, out_w, x.shape[2]), np.int64)
    for oy, (y0, y1, wy) in enumerate(ys):
        for ox, (x0, x1, wx) in enumerate(xs):
            acc = (v[y0, x0] * (1024 - wy) * (1024 - wx) + v[y1, x0] * wy * (1024 - wx)
                   + v[y0, x1] * (1024 - wy) * wx + v[y1, x1] * wy * wx)
            r = np.where(acc > 0, 1 << 19, -(1 << 19))
            t = acc + r
            out[oy, ox] = np.where(t >= 0, t >> 20, -((-t) >> 20))
    return out.astype(np.int8)


def affine_quantize(x: np.ndarray, scale: float, zero_point: int,
                    dtype: str = "int8") -> np.ndarray:
    """QUANTIZE float32 -> int8/int16 (reference_ops::AffineQuantize):
    TfLiteRound(x / float(scale)) + zero point, clamped."""
    q = np.asarray(x, np.float32) / np.float32(scale)
    q64 = q.astype(np.float64)
    r = np.sign(q64) * np.floor(np.abs(q64) + 0.5)
    lo, hi = _DTYPE_RANGE[dtype]
    return np.clip(r.astype(np.int64) + zero_point, lo, hi).astype(dtype)


def float_key(bits: np.ndarray) -> np.ndarray:
    """float32 bit patterns (uint32) -> int64 keys ordered like the floats
    (-0.0 and +0.0 both 0): the sign-magnitude bits as two's complement."""
    b = np.asarray(bits, np.int64)
    mag = b & 0x7FFFFFFF
    return np.where(b >> 31 == 1, -mag, mag)


def key_float(keys: np.ndarray) -> np.ndarray:
    """Inverse of float_key: keys -> float32 values."""
    k = np.asarray(keys, np.int64)
    bits = np.where(k < 0, (1 << 31) | -k, k).astype(np.uint32)
    return bits.view(np.float32)


def quantize_float_value(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """QUANTIZE float32 -> int8/uint8 as reference_ops::AffineQuantize:
    TfLiteRound(x / float(scale)) + zero point, clamped; a quotient beyond
    the int32 range saturates (as ARM's float->int conversion does; C++ leaves
    that cast undefined)."""
    q = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    r = np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5), INT32_MIN, INT32_MAX)
    lo, hi = _DTYPE_RANGE[dtype]
    return np.clip(r.astype(np.int64) + zero_point, lo, hi)


def quantize_float_thresholds(scale: float, zero_point: int, dtype: str) -> list[int]:
    """The device's form of QUANTIZE float32 -> 8-bit: T[j] = the least float
    key (float_key) whose quantised value is >= lo + 1 + j, for the 255 steps
    of the output range. The map is monotone in the float, so the output is
    lo + the number of T[j] <= key(x): integer comparisons only, the same on
    every board whatever its float precision (NaN inputs aside)."""
    lo, hi = _DTYPE_RANGE[dtype]
    ks = np.arange(lo + 1, hi + 1, dtype=np.int64)
    left = np.full(len(ks), -0x7F800000, np.int64)  # -inf
    right = np.full(len(ks), 0x7F800000, np.int64)  # +inf: always reaches hi
    while True:
        active = left < right
        if not active.any():
            break
        mid = (left + right) // 2  # floor: keys are signed
        ok = quantize_float_value(key_float(mid), scale, zero_point, dtype) >= ks
        right = np.where(active & ok, mid, right)
        left = np.where(active & ~ok, mid + 1, left)
    return [int(v) for v in left]


# ---------------------------------------------------------------------------
# SOFTMAX (int8 -> int8)
# ---------------------------------------------------------------------------

SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    """SoftmaxParams fields that CalculateSoftmaxParams sets for int8."""
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float) -> SoftmaxParams:
    """Mirror of CalculateSoftmaxParams (softmax_common.cc) for int8 input:
    PreprocessSoftmaxScaling(beta, scale, 5) (double rounding build: capped
    at 2^31 - 1, QuantizeMultiplierGreaterThanOne) and diff_min =
    -CalculateInputRadius(5, left_shift).  TFLM requires int8 output with
    scale 1/256 and zero point -128."""
    real = min(f32(beta) * f32(input_scale)
               * float(1 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    m, left_shift = quantize_multiplier_greater_than_one(real)
    diff_min = -calculate_input_radius(SOFTMAX_SCALED_DIFF_INTEGER_BITS,
                                       left_shift)
    return SoftmaxParams(m, left_shift, diff_min)


def _softmax_exp(diff: int, p: SoftmaxParams) -> int:
    rescaled = multiply_by_quantized_multiplier_greater_than_one(
        diff, p.input_multiplier, p.input_left_shift)
    return exp_on_negative_values(rescaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS)


def softmax_int8_reference(row: Sequence[int], p: SoftmaxParams) -> list[int]:
    """reference_ops::Softmax<int8_t, int8_t> for one row, literally."""
    row = [int(v) for v in row]
    max_in_row = max(row)
    sum_of_exps = 0
    for v in row:
        d = v - max_in_row
        if d >= p.diff_min:
            sum_of_exps = wrap32(sum_of_exps + rounding_divide_by_pot(
                _softmax_exp(d, p), SOFTMAX_ACCUMULATION_INTEGER_BITS))
    shifted_scale, num_bits_over_unit = get_reciprocal(
        sum_of_exps, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    if not 0 <= exponent <= 31:
        raise ValueError("TFLITE_CHECK(0 <= exponent <= 31) fails")
    out = []
    for v in row:
        d = v - max_in_row
        if d >= p.diff_min:
            unsat = rounding_divide_by_pot(
                srdhm(shifted_scale, _softmax_exp(d, p)), exponent)
            out.append(min(max(unsat - 128, -128), 127))
        else:
            out.append(-128)
    return out


def softmax_exp_table(p: SoftmaxParams) -> list[int]:
    """256 exp values by k = max_in_row - x (0..255): the raw Q0.31
    exp_on_negative_values(rescaled diff) TFLM uses, or 0 where the diff is
    below diff_min (a 0 entry contributes nothing to the sum and yields
    -128, exactly like TFLM's skipped elements)."""
    return [(_softmax_exp(-k, p) if -k >= p.diff_min else 0)
            for k in range(256)]


def softmax_device_tables(p: SoftmaxParams) -> tuple[list[int], list[int]]:
    """The exp table split for the device: e_hi = e >> 15 (< 2^16),
    e_lo = e & 0x7FFF, i.e. two uint16 arrays of 256 entries."""
    t = softmax_exp_table(p)
    return [e >> 15 for e in t], [e & 0x7FFF for e in t]


def softmax_int8_from_table(row: Sequence[int], exp_table: Sequence[int]
                            ) -> list[int]:
    """The same computation driven by softmax_exp_table (host check of the
    table design the device uses)."""
    row = [int(v) for v in row]
    mx = max(row)
    s = 0
    for v in row:
        s += rounding_divide_by_pot(exp_table[mx - v],
                                    SOFTMAX_ACCUMULATION_INTEGER_BITS)
    scale, nbou = get_reciprocal(wrap32(s), SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = nbou + 31 - 8
    return [min(rounding_divide_by_pot(srdhm(scale, exp_table[mx - v]),
                                       exponent) - 128, 127) for v in row]


# ---------------------------------------------------------------------------
# MEAN (int8)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MeanParams:
    """Effective constants of reference_ops::QuantizedMeanOrSum (mean)."""
    multiplier: int        # after folding in 1/num_elements
    shift: int
    input_zero_point: int
    output_zero_point: int
    num_elements: int


def mean_params(input_scale: float, input_zero_point: int,
                output_scale: float, output_zero_point: int,
                num_elements: int) -> MeanParams:
    """PrepareMeanOrSumHelper (QuantizeMultiplier(double(in)/double(out)))
    followed by the num_elements fold-in of QuantizedMeanOrSum:
    shift = min(floor(log2 n), 32, 31 + shift); M = (M << shift) / n
    (int64 division), shift -= that."""
    m, s = quantize_multiplier(f32(input_scale) / f32(output_scale))
    n = int(num_elements)
    if n <= 0:
        raise ValueError("num_elements must be positive")
    k = 63 - (64 - n.bit_length())  # 63 - CountLeadingZeros(uint64 n)
    k = min(k, 32)
    k = min(k, 31 + s)
    m = wrap32((m << k) // n)
    return MeanParams(m, s - k, input_zero_point, output_zero_point, n)


def mean_int8(sums: IntOrArray, p: MeanParams) -> IntOrArray:
    """Output of QuantizedMeanOrSum (compute_sum=false) from the int32 sums
    of the raw int8 inputs over the reduced axes."""
    if _is_array(sums):
        shifted = wrap32(np.asarray(sums, np.int64)
                         - p.input_zero_point * p.num_elements)
    else:
        shifted = wrap32(int(sums) - p.input_zero_point * p.num_elements)
    y = multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift)
    return _clamp(y + p.output_zero_point, -128, 127)


def mean_hw_int8(x: np.ndarray, p: MeanParams, keep_dims: bool = True
                 ) -> np.ndarray:
    """MEAN over H and W of an NHWC int8 tensor (host reference)."""
    sums = np.asarray(x, np.int64).sum(axis=(1, 2), keepdims=keep_dims)
    return mean_int8(sums, p).astype(np.int8)


# ---------------------------------------------------------------------------
# pooling, resize, concatenation, pad
# ---------------------------------------------------------------------------

def compute_padding(in_size: int, filter_size: int, stride: int,
                    padding: str, dilation: int = 1) -> tuple[int, int, int]:
    """ComputeOutSize + ComputePaddingWithOffset (kernels/padding.h):
    returns (out_size, pad_before, offset) with pad_after = pad_before +
    offset."""
    eff = (filter_size - 1) * dilation + 1
    if padding.upper() == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding.upper() == "VALID":
        out = (in_size + stride - eff) // stride
    else:
        raise ValueError(padding)
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2, total % 2


def avg_pool_round(acc: IntOrArray, count: IntOrArray) -> IntOrArray:
    """reference_integer_ops::AveragePool rounding of the raw int8 sum:
    acc > 0 ? (acc + count/2) / count : (acc - count/2) / count, with C
    truncating division."""
    if _is_array(acc, count):
        a = np.asarray(acc, np.int64)
        c = np.asarray(count, np.int64)
        n = np.where(a > 0, a + c // 2, a - c // 2)
        q = np.abs(n) // c
        return np.where(n < 0, -q, q)
    a, c = int(acc), int(count)
    n = a + c // 2 if a > 0 else a - c // 2
    q = abs(n) // c
    return -q if n < 0 else q


def _pool_windows(in_h: int, in_w: int, fh: int, fw: int, sh: int, sw: int,
                  padding: str):
    oh, ph, _ = compute_padding(in_h, fh, sh, padding)
    ow, pw, _ = compute_padding(in_w, fw, sw, padding)
    for oy in range(oh):
        y0 = oy * sh - ph
        ys = slice(max(0, y0), min(in_h, y0 + fh))
        for ox in range(ow):
            x0 = ox * sw - pw
            xs = slice(max(0, x0), min(in_w, x0 + fw))
            yield oy, ox, ys, xs


def _pool_out_shape(x: np.ndarray, fh, fw, sh, sw, padding):
    oh = compute_padding(x.shape[1], fh, sh, padding)[0]
    ow = compute_padding(x.shape[2], fw, sw, padding)[0]
    return (x.shape[0], oh, ow, x.shape[3])


def avg_pool_int8(x: np.ndarray, filter_hw: tuple[int, int],
                  stride_hw: tuple[int, int], padding: str,
                  act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """reference_integer_ops::AveragePool on NHWC int8 (host reference).
    TFLM requires equal input/output scale and zero point; padded cells are
    excluded from the count."""
    xi = np.asarray(x, np.int64)
    out = np.zeros(_pool_out_shape(xi, *filter_hw, *stride_hw, padding),
                   np.int64)
    for oy, ox, ys, xs in _pool_windows(xi.shape[1], xi.shape[2],
                                        *filter_hw, *stride_hw, padding):
        win = xi[:, ys, xs, :]
        count = win.shape[1] * win.shape[2]
        out[:, oy, ox, :] = avg_pool_round(win.sum(axis=(1, 2)), count)
    return np.clip(out, act_min, act_max).astype(np.int8)


def max_pool_int8(x: np.ndarray, filter_hw: tuple[int, int],
                  stride_hw: tuple[int, int], padding: str,
                  act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """reference_integer_ops::MaxPool: window max (padding ignored), then
    clamped to [act_min, act_max] (the fused activation range of the
    output)."""
    xi = np.asarray(x, np.int64)
    out = np.zeros(_pool_out_shape(xi, *filter_hw, *stride_hw, padding),
                   np.int64)
    for oy, ox, ys, xs in _pool_windows(xi.shape[1], xi.shape[2],
                                        *filter_hw, *stride_hw, padding):
        out[:, oy, ox, :] = xi[:, ys, xs, :].max(axis=(1, 2))
    return np.clip(out, act_min, act_max).astype(np.int8)


def resize_nearest_indices(in_size: int, out_size: int, align_corners: bool,
                           half_pixel_centers: bool) -> list[int]:
    """reference_ops::GetNearestNeighbor for every output coordinate, in
    float32 exactly as TFLM evaluates it."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    idx = []
    for i in range(out_size):
        v = float((np.float32(i) + offset) * scale)
        r = round_half_away(v) if align_corners else int(math.floor(v))
        r = min(r, in_size - 1)
        if half_pixel_centers:
            r = max(0, r)
        idx.append(r)
    return idx


def check_concatenation(inputs: Sequence[tuple[float, int]],
                        output: tuple[float, int]) -> None:
    """ConcatenationPrepare (int8): every input must have exactly the
    output's float32 scale and zero point; TFLM does not requantise, the op is
    a plain copy.  Raises ValueError otherwise."""
    so, zo = f32(output[0]), int(output[1])
    for s, z in inputs:
        if f32(s) != so or int(z) != zo:
            raise ValueError("CONCATENATION int8 inputs must share the "
                             "output scale/zero point")


def pad_value(output_zero_point: int, constant_value: int | None = None
              ) -> int:
    """PAD / PADV2 fill value for int8: the raw constant of PADV2 (which
    TFLM requires to share the output's scale and zero point), else the
    output zero point."""
    if constant_value is not None:
        return int(constant_value)
    if not -128 <= output_zero_point <= 127:
        raise ValueError("zero point outside int8")
    return int(output_zero_point)
