# CONV_2D (and FULLY_CONNECTED, lowered to a 1x1 conv): int8 NHWC convolution
# with per-channel requantisation, as TFLite Micro's reference kernel.
# Blob (host_tools/lower/op_conv2d.py writes it): the weights packed in groups
# of 8 output channels, for each k of the (ky, kx, ci) window the group's 8
# weights as w + 128 (uint8; w_bytes = groups * K * 8), then int32 x out_c
# each: bias folded with the input zero point (bias - in_zp * sum(w)), bias,
# multiplier, shift; then 10 int32 per channel of every group for the Thumb
# kernel (ops/thumb/conv2d.py). A step may compute only output channels co0..co0+out_c-1
# of an output with out_stride channels, so large weights come in blocks
# that fit a small weight buffer.
# A step may also compute only a band of output rows: rows oy0..oy0+out_h-1
# of the output, row oy0 at out_off, from an input held as a ring of in_ring
# rows (input row iy at in_off + (iy % in_ring) * in_w * in_c); in_h is the
# whole input's height. A whole tensor is in_ring = in_h, oy0 = 0.
import micropython
from array import array
from micropython import const

from tinyseg_mp import backend
from tinyseg_mp.ops import common

PARAMS = (
    "in_off", "in_h", "in_w", "in_c",
    "out_off", "out_h", "out_w", "out_c",
    "k_h", "k_w", "stride_h", "stride_w", "dil_h", "dil_w", "pad_top", "pad_left",
    "in_zp", "out_zp", "act_min", "act_max", "w_bytes", "co0", "out_stride",
    "in_ring", "oy0",
)


def kernel():
    """The Thumb module's run() on a Thumb board (ops.kernel), else run()."""
    if backend.name == "thumb":
        return backend.thumb("conv2d").run
    return run


def run(m, p, blob):
    conv_rows(m, m.arena, p[0], p[23], p, blob, p[24], p[24] + p[5], p[4])


def conv_rows(m, src, row_base, ring, p, blob, oy0, oy1, out_at, prep=None):
    """Output rows oy0..oy1-1, row oy written at arena offset
    out_at + (oy - oy0) * out_w * out_stride (+ co0). Input row iy is read
    from src[row_base + (iy % ring) * row_bytes]: a ring of rows in the arena
    (ring = input height for a whole tensor), or one that a fused op fills.
    prep: prepare(p, blob), to reuse it over calls of one step."""
    if backend.name == "thumb":
        backend.thumb("conv2d").conv_rows(m.arena, src, blob, row_base, ring, oy0, oy1, out_at, p, m)
    elif backend.np is None:
        _conv_viper(m.arena, src, blob, row_base, ring, oy0, oy1, out_at, *p)
    else:
        _conv_array(m, src, row_base, ring, p, prep or prepare(p, blob), oy0, oy1, out_at)


def prepare(p, blob):
    """Array path: the weights as (K, out_c), folded bias and requant
    constants; viper and thumb keep nothing over calls (None)."""
    if backend.np is None:
        return None
    np = backend.np
    in_c, out_c, k_h, k_w, w_bytes = p[3], p[7], p[8], p[9], p[20]
    k = k_h * k_w * in_c
    # Each group's (k, 8) block of w + 128, XORed back to int8 (one copy).
    groups = []
    for g in range(0, out_c, 8):
        u = np.frombuffer(blob[g * k : (g + 8) * k], dtype=np.uint8) ^ 128
        groups.append(np.frombuffer(u.tobytes(), dtype=np.int8).reshape((k, 8))[:, : min(8, out_c - g)])
    weights = groups[0] if len(groups) == 1 else np.concatenate(tuple(groups), axis=1)
    q = common.channel_requant(common.i32_floats(blob, w_bytes + 8 * out_c, out_c),
                               common.i32_floats(blob, w_bytes + 12 * out_c, out_c))
    return weights, common.i32_floats(blob, w_bytes, out_c), q


