# AVERAGE_POOL_2D: int8 NHWC average pooling, as TFLite Micro's reference
# kernel: the raw sum over the window's cells inside the input, divided by
# that cell count (padding not counted) rounding half away from zero
# ((sum +- count/2) / count, C truncating division), clamped to
# [act_min, act_max]. No blob.
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
        _avg_viper(m.arena, *p)
    else:
        _avg_array(m, p)


def _avg_array(m, p):
    np = backend.np
    FLOAT = backend.FLOAT
    in_off, in_h, in_w, c, out_off, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo, hi, in_ring, oy0 = p
    # Row padded left/right with zeros (adds nothing to a sum), so each filter
    # column is a plain (out_w, c) view; padding bytes stay zero.
    row, row_arr = common.padded_row(in_w, out_w, s_w, f_w, 1, pad_l, c, 0)
    arena = memoryview(m.arena)
    n = in_w * c
    # Cells per window column inside the input, per output column, as (out_w, 1).
    cols = np.zeros((out_w, 1), dtype=FLOAT)
    for ox in range(out_w):
        x0 = ox * s_w - pad_l
        cols[ox, 0] = min(in_w, x0 + f_w) - max(0, x0)
    for oy in range(oy0, oy0 + out_h):
        y0 = oy * s_h - pad_t
        acc = np.zeros((out_w, c), dtype=FLOAT)
        rows = 0
        for iy in range(max(0, y0), min(in_h, y0 + f_h)):
            src = in_off + (iy % in_ring) * n
            row[pad_l * c : pad_l * c + n] = arena[src : src + n]
            row_f = np.array(row_arr, dtype=FLOAT)
            for kx in range(f_w):
                acc += common.tap(row_f, kx * c, out_w, s_w, c)
            rows += 1
        count = cols * rows
        # (acc + count/2) / count for acc > 0, else (acc - count/2) / count,
        # truncated toward zero; the float quotient is exact enough because
        # |result| <= 128 while the gap to the next integer is >= 1/count.
        half = np.floor(count / 2.0)
        num = acc + np.where(acc > 0.0, 1.0, -1.0) * half
        quo = np.floor(abs(num) / count)
        res = np.where(num < 0.0, -quo, quo)
        res = np.array(np.clip(res, lo, hi), dtype=np.int8)
        dst = out_off + (oy - oy0) * out_w * c
        arena[dst : dst + out_w * c] = res.tobytes()


@micropython.viper
def _avg_viper(arena, in_off: int, in_h: int, in_w: int, c: int, out_off: int, out_h: int, out_w: int, f_h: int, f_w: int, s_h: int, s_w: int, pad_t: int, pad_l: int, lo: int, hi: int, in_ring: int, oy0: int):
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
            count = (y1 - y0) * (x1 - x0)
            for ch in range(c):
                acc = 0
                for iy in range(y0, y1):
                    ip = in_off + ((iy % in_ring) * in_w + x0) * c + ch
                    for ix in range(x0, x1):
                        acc += (int(a[ip]) ^ 0x80) - 0x80
                        ip += c
                # Round half away from zero; // only on non-negative values
                # so floor and C's truncation agree.
                if acc > 0:
                    r = (acc + (count >> 1)) // count
                else:
                    r = 0 - ((0 - acc + (count >> 1)) // count)
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
