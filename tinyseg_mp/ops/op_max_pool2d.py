# MAX_POOL_2D: int8 NHWC max pooling, as TFLite Micro's reference kernel:
# the window max over cells inside the input (padding ignored), clamped to
# the fused activation range [act_min, act_max]. No blob.
# A step computes output rows oy0..oy0+out_h-1 (row oy0 at out_off) from an
# input held as a ring of in_ring rows (input row iy at
# in_off + (iy % in_ring) * in_w * c), as op_conv2d; a whole tensor is
# in_ring = in_h, oy0 = 0.
import micropython

from tinyseg_mp import backend
from tinyseg_mp.ops import common

PARAMS = (
    "in_off", "in_h", "in_w", "c", "out_off", "out_h", "out_w",
    "f_h", "f_w", "stride_h", "stride_w", "pad_top", "pad_left", "act_min", "act_max",
    "in_ring", "oy0",
)


def run(m, p, blob):
    if backend.np is None:
        _max_viper(m.arena, *p)
    else:
        _max_array(m, p)


def _max_array(m, p):
    np = backend.np
    in_off, in_h, in_w, c, out_off, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo, hi, in_ring, oy0 = p
    # One input row padded left/right with -128 (neutral for max), so each
    # filter column is a plain (out_w, c) view; padding bytes stay as filled.
    row, row_arr = common.padded_row(in_w, out_w, s_w, f_w, 1, pad_l, c, -128)
    arena = memoryview(m.arena)
    n = in_w * c
    for oy in range(oy0, oy0 + out_h):
        y0 = oy * s_h - pad_t
        mx = None
        for iy in range(max(0, y0), min(in_h, y0 + f_h)):
            src = in_off + (iy % in_ring) * n
            row[pad_l * c : pad_l * c + n] = arena[src : src + n]
            for kx in range(f_w):
                tv = common.tap(row_arr, kx * c, out_w, s_w, c)
                mx = tv.copy() if mx is None else np.maximum(mx, tv)
        # Values are within int8 already: clamp, convert, copy into the arena.
        res = np.array(np.clip(mx, lo, hi), dtype=np.int8)
        dst = out_off + (oy - oy0) * out_w * c
        arena[dst : dst + out_w * c] = res.tobytes()


@micropython.viper
def _max_viper(arena, in_off: int, in_h: int, in_w: int, c: int, out_off: int, out_h: int, out_w: int, f_h: int, f_w: int, s_h: int, s_w: int, pad_t: int, pad_l: int, lo: int, hi: int, in_ring: int, oy0: int):
    a = ptr8(arena)
    o = out_off
    for oy in range(oy0, oy0 + out_h):
        y0 = oy * s_h - pad_t
        y1 = y0 + f_h
        if y0 < 0:
            y0 = 0
        if y1 > in_h:
            y1 = in_h
        for ox in range(out_w):
            x0 = ox * s_w - pad_l
            x1 = x0 + f_w
            if x0 < 0:
                x0 = 0
            if x1 > in_w:
                x1 = in_w
            for ch in range(c):
                r = -128
                for iy in range(y0, y1):
                    ip = in_off + ((iy % in_ring) * in_w + x0) * c + ch
                    for ix in range(x0, x1):
                        v = (int(a[ip]) ^ 0x80) - 0x80
                        if v > r:
                            r = v
                        ip += c
                if r < lo:
                    r = lo
                if r > hi:
                    r = hi
                a[o] = r & 0xFF
                o += 1



def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.pool_window(m, p)
