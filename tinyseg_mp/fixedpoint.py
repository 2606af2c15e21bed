# Device-side fixed-point arithmetic, bit-exact with TFLite Micro.
#
# Runs unchanged under MicroPython and CPython.  Rounding is TFLM's default
# double rounding (TFLITE_SINGLE_ROUNDING is not defined in the builds we
# match): MultiplyByQuantizedMultiplier(x, M, shift) =
#     RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << l, M), r)
# with l = max(shift, 0), r = max(-shift, 0).
#
# Multiplier representation (what a bundle stores per channel):
#     m_hi = M >> 15      (0 .. 65535, a uint16)
#     m_lo = M & 0x7FFF   (0 .. 32767, a uint16)
#     shift               (-31 .. 30, an int8)
# for a quantized multiplier 0 <= M < 2**31.  Everything below is derived
# from these three small numbers.
#
# SRDHM as a floor.  gemmlowp computes, for p = a*b,
#     nudge = 2**30 if p >= 0 else 1 - 2**30;  h = trunc((p + nudge) / 2**31)
# Claim: h = floor((p + 2**30) / 2**31) for every p (saturation aside).
#   p >= 0: p + 2**30 > 0, so truncation is floor.
#   p < 0, p = -q (q >= 1): h = -floor((q + 2**30 - 1) / 2**31) because
#     p + nudge = -(q + 2**30 - 1) < 0 truncates toward zero.  The right side
#     is floor((2**30 - q) / 2**31) = -ceil((q - 2**30) / 2**31), and for
#     integers ceil(n / d) = floor((n + d - 1) / d), so it equals
#     -floor((q - 2**30 + 2**31 - 1) / 2**31) = -floor((q + 2**30 - 1) / 2**31).
# Hence, writing a = -P for a negative operand,
#     SRDHM(a, M) = floor((P*M + 2**30) / 2**31)       if a >= 0
#                 = -floor((P*M + 2**30 - 1) / 2**31)  if a < 0
# and mbqm() evaluates the floor on the magnitude P in base 2**15 limbs, so
# every product, carry and partial sum is non-negative and below 2**31.
# RoundingDivideByPOT rounds half away from zero, so it is odd-symmetric and
# can also be applied to the magnitude before restoring the sign.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_MASK15 = const(0x7FFF)


def split_multiplier(m):
    # (m_hi, m_lo) for 0 <= m < 2**31
    return m >> 15, m & _MASK15


def mbqm(x, m_hi, m_lo, shift):
    # TFLM MultiplyByQuantizedMultiplier(int32 x, M, shift), M = m_hi*2**15 +
    # m_lo.  Valid for |x * 2**max(shift, 0)| < 2**31 and -31 <= shift.
    # Every intermediate value v satisfies |v| < 2**31 (only + - * >> << &
    # and comparisons), so the body may be pasted into @micropython.viper
    # code on 32-bit boards.
    r = 0
    if shift > 0:
        x = x << shift
    else:
        r = 0 - shift
    neg = 0
    if x < 0:
        x = 0 - x
        neg = 1
    # P = x2*2**30 + x1*2**15 + x0 ;  M = m2*2**30 + m1*2**15 + m_lo
    x0 = x & 0x7FFF
    x1 = (x >> 15) & 0x7FFF
    x2 = x >> 30
    m1 = m_hi & 0x7FFF
    m2 = m_hi >> 15
    # P*M + 2**30 - neg, column by column (base 2**15), carrying upwards
    t = x0 * m_lo - neg                       # in [-1, 2**30)
    t = x1 * m_lo + x0 * m1 + (t >> 15)       # < 2**31 - 2**17 + 2**15
    t = x2 * m_lo + x1 * m1 + x0 * m2 + 1 + (t >> 15)   # the 2**30 nudge
    u = (t & 0x7FFF) >> 1
    t = x2 * m1 + x1 * m2 + (t >> 15)
    # floor(./2**31): columns >= 2**45 count half, the 2**30 column's low bit
    # and everything below drop out
    h = ((x2 * m2) << 29) + (t << 14) + u     # partial sums <= h < 2**31
    if r > 0:
        q = h >> r
        if h - (q << r) >= (1 << (r - 1)):
            q = q + 1
        h = q
    if neg:
        return 0 - h
    return h


def srdhm(a, b):
    # gemmlowp SaturatingRoundingDoublingHighMul for int32 a, b (not both
    # -2**31), int32-safe: the product is unchanged by negating both.
    if b < 0:
        a = 0 - a
        b = 0 - b
    return mbqm(a, b >> 15, b & _MASK15, 0)


