# TRANSPOSE_CONV: int8 NHWC transposed convolution with per-channel
# requantisation, as TFLite Micro's reference kernel. Input pixel (iy, ix)
# through tap (ky, kx) lands on output (iy*s_h - pad_top + ky,
# ix*s_w - pad_left + kx). TFLM scatters into an int32 buffer of the whole
# output; here each output row (array path) or pixel (viper path) gathers
# its contributions, so no such buffer is needed. Sums are identical.
# Kernels: here the array path; ops/thumb/ and ops/viper/ for those backends.
# Blob: weights int8 as (k_h, in_c, k_w, out_c) (w_bytes, padded to 4), then
# int32 x out_c each: bias, multiplier, shift; then, where no stride exceeds
# the kernel (and, off ARM, where they take no RAM: lower.for_kernels), the
# phase blocks (ops/thumb/transpose_conv.py) that the Thumb and viper kernels
# run on; viper's gather loop serves the rest.
# A step computes output rows oy0..oy0+out_h-1 (row oy0 at out_off) from an
# input held as a ring of in_ring rows (input row iy at
# in_off + (iy % in_ring) * in_w * in_c), as op_conv2d; a whole tensor is
# in_ring = in_h, oy0 = 0.
from tinyseg_mp import backend
from tinyseg_mp.ops import common

PARAMS = (
    "in_off", "in_h", "in_w", "in_c",
    "out_off", "out_h", "out_w", "out_c",
    "k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left",
    "in_zp", "out_zp", "act_min", "act_max", "w_bytes", "in_ring", "oy0",
)


def run(m, p, blob):
    phases = len(blob) > p[18] + 12 * p[7]  # the blob has phase blocks
    if backend.name == "thumb" and phases:
        backend.thumb("transpose_conv").run(m.arena, blob, p)
    elif backend.np is None:
        backend.viper("transpose_conv").run(m, p, blob, window_bytes(p) if phases else 0)
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
