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
import micropython

from tinyseg_mp.ops.thumb import conv2d
from tinyseg_mp.ops.thumb.conv2d import _conv_row, _p, _span

# Which input row each window row holds, over the output rows of one step.
_held = bytearray(0)


def run(arena, blob, p):
    global _held
    rows = (p[8] + p[10] - 1) // p[10]  # input rows one output row reads
    if len(_held) < 4 * rows:
        _held = bytearray(4 * rows)
    conv2d._grow(rows)
    _rows(p, arena, blob)


@micropython.viper
def _rows(q: ptr32, arena: ptr8, blob: ptr8):
    # q: the step's params (op_transpose_conv.PARAMS). Native ints: the
    # Python loop it replaced cost the chip more than its MACs did.
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
    fill = (q[14] ^ 0x80) & 0xFF
    in_ring = q[19]
    oy = q[20]
    oy1 = oy + q[5]
    groups8 = ((out_c + 7) >> 3) * 8
    rows = (k_h + s_h - 1) // s_h
    left = k_w - 1  # window columns before input column 0
    right = (out_w - 1 + pad_l) // s_w - in_w + 1
    if right < 0:
        right = 0
    wide = (left + in_w + right) * in_c
    row_bytes = in_w * in_c
    win = int(ptr8(conv2d._win))
    _span(win, rows * wide, 0, fill)
    held = ptr32(_held)
    i = 0
    while i < rows:
        held[i] = -1 - in_h - rows  # no input row
        i += 1
    data = int(arena) + q[0]
    phases = int(blob) + q[18] + 12 * out_c
    out_row = int(arena) + q[4]
    p = ptr32(_p)
    segs = ptr32(conv2d._segs)
    p[1] = in_c  # _PIX_STEP
    p[3] = int(segs)  # _SEG0
    p[11] = s_w * out_c  # _OUT_STEP
    p[30] = 0  # _PAIRED: byte weights
    while oy < oy1:
        py = (oy + pad_t) % s_h
        nky = (k_h - py + s_h - 1) // s_h
        at = phases  # the blocks of phases (py, 0), (py, 1), ...
        qq = 0
        while qq < py * s_w:
            at += ((k_h - qq // s_w + s_h - 1) // s_h) * ((k_w - qq % s_w + s_w - 1) // s_w) * in_c * groups8 \
                + groups8 * 40
            qq += 1
        j = 0
        while j < nky:
            iy = (oy + pad_t - py) // s_h - j
            slot = (iy + rows) % rows
            if held[slot] != iy:
                held[slot] = iy
                dst = win + slot * wide + left * in_c
                if iy < 0 or iy >= in_h:
                    _span(dst, row_bytes, 0, fill)
                else:
                    _span(dst, row_bytes, data + (iy % in_ring) * row_bytes, 0)
            segs[j] = slot * wide
            j += 1
        p[5] = int(segs) + 4 * nky  # _SEG_END
        px = 0
        while px < s_w:
            nkx = (k_w - px + s_w - 1) // s_w
            run = nkx * in_c
            k = nky * run
            p[6] = 8 * (run - (run & 3))  # _MAIN8
            p[7] = 8 * (run & 3)  # _TAIL8
            ox0 = (px - pad_l + s_w * (pad_l + 1)) % s_w  # the first output column of this phase
            qx0 = (ox0 + pad_l - px) // s_w  # its input column, under the last tap
            tables = at + k * groups8
            g = 0
            while g < out_c:
                p[0] = win + (left + qx0 - nkx + 1) * in_c  # _PIX
                p[2] = (out_w - ox0 + s_w - 1) // s_w  # _NPIX
                p[8] = at + g * k  # _WBASE
                p[9] = tables + g * 40  # _TBASE
                p[10] = out_row + ox0 * out_c + g  # _OUTP
                lanes = out_c - g
                if lanes > 8:
                    lanes = 8
                p[12] = lanes  # _NLANES
                _conv_row(_p)
                g += 8
            at = tables + groups8 * 40
            px += 1
        out_row += out_w * out_c
        oy += 1
