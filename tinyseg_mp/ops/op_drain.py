# DRAIN: copy a band of the output from the arena into the output buffer
# that run() returns; a band-streamed plan never holds the whole output in
# the arena. No blob.
PARAMS = ("src_off", "dst_off", "n")


def run(m, p, blob):
    src, dst, n = p
    m.output[dst : dst + n] = memoryview(m.arena)[src : src + n]
