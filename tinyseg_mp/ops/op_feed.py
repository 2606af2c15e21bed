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
        inp.readinto(band)
    else:
        band[:] = memoryview(inp)[src : src + n]
