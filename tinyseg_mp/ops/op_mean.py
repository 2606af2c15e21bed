# MEAN over H and W of an int8 NHWC tensor, as TFLite Micro's
# QuantizedMeanOrSum: per channel, the int32 sum of the raw values plus
# `bias` (= -in_zp * H*W), MultiplyByQuantizedMultiplier(mult, shift) (1/(H*W)
# is folded into mult/shift on the host), plus out_zp, clamped to int8.
# A step may sum only a band of in_h rows: `begin` starts the sums at bias,
# otherwise they continue from the int32 sums kept at acc_off (4-aligned);
# `end` writes the output, otherwise the sums go back to acc_off. A whole
# tensor is one step with begin = end = 1 (acc_off unused). No blob.
import micropython

from tinyseg_mp import backend
from tinyseg_mp.ops import common

PARAMS = ("in_off", "in_h", "in_w", "c", "out_off", "bias", "out_zp", "mult", "shift", "acc_off", "begin", "end")


def run(m, p, blob):
    if backend.np is None:
        _mean_viper(m.arena, *p)
    else:
        _mean_array(m, p)


def _mean_array(m, p):
    np = backend.np
    FLOAT = backend.FLOAT
    in_off, in_h, in_w, c, out_off, bias, out_zp, mult, shift, acc_off, begin, end = p
    # Two dots with rows of ones sum over H, then W, without a float copy of
    # the input (exact: |sum| <= 128*H*W < 2^24).
    x = common.int8_view(m, in_off, in_h, in_w * c)
    s = np.dot(np.ones((1, in_h), dtype=FLOAT), x).reshape((in_w, c))
    s = np.dot(np.ones((1, in_w), dtype=FLOAT), s)
    s += bias if begin else common.i32_floats(m.arena, acc_off, c)
    if not end:
        common.store_i32(m.arena, acc_off, s)
        return
    q = common.channel_requant(np.array([mult], dtype=FLOAT), np.array([shift], dtype=FLOAT))
    common.int8_view(m, out_off, 1, c)[:, :] = common.to_int8(common.requant(s, q), out_zp, -128, 127)


@micropython.viper
def _mean_viper(arena, in_off: int, in_h: int, in_w: int, c: int, out_off: int, bias: int, out_zp: int, mult: int, shift: int, acc_off: int, begin: int, end: int):
    n = in_h * in_w
    left = 0
    right = 0 - shift
    if shift > 0:
        left = shift
        right = 0
    mask = (1 << right) - 1
    m_hi = mult >> 15
    m_lo = mult & 0x7FFF
    a = ptr8(arena)
    h = ptr16(arena)
    for ch in range(c):
        acc = bias
        i = (acc_off >> 1) + 2 * ch
        if not begin:
            # Signed int32 from 16-bit halves: right on 32- and 64-bit viper.
            acc = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        ip = in_off + ch
        for k in range(n):
            acc += (int(a[ip]) ^ 0x80) - 0x80
            ip += c
        if not end:
            h[i] = acc & 0xFFFF
            h[i + 1] = (acc >> 16) & 0xFFFF
            continue
        # MultiplyByQuantizedMultiplier inside signed 32 bits, as in
        # op_conv2d: SaturatingRoundingDoublingHighMul on 15-bit limbs with
        # carries, then a rounding (half away from zero) right shift.
        x = acc << left
        x_hi = x >> 15
        x_lo = x & 0x7FFF
        mid1 = x_hi * m_lo
        mid2 = x_lo * m_hi
        low = (mid1 & 0x7FFF) + (mid2 & 0x7FFF)
        carry = (((low & 0x7FFF) << 15) + x_lo * m_lo) >> 30
        v = (x_hi * m_hi + 1 + (mid1 >> 15) + (mid2 >> 15) + (low >> 15) + carry) >> 1
        threshold = mask >> 1
        if v < 0:
            threshold += 1
        r = v >> right
        if (v & mask) > threshold:
            r += 1
        r += out_zp
        if r < -128:
            r = -128
        if r > 127:
            r = 127
        a[out_off + ch] = r & 0xFF


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    in_off, in_h, in_w, c, out_off, bias, out_zp, mult, shift, acc_off, begin, end = p
    b.least(m, p, 1, (1, 2, 3))
    b.span(m, p, 0, in_h * in_w * c)
    b.span(m, p, 4, c)
    b.within(m, p, 7, 0, 0x7FFFFFFF)
    b.within(m, p, 8, -31, 31)
    b.within(m, p, 10, 0, 1)
    b.within(m, p, 11, 0, 1)
    if not (begin and end):
        b.span(m, p, 9, 4 * c)
        if acc_off & 3:
            b.bad(m, p, 9, "is not 4-aligned")
