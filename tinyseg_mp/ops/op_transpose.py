# TRANSPOSE (8-bit): out[i0, i1, i2] (dense) = in[i0*s0 + i1*s1 + i2*s2],
# the host's loop levels of the permutation (size-1 dims dropped, contiguous
# neighbours merged). No blob.
# Array path: per outer index, a contiguous row copy (s2 == 1), a matrix
# transpose (s1 == 1 and s2 == n1: NCHW <-> NHWC), or one strided slice per
# output row.
import micropython

from tinyseg_mp import backend

PARAMS = ("in_off", "out_off", "n0", "n1", "n2", "s0", "s1", "s2")


def run(m, p, blob):
    i, o, n0, n1, n2, s0, s1, s2 = p
    np = backend.np
    if np is None:
        _transpose_viper(m.arena, i, o, n0, n1, n2, s0, s1, s2)
        return
    a = memoryview(m.arena)
    span = (n1 - 1) * s1 + (n2 - 1) * s2 + 1  # input elements one outer index reads
    block = n1 * n2
    for k in range(n0):
        src = i + k * s0
        dst = o + k * block
        if s2 == 1:
            for r in range(n1):
                a[dst + r * n2 : dst + (r + 1) * n2] = a[src + r * s1 : src + r * s1 + n2]
        elif s1 == 1 and s2 == n1:
            out = np.frombuffer(a[dst : dst + block], dtype=np.uint8).reshape((n1, n2))
            out[:, :] = np.frombuffer(a[src : src + block], dtype=np.uint8).reshape((n2, n1)).transpose()
        else:
            x = np.frombuffer(a[src : src + span], dtype=np.uint8)
            out = np.frombuffer(a[dst : dst + block], dtype=np.uint8)
            for r in range(n1):
                b = r * s1
                out[r * n2 : (r + 1) * n2] = x[b : b + (n2 - 1) * s2 + 1 : s2]


@micropython.viper
def _transpose_viper(arena, i: int, o: int, n0: int, n1: int, n2: int, s0: int, s1: int, s2: int):
    a = ptr8(arena)
    for k in range(n0):
        for r in range(n1):
            src = i + k * s0 + r * s1
            for c in range(n2):
                a[o] = a[src]
                o += 1
                src += s2


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 1, (2, 3, 4))
    b.least(m, p, 0, (5, 6))
    b.least(m, p, 1, (7,))  # the array path slices with step s2
    b.span(m, p, 0, (p[2] - 1) * p[5] + (p[3] - 1) * p[6] + (p[4] - 1) * p[7] + 1)
    b.span(m, p, 1, p[2] * p[3] * p[4])
