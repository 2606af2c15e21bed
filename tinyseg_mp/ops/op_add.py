# ADD and MUL (int8, numpy-style broadcasting), bit-exact with TFLite Micro's
# reference kernels. op_mul.py reuses this module; param `kind` picks the op.
#   ADD: raw = t1[a] + t2[b] (each input's scaled value, host-tabulated)
#   MUL: raw = (a - a_zp) * (b - b_zp)
#   out = clamp(MultiplyByQuantizedMultiplier(raw, mult, shift) + out_zp)
# Shapes: the host folds the broadcast into 3 levels (n0, n1, n2); input
# element offsets are i0*s0 + i1*s1 + i2*s2 (stride 0 = broadcast), the
# output is dense. Operands come from the arena or, if constant, the blob.
# Blob: ADD only: t1, t2 (int32 x 256 each, by input byte) at 0 and 1024;
# at t_off: int32 thresholds T[0..act_max-act_min+1] for the array path:
# T[j] = least raw giving an output >= act_min + j (T[0] = -2^30, last
# = +2^30); constant operands at their offsets.
#
# Array path (exact in float32): ulab has no int32, so raw is estimated in
# float (e, off by at most 1, which the host checks via arr_ok) and corrected
# by the two exact comparisons raw >= T[e] and raw >= T[e+1]. ADD keeps raw
# as two exact float parts, high and low 16-bit halves, because raw needs
# up to 29 bits.
import micropython

from tinyseg_mp import backend

PARAMS = (
    "kind", "a_off", "a_src", "b_off", "b_src", "out_off",
    "n0", "n1", "n2", "sa0", "sa1", "sa2", "sb0", "sb1", "sb2",
    "a_zp", "b_zp", "out_zp", "act_min", "act_max", "mult", "shift", "arr_ok", "t_off",
)
_CHUNK = 256  # elements per ulab block: bounds the temporaries (and take's index buffer)


def run(m, p, blob):
    a = blob if p[2] else m.arena
    b = blob if p[4] else m.arena
    if backend.np is None or not p[22]:
        _binary_viper(m.arena, a, b, blob, *p)
    else:
        _binary_array(m.arena, a, b, blob, p)


def _halves(np, blob, off, n):
    # n int32 at blob[off:] as exact floats (signed high half, unsigned low half).
    mv = blob[off : off + 4 * n]
    f = backend.FLOAT
    return (np.array(np.frombuffer(mv, dtype=np.int16)[1::2], dtype=f),
            np.array(np.frombuffer(mv, dtype=np.uint16)[0::2], dtype=f))


def _block(np, buf, off, rows, cols, dtype):
    return np.frombuffer(memoryview(buf)[off : off + rows * cols], dtype=dtype).reshape((rows, cols))


