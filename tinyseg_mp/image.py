# Camera frames to model input, and masks to ASCII art and BMP images, on the
# device. Every function writes into buffers the caller allocated once.
# On CPython the viper functions run as plain Python (tinyseg_mp._compat).
#   convert(frame, RGB565, 160, 120, m.input_view(), 120, 80)  # nearest resize
#   print(ascii_mask(out, 120, 80))
#   bmp_header(buf, 120, 80); convert(...rows...); overlay(...); bmp_rows(...)
import sys
from struct import pack_into

if sys.implementation.name != "micropython":
    from tinyseg_mp._compat import install_cpython_shims

    install_cpython_shims()
import micropython  # noqa: E402

# Frame formats. RGB565 is high byte first, the order of the ESP32 camera
# driver (esp32-camera); RGB565_LE is low byte first.
RGB565 = 0
RGB565_LE = 1
GRAY = 2
RGB888 = 3
BPP = (2, 2, 1, 3)
BMP_HEADER = 54


def convert(src, fmt, sw, sh, dst, dw, dh, y0=0, y1=-1, stride=0, flip=0):
    """Rows y0..y1-1 of the sw x sh frame `src` (format `fmt`) resized to
    dw x dh (nearest) as RGB888, written from dst[0] on, `stride` bytes per
    row (default dw * 3). flip=0x80 writes int8 (value - 128) for int8 models."""
    if y1 < 0:
        y1 = dh
    stride = stride or dw * 3
    if not (0 <= y0 <= y1 <= dh) or stride < dw * 3 or not 0 <= fmt < 4:
        raise ValueError("bad rows, stride or format")
    if len(src) < sw * sh * BPP[fmt]:
        raise ValueError("frame has %d bytes; %dx%d format %d needs %d" % (len(src), sw, sh, fmt, sw * sh * BPP[fmt]))
    if len(dst) < (y1 - y0) * stride:
        raise ValueError("output buffer too small")
    _convert(src, dst, fmt, sw, sh, dw, dh, y0, y1, stride, flip)


@micropython.viper
def _convert(src, dst, fmt: int, sw: int, sh: int, dw: int, dh: int, y0: int, y1: int, stride: int, flip: int):
    s = ptr8(src)
    d = ptr8(dst)
    den = 2 * dw
    step = 2 * sw
    bpp = 3
    if fmt < 2:
        bpp = 2
    elif fmt == 2:
        bpp = 1
    for y in range(y0, y1):
        row = ((2 * y + 1) * sh) // (2 * dh) * sw
        o = (y - y0) * stride
        # Source column of output column x: ((2x+1) * sw) // (2dw), stepped without division.
        sx = 0
        acc = sw
        while acc >= den:
            acc -= den
            sx += 1
        for x in range(dw):
            i = (row + sx) * bpp
            if fmt == 3:
                r = int(s[i])
                g = int(s[i + 1])
                b = int(s[i + 2])
            elif fmt == 2:
                r = int(s[i])
                g = r
                b = r
            else:
                if fmt == 0:
                    v = (int(s[i]) << 8) | int(s[i + 1])
                else:
                    v = int(s[i]) | (int(s[i + 1]) << 8)
                r = (v >> 8) & 0xF8
                r |= r >> 5
                g = (v >> 3) & 0xFC
                g |= g >> 6
                b = (v << 3) & 0xF8
                b |= b >> 5
            d[o] = r ^ flip
            d[o + 1] = g ^ flip
            d[o + 2] = b ^ flip
            o += 3
            acc += step
            while acc >= den:
                acc -= den
                sx += 1


def overlay(rgb, w, h, y0, y1, stride, mask, mw, mh, mc=1, flip=0, thr=127):
    """Tint cyan, in place, the pixels of RGB888 rows y0..y1-1 (of a w x h
    image, held from rgb[0] on with `stride` bytes per row) whose mask value
    is over `thr`. The mask is mw x mh x mc (last channel used, nearest
    scaling); flip=0x80 for int8 masks."""
    if stride < w * 3 or mc < 1 or not 0 <= y0 <= y1 <= h:
        raise ValueError("bad stride, channels or rows")
    if len(rgb) < (y1 - y0) * stride or len(mask) < mw * mh * mc:
        raise ValueError("buffer too small")
    _overlay(rgb, mask, w, h, y0, y1, stride, mw, mh, mc, flip, thr)


