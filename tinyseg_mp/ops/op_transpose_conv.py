# TRANSPOSE_CONV: int8 NHWC transposed convolution with per-channel
# requantisation, as TFLite Micro's reference kernel. Input pixel (iy, ix)
# through tap (ky, kx) lands on output (iy*s_h - pad_top + ky,
# ix*s_w - pad_left + kx). TFLM scatters into an int32 buffer of the whole
# output; here each output row (array path) or pixel (viper path) gathers
# its contributions, so no such buffer is needed. Sums are identical.
# Blob: weights int8 as (k_h, in_c, k_w, out_c) (w_bytes, padded to 4), then
# int32 x out_c each: bias, multiplier, shift; then, where no stride exceeds
# the kernel, the phase blocks (ops/thumb/transpose_conv.py) that the Thumb
# and viper kernels run on; the gather loop (_tconv_viper) serves the rest.
# A step computes output rows oy0..oy0+out_h-1 (row oy0 at out_off) from an
# input held as a ring of in_ring rows (input row iy at
# in_off + (iy % in_ring) * in_w * in_c), as op_conv2d; a whole tensor is
# in_ring = in_h, oy0 = 0.
import micropython
from micropython import const

from tinyseg_mp import backend
from tinyseg_mp.ops import common, op_conv2d

PARAMS = (
    "in_off", "in_h", "in_w", "in_c",
    "out_off", "out_h", "out_w", "out_c",
    "k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left",
    "in_zp", "out_zp", "act_min", "act_max", "w_bytes", "in_ring", "oy0",
)


# op_conv2d's _ACC words that _dot8 reads: run length, first and last run
# word, the runs' offsets from word _ROWS (at most _MAX_ROWS of them),
# pixels, bytes between them, where their sums go.
_RUN = const(9)
_FIRST = const(10)
_LAST = const(11)
_ROWS = const(13)
_MAX_ROWS = const(16)
_NPIX = const(29)
_PIX_STEP = const(30)
_TO_CHUNK = const(31)
_CHUNK = const(16)  # pixels a requant_viper call takes (op_conv2d's _chunk)
_dot8 = op_conv2d._dot8
_requant = op_conv2d.requant_viper
_win = bytearray(0)  # the viper phase kernel's window, made on its first step


def run(m, p, blob):
    global _win
    phases = len(blob) > p[18] + 12 * p[7]  # the blob has phase blocks
    if backend.name == "thumb" and phases:
        backend.thumb("transpose_conv").run(m.arena, blob, p)
    elif backend.np is None and phases and (p[8] + p[10] - 1) // p[10] <= _MAX_ROWS:
        if len(_win) < window_bytes(p):
            _win = None
            _win = bytearray(window_bytes(p))
        acc, sums = op_conv2d.viper_buffers()
        _phases_viper(m.arena, blob, _win, acc, sums, p)
    elif backend.np is None:
        _tconv_viper(0, 0, 0, m.arena, blob, p)
    else:
        _tconv_array(m, p, blob)