def rdbpot(x, e):
    # gemmlowp RoundingDivideByPOT(x, e), 0 <= e <= 31, round half away
    if e <= 0:
        return x
    if x < 0:
        return 0 - rdbpot(0 - x, e)
    q = x >> e
    if x - (q << e) >= (1 << (e - 1)):
        q = q + 1
    return q


# ---------------------------------------------------------------------------
# Array requantisation for numpy / ulab (float arrays, exact in float32)
#
# The array module is passed in as the first argument ``np`` (ulab.numpy on
# the board, numpy on the host).  Only floor, + - *, scalar and broadcast
# (rows, C) x (C,) arithmetic and clip are used: no integer dtypes, astype or
# division.  Every multiplication by a power of two is exact; every other
# product, sum and floor argument is an integer of magnitude <= 2**24, hence
# exact in float32.
#
# Method.  a = acc (|a| < 2**24) = ah*4096 + al, 0 <= al < 4096 (so
# |ah| <= 4096).  M' = M << max(shift, 0) (shift <= 3) in balanced base-4096
# limbs M' = m2*2**24 + m1*4096 + m0 with m0, m1 in [-2048, 2047], 0 <= m2 <=
# 1025.  Then a*M' + 2**30 = ah*m2*2**36 + s2*2**24 + (low part < 2**24) with
#   s0 = al*m0                     |s0| < 2**23
#   s1 = ah*m0 + al*m1 + fl(s0/4096)    |s1| <= 2**24
#   s2 = ah*m1 + al*m2 + fl(s1/4096) + 64   |s2| < 2**24
# and SRDHM = floor((a*M' + 2**30) / 2**31) = ah*m2*32 + floor(s2/128), an
# integer h with |h| <= |a * 2**max(shift,0)| < 2**24 (required).  The
# rounding right shift by r = max(-shift, 0) >= 1 rounds up iff the remainder
# exceeds gemmlowp's threshold 2**(r-1) - 1 + [h<0]:
#   q = floor(h/2**r); rem = h - q*2**r in [0, 2**r)
#   result = q + 1 + floor((rem - [h<0] - 2**(r-1)) / 2**r)
# (the floor is 0 or -1; its argument has magnitude <= 2**23 + 1), where
# [h<0] = -floor(h * 2**-25).  r = 0 uses "2**(r-1)" = 1 and [h<0] = 0 so the
# floor is -1.  For r >= 25 the result is 0 for every |h| < 2**24, which the
# parameters encode as M' = 0, r = 0.  The "+ 1" is merged with the zero
# point.  No operation rounds: tests/test_fixedpoint.py runs this code on an
# instrumented array type that checks every float32 result against float64.
# ---------------------------------------------------------------------------

def requant_channel(m_hi, m_lo, shift):
    # Per-channel float parameters for requant_rows, from the stored
    # (m_hi, m_lo, shift); small-int arithmetic only.
    # Returns (m0, m1, m2, m2x32, inv2r, p2r, half, negs).
    left = 0
    r = 0
    if shift > 0:
        left = shift
    else:
        r = 0 - shift
    if left > 3:
        from tinyseg_mp.bundle import BundleError  # a ValueError: the bundle's tables are out of range

        raise BundleError("requant_rows supports shift <= 3, the bundle has %d: a damaged bundle, or run it with "
                          "the viper backend" % shift)
    if r >= 25 or (m_hi == 0 and m_lo == 0):
        return (0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0)
    # 12-bit digits of M' = M << left, M = m_hi*2**15 + m_lo
    d0 = (m_lo << left) & 4095
    c = (m_lo << left) >> 12               # bits 12.. of m_lo << left (< 2**6)
    v = (m_hi << (3 + left)) + c           # M' >> 12, < 2**22
    d1 = v & 4095
    d2 = v >> 12
    if d0 >= 2048:
        d0 = d0 - 4096
        d1 = d1 + 1
    if d1 >= 2048:
        d1 = d1 - 4096
        d2 = d2 + 1
    if r > 0:
        return (float(d0), float(d1), float(d2), float(d2 * 32),
                1.0 / (1 << r), float(1 << r), float(1 << (r - 1)),
                1.0 / (1 << 25))
    return (float(d0), float(d1), float(d2), float(d2 * 32),
            1.0, 1.0, 1.0, 0.0)


