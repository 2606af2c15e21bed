# DEPTHWISE_CONV_2D: int8 NHWC depthwise convolution (output channel
# oc = ic * depth_mult + m) with per-channel requantisation, as TFLite Micro's
# reference kernel.
# Blob: weights int8 as (depth_mult, k_h*k_w, in_c) (w_bytes, padded to 4),
# then int32 x out_c each: bias, multiplier, shift, all in that m-major order
# (entry m * in_c + ic); then, in a bundle for an ARM board, the Thumb
# kernel's layout (ops/thumb/depthwise_conv2d.py): int32 weights and the
# requantisation table in groups of 8 output channels.
# A step computes output rows oy0..oy0+out_h-1 (row oy0 at out_off) from an
# input held as a ring of in_ring rows (input row iy at
# in_off + (iy % in_ring) * in_w * in_c), as op_conv2d; a whole tensor is
# in_ring = in_h, oy0 = 0.
import micropython

from tinyseg_mp import backend
from tinyseg_mp.ops import common

PARAMS = (
    "in_off", "in_h", "in_w", "in_c",
    "out_off", "out_h", "out_w", "out_c",
    "k_h", "k_w", "stride_h", "stride_w", "dil_h", "dil_w", "pad_top", "pad_left",
    "depth_mult", "in_zp", "out_zp", "act_min", "act_max", "w_bytes", "in_ring", "oy0",
)


def run(m, p, blob):
    if backend.name == "thumb" and len(blob) > p[21] + 12 * p[7]:  # a bundle with the Thumb layout
        backend.thumb("depthwise_conv2d").run(m.arena, blob, p)
    elif backend.np is None:
        _dw_viper(m.arena, blob, *p)
    else:
        _dw_array(m, p, blob)


def _dw_array(m, p, blob):
    np = backend.np
    (in_off, in_h, in_w, in_c, out_off, out_h, out_w, out_c, k_h, k_w,
     s_h, s_w, d_h, d_w, pad_t, pad_l, dm, in_zp, out_zp, lo, hi, w_bytes, in_ring, oy0) = p
    taps = k_h * k_w
    # Float weights (small for a depthwise layer): one (in_c,) row per (m, tap).
    w = np.array(np.frombuffer(blob[: out_c * taps], dtype=np.int8).reshape((dm * taps, in_c)), dtype=backend.FLOAT)
    bias = common.i32_floats(blob, w_bytes, out_c)
    mult = common.i32_floats(blob, w_bytes + 4 * out_c, out_c)
    shift = common.i32_floats(blob, w_bytes + 8 * out_c, out_c)
    # One (bias, requant constants) pair per multiplier group m: channels
    # m*in_c .. (m+1)*in_c - 1 of the tables, output columns m::dm.
    groups = [(bias[j * in_c : (j + 1) * in_c],
               common.channel_requant(mult[j * in_c : (j + 1) * in_c], shift[j * in_c : (j + 1) * in_c]))
              for j in range(dm)]
    out = common.int8_view(m, out_off, out_h * out_w, out_c)
    # One input row padded left/right with the zero point, so each tap is a
    # plain (out_w, in_c) view; the padding bytes are never overwritten.
    span = max((out_w * s_w + (k_w - 1) * d_w + 1) * in_c, (pad_l + in_w) * in_c)
    row = bytearray(bytes((in_zp & 0xFF,)) * span)
    row_arr = np.frombuffer(row, dtype=np.int8)
    arena = memoryview(m.arena)
    width = out_w * s_w * in_c
    n = in_w * in_c
    for oy in range(oy0, oy0 + out_h):
        accs = [np.zeros((out_w, in_c), dtype=backend.FLOAT) for _ in range(dm)]
        for ky in range(k_h):
            iy = oy * s_h + ky * d_h - pad_t
            if iy < 0 or iy >= in_h:
                continue  # rows outside the input add nothing (TFLM skips them)
            src = in_off + (iy % in_ring) * n
            row[pad_l * in_c : pad_l * in_c + n] = arena[src : src + n]
            row_f = np.array(row_arr, dtype=backend.FLOAT)
            row_f -= in_zp  # padding becomes 0: TFLM skips those taps
            for kx in range(k_w):
                start = kx * d_w * in_c
                tv = row_f[start : start + width].reshape((out_w, s_w * in_c))[:, :in_c]
                t = ky * k_w + kx
                for j in range(dm):
                    accs[j] += tv * w[j * taps + t]
        rows = out[(oy - oy0) * out_w : (oy - oy0 + 1) * out_w, :]
        for j in range(dm):
            b, q = groups[j]
            rows[:, j::dm] = common.to_int8(common.requant(accs[j] + b, q), out_zp, lo, hi)


