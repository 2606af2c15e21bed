# Helpers shared by the array kernels (numpy / ulab backends).
from tinyseg_mp import backend

_P15 = 32768.0
_P30 = 1073741824.0


def i32_floats(blob, offset, count):
    """`count` little-endian int32 from blob[offset:], as a float array.
    ulab has no int32, so each value is read as a signed high and an unsigned
    low 16-bit half."""
    np = backend.np
    mv = blob[offset : offset + 4 * count]
    lo = np.frombuffer(mv, dtype=np.uint16)
    hi = np.frombuffer(mv, dtype=np.int16)
    return np.array(hi[1::2], dtype=backend.FLOAT) * 65536.0 + np.array(lo[0::2], dtype=backend.FLOAT)


def channel_requant(mult, shift):
    """Per-channel constants for requant() from TFLM's (multiplier, shift)."""
    np = backend.np
    m_hi = np.floor(mult / _P15)
    left = np.maximum(shift, 0.0)
    right = np.maximum(-shift, 0.0)
    return (m_hi, mult - m_hi * _P15, 2.0 ** left, 2.0 ** right)


def requant(acc, q):
    """TFLite Micro's MultiplyByQuantizedMultiplier on a float array of exact
    integer accumulators, per-channel constants `q` from channel_requant()
    broadcast along the rows. SaturatingRoundingDoublingHighMul equals
    floor((x*M + 2^30) / 2^31); it is done on 15-bit limbs so every
    intermediate stays an exact float, then a rounding right shift (half away
    from zero)."""
    np = backend.np
    m_hi, m_lo, left_pow, right_pow = q
    x = acc * left_pow
    x_hi = np.floor(x / _P15)
    x_lo = x - x_hi * _P15
    mid1 = x_hi * m_lo
    mid2 = x_lo * m_hi
    mid1_hi = np.floor(mid1 / _P15)
    mid2_hi = np.floor(mid2 / _P15)
    low = (mid1 - mid1_hi * _P15) + (mid2 - mid2_hi * _P15)
    low_hi = np.floor(low / _P15)
    carry = np.floor(((low - low_hi * _P15) * _P15 + x_lo * m_lo) / _P30)
    v = np.floor((x_hi * m_hi + 1.0 + mid1_hi + mid2_hi + low_hi + carry) / 2.0)
    q = np.floor(v / right_pow)
    rem = v - q * right_pow
    threshold = np.floor((right_pow - 1.0) / 2.0) + np.where(v < 0.0, 1.0, 0.0)
    return q + np.where(rem > threshold, 1.0, 0.0)


def to_int8(values, zero_point, lo, hi):
    """Add the output zero point, clamp to [lo, hi] and convert to int8."""
    np = backend.np
    return np.array(np.clip(values + zero_point, lo, hi), dtype=np.int8)


def int8_view(m, offset, rows, cols):
    """A (rows, cols) int8 array over the arena bytes of model m (shares memory)."""
    np = backend.np
    return np.frombuffer(memoryview(m.arena)[offset : offset + rows * cols], dtype=np.int8).reshape((rows, cols))
