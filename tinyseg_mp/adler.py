# zlib's Adler-32, for compressed blobs: MicroPython's deflate module stops at
# the length it is asked for and never checks the stream's checksum.
import micropython


@micropython.viper
def _sums(buf, n: int, out):
    # Both sums reduced every 3800 bytes: b stays below 2^31 (a 32-bit port's
    # signed word) in between.
    s = ptr8(buf)
    o = ptr32(out)
    a = 1
    b = 0
    i = 0
    while i < n:
        end = i + 3800
        if end > n:
            end = n
        while i < end:
            a += s[i]
            b += a
            i += 1
        a %= 65521
        b %= 65521
    o[0] = a
    o[1] = b


def adler32(buf, n):
    """Adler-32 of buf[0:n], as zlib stores it at the end of a stream."""
    out = bytearray(8)
    _sums(buf, n, out)
    return (out[4] | out[5] << 8) << 16 | out[0] | out[1] << 8
