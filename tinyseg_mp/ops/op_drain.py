# DRAIN: copy a band of the output from the arena into the output buffer
# that run() returns; a band-streamed plan never holds the whole output in
# the arena. No blob.
PARAMS = ("src_off", "dst_off", "n")


def run(m, p, blob):
    src, dst, n = p
    m.output[dst : dst + n] = memoryview(m.arena)[src : src + n]


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    if m.meta["out_off"] >= 0:
        b.bad(m, p, "op", "drains a bundle whose output is in the arena (META out_off >= 0)")
    b.least(m, p, 0, (2,))
    b.span(m, p, 0, p[2])
    b.span(m, p, 1, p[2], m.meta["out_bytes"], "output")
