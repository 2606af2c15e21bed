# DEQUANTIZE int8/uint8 -> float32: each output element is 4 bytes copied from
# a 256-entry float32 table (blob, by input byte) that the host computed as
# TFLite Micro does, float(double(scale) * (x - zero_point)). No float
# arithmetic here, so every backend gives the same bytes.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "n")
_CHUNK = 256  # ulab's take() allocates one machine word per index


def run(m, p, blob):
    if backend.np is None:
        _dequantize_viper(m.arena, blob, p[0], p[1], p[2])
        return
    np = backend.np
    # A float32 as two uint16 halves (ulab has no 32-bit dtype).
    table = np.frombuffer(blob, dtype=np.uint16).reshape((256, 2))
    a = memoryview(m.arena)
    i, o, n = p
    for k in range(0, n, _CHUNK):
        c = min(_CHUNK, n - k)
        dst = np.frombuffer(a[o + 4 * k : o + 4 * (k + c)], dtype=np.uint16).reshape((c, 2))
        np.take(table, np.frombuffer(a[i + k : i + k + c], dtype=np.uint8), axis=0, out=dst)


@micropython.viper
def _dequantize_viper(arena, blob, i: int, o: int, n: int):
    a = ptr8(arena)
    t = ptr8(blob)
    for k in range(n):
        s = int(a[i + k]) << 2
        d = o + (k << 2)
        a[d] = t[s]
        a[d + 1] = t[s + 1]
        a[d + 2] = t[s + 2]
        a[d + 3] = t[s + 3]


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 0, (2,))
    b.span(m, p, 0, p[2])
    b.span(m, p, 1, 4 * p[2])
    b.need_blob(m, p, raw, 1024)
