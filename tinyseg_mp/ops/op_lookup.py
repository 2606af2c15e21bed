# QUANTIZE (8-bit to 8-bit), LOGISTIC, RELU, RELU6 and LEAKY_RELU on int8 /
# uint8: output byte = table[input byte]. Blob: the 256-byte table, TFLite
# Micro's kernel evaluated on the host for every input value.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "n")
_CHUNK = 512  # ulab's take() allocates one machine word per index


def kernel():
    """The Thumb module's run() on a Thumb board (ops.kernel), else run()."""
    if backend.name == "thumb":
        return backend.thumb("lookup").run
    return run


def run(m, p, blob):
    if backend.np is None:
        _lookup_viper(m.arena, blob, p[0], p[1], p[2])
        return
    np = backend.np
    table = np.frombuffer(blob, dtype=np.uint8)
    a = memoryview(m.arena)
    i, o, n = p
    for k in range(0, n, _CHUNK):
        c = min(_CHUNK, n - k)
        np.take(table, np.frombuffer(a[i + k : i + k + c], dtype=np.uint8),
                out=np.frombuffer(a[o + k : o + k + c], dtype=np.uint8))


@micropython.viper
def _lookup_viper(arena, blob, i: int, o: int, n: int):
    a = ptr8(arena)
    t = ptr8(blob)
    for k in range(n):
        a[o + k] = t[a[i + k]]


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 0, (2,))
    b.span(m, p, 0, p[2])
    b.span(m, p, 1, p[2])
    b.need_blob(m, p, raw, 256)
