# SOFTMAX int8 -> int8 over the last axis, bit-exact with TFLite Micro's
# reference kernel (gemmlowp fixed point). Per row: max, then with k = max - x
#   sum = sum of acc[k];  (scale, e) = GetReciprocal(sum, 12)
#   out = RoundingDivideByPOT(SRDHM(scale, exp[k]), e) - 128  (at most 127)
# Blob (host-computed for the layer's beta and input scale): exp[k] as uint16
# high (>> 15) and low (& 0x7FFF) parts, 256 each, then acc[k] =
# RoundingDivideByPOT(exp[k], 12) as uint32 x 256. exp[k] is 0 where TFLM
# skips the element (k beyond -diff_min), which gives TFLM's -128.
# The per-row work is 32-bit fixed point that float32 arrays cannot do
# exactly, so MicroPython (ulab or not) runs the viper kernel; CPython's numpy
# backend runs the same integer arithmetic vectorised in int64.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "rows", "depth")


def run(m, p, blob):
    if backend.name == "numpy":
        _softmax_int64(backend.np, m.arena, blob, p[0], p[1], p[2], p[3])
    else:
        _softmax(m.arena, blob, p[0], p[1], p[2], p[3])


def _softmax_int64(np, arena, blob, i, o, rows, depth):
    # CPython only (numpy int64): SRDHM(a, b) = floor((a*b + 2^30) / 2^31) and
    # gemmlowp's saturating left shifts, on every row at once.
    def srdhm(a, b):
        return (a * b + (1 << 30)) >> 31

    def sat_shl(v, k):
        t = (1 << (31 - k)) - 1
        return np.where(v > t, (1 << 31) - 1, np.where(v < -t, -(1 << 31), v << k))

    x = np.frombuffer(arena, np.int8, rows * depth, i).reshape(rows, depth).astype(np.int64)
    k = x.max(axis=1, keepdims=True) - x
    t = np.frombuffer(blob, np.uint16, 512).astype(np.int64)
    e = ((t[:256] << 15) | t[256:])[k]
    s = np.frombuffer(blob, np.uint32, 256, 1024).astype(np.int64)[k].sum(axis=1, keepdims=True)
    n = 32 - np.frexp(s.astype(np.float64))[1].astype(np.int64)  # CountLeadingZeros(s)
    hd = s << (n - 1)
    x = 1515870810 + srdhm(hd, -1010580540)
    for _ in range(3):
        x = x + sat_shl(srdhm(x, (1 << 29) - srdhm(hd, x)), 2)
    x = sat_shl(x, 1)
    ex = 35 - n
    v = srdhm(x, e)
    q = (v >> ex) + ((v & ((1 << ex) - 1)) >= (1 << (ex - 1)))
    out = np.frombuffer(memoryview(arena)[o : o + rows * depth], np.int8).reshape(rows, depth)
    out[:] = np.minimum(q - 128, 127)


@micropython.viper
def _softmax(arena, blob, i: int, o: int, rows: int, depth: int):
    a = ptr8(arena)
    t = ptr16(blob)
    # Constants of 2^30 and more are built at run time from variables: as
    # literals (or folded literal expressions) they would be Python objects,
    # not machine ints, on 32-bit viper.
    s16 = 16
    b29 = 1 << 29
    b30 = b29 << 1
    imax = (b30 - 1) + b30  # 2^31 - 1
    imin = 0 - imax - 1
    # Q2.29 constants of one_over_one_plus_x_for_x_in_0_1: 48/17, -32/17
    c48 = (0x5A5A << s16) | 0x5A5A
    cn32 = 0 - ((0x3C3C << s16) | 0x3C3C)
    for row in range(rows):
        mx = -128
        for c in range(depth):
            v = (int(a[i + c]) ^ 0x80) - 0x80
            if v > mx:
                mx = v
        s = 0
        for c in range(depth):
            k = 512 + 2 * (mx - ((int(a[i + c]) ^ 0x80) - 0x80))
            s += int(t[k]) | (int(t[k + 1]) << 16)
        # GetReciprocal(s, 12): n = CountLeadingZeros(s) and hd = s << (n - 1),
        # which is RoundingHalfSum((s << n) - 2^31, 2^31 - 1).
        hd = s
        n = 1
        while hd > 0 and hd < b30:  # hd > 0: a damaged table (sum 0) must not hang
            hd = hd << 1
            n += 1
        # Newton-Raphson in Q2.29: x = 48/17 + hd*(-32/17), then 3 times
        # x += Rescale<2>(x * (1 - hd*x)); seven SRDHM, one inlined body.
        x = 0
        y = 0
        for step in range(7):
            if step == 0:
                pa = hd
                pb = cn32
            elif step & 1:
                pa = hd
                pb = x
            else:
                pa = x
                pb = y
            # SRDHM(pa, pb) = +-floor((|pa*pb| + 2^30 - neg) / 2^31), 15-bit limbs
            neg = 0
            if pa < 0:
                pa = 0 - pa
                neg = 1
            if pb < 0:
                pb = 0 - pb
                neg ^= 1
            m_lo = pb & 0x7FFF
            m1 = (pb >> 15) & 0x7FFF
            m2 = pb >> 30
            x0 = pa & 0x7FFF
            x1 = (pa >> 15) & 0x7FFF
            x2 = pa >> 30
            c = x0 * m_lo - neg
            c = x1 * m_lo + x0 * m1 + (c >> 15)
            c = x2 * m_lo + x1 * m1 + x0 * m2 + 1 + (c >> 15)
            u = (c & 0x7FFF) >> 1
            c = x2 * m1 + x1 * m2 + (c >> 15)
            r = ((x2 * m2) << 29) + (c << 14) + u
            if neg:
                r = 0 - r
            if step == 0:
                x = c48 + r
            elif step & 1:
                y = b29 - r
            else:  # saturating << 2 (gemmlowp Rescale<2> from Q4)
                if r > b29 - 1:
                    r = imax
                elif r < 1 - b29:
                    r = imin
                else:
                    r = r << 2
                x += r
        # Rescale<0>(ExactMulByPot<-1>(x)): saturating << 1 gives the scale.
        if x > b30 - 1:
            x = imax
        elif x < 1 - b30:
            x = imin
        else:
            x = x << 1
        e = 35 - n  # num_bits_over_unit + 31 - 8
        half = 1 << (e - 1)
        x0 = x & 0x7FFF
        x1 = (x >> 15) & 0x7FFF
        x2 = x >> 30
        for c in range(depth):
            k = mx - ((int(a[i + c]) ^ 0x80) - 0x80)
            # SRDHM(scale, exp[k]) (both >= 0), then RoundingDivideByPOT(., e)
            m_lo = int(t[256 + k])
            m1 = int(t[k]) & 0x7FFF
            m2 = int(t[k]) >> 15
            w = x0 * m_lo
            w = x1 * m_lo + x0 * m1 + (w >> 15)
            w = x2 * m_lo + x1 * m1 + x0 * m2 + 1 + (w >> 15)
            u = (w & 0x7FFF) >> 1
            w = x2 * m1 + x1 * m2 + (w >> 15)
            v = ((x2 * m2) << 29) + (w << 14) + u
            q = v >> e
            if v - (q << e) >= half:
                q += 1
            q -= 128
            if q > 127:
                q = 127
            a[o + c] = q & 0xFF
        i += depth
        o += depth


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 0, (2,))
    b.least(m, p, 1, (3,))  # a row of no values has no maximum
    b.span(m, p, 0, p[2] * p[3])
    b.span(m, p, 1, p[2] * p[3])
    b.need_blob(m, p, raw, 2048)