def requant_arrays(np, m_hi, m_lo, shift, dtype=None):
    # Column parameter arrays (a tuple of 8 1-D float arrays of length C)
    # from per-channel sequences m_hi, m_lo, shift.  dtype defaults to
    # np.float (ulab); pass numpy.float32 on the host to emulate a board.
    if dtype is None:
        dtype = np.float
    n = len(shift)
    cols = [[0.0] * n for _ in range(8)]
    for c in range(n):
        p = requant_channel(m_hi[c], m_lo[c], shift[c])
        for k in range(8):
            cols[k][c] = p[k]
    return tuple([np.array(col, dtype=dtype) for col in cols])


def requant_rows(np, acc, p, zp=0, lo=None, hi=None):
    # Exact TFLM MultiplyByQuantizedMultiplier(acc, M[c], shift[c]) + zp,
    # clipped to [lo, hi] when both are given, for a 2-D float array ``acc``
    # of shape (rows, C) holding integers with |acc * 2**max(shift, 0)| <
    # 2**24.  ``p`` is the tuple from requant_arrays (broadcast along rows).
    # Returns a float array of exact integers.
    m0, m1, m2, m2x32, inv2r, p2r, half, negs = p
    ah = np.floor(acc * (1.0 / 4096))
    al = acc - ah * 4096.0
    c = np.floor((al * m0) * (1.0 / 4096))
    c = np.floor((ah * m0 + al * m1 + c) * (1.0 / 4096))
    s2 = ah * m1 + al * m2 + c + 64.0
    h = ah * m2x32 + np.floor(s2 * (1.0 / 128))
    q = np.floor(h * inv2r)
    rem = h - q * p2r
    y = q + np.floor((rem + np.floor(h * negs) - half) * inv2r)
    y = y + (zp + 1)
    if lo is not None and hi is not None:
        y = np.clip(y, lo, hi)
    return y


# ---------------------------------------------------------------------------
# SOFTMAX int8 -> int8, device half (host: quant.softmax_device_tables)
# ---------------------------------------------------------------------------

def softmax_acc_table(e_hi, e_lo):
    # Rescale<12>(exp) = RoundingDivideByPOT(e, 12) for each table entry
    # (values <= 2**19), from the split exp table.  Built once per layer.
    t = [0] * len(e_hi)
    for k in range(len(e_hi)):
        v = (e_hi[k] << 3) + (e_lo[k] >> 12)
        if (e_lo[k] & 4095) >= 2048:
            v = v + 1
        t[k] = v
    return t


def softmax_recip(s):
    # GetReciprocal(sum_of_exps, 12) for 0 < s < 2**31.  Returns
    # (shifted_scale, exponent) with exponent = num_bits_over_unit + 31 - 8.
    v = s
    n = 1
    while v < 0x40000000:
        v = v << 1
        n = n + 1
    # n = CountLeadingZeros(s); (s << n) - 2**31 = (v - 2**30) << 1, and
    # RoundingHalfSum(that, 2**31 - 1) = v: the half denominator.
    hd = v
    # one_over_one_plus_x_for_x_in_0_1, Q2.29 Newton-Raphson
    x = 1515870810 + srdhm(hd, -1010580540)
    for _ in range(3):
        t = 0x20000000 - srdhm(hd, x)
        t = srdhm(x, t)
        if t > 0x1FFFFFFF:
            t = 0x7FFFFFFF
        elif t < -0x1FFFFFFF:
            t = -0x7FFFFFFF - 1
        else:
            t = t << 2
        x = x + t
    if x > 0x3FFFFFFF:
        x = 0x7FFFFFFF
    elif x < -0x3FFFFFFF:
        x = -0x7FFFFFFF - 1
    else:
        x = x << 1
    return x, 35 - n


def softmax_row(row, out, e_hi, e_lo, acc):
    # One row of TFLM's int8 softmax.  ``row``: indexable int8 values
    # (Python ints, e.g. array('b') or a ulab int8 vector); ``out``: writable,
    # receives the int8 results.  e_hi/e_lo: the split exp table by
    # max - x; acc: softmax_acc_table(e_hi, e_lo).
    n = len(row)
    mx = row[0]
    for i in range(1, n):
        if row[i] > mx:
            mx = row[i]
    s = 0
    for i in range(n):
        s = s + acc[mx - row[i]]
    scale, e = softmax_recip(s)
    for i in range(n):
        d = mx - row[i]
        v = mbqm(scale, e_hi[d], e_lo[d], 0 - e) - 128
        if v > 127:
            v = 127
        out[i] = v
    return out
