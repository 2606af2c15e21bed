# CONCATENATION (channels) fused into the CONV_2D that is its only reader,
# with fused fetching: the conv's input rows are assembled, as it needs them,
# into a ring of k_h rows from up to three sources, each either a tensor in
# the arena or a spilled tensor read back row by row from flash. Neither the
# concatenated tensor nor a whole fetched tensor ever exists in RAM.
# Params: those of conv2d (its "in_off" is the ring's offset, "in_c" the
# total channels, "in_ring" the ring's height; always the whole output, so
# "oy0" is 0), then per source kind (0 unused, 1 arena, 2 spill store), ref
# (arena offset or spill slot) and channels; then the offsets of a row
# buffer and a compressed-row buffer (scratch) for fetching.
import micropython

from tinyseg_mp import spill
from tinyseg_mp.ops import op_conv2d

_N = len(op_conv2d.PARAMS)
PARAMS = op_conv2d.PARAMS + (
    "src0_kind", "src0_ref", "src0_c",
    "src1_kind", "src1_ref", "src1_c",
    "src2_kind", "src2_ref", "src2_c",
    "row_off", "enc_off",
)


def run(m, p, blob):
    conv_p = p[:_N]
    ring_off, in_h, in_w, in_c = p[0], p[1], p[2], p[3]
    out_off, out_h, k_h, s_h, d_h, pad_t = p[4], p[5], p[8], p[10], p[12], p[14]
    out_row = p[6] * p[22]  # out_w * out_stride
    row_off, enc_off = p[_N + 9], p[_N + 10]
    ring = (k_h - 1) * d_h + 1
    arena = memoryview(m.arena)
    prep = op_conv2d.prepare(conv_p, blob)
    filled = 0
    for oy in range(out_h):
        last = min(oy * s_h - pad_t + (k_h - 1) * d_h, in_h - 1)
        while filled <= last:
            dst = ring_off + (filled % ring) * in_w * in_c
            c0 = 0
            for i in range(_N, _N + 9, 3):
                kind, ref, c = p[i], p[i + 1], p[i + 2]
                if kind == 1:
                    _interleave(m.arena, dst, in_c, c0, m.arena, ref + filled * in_w * c, c, in_w)
                elif kind == 2:
                    row_bytes = in_w * c
                    m.flash_read_bytes += spill.read_row(ref, filled, row_bytes, arena[enc_off:],
                                                         arena[row_off : row_off + row_bytes])
                    _interleave(m.arena, dst, in_c, c0, m.arena, row_off, c, in_w)
                c0 += c
            filled += 1
        op_conv2d.conv_rows(m, m.arena, ring_off, ring, conv_p, blob, oy, oy + 1,
                            out_off + oy * out_row, prep)


@micropython.viper
def _interleave(dst, dst_off: int, total_c: int, c0: int, src, src_off: int, c: int, width: int):
    # Put a source row's c channels at channel c0 of each pixel of a ring row.
    d = ptr8(dst)
    s = ptr8(src)
    for x in range(width):
        do = dst_off + x * total_c + c0
        so = src_off + x * c
        for k in range(c):
            d[do + k] = s[so + k]


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    op_conv2d.check(p, raw, m)
    in_off, in_h, in_w, in_c, k_h, d_h = p[0], p[1], p[2], p[3], p[8], p[12]
    b.within(m, p, 24, 0, 0)
    b.span(m, p, 0, ((k_h - 1) * d_h + 1) * in_w * in_c)  # the ring run() fills
    total = 0
    widest = 0
    for i in range(_N, _N + 9, 3):
        kind, ref, c = p[i], p[i + 1], p[i + 2]
        b.within(m, p, i, 0, 2)
        if kind:
            b.least(m, p, 1, (i + 2,))
            total += c
            if kind == 1:
                b.span(m, p, i + 1, in_h * in_w * c)
            else:
                b.slot(m, p, i + 1, ref, 0, in_h, in_w * c, False)
                widest = max(widest, in_w * c)
    if total != in_c:
        b.bad(m, p, 3, "is not the sources' %d channels" % total)
    if widest:
        b.span(m, p, _N + 9, widest)
        b.span(m, p, _N + 10, widest + widest // 8 + 2)
