# CONV_2D in viper (stock firmware without asm_thumb: the ESP32), the
# arithmetic of the Thumb kernel (ops/thumb/conv2d.py) on the same blob
# (op_conv2d.py): 8 output channels a pass, sums of x' * w' with x' = x + 128
# and w' = w + 128 and of x', then each channel's requantisation table.
import micropython
from array import array
from micropython import const

# The viper MAC loop's 8 accumulators and S = sum x' (words 0-8), then its
# runs: their length, the words of their offsets from _dot8's input pointer
# (_FIRST up to _LAST), a zero offset (one run at the pointer) and the window
# rows' offsets; then how many pixels a call sums, the input bytes between
# them, and where their sums go (_TO_CHUNK). A module global, so that
# _dot8's two register locals (x and w) hold the hot values.
_RUN = const(9)
_FIRST = const(10)
_LAST = const(11)
_ZERO = const(12)
_ROWS = const(13)
_MAX_ROWS = const(16)
_NPIX = const(29)
_PIX_STEP = const(30)
_TO_CHUNK = const(31)  # 0: add the one pixel's sums to words 0-8; j + 1: to _chunk's pixels j, j + 1, ...
_ACC_WORDS = const(32)
# Made on the first viper step: a Thumb board never holds them.
_ACC = None
_fill_run = bytearray(0)  # a run of input zero points, for taps outside the input
_CHUNK = const(16)
# The sums of _CHUNK pixels (9 words each, as _ACC), requantised channel by
# channel so that a channel's constants are read once per chunk.
_chunk = None


@micropython.viper
def _dot8(x: int, w: ptr8, s: ptr8):
    # x: scratch, called with 0 (viper holds its first two locals, x and w,
    # in registers: 211 -> 122 cycles an input on the RP2040). For each of _ACC[_NPIX] pixels, _ACC[_PIX_STEP] bytes apart from s:
    # sum x' * w'[0..7] and sum x' over the runs of _ACC[_RUN] input bytes at
    # the pixel + _ACC[_ACC[_FIRST] .. _ACC[_LAST]] (raw int8, x' = x ^ 0x80),
    # 8 weights per input byte from w on through the runs; the 9 sums start
    # from _ACC[0..8] and go where _ACC[_TO_CHUNK] says.
    a = ptr32(_ACC)
    n = a[_RUN]
    base = int(s)
    w0 = int(w)
    to = a[_TO_CHUNK]
    dst = a
    at = 0
    if to:
        dst = ptr32(_chunk)
        at = 9 * (to - 1)
    pix = a[_NPIX]
    while pix > 0:
        sx = a[8]
        a0 = a[0]
        a1 = a[1]
        a2 = a[2]
        a3 = a[3]
        a4 = a[4]
        a5 = a[5]
        a6 = a[6]
        a7 = a[7]
        w = ptr8(w0)
        seg = a[_FIRST]
        last = a[_LAST]
        while seg < last:
            s = ptr8(base + a[seg])
            end = int(s) + n
            while int(s) < end - 1:  # two inputs a pass
                x = int(s[0]) ^ 0x80
                sx += x
                a0 = int(w[0]) * x + a0
                a1 = int(w[1]) * x + a1
                a2 = int(w[2]) * x + a2
                a3 = int(w[3]) * x + a3
                a4 = int(w[4]) * x + a4
                a5 = int(w[5]) * x + a5
                a6 = int(w[6]) * x + a6
                a7 = int(w[7]) * x + a7
                x = int(s[1]) ^ 0x80
                sx += x
                a0 = int(w[8]) * x + a0
                a1 = int(w[9]) * x + a1
                a2 = int(w[10]) * x + a2
                a3 = int(w[11]) * x + a3
                a4 = int(w[12]) * x + a4
                a5 = int(w[13]) * x + a5
                a6 = int(w[14]) * x + a6
                a7 = int(w[15]) * x + a7
                s = ptr8(int(s) + 2)
                w = ptr8(int(w) + 16)
            if int(s) < end:  # the last input of an odd run
                x = int(s[0]) ^ 0x80
                sx += x
                a0 = int(w[0]) * x + a0
                a1 = int(w[1]) * x + a1
                a2 = int(w[2]) * x + a2
                a3 = int(w[3]) * x + a3
                a4 = int(w[4]) * x + a4
                a5 = int(w[5]) * x + a5
                a6 = int(w[6]) * x + a6
                a7 = int(w[7]) * x + a7
                w = ptr8(int(w) + 8)
            seg += 1
        dst[at] = a0
        dst[at + 1] = a1
        dst[at + 2] = a2
        dst[at + 3] = a3
        dst[at + 4] = a4
        dst[at + 5] = a5
        dst[at + 6] = a6
        dst[at + 7] = a7
        dst[at + 8] = sx
        if to:
            at += 9
        base += a[_PIX_STEP]
        pix -= 1