def _tconv_array(m, p, blob):
    np = backend.np
    (in_off, in_h, in_w, in_c, out_off, out_h, out_w, out_c, k_h, k_w,
     s_h, s_w, pad_t, pad_l, in_zp, out_zp, lo, hi, w_bytes, in_ring, oy0) = p
    kc = k_w * out_c
    # Kernel row ky is the (in_c, k_w*out_c) matrix w[ky*in_c:(ky+1)*in_c]:
    # one dot per (input row, ky) gives every kx at once.
    w = np.frombuffer(blob[: k_h * in_c * kc], dtype=np.int8).reshape((k_h * in_c, kc))
    bias = common.i32_floats(blob, w_bytes, out_c)
    q = common.channel_requant(common.i32_floats(blob, w_bytes + 4 * out_c, out_c),
                               common.i32_floats(blob, w_bytes + 8 * out_c, out_c))
    x = common.int8_view(m, in_off, in_ring * in_w, in_c)
    out = common.int8_view(m, out_off, out_h * out_w, out_c)
    for oy in range(oy0, oy0 + out_h):
        acc = np.zeros((out_w, out_c), dtype=backend.FLOAT)
        for ky in range(k_h):
            t = oy + pad_t - ky
            if t < 0 or t % s_h:
                continue
            iy = t // s_h
            if iy >= in_h:
                continue
            at = (iy % in_ring) * in_w
            # dot() must see a float operand: numpy keeps int8 products in int8.
            xf = np.array(x[at : at + in_w, :], dtype=backend.FLOAT)
            xf -= in_zp
            d = np.dot(xf, w[ky * in_c : (ky + 1) * in_c, :])
            for kx in range(k_w):
                # Input column ix lands on output column ix*s_w + c0.
                c0 = kx - pad_l
                ix0 = 0 if c0 >= 0 else (s_w - 1 - c0) // s_w
                ix1 = min(in_w, (out_w - 1 - c0) // s_w + 1)
                if ix1 <= ix0:
                    continue
                o0 = ix0 * s_w + c0
                acc[o0 : o0 + (ix1 - ix0 - 1) * s_w + 1 : s_w, :] += d[ix0:ix1, kx * out_c : (kx + 1) * out_c]
        r = (oy - oy0) * out_w
        out[r : r + out_w, :] = common.to_int8(common.requant(acc + bias, q), out_zp, lo, hi)


@micropython.viper
def _phases_viper(arena, blob, win, sums_acc, sums, q: ptr32):
    # The phase blocks on op_conv2d's viper MAC loop, as the Thumb kernel
    # (ops/thumb/transpose_conv.py) runs them: each output row's phases are
    # stride-1 convs over a window of the input rows it reads (raw int8,
    # padded with the zero point), pixels s_w apart in the output; _dot8 sums
    # a pixel's taps (into sums_acc, op_conv2d's _ACC), requant_viper a chunk
    # of pixels (from sums). q: the step's params.
    in_h = q[1]
    in_w = q[2]
    in_c = q[3]
    out_w = q[6]
    out_c = q[7]
    k_h = q[8]
    k_w = q[9]
    s_h = q[10]
    s_w = q[11]
    pad_t = q[12]
    pad_l = q[13]
    fill = q[14] & 0xFF
    in_ring = q[19]
    oy = q[20]
    oy1 = oy + q[5]
    a = ptr8(arena)
    acc = ptr32(sums_acc)
    w = ptr8(win)
    win_at = int(w)
    blob_at = int(ptr8(blob))
    groups8 = ((out_c + 7) >> 3) * 8
    left = k_w - 1  # window columns before input column 0
    right = (out_w - 1 + pad_l) // s_w - in_w + 1
    if right < 0:
        right = 0
    wide = (left + in_w + right) * in_c
    row_bytes = in_w * in_c
    i = 0
    while i < (k_h + s_h - 1) // s_h * wide:
        w[i] = fill
        i += 1
    for lane in range(9):  # the sums' start
        acc[lane] = 0
    acc[_PIX_STEP] = in_c
    acc[_TO_CHUNK] = 1  # the pixels' sums to the chunk (sums) from its start
    phases = q[18] + 12 * out_c  # the blocks' offset in the blob
    out_row = q[4]
    while oy < oy1:
        py = (oy + pad_t) % s_h
        nky = (k_h - py + s_h - 1) // s_h
        at = phases  # past the blocks of phases (py', px) for py' < py
        qq = 0
        while qq < py * s_w:
            at += ((k_h - qq // s_w + s_h - 1) // s_h) * ((k_w - qq % s_w + s_w - 1) // s_w) * in_c * groups8 \
                + groups8 * 40
            qq += 1
        j = 0
        while j < nky:  # window row j: input row iy, under the phase's tap row j
            iy = (oy + pad_t - py) // s_h - j
            dst = j * wide + left * in_c
            i = 0
            if iy < 0 or iy >= in_h:
                while i < row_bytes:
                    w[dst + i] = fill
                    i += 1
            else:
                src = q[0] + (iy % in_ring) * row_bytes
                while i < row_bytes:
                    w[dst + i] = a[src + i]
                    i += 1
            acc[_ROWS + j] = j * wide
            j += 1
        acc[_FIRST] = _ROWS
        acc[_LAST] = _ROWS + nky
        px = 0
        while px < s_w:
            nkx = (k_w - px + s_w - 1) // s_w
            acc[_RUN] = nkx * in_c
            k = nky * nkx * in_c
            ox0 = (px - pad_l + s_w * (pad_l + 1)) % s_w  # the first output column of this phase
            pix = win_at + ((ox0 + pad_l - px) // s_w + left - nkx + 1) * in_c
            npix = (out_w - ox0 + s_w - 1) // s_w
            tables = at + k * groups8
            g = 0
            while g < out_c:
                lanes = out_c - g
                if lanes > 8:
                    lanes = 8
                o = out_row + ox0 * out_c + g
                j0 = 0
                while j0 < npix:
                    n = npix - j0
                    if n > _CHUNK:
                        n = _CHUNK
                    acc[_NPIX] = n
                    _dot8(0, ptr8(blob_at + at + g * k), ptr8(pix + j0 * in_c))
                    _requant(arena, sums, blob, n, lanes, (tables + 40 * g) >> 1, o, s_w * out_c)
                    o += n * s_w * out_c
                    j0 += n
                g += 8
            at = tables + groups8 * 40
            px += 1
        out_row += out_w * out_c
        oy += 1


@micropython.viper
def _tconv_viper(xp: ptr8, wq: ptr8, acc: int, arena, blob, p: ptr32):
    # xp, wq, acc: the MAC loop's input and weight pointers and sum, first so
    # that viper keeps them in registers (called with 0s); p: the step's
    # params (PARAMS), read as native ints. On 64-bit ports ptr32 does not
    # sign-extend: the signed ones are rebuilt from their halves.
    in_off = p[0]
    in_h = p[1]
    in_w = p[2]
    in_c = p[3]
    out_off = p[4]
    out_h = p[5]
    out_w = p[6]
    out_c = p[7]
    k_h = p[8]
    k_w = p[9]
    s_h = p[10]
    s_w = p[11]
    pad_t = p[12]
    pad_l = p[13]
    in_zp = ((p[14] & 0xFFFF) ^ 0x8000) - 0x8000
    out_zp = ((p[15] & 0xFFFF) ^ 0x8000) - 0x8000
    lo = ((p[16] & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((p[17] & 0xFFFF) ^ 0x8000) - 0x8000
    w_bytes = p[18]
    in_ring = p[19]
    oy0 = p[20]
    q = w_bytes >> 1  # int32 tables, as 16-bit halves
    a = ptr8(arena)
    w = ptr8(blob)
    h = ptr16(blob)
    wstep = k_w * out_c  # weight stride from one input channel to the next
    row_bytes = in_w * in_c
    # Output coordinate o + pad = base*s + r (0 <= r < s) is reached by taps
    # k = r, r+s, r+2s, ... from inputs base, base-1, ...: phases are
    # stepped along instead of divided, from the band's first row.
    ry0 = oy0 + pad_t
    by0 = 0
    while ry0 >= s_h:
        ry0 -= s_h
        by0 += 1
    rx0 = pad_l
    bx0 = 0
    while rx0 >= s_w:
        rx0 -= s_w
        bx0 += 1
    for co in range(out_c):
        # Signed int32 loads from 16-bit halves: right on 32- and 64-bit viper.
        i = q + 2 * co
        bias = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        i = q + 2 * (out_c + co)
        mult = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        i = q + 2 * (2 * out_c + co)
        shift = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        left = 0
        right = 0 - shift
        if shift > 0:
            left = shift
            right = 0
        mask = (1 << right) - 1
        m_hi = mult >> 15
        m_lo = mult & 0x7FFF
        o = out_off + co
        ry = ry0
        by = by0
        for oy in range(out_h):
            rx = rx0
            bx = bx0
            for ox in range(out_w):
                acc = bias
                ky = ry
                iy = by
                while ky < k_h:
                    if iy >= 0 and iy < in_h:
                        rp = in_off + (iy % in_ring) * row_bytes
                        kx = rx
                        ix = bx
                        while kx < k_w:
                            if ix >= 0 and ix < in_w:
                                xp = ptr8(int(a) + rp + ix * in_c)
                                wq = ptr8(int(w) + (ky * in_c * k_w + kx) * out_c + co)
                                end = int(xp) + in_c
                                while int(xp) < end:
                                    acc += (((int(xp[0]) ^ 0x80) - 0x80) - in_zp) * ((int(wq[0]) ^ 0x80) - 0x80)
                                    xp = ptr8(int(xp) + 1)
                                    wq = ptr8(int(wq) + wstep)
                            kx += s_w
                            ix -= 1
                    ky += s_h
                    iy -= 1
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
                rx += 1
                if rx == s_w:
                    rx = 0
                    bx += 1
            ry += 1
            if ry == s_h:
                ry = 0
                by += 1


def thumb_bytes(p):
    """Bytes of the phase blocks: every tap once, packed in groups of 8
    output channels, and a 10-int32 table per channel of each group for each
    of the s_h * s_w phases; none where a stride exceeds the kernel."""
    k_h, k_w, s_h, s_w = p[8], p[9], p[10], p[11]
    if k_h < s_h or k_w < s_w:
        return 0
    groups = (p[7] + 7) >> 3
    return groups * 8 * k_h * k_w * p[3] + s_h * s_w * groups * 320


def window_bytes(p):
    """The Thumb kernel's window (ops/thumb/transpose_conv.py): the input rows
    one output row reads, padded by k_w - 1 columns left and what the last
    output column needs right."""
    in_w, in_c, out_w, k_h, k_w, s_h, s_w, pad_l = p[2], p[3], p[6], p[8], p[9], p[10], p[11], p[13]
    right = max(0, (out_w - 1 + pad_l) // s_w - in_w + 1)
    return (k_h + s_h - 1) // s_h * (k_w - 1 + in_w + right) * in_c


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    # in_off in_h in_w in_c out_off out_h out_w out_c k_h k_w s_h s_w pad_t pad_l .. w_bytes in_ring oy0
    b.least(m, p, 1, (1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 19))
    b.within(m, p, 12, 0, b.MAX_DIM)
    b.within(m, p, 13, 0, b.MAX_DIM)
    b.within(m, p, 20, 0, b.MAX_DIM)
    b.within(m, p, 16, -128, p[17])
    b.within(m, p, 17, p[16], 127)
    b.span(m, p, 0, p[19] * p[2] * p[3])
    b.span(m, p, 4, p[5] * p[6] * p[7])
    w = p[8] * p[9] * p[3] * p[7]
    if p[18] < w or p[18] & 3:
        b.bad(m, p, 18, "is not the weights' %d bytes padded to 4" % w)
    base = p[18] + 12 * p[7]
    b.need_blob(m, p, raw, base)
    if raw > base:  # the phase blocks (bundles for ARM boards)
        if not thumb_bytes(p):
            b.bad(m, p, "blob", "has %d bytes past the tables; no phase blocks where a stride exceeds the kernel" % (
                raw - base))
        b.need_blob(m, p, raw, base + thumb_bytes(p))
        b.window(m, window_bytes(p))
    b.blob_ints(m, p, raw, p[18] + 8 * p[7], p[7], -31, 31, "shift")  # the kernels shift by them
