# PAD / PADV2 (8-bit): fill the output with the pad value, then copy the
# input in runs of `run` contiguous bytes, read in order; run (i0, i1, i2)
# lands at out_off + first + i0*s0 + i1*s1 + i2*s2. The host merged every
# unpadded inner dimension into the run, so image pads copy whole rows.
# out_bytes = 0 means nothing is padded (a plain copy). No blob.
PARAMS = ("in_off", "out_off", "out_bytes", "value", "n0", "n1", "n2", "s0", "s1", "s2", "first", "run")


def run(m, p, blob):
    src, out_off, nb, value, n0, n1, n2, s0, s1, s2, first, n = p
    a = memoryview(m.arena)
    if nb:
        # Fill by doubling slice copies: nothing of the output's size is allocated.
        a[out_off] = value & 0xFF
        k = 1
        while k < nb:
            c = min(k, nb - k)
            a[out_off + k : out_off + k + c] = a[out_off : out_off + c]
            k += c
    for i0 in range(n0):
        for i1 in range(n1):
            d = out_off + first + i0 * s0 + i1 * s1
            for _ in range(n2):
                a[d : d + n] = a[src : src + n]
                src += n
                d += s2


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    src, out_off, nb, value, n0, n1, n2, s0, s1, s2, first, n = p
    b.least(m, p, 0, (2, 4, 5, 6, 7, 8, 9, 10, 11))
    b.span(m, p, 1, nb)
    b.span(m, p, 0, n0 * n1 * n2 * n)
    if n0 and n1 and n2:
        b.span(m, p, 1, first + (n0 - 1) * s0 + (n1 - 1) * s1 + (n2 - 1) * s2 + n)
