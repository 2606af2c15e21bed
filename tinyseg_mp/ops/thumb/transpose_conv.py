# TRANSPOSE_CONV on the Thumb conv kernel. Output pixel (oy, ox) gathers
# input (iy, ix) through tap (ky, kx) where oy = iy * s_h - pad_t + ky (and
# the same for x). The outputs of one phase (oy, ox modulo the strides) are an
# ordinary stride-1 conv of the input with that phase's taps, so each output
# row is s_w calls of the conv kernel per group of 8 channels: pixels s_w
# apart in the output, one input column apart in the window. The host packs
# each phase's taps (rows ky ascending, columns kx descending, so that input
# columns ascend) with its own folded bias (op_transpose_conv.py, blob).
# Inputs outside the tensor read the zero point, which adds nothing, as TFLite
# Micro's scatter skips them.
from tinyseg_mp.ops.thumb import conv2d


def run(arena, blob, p):
    (in_off, in_h, in_w, in_c, out_off, out_h, out_w, out_c, k_h, k_w,
     s_h, s_w, pad_t, pad_l, in_zp, _, _, _, w_bytes, in_ring, oy0) = p
    groups8 = ((out_c + 7) >> 3) * 8
    rows = (k_h + s_h - 1) // s_h  # input rows one output row reads
    left = k_w - 1  # window columns before input column 0
    right = max(0, (out_w - 1 + pad_l) // s_w - in_w + 1)
    wide = (left + in_w + right) * in_c
    fill = (in_zp ^ 0x80) & 0xFF
    win = conv2d.window(rows, wide, fill)
    held = [None] * rows
    segs = conv2d.segments()
    row_bytes = in_w * in_c
    data = conv2d._addr(arena) + in_off
    phases = conv2d._addr(blob) + w_bytes + 12 * out_c
    out_row = conv2d._addr(arena) + out_off
    for oy in range(oy0, oy0 + out_h):
        py = (oy + pad_t) % s_h
        nky = (k_h - py + s_h - 1) // s_h
        at = phases  # the blocks of phases (py, 0), (py, 1), ...
        for q in range(py * s_w):
            at += ((k_h - q // s_w + s_h - 1) // s_h) * ((k_w - q % s_w + s_w - 1) // s_w) * in_c * groups8 \
                + groups8 * 40
        for px in range(s_w):
            nkx = (k_w - px + s_w - 1) // s_w
            run = nkx * in_c
            k = nky * run
            conv2d.setup(in_c, nky, run, s_w * out_c)
            for j in range(nky):
                iy = (oy + pad_t - py) // s_h - j
                slot = iy % rows
                if held[slot] != iy:
                    held[slot] = iy
                    conv2d.load_row(win + slot * wide + left * in_c, data + (iy % in_ring) * row_bytes, row_bytes,
                                    fill, 0 <= iy < in_h)
                segs[j] = slot * wide
            ox0 = (px - pad_l) % s_w  # the first output column of this phase
            n = (out_w - ox0 + s_w - 1) // s_w
            qx0 = (ox0 + pad_l - px) // s_w  # its input column, under the last tap
            pix = win + (left + qx0 - nkx + 1) * in_c
            tables = at + k * groups8
            for g in range(0, out_c, 8):
                conv2d.row(pix, n, at + g * k, tables + g * 40, out_row + ox0 * out_c + g, min(8, out_c - g))
            at = tables + groups8 * 40
        out_row += out_w * out_c
