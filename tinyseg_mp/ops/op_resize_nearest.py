# RESIZE_NEAREST_NEIGHBOR (8-bit NHWC): output pixel (y, x) is input pixel
# (ymap[y], xmap[x]); the host computed both maps exactly as TFLite Micro
# (align_corners / half_pixel_centers, float32). An output row whose source
# row equals the previous one is a single slice copy of that output row.
# Blob: ymap (uint16 x out_h), then xmap (uint16 x out_w) at x_off.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "in_w", "c", "out_h", "out_w", "x_off")


def run(m, p, blob):
    in_off, out_off, in_w, c, out_h, out_w, x_off = p
    a = memoryview(m.arena)
    np = backend.np
    if np is not None:
        xmap = np.frombuffer(blob[x_off : x_off + 2 * out_w], dtype=np.uint16)
    row = out_w * c
    prev = -1
    for oy in range(out_h):
        iy = blob[2 * oy] | (blob[2 * oy + 1] << 8)
        dst = out_off + oy * row
        if iy == prev:
            a[dst : dst + row] = a[dst - row : dst]
            continue
        prev = iy
        src = in_off + iy * in_w * c
        if np is None:
            _row_viper(m.arena, blob, src, dst, c, out_w, x_off)
        else:
            np.take(np.frombuffer(a[src : src + in_w * c], dtype=np.uint8).reshape((in_w, c)), xmap, axis=0,
                    out=np.frombuffer(a[dst : dst + row], dtype=np.uint8).reshape((out_w, c)))


@micropython.viper
def _row_viper(arena, blob, src: int, dst: int, c: int, out_w: int, x_off: int):
    a = ptr8(arena)
    t = ptr8(blob)
    for ox in range(out_w):
        k = x_off + 2 * ox
        s = src + (int(t[k]) | (int(t[k + 1]) << 8)) * c
        for j in range(c):
            a[dst] = a[s + j]
            dst += 1


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    in_off, out_off, in_w, c, out_h, out_w, x_off = p
    b.least(m, p, 1, (2, 3, 4, 5))
    b.span(m, p, 1, out_h * out_w * c)
    b.need_blob(m, p, raw, 2 * out_h)
    b.within(m, p, 6, 0, raw - 2 * out_w)
    blob = b.step_blob(m)  # the row and column maps index the input
    top = 0
    for oy in range(out_h):
        top = max(top, blob[2 * oy] | (blob[2 * oy + 1] << 8))
    b.span(m, p, 0, (top + 1) * in_w * c)
    for ox in range(out_w):
        if blob[x_off + 2 * ox] | (blob[x_off + 2 * ox + 1] << 8) >= in_w:
            b.bad(m, p, "blob", "column map entry %d is outside the input's %d columns" % (ox, in_w))
