# ARG_MAX (int8 in, int32 out): input = outer x k x inner (k along the
# axis), out[o, i] = the first j with the largest in[o, j, i] (TFLite Micro's
# reference ArgMinMax: strictly greater replaces). Output int32 little-endian,
# written as 16-bit halves (ulab has no int32; k < 65536). No blob.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "outer", "k", "inner")
_CHUNK = 256  # rows per ulab argmax: bounds its temporaries


def run(m, p, blob):
    i, o, outer, k, inner = p
    np = backend.np
    if np is None:
        _arg_max_viper(m.arena, i, o, outer, k, inner)
        return
    a = memoryview(m.arena)
    step = _CHUNK if inner == 1 else 1
    for r in range(0, outer, step):
        n = min(step, outer - r)
        src = i + r * k * inner
        x = np.frombuffer(a[src : src + n * k * inner], dtype=np.int8)
        if inner == 1:
            idx = np.argmax(x.reshape((n, k)), axis=1)
            cnt = n
        else:
            idx = np.argmax(x.reshape((k, inner)), axis=0)
            cnt = inner
        dst = o + 4 * r * inner
        half = np.frombuffer(a[dst : dst + 4 * cnt], dtype=np.uint16)
        half[0::2] = idx
        half[1::2] = 0


@micropython.viper
def _arg_max_viper(arena, i: int, o: int, outer: int, k: int, inner: int):
    a = ptr8(arena)
    for r in range(outer):
        base = i + r * k * inner
        for c in range(inner):
            s = base + c
            best = (int(a[s]) ^ 0x80) - 0x80
            at = 0
            for j in range(1, k):
                s += inner
                v = (int(a[s]) ^ 0x80) - 0x80
                if v > best:
                    best = v
                    at = j
            a[o] = at & 0xFF
            a[o + 1] = (at >> 8) & 0xFF
            a[o + 2] = 0
            a[o + 3] = 0
            o += 4


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 1, (2, 3, 4))
    b.within(m, p, 3, 1, 65535)
    b.span(m, p, 0, p[2] * p[3] * p[4])
    b.span(m, p, 1, 4 * p[2] * p[4])