@micropython.viper
def _overlay(rgb, mask, w: int, h: int, y0: int, y1: int, stride: int, mw: int, mh: int, mc: int, flip: int, thr: int):
    p = ptr8(rgb)
    m = ptr8(mask)
    for y in range(y0, y1):
        mrow = (y * mh) // h * mw
        o = (y - y0) * stride
        for x in range(w):
            v = int(m[(mrow + (x * mw) // w) * mc + mc - 1]) ^ flip
            if v > thr:
                p[o] = int(p[o]) >> 1
                p[o + 1] = (int(p[o + 1]) + 255) >> 1
                p[o + 2] = (int(p[o + 2]) + 255) >> 1
            o += 3


def bmp_header(buf, w, h):
    """The 54-byte header of a 24-bit bottom-up BMP of w x h into buf;
    returns the file size."""
    row = (w * 3 + 3) & ~3
    size = BMP_HEADER + row * h
    pack_into("<2sIIIIiiHHIIiiII", buf, 0, b"BM", size, 0, BMP_HEADER, 40, w, h, 1, 24, 0, row * h, 2835, 2835, 0, 0)
    return size


def bmp_rows(buf, w, n, stride):
    """In place: n RGB888 rows (top-down, `stride` bytes apart, stride >=
    the BMP row size (w*3 rounded up to 4)) become BMP rows: BGR, bottom-up,
    padded. Encode a w x h image bottom strip first: rows h-n..h-1, then the
    n rows above, and so on."""
    if stride < (w * 3 + 3) & ~3 or len(buf) < n * stride:
        raise ValueError("stride must hold a padded BMP row")
    _bmp_rows(buf, w, n, stride)


@micropython.viper
def _bmp_rows(buf, w: int, n: int, stride: int):
    p = ptr8(buf)
    top = 0
    bot = (n - 1) * stride
    while top <= bot:
        for x in range(w):
            i = top + 3 * x
            j = bot + 3 * x
            r = p[i]
            g = p[i + 1]
            b = p[i + 2]
            p[i] = p[j + 2]
            p[i + 1] = p[j + 1]
            p[i + 2] = p[j]
            p[j] = b
            p[j + 1] = g
            p[j + 2] = r
        for x in range(w * 3, stride):
            p[top + x] = 0
            p[bot + x] = 0
        top += stride
        bot -= stride


def ascii_mask(mask, mw, mh, mc=1, flip=0, thr=127, cols=60, rows=20):
    """The mask as `rows` lines of `cols` characters: '#' where most of the
    cell is over `thr`, '+' where some is, '.' where none is."""
    cols = min(cols, mw)
    rows = min(rows, mh)
    if mc < 1 or len(mask) < mw * mh * mc:
        raise ValueError("mask buffer too small")
    out = bytearray((cols + 1) * rows)
    _ascii(mask, out, mw, mh, mc, flip, thr, cols, rows)
    return str(out, "ascii")


@micropython.viper
def _ascii(mask, out, mw: int, mh: int, mc: int, flip: int, thr: int, cols: int, rows: int):
    m = ptr8(mask)
    o = ptr8(out)
    k = 0
    for r in range(rows):
        ya = r * mh // rows
        yb = (r + 1) * mh // rows
        for c in range(cols):
            xa = c * mw // cols
            xb = (c + 1) * mw // cols
            hit = 0
            for y in range(ya, yb):
                for x in range(xa, xb):
                    if (int(m[(y * mw + x) * mc + mc - 1]) ^ flip) > thr:
                        hit += 1
            ch = 46  # '.'
            if 2 * hit > (yb - ya) * (xb - xa):
                ch = 35  # '#'
            elif hit:
                ch = 43  # '+'
            o[k] = ch
            k += 1
        o[k] = 10
        k += 1


def count_over(mask, n, mc=1, flip=0, thr=127):
    """How many of the n pixels of a mask (mc channels, last used) are over thr."""
    if mc < 1 or len(mask) < n * mc:
        raise ValueError("mask buffer too small")
    return int(_count(mask, n, mc, flip, thr))


@micropython.viper
def _count(mask, n: int, mc: int, flip: int, thr: int) -> int:
    m = ptr8(mask)
    hit = 0
    for i in range(n):
        if (int(m[i * mc + mc - 1]) ^ flip) > thr:
            hit += 1
    return hit
