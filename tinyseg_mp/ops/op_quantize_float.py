# QUANTIZE float32 -> int8/uint8, bit-exact with TFLite Micro's
# AffineQuantize without float arithmetic: each input's bit pattern becomes
# an integer key ordered like the floats (sign-magnitude -> two's complement)
# and the output is lo + the number of the 255 host thresholds T[j] <= key
# (a binary search, 8 comparisons). Blob: T as int32 x 255. Inputs with
# |x / scale| >= 2^31 saturate (TFLite Micro's cast is undefined there).
# Array path: key and thresholds as exact float pairs (high 16 bits, low 16
# bits): (H - Th) * 65536 + (L - Tl) has the sign of key - T even in float32.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "n", "lo")
_CHUNK = 256


def run(m, p, blob):
    i, o, n, lo = p
    np = backend.np
    if np is None:
        _quantize_viper(m.arena, blob, i, o, n, lo)
        return
    f = backend.FLOAT
    th = np.array(np.frombuffer(blob[0:1020], dtype=np.int16)[1::2], dtype=f)
    tl = np.array(np.frombuffer(blob[0:1020], dtype=np.uint16)[0::2], dtype=f)
    a = memoryview(m.arena)
    dt = np.int8 if lo < 0 else np.uint8
    for k in range(0, n, _CHUNK):
        c = min(_CHUNK, n - k)
        halves = np.frombuffer(a[i + 4 * k : i + 4 * (k + c)], dtype=np.uint16)
        hi = np.array(halves[1::2], dtype=f)
        neg = np.floor(hi / 32768.0)  # the sign bit: 0 or 1
        sgn = 1.0 - 2.0 * neg
        kh = sgn * hi + neg * 32768.0  # key = kh * 65536 + kl
        kl = sgn * np.array(halves[0::2], dtype=f)
        pos = kh * 0.0
        step = 128
        while step:
            j = np.array(pos + (step - 1), dtype=np.uint8)
            d = (kh - np.take(th, j)) * 65536.0 + (kl - np.take(tl, j))
            pos = pos + (d >= 0.0) * float(step)
            step >>= 1
        a[o + k : o + k + c] = np.array(pos + lo, dtype=dt).tobytes()


@micropython.viper
def _quantize_viper(arena, blob, i: int, o: int, n: int, lo: int):
    a = ptr8(arena)
    t = ptr8(blob)
    for k in range(n):
        s = i + 4 * k
        key = (int(a[s + 3]) & 0x7F) << 24 | int(a[s + 2]) << 16 | int(a[s + 1]) << 8 | int(a[s])
        if int(a[s + 3]) & 0x80:
            key = 0 - key
        pos = 0
        step = 128
        while step:
            q = 4 * (pos + step - 1)
            v = int(t[q]) | int(t[q + 1]) << 8 | int(t[q + 2]) << 16 | (((int(t[q + 3]) ^ 0x80) - 0x80) << 24)
            if key >= v:
                pos += step
            step >>= 1
        a[o + k] = (lo + pos) & 0xFF


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 0, (2,))
    if p[3] not in (-128, 0):
        b.bad(m, p, 3, "is not -128 (int8) or 0 (uint8)")
    b.need_blob(m, p, raw, 1020)
    b.span(m, p, 0, 4 * p[2])
    b.span(m, p, 1, p[2])
