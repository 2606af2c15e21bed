# Helpers shared by the array kernels (numpy / ulab backends).
# Array kernels only: the viper backend never imports fixedpoint (RAM).
from tinyseg_mp import backend


def i32_floats(blob, offset, count):
    """`count` little-endian int32 from blob[offset:], as a float array.
    ulab has no int32, so each value is read as a signed high and an unsigned
    low 16-bit half."""
    np = backend.np
    mv = blob[offset : offset + 4 * count]
    lo = np.frombuffer(mv, dtype=np.uint16)
    hi = np.frombuffer(mv, dtype=np.int16)
    return np.array(hi[1::2], dtype=backend.FLOAT) * 65536.0 + np.array(lo[0::2], dtype=backend.FLOAT)


def store_i32(buf, offset, values):
    """Store a float array of exact integers (|v| < 2^31) at buf[offset:] as
    little-endian int32, the inverse of i32_floats: a signed high and an
    unsigned low 16-bit half each (ulab has no int32)."""
    np = backend.np
    v = values.reshape((values.size,))
    hi = np.floor(v / 65536.0)
    mv = memoryview(buf)[offset : offset + 4 * values.size]
    np.frombuffer(mv, dtype=np.uint16)[0::2] = np.array(v - hi * 65536.0, dtype=np.uint16)
    np.frombuffer(mv, dtype=np.int16)[1::2] = np.array(hi, dtype=np.int16)


def channel_requant(mult, shift):
    """Per-channel constants for requant() from TFLM's (multiplier, shift),
    given as float arrays of exact integers (from i32_floats)."""
    from tinyseg_mp import fixedpoint

    m = [int(v) for v in mult]
    return fixedpoint.requant_arrays(backend.np, [v >> 15 for v in m], [v & 0x7FFF for v in m],
                                     [int(v) for v in shift], backend.FLOAT)


def requant(acc, q):
    """TFLite Micro's MultiplyByQuantizedMultiplier on a float array of exact
    integer accumulators (|acc| < 2^24), per-channel constants `q` from
    channel_requant() broadcast along the rows; exact even in float32."""
    from tinyseg_mp import fixedpoint

    return fixedpoint.requant_rows(backend.np, acc, q)


def to_int8(values, zero_point, lo, hi):
    """Add the output zero point, clamp to [lo, hi] and convert to int8."""
    np = backend.np
    return np.array(np.clip(values + zero_point, lo, hi), dtype=np.int8)


def int8_view(m, offset, rows, cols):
    """A (rows, cols) int8 array over the arena bytes of model m (shares memory)."""
    np = backend.np
    return np.frombuffer(memoryview(m.arena)[offset : offset + rows * cols], dtype=np.int8).reshape((rows, cols))


def padded_row(in_w, out_w, s_w, k_w, d_w, pad_l, c, fill):
    """A buffer for one input row, `pad_l` pixels of `fill` on the left and
    room on the right for every filter column, and its int8 array view.
    Input bytes go at pad_l * c; the padding keeps its fill."""
    span = max((out_w * s_w + (k_w - 1) * d_w + 1) * c, (pad_l + in_w) * c)
    row = bytearray(bytes((fill & 0xFF,)) * span)
    return row, backend.np.frombuffer(row, dtype=backend.np.int8)


def tap(row_arr, start, out_w, s_w, c):
    """The (out_w, c) view of a padded row that the filter column whose first
    byte is `start` sees, for every output pixel (stride s_w)."""
    return row_arr[start : start + out_w * s_w * c].reshape((out_w, s_w * c))[:, :c]