def _binary_array(arena, a, b, blob, p):
    np = backend.np
    f = backend.FLOAT
    (kind, a_off, _, b_off, _, out_off, n0, n1, n2, sa0, sa1, sa2, sb0, sb1, sb2,
     a_zp, b_zp, zp, lo, hi, mult, shift, _, t_off) = p
    r = mult * 2.0 ** (shift - 31)  # the real multiplier TFLM's (mult, shift) encodes
    th, tl = _halves(np, blob, t_off, hi - lo + 2)
    if kind == 0:
        ah, al = _halves(np, blob, 0, 256)
        bh, bl = _halves(np, blob, 1024, 256)
        rh = r * 65536.0
    else:
        th = th * 65536.0 + tl  # |T| <= 2^30 + 2^16: exact
    zp_half = zp + 0.5
    out = memoryview(arena)
    # Blocks of whole level-1 rows, or column slices of one long row.
    chunk = _CHUNK if backend.name == "ulab" else 1 << 16  # CPython: RAM is no concern
    rows, cols = (1, chunk) if n2 > chunk else (chunk // n2, n2)
    for i0 in range(n0):
        for r0 in range(0, n1, rows):
            nr = min(rows, n1 - r0)
            for c0 in range(0, n2, cols):
                nc = min(cols, n2 - c0)
                # Each operand's block is contiguous: (nr or 1) x (nc or 1) elements.
                ar, ac = (nr if sa1 else 1), (nc if sa2 else 1)
                br, bc = (nr if sb1 else 1), (nc if sb2 else 1)
                oa = a_off + i0 * sa0 + r0 * sa1 + c0 * sa2
                ob = b_off + i0 * sb0 + r0 * sb1 + c0 * sb2
                if kind == 0:
                    ia = np.frombuffer(memoryview(a)[oa : oa + ar * ac], dtype=np.uint8)
                    ib = np.frombuffer(memoryview(b)[ob : ob + br * bc], dtype=np.uint8)
                    h = np.take(ah, ia).reshape((ar, ac)) + np.take(bh, ib).reshape((br, bc))
                    low = np.take(al, ia).reshape((ar, ac)) + np.take(bl, ib).reshape((br, bc))
                    e = np.floor(h * rh + low * r + zp_half)
                else:
                    x = np.array(_block(np, a, oa, ar, ac, np.int8), dtype=f) - a_zp
                    raw = x * (np.array(_block(np, b, ob, br, bc, np.int8), dtype=f) - b_zp)
                    e = np.floor(raw * r + zp_half)
                e = np.clip(e, lo, hi)
                j = np.array(e - lo, dtype=np.uint8).reshape((nr * nc,))
                # e - 1 + [raw >= T[j]] + [raw >= T[j+1]]: signs of exact differences
                # (ADD: (h - T_high) * 2^16 + (low - T_low) has the sign of raw - T).
                sh = (nr, nc)
                if kind == 0:
                    v1 = (h - np.take(th, j).reshape(sh)) * 65536.0 + (low - np.take(tl, j).reshape(sh))
                    v2 = (h - np.take(th[1:], j).reshape(sh)) * 65536.0 + (low - np.take(tl[1:], j).reshape(sh))
                else:
                    v1 = raw - np.take(th, j).reshape(sh)
                    v2 = raw - np.take(th[1:], j).reshape(sh)
                res = np.array(e - 1.0 + (v1 >= 0.0) + (v2 >= 0.0), dtype=np.int8)
                o = out_off + (i0 * n1 + r0) * n2 + c0
                out[o : o + nr * nc] = res.tobytes()


@micropython.viper
def _binary_viper(arena, a, b, blob, kind: int, a_off: int, _a_src: int, b_off: int, _b_src: int, o: int, n0: int, n1: int, n2: int, sa0: int, sa1: int, sa2: int, sb0: int, sb1: int, sb2: int, a_zp: int, b_zp: int, zp: int, lo: int, hi: int, mult: int, shift: int, _arr_ok: int, _t_off: int):
    left = 0
    right = 0 - shift
    if shift > 0:
        left = shift
        right = 0
    half = 0
    if right > 0:
        half = 1 << (right - 1)
    m_lo = mult & 0x7FFF
    m1 = (mult >> 15) & 0x7FFF
    m2 = mult >> 30
    pa = ptr8(a)
    pb = ptr8(b)
    po = ptr8(arena)
    t = ptr16(blob)
    for i0 in range(n0):
        for i1 in range(n1):
            ia = a_off + i0 * sa0 + i1 * sa1
            ib = b_off + i0 * sb0 + i1 * sb1
            for i2 in range(n2):
                if kind == 0:
                    k = 2 * int(pa[ia])
                    x = int(t[k]) | (((int(t[k + 1]) ^ 0x8000) - 0x8000) << 16)
                    k = 512 + 2 * int(pb[ib])
                    x += int(t[k]) | (((int(t[k + 1]) ^ 0x8000) - 0x8000) << 16)
                else:
                    x = (((int(pa[ia]) ^ 0x80) - 0x80) - a_zp) * (((int(pb[ib]) ^ 0x80) - 0x80) - b_zp)
                # MultiplyByQuantizedMultiplier within signed 32 bits: SRDHM as
                # floor((|x|*M + 2^30 - neg) / 2^31) on 15-bit limbs (carries
                # upwards), then a rounding right shift of the magnitude.
                x = x << left
                neg = 0
                if x < 0:
                    x = 0 - x
                    neg = 1
                x0 = x & 0x7FFF
                x1 = (x >> 15) & 0x7FFF
                x2 = x >> 30
                c = x0 * m_lo - neg
                c = x1 * m_lo + x0 * m1 + (c >> 15)
                c = x2 * m_lo + x1 * m1 + x0 * m2 + 1 + (c >> 15)
                u = (c & 0x7FFF) >> 1
                c = x2 * m1 + x1 * m2 + (c >> 15)
                v = ((x2 * m2) << 29) + (c << 14) + u
                if right > 0:
                    q = v >> right
                    if v - (q << right) >= half:
                        q += 1
                    v = q
                if neg:
                    v = 0 - v
                v += zp
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                po[o] = v & 0xFF
                o += 1
                ia += sa2
                ib += sb2


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    n0, n1, n2 = p[6], p[7], p[8]
    b.within(m, p, 0, 0, 1)
    b.least(m, p, 1, (6, 7, 8))
    b.least(m, p, 0, (9, 10, 11, 12, 13, 14))
    b.within(m, p, 18, -128, p[19])
    b.within(m, p, 19, p[18], 127)
    b.within(m, p, 20, 0, 0x7FFFFFFF)
    b.within(m, p, 21, -31, 31)
    for i in (1, 3):  # operand a, b: the arena (src 0) or the blob (src 1)
        b.within(m, p, i + 1, 0, 1)
        j = 9 if i == 1 else 12  # its strides
        s0, s1, s2 = p[j], p[j + 1], p[j + 2]
        n = (n0 - 1) * s0 + (n1 - 1) * s1 + (n2 - 1) * s2 + 1
        if p[i + 1]:
            b.span(m, p, i, n, raw, "blob")
        else:
            b.span(m, p, i, n)
        # The array path reads blocks of whole rows: rows contiguous, or broadcast.
        if p[22] and ((n2 > 1 and s2 > 1) or (n1 > 1 and s1 and s1 != (n2 if s2 else 1))):
            b.bad(m, p, j + 1, "is not a stride the array kernel can read (arr_ok set)")
    if p[22]:  # the array path's blocks: an output dimension broadcast in both operands has no extent
        for n, i in ((n1, 1), (n2, 2)):
            if n > 1 and not (p[9 + i] or p[12 + i]):
                b.bad(m, p, 6 + i, "is broadcast in both operands (their strides are 0)")
    b.span(m, p, 5, n0 * n1 * n2)
    if p[0] == 0:
        b.need_blob(m, p, raw, 2048)  # the two input tables
    if p[22]:
        b.within(m, p, 23, 0, raw)
        b.need_blob(m, p, raw, p[23] + 4 * (p[19] - p[18] + 2))