@micropython.viper
def _dw_viper(arena, blob, in_off: int, in_h: int, in_w: int, in_c: int, out_off: int, out_h: int, out_w: int, out_c: int, k_h: int, k_w: int, s_h: int, s_w: int, d_h: int, d_w: int, pad_t: int, pad_l: int, dm: int, in_zp: int, out_zp: int, lo: int, hi: int, w_bytes: int, in_ring: int, oy0: int):
    q = w_bytes >> 1  # int32 tables, as 16-bit halves
    taps = k_h * k_w
    row_bytes = in_w * in_c
    a = ptr8(arena)
    w = ptr8(blob)
    h = ptr16(blob)
    for j in range(out_c):  # j = m * in_c + ic: the blob's table order
        mm = 0
        ic = j
        while ic >= in_c:
            ic -= in_c
            mm += 1
        # Signed int32 loads from 16-bit halves: right on 32- and 64-bit viper.
        i = q + 2 * j
        bias = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        i = q + 2 * (out_c + j)
        mult = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        i = q + 2 * (2 * out_c + j)
        shift = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        left = 0
        right = 0 - shift
        if shift > 0:
            left = shift
            right = 0
        mask = (1 << right) - 1
        m_hi = mult >> 15
        m_lo = mult & 0x7FFF
        wbase = mm * taps * in_c + ic
        o = out_off + ic * dm + mm
        for oy in range(oy0, oy0 + out_h):
            for ox in range(out_w):
                acc = bias
                for ky in range(k_h):
                    iy = oy * s_h + ky * d_h - pad_t
                    if iy < 0 or iy >= in_h:
                        continue
                    ip = in_off + (iy % in_ring) * row_bytes + ic
                    for kx in range(k_w):
                        ix = ox * s_w + kx * d_w - pad_l
                        if ix < 0 or ix >= in_w:
                            continue
                        x = ((int(a[ip + ix * in_c]) ^ 0x80) - 0x80) - in_zp
                        acc += x * ((int(w[wbase + (ky * k_w + kx) * in_c]) ^ 0x80) - 0x80)
                # MultiplyByQuantizedMultiplier inside signed 32 bits, as in
                # op_conv2d: SaturatingRoundingDoublingHighMul on 15-bit limbs
                # with carries, then a rounding (half away from zero) right shift.
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
                if r < lo:
                    r = lo
                if r > hi:
                    r = hi
                a[o] = r & 0xFF
                o += out_c


def thumb_bytes(p):
    """Bytes of the Thumb layout: per group of 8 output channels, k_h*k_w x 8
    int32 weights and 8 rows of 10 int32 (ops/thumb/depthwise_conv2d.py)."""
    return ((p[7] + 7) >> 3) * (32 * p[8] * p[9] + 320)


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    # in_off in_h in_w in_c out_off out_h out_w out_c k_h k_w s_h s_w d_h d_w pad_t pad_l dm .. w_bytes in_ring oy0
    b.least(m, p, 1, (1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 22))
    b.within(m, p, 14, 0, b.MAX_DIM)
    b.within(m, p, 15, 0, b.MAX_DIM)
    b.within(m, p, 23, 0, b.MAX_DIM)
    b.within(m, p, 19, -128, p[20])
    b.within(m, p, 20, p[19], 127)
    if p[7] != p[3] * p[16]:
        b.bad(m, p, 7, "is not in_c x depth_mult (%d)" % (p[3] * p[16]))
    b.span(m, p, 0, p[22] * p[2] * p[3])
    b.span(m, p, 4, p[5] * p[6] * p[7])
    w = p[7] * p[8] * p[9]
    if p[21] < w or p[21] & 3:
        b.bad(m, p, 21, "is not the weights' %d bytes padded to 4" % w)
    base = p[21] + 12 * p[7]
    b.need_blob(m, p, raw, base)
    if raw > base:  # the Thumb layout (bundles for ARM boards)
        b.need_blob(m, p, raw, base + thumb_bytes(p))
        wide = max((p[6] - 1) * p[11] + (p[9] - 1) * p[13] + 1, p[15] + p[2])
        if p[8] * ((p[7] + 7) & ~7) * wide > 8 * m.meta["arena_bytes"] + 65536:
            b.bad(m, p, "window", "needs a Thumb window of %d bytes: kernel, stride, dilation or width out of range"
                  % (p[8] * ((p[7] + 7) & ~7) * wide))
        b.window(m, p[8] * ((p[7] + 7) & ~7) * wide)  # k_h rows of 8 bytes per pixel per group
    b.blob_ints(m, p, raw, p[21] + 8 * p[7], p[7], -31, 31, "shift")
    b.row_span(m, p, p[2], p[3], p[6], p[9], p[11], p[13], p[15])
