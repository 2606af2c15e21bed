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
    """The Thumb or viper module's run() on those backends (ops.kernel), else run()."""
    if backend.name == "thumb":
        return backend.thumb("conv2d").run
    if backend.np is None:
        return backend.viper("conv2d").run
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
        backend.viper("conv2d").conv_rows(m.arena, src, blob, row_base, ring, oy0, oy1, out_at, *p)
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


# Load-time check (convention: tinyseg_mp/ops/__init__.py). weight_bytes()
# and blob_bytes() state the blob layout the kernels read (above, ops/thumb/, ops/viper/); a change of
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