def viper_buffers():
    """_dot8's _ACC and the sums of a chunk of pixels (requant_viper), made
    on the first viper step."""
    global _ACC, _chunk
    if _ACC is None:
        _ACC = array("i", bytes(4 * _ACC_WORDS))
        _chunk = array("i", bytes(36 * _CHUNK))
    return _ACC, _chunk


def run(m, p, blob):
    """One conv2d step (op_conv2d.kernel binds it on the viper backend)."""
    conv_rows(m.arena, m.arena, blob, p[0], p[23], p[24], p[24] + p[5], p[4], *p)


def conv_rows(arena, src, blob, row_base, ring, oy0, oy1, out_at, *p):
    """Output rows oy0..oy1-1 of a conv2d step, as op_conv2d.conv_rows."""
    global _fill_run
    viper_buffers()
    run = p[9] * p[3]  # k_w * in_c: the longest run of inputs one _dot8 call reads
    if len(_fill_run) < run:
        _fill_run = bytearray(run)
    _fill_viper(_fill_run, run, p[16])
    _conv_rows_viper(arena, src, blob, _fill_run, _chunk, row_base, ring, oy0, oy1, out_at, *p)


@micropython.viper
def _fill_viper(buf, n: int, value: int):
    b = ptr8(buf)
    for i in range(n):
        b[i] = value


@micropython.viper
def _conv_rows_viper(arena, src, blob, fill_run, sums, row_base: int, ring: int, oy0: int, oy1: int, out_at: int, _in_off: int, in_h: int, in_w: int, in_c: int, _out_off: int, _out_h: int, out_w: int, out_c: int, k_h: int, k_w: int, s_h: int, s_w: int, d_h: int, d_w: int, pad_t: int, pad_l: int, in_zp: int, _out_zp: int, _lo: int, _hi: int, w_bytes: int, co0: int, out_stride: int, _in_ring: int, _oy0: int):
    # The Thumb kernel's arithmetic (ops/thumb/conv2d.py): 8 output channels
    # at a time, sums of x' * w' with x' = x + 128 and w' = w + 128, and of
    # x', over every tap (one outside the input reads the zero point, from
    # fill_run); each contiguous run of taps is one _dot8 call. Then, for a
    # chunk of pixels at a time, each channel's requantisation table.
    acc = ptr32(_ACC)
    c = ptr32(sums)
    src_at = int(ptr8(src)) + row_base
    fill_at = int(ptr8(fill_run))
    w_at = int(ptr8(blob))
    row_bytes = in_w * in_c
    k = k_h * k_w * in_c
    run = k_w * in_c
    for lane in range(9):
        acc[lane] = 0
    acc[_ZERO] = 0
    acc[_NPIX] = 1
    acc[_PIX_STEP] = s_w * in_c
    acc[_TO_CHUNK] = 0
    for g in range(0, out_c, 8):
        lanes = out_c - g
        if lanes > 8:
            lanes = 8
        tq = (w_bytes + 16 * out_c + 40 * g) >> 1  # this group's table, in 16-bit halves
        for oy in range(oy0, oy1):
            o = out_at + (oy - oy0) * out_w * out_stride + co0 + g
            # Each window row's offset in src, for the pixels whose window is all inside.
            rows_in = k_h <= _MAX_ROWS
            for ky in range(k_h):
                iy = oy * s_h + ky * d_h - pad_t
                if iy < 0 or iy >= in_h:
                    rows_in = False
                elif ky < _MAX_ROWS:
                    acc[_ROWS + ky] = (iy % ring) * row_bytes
            ox0 = 0
            while ox0 < out_w:
                n = out_w - ox0
                if n > _CHUNK:
                    n = _CHUNK
                j = 0
                while j < n:
                    wp = w_at + g * k
                    ix0 = (ox0 + j) * s_w - pad_l
                    whole = d_w == 1 and ix0 >= 0 and ix0 + k_w <= in_w  # the k_w taps: one run in the row
                    if whole and rows_in:
                        # This pixel and the next ones whose window is inside: the
                        # k_h runs of each, one call for them all, sums to the chunk.
                        j2 = j + 1
                        while j2 < n and (ox0 + j2) * s_w - pad_l + k_w <= in_w:
                            j2 += 1
                        acc[_RUN] = run
                        acc[_FIRST] = _ROWS
                        acc[_LAST] = _ROWS + k_h
                        acc[_NPIX] = j2 - j
                        acc[_TO_CHUNK] = j + 1
                        _dot8(0, ptr8(wp), ptr8(src_at + ix0 * in_c))
                        acc[_NPIX] = 1
                        acc[_TO_CHUNK] = 0
                        j = j2
                        continue
                    else:
                        acc[_FIRST] = _ZERO
                        acc[_LAST] = _ZERO + 1
                        for ky in range(k_h):
                            iy = oy * s_h + ky * d_h - pad_t
                            if iy < 0 or iy >= in_h:
                                acc[_RUN] = run
                                _dot8(0, ptr8(wp), ptr8(fill_at))
                                wp += run * 8
                                continue
                            row_at = src_at + (iy % ring) * row_bytes
                            if whole:
                                acc[_RUN] = run
                                _dot8(0, ptr8(wp), ptr8(row_at + ix0 * in_c))
                                wp += run * 8
                                continue
                            acc[_RUN] = in_c
                            for kx in range(k_w):
                                ix = ix0 + kx * d_w
                                if 0 <= ix < in_w:
                                    _dot8(0, ptr8(wp), ptr8(row_at + ix * in_c))
                                else:
                                    _dot8(0, ptr8(wp), ptr8(fill_at))
                                wp += in_c * 8
                    for lane in range(9):  # the pixel's sums to the chunk; zero for the next
                        c[9 * j + lane] = acc[lane]
                        acc[lane] = 0
                    j += 1
                requant_viper(arena, sums, blob, n, lanes, tq, o, out_stride)
                o += n * out_stride
                ox0 += n


