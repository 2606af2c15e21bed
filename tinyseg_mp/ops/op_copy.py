# RESHAPE: a byte copy; input and output are separate arena buffers. No blob.
PARAMS = ("in_off", "out_off", "n")


def run(m, p, blob):
    a = memoryview(m.arena)
    a[p[1] : p[1] + p[2]] = a[p[0] : p[0] + p[2]]


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    b.least(m, p, 0, (2,))
    b.span(m, p, 0, p[2])
    b.span(m, p, 1, p[2])
