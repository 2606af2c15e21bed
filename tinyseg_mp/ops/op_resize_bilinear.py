# RESIZE_BILINEAR (int8 NHWC), bit-exact with TFLite Micro's
# ResizeBilinearInteger: for output pixel (y, x) with row entry (y0, y1, wy)
# and column entry (x0, x1, wx) (weights out of 1024, computed by the host),
#   s = v[y0,x0]*(1024-wy)*(1024-wx) + v[y1,x0]*wy*(1024-wx)
#     + v[y0,x1]*(1024-wy)*wx + v[y1,x1]*wy*wx        (|s| < 2^29)
#   out = (s + sign(s) * 2^19) / 2^20, truncating (round half away from 0).
# Blob: int16 x 4 per output row (y0, y1, wy, 0), then at x_off int16 x 4 per
# output column (x0, x1, wx, 0). Row indices are arena rows of the input
# (a band of a streamed plan gets them modulo its ring depth).
#
# Array path, exact in float32: the rows are first interpolated along x
# (|r| < 2^19), then s = 1024*(r0 + wy*dh) + wy*dl with r1 - r0 = 1024*dh + dl
# (0 <= dl < 1024) and the rounding done as nested floors of exact values.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "in_h", "in_w", "c", "out_h", "out_w", "x_off")


def run(m, p, blob):
    in_off, out_off, in_h, in_w, c, out_h, out_w, x_off = p
    np = backend.np
    if np is None:
        for oy in range(out_h):
            _row_viper(m.arena, blob, in_off, out_off + oy * out_w * c, in_w * c, c, out_w, x_off, 8 * oy)
        return
    f = backend.FLOAT
    a = memoryview(m.arena)
    xt = np.frombuffer(blob[x_off : x_off + 8 * out_w], dtype=np.int16).reshape((out_w, 4))
    x0 = np.array(xt[:, 0], dtype=np.uint16)
    x1 = np.array(xt[:, 1], dtype=np.uint16)
    wx = np.array(xt[:, 2], dtype=f).reshape((out_w, 1))
    ux = 1024.0 - wx
    yt = np.frombuffer(blob[0 : 8 * out_h], dtype=np.int16)
    row = in_w * c

    def horizontal(iy):
        v = np.frombuffer(a[in_off + iy * row : in_off + (iy + 1) * row], dtype=np.int8).reshape((in_w, c))
        return (np.array(np.take(v, x0, axis=0), dtype=f) * ux
                + np.array(np.take(v, x1, axis=0), dtype=f) * wx)

    for oy in range(out_h):
        y0, y1, wy = int(yt[4 * oy]), int(yt[4 * oy + 1]), float(yt[4 * oy + 2])
        r0 = horizontal(y0)
        d = horizontal(y1) - r0 if y1 != y0 else r0 * 0.0
        dh = np.floor(d / 1024.0)
        big = r0 + dh * wy  # s = 1024 * big + small
        small = (d - dh * 1024.0) * wy + 524288.0  # + 2^19: half up
        lo = np.floor(small / 1024.0)
        e = big + lo
        q = np.floor(e / 1024.0)
        # Half up differs from half away from zero only at a negative tie:
        # s + 2^19 a multiple of 2^20 with q <= 0.
        tie = q * 0.0 + ((small - lo * 1024.0) == 0.0) + ((e - q * 1024.0) == 0.0) + (q <= 0.0)
        q = q - (tie > 2.5)
        q = q - np.floor((q + 128.0) / 256.0) * 256.0  # TFLM's int8 cast wraps (negative half-pixel weights)
        dst = out_off + oy * out_w * c
        a[dst : dst + out_w * c] = np.array(q.reshape((out_w * c,)), dtype=np.int8).tobytes()


@micropython.viper
def _row_viper(arena, blob, src: int, dst: int, row: int, c: int, out_w: int, x_off: int, yk: int):
    a = ptr8(arena)
    t = ptr8(blob)
    r0 = src + (int(t[yk]) | (int(t[yk + 1]) << 8)) * row
    r1 = src + (int(t[yk + 2]) | (int(t[yk + 3]) << 8)) * row
    wy = ((int(t[yk + 4]) | (int(t[yk + 5]) << 8)) ^ 0x8000) - 0x8000
    uy = 1024 - wy
    for ox in range(out_w):
        k = x_off + 8 * ox
        c0 = (int(t[k]) | (int(t[k + 1]) << 8)) * c
        c1 = (int(t[k + 2]) | (int(t[k + 3]) << 8)) * c
        wx = ((int(t[k + 4]) | (int(t[k + 5]) << 8)) ^ 0x8000) - 0x8000
        ux = 1024 - wx
        for j in range(c):
            v00 = ((int(a[r0 + c0 + j]) ^ 0x80) - 0x80) * ux + ((int(a[r0 + c1 + j]) ^ 0x80) - 0x80) * wx
            v10 = ((int(a[r1 + c0 + j]) ^ 0x80) - 0x80) * ux + ((int(a[r1 + c1 + j]) ^ 0x80) - 0x80) * wx
            s = v00 * uy + v10 * wy
            if s > 0:
                q = (s + 524288) >> 20
            else:
                q = 0 - ((524288 - s) >> 20)
            a[dst] = q & 0xFF  # wraps like TFLM's int8 cast
            dst += 1


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 1, (2, 3, 4, 5, 6))
    b.within(m, p, 7, 8 * p[5], raw)
    b.need_blob(m, p, raw, p[7] + 8 * p[6])
    b.span(m, p, 0, p[2] * p[3] * p[4])
    b.span(m, p, 1, p[5] * p[6] * p[4])
    # The row and column entries index the input (read at load: a damaged
    # entry would read outside it).
    t = b.step_blob(m)
    for base, n, lim, what in ((0, p[5], p[2], "row"), (p[7], p[6], p[3], "column")):
        for k in range(n):
            for j in (0, 2):
                v = t[base + 8 * k + j] | (t[base + 8 * k + j + 1] << 8)
                if v >= lim:  # int16 read as unsigned: negative is out of range too
                    b.bad(m, p, "blob", "%s entry %d indexes %d of %d" % (what, k, v, lim))
