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


def kernel():
    """The Thumb module's run() on a Thumb board (ops.kernel), else run()."""
    if backend.name == "thumb":
        return backend.thumb("max_pool2d").run
    return run


def run(m, p, blob):
    if backend.np is None:
        _max_viper(m.arena, p)
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
def _max_viper(arena, q: ptr32):
    # q: the step's params (PARAMS), read as native ints (unpacked into
    # arguments they cost the chip a Python call's worth each). Values are
    # compared as x ^ 0x80 (0..255, in the order of int8); each input row is
    # folded into the output row's running maxima, so the ring row's offset
    # is computed once per input row, not once per output byte.
    a = ptr8(arena)
    in_off = q[0]
    in_h = q[1]
    in_w = q[2]
    c = q[3]
    o = q[4]
    out_w = q[6]
    f_h = q[7]
    f_w = q[8]
    s_h = q[9]
    s_w = q[10]
    pad_t = q[11]
    pad_l = q[12]
    lo = (q[13] + 128) & 0xFF  # masked: a 64-bit port's ptr32 does not sign-extend
    hi = (q[14] + 128) & 0xFF
    in_ring = q[15]
    oy = q[16]
    oy1 = oy + q[5]
    row = in_w * c
    n = out_w * c
    while oy < oy1:
        y0 = oy * s_h - pad_t
        y1 = y0 + f_h
        if y0 < 0:
            y0 = 0
        if y1 > in_h:
            y1 = in_h
        i = 0
        while i < n:
            a[o + i] = 0  # -128, the least int8
            i += 1
        iy = y0
        while iy < y1:
            base = in_off + (iy % in_ring) * row
            d = o
            ox = 0
            while ox < out_w:
                x0 = ox * s_w - pad_l
                x1 = x0 + f_w
                if x0 < 0:
                    x0 = 0
                if x1 > in_w:
                    x1 = in_w
                ch = 0
                while ch < c:
                    r = int(a[d])
                    ip = base + x0 * c + ch
                    ix = x0
                    while ix < x1:
                        v = int(a[ip]) ^ 0x80
                        if v > r:
                            r = v
                        ip += c
                        ix += 1
                    a[d] = r
                    d += 1
                    ch += 1
                ox += 1
            iy += 1
        i = 0
        while i < n:
            r = int(a[o + i])
            if r < lo:
                r = lo
            if r > hi:
                r = hi
            a[o + i] = r ^ 0x80
            i += 1
        o += n
        oy += 1


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.pool_window(m, p)