@micropython.viper
def requant_viper(arena, sums, blob, n: int, lanes: int, tq: int, o: int, out_stride: int):
    # The sums of n pixels (9 words each: 8 lanes of x'w', then S = sum x', as
    # _ACC) to int8 outputs at arena[o + lane + j * out_stride], for `lanes`
    # channels of a group whose requantisation table (10 int32 a channel, as
    # the Thumb kernel's) starts at 16-bit half tq of the blob.
    a = ptr8(arena)
    c = ptr32(sums)
    h = ptr16(blob)
    lane = 0
    while lane < lanes:
        # Signed int32 table words from 16-bit halves: right on 32- and 64-bit viper.
        i = tq + 20 * lane
        bias = int(h[i]) | (((int(h[i + 1]) ^ 0x8000) - 0x8000) << 16)
        mult = int(h[i + 2]) | (int(h[i + 4]) << 16)
        left = int(h[i + 6])
        right = int(h[i + 8])
        mask = int(h[i + 10]) | (int(h[i + 11]) << 16)
        half = mask >> 1
        at_lo = int(h[i + 12]) | (((int(h[i + 13]) ^ 0x8000) - 0x8000) << 16)  # sums below it give lo
        zp = (int(h[i + 14]) ^ 0x8000) - 0x8000
        lo = (int(h[i + 16]) ^ 0x8000) - 0x8000
        hi = (int(h[i + 18]) ^ 0x8000) - 0x8000
        m_hi = mult >> 15
        m_lo = mult & 0x7FFF
        out = o + lane
        for j in range(n):
            v = c[9 * j + lane] - (c[9 * j + 8] << 7)
            if v < at_lo:  # most of a ReLU's outputs: no multiply
                a[out] = lo & 0xFF
                out += out_stride
                continue
            v = (v + bias) << left
            # MultiplyByQuantizedMultiplier inside signed 32 bits (|v| < 2^30):
            # SaturatingRoundingDoublingHighMul = floor((x*M + 2^30) / 2^31) on
            # 15-bit limbs with carries, then a rounding (half away from zero)
            # right shift.
            x_hi = v >> 15
            x_lo = v & 0x7FFF
            mid1 = x_hi * m_lo
            mid2 = x_lo * m_hi
            low = (mid1 & 0x7FFF) + (mid2 & 0x7FFF)
            carry = (((low & 0x7FFF) << 15) + x_lo * m_lo) >> 30
            v = (x_hi * m_hi + 1 + (mid1 >> 15) + (mid2 >> 15) + (low >> 15) + carry) >> 1
            threshold = half
            if v < 0:
                threshold += 1
            r = (v >> right) + zp
            if (v & mask) > threshold:
                r += 1
            if r < lo:
                r = lo
            if r > hi:
                r = hi
            a[out] = r & 0xFF
            out += out_stride
        lane += 1