def _conv_array(m, src, row_base, ring, p, prep, oy0, oy1, out_at):
    np = backend.np
    (_, in_h, in_w, in_c, _, _, out_w, out_c, k_h, k_w,
     s_h, s_w, d_h, d_w, pad_t, pad_l, in_zp, out_zp, lo, hi, _, co0, out_stride, _, _) = p
    weights, bias, q = prep
    out = common.int8_view(m, out_at, (oy1 - oy0) * out_w, out_stride)[:, co0 : co0 + out_c]
    # One input row, padded left/right with the zero point, so every tap is a
    # plain (out_w, in_c) view; rows outside the input are all zero point.
    row, row_arr = common.padded_row(in_w, out_w, s_w, k_w, d_w, pad_l, in_c, in_zp)
    fill = bytes(row)
    src = memoryview(src)
    row_bytes = in_w * in_c
    for oy in range(oy0, oy1):
        acc = np.zeros((out_w, out_c), dtype=backend.FLOAT)
        for ky in range(k_h):
            iy = oy * s_h + ky * d_h - pad_t
            row[:] = fill
            if 0 <= iy < in_h:
                at = row_base + (iy % ring) * row_bytes
                row[pad_l * in_c : (pad_l + in_w) * in_c] = src[at : at + row_bytes]
            # dot() must see a float operand: numpy keeps int8 products in int8.
            row_f = np.array(row_arr, dtype=backend.FLOAT)
            for kx in range(k_w):
                t = (ky * k_w + kx) * in_c
                acc += np.dot(common.tap(row_f, kx * d_w * in_c, out_w, s_w, in_c), weights[t : t + in_c, :])
        r = (oy - oy0) * out_w
        out[r : r + out_w, :] = common.to_int8(common.requant(acc + bias, q), out_zp, lo, hi)


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


def _conv_viper(arena, src, blob, row_base, ring, oy0, oy1, out_at, *p):
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


# Load-time check (convention: tinyseg_mp/ops/__init__.py). weight_bytes()
# and blob_bytes() state the blob layout the kernels above read; a change of
# layout changes them, and check() follows.
def weight_bytes(p):
    """Bytes of the packed weights for params p: groups of 8 output channels,
    k_h * k_w * in_c bytes for each channel of a group."""
    return ((p[7] + 7) >> 3) * 8 * p[8] * p[9] * p[3]


def blob_bytes(p):
    """Least blob length the kernels read: w_bytes of weights, four int32
    tables of out_c entries (folded bias, bias, multiplier, shift), then the
    Thumb kernel's 10 int32 for each channel of every group of 8."""
    return p[20] + 16 * p[7] + 320 * ((p[7] + 7) >> 3)


def window_bytes(p):
    """The Thumb kernel's window: k_h padded input rows (ops/thumb/conv2d.py)."""
    return p[8] * max((p[6] - 1) * p[11] + (p[9] - 1) * p[13] + 1, p[15] + p[2]) * p[3]


def check(p, raw, m):
    from tinyseg_mp import check as b

    b.least(m, p, 1, (1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 22, 23))
    b.within(m, p, 14, 0, b.MAX_DIM)
    b.within(m, p, 15, 0, b.MAX_DIM)
    b.within(m, p, 24, 0, b.MAX_DIM)
    b.within(m, p, 18, -128, p[19])
    b.within(m, p, 19, p[18], 127)
    b.span(m, p, 0, p[23] * p[2] * p[3])  # the input (ring) rows
    b.within(m, p, 21, 0, p[22] - p[7])  # channels co0.. of out_stride
    b.span(m, p, 4, p[5] * p[6] * p[22])
    if p[20] < weight_bytes(p) or p[20] & 3:
        b.bad(m, p, 20, "is not the weights' %d bytes padded to 4" % weight_bytes(p))
    b.need_blob(m, p, raw, blob_bytes(p))
    b.blob_ints(m, p, raw, p[20] + 12 * p[7], p[7], -31, 31, "shift")  # the kernels shift by them
    b.row_span(m, p, p[2], p[3], p[6], p[9], p[11], p[13], p[15])
    b.window(m, window_bytes(p))

