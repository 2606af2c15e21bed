# TRANSPOSE_CONV in viper (the viper backend): the phase blocks of the blob
# (op_transpose_conv.py) on conv2d's MAC loop, as ops/thumb/transpose_conv.py
# runs them; the gather loop where the blob has none (a stride exceeds the
# kernel, or the compiler left them out of a non-ARM bundle to save weight
# buffer RAM: lower.for_kernels) or a phase has more window rows than _dot8
# takes.
import micropython
from micropython import const

from tinyseg_mp.ops.viper import conv2d

# viper/conv2d.py's _ACC words that _dot8 reads: run length, first and last run
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
_CHUNK = const(16)  # pixels a requant_viper call takes (conv2d's _chunk)
_dot8 = conv2d._dot8
_requant = conv2d.requant_viper
_win = bytearray(0)  # the phase kernel's window, made on its first step


def run(m, p, blob, window):
    """One transpose_conv step; window: the phase kernel's window bytes
    (op_transpose_conv.window_bytes), 0 where the blob has no phase blocks."""
    global _win
    if window and (p[8] + p[10] - 1) // p[10] <= _MAX_ROWS:
        if len(_win) < window:
            _win = None
            _win = bytearray(window)
        acc, sums = conv2d.viper_buffers()
        _phases_viper(m.arena, blob, _win, acc, sums, p)
    else:
        _tconv_viper(0, 0, 0, m.arena, blob, p)


@micropython.viper
def _phases_viper(arena, blob, win, sums_acc, sums, q: ptr32):
    # The phase blocks on viper/conv2d.py's MAC loop, as the Thumb kernel
    # (ops/thumb/transpose_conv.py) runs them: each output row's phases are
    # stride-1 convs over a window of the input rows it reads (raw int8,
    # padded with the zero point), pixels s_w apart in the output; _dot8 sums
    # a pixel's taps (into sums_acc, conv2d's _ACC), requant_viper a chunk
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
