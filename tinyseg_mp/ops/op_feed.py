# FEED: copy a band of the caller's input into the arena; a band-streamed
# plan never holds the whole input there. The input is a buffer (a camera
# frame, say) or a file (an image in flash), read band by band. No blob.
PARAMS = ("src_off", "dst_off", "n")


def run(m, p, blob):
    src, dst, n = p
    band = memoryview(m.arena)[dst : dst + n]
    inp = m.input
    if hasattr(inp, "readinto"):
        inp.seek(src)
        if inp.readinto(band) != n:
            raise OSError("the input file ended before byte %d: it holds fewer bytes than the model reads" % (src + n))
    else:
        band[:] = memoryview(inp)[src : src + n]


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    if m.meta["in_off"] >= 0:
        b.bad(m, p, "op", "feeds a bundle whose input is in the arena (META in_off >= 0)")
    b.least(m, p, 0, (2,))
    b.span(m, p, 0, p[2], m.meta["in_bytes"], "input")
    b.span(m, p, 1, p[2])
