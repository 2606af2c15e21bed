# Spill compression, after the TinySeg runtime: per block, the most frequent
# byte value, then one mask byte per 8 data bytes (bit set = byte differs from
# it), then the differing bytes. After ReLU most bytes equal the zero point,
# so rows shrink several times; every block decodes alone.
# Encoded size is at most 1 + ceil(n / 8) + n bytes (bound()).
import micropython

# 256 int32 counters for the histogram, allocated once.
_counts = bytearray(1024)


def bound(n):
    return 1 + (n + 7) // 8 + n


@micropython.viper
def encode(src, n: int, dst) -> int:
    """Encode src[0:n] into dst; returns the encoded length."""
    s = ptr8(src)
    d = ptr8(dst)
    c = ptr32(_counts)
    for i in range(256):
        c[i] = 0
    for i in range(n):
        c[s[i]] += 1
    common = 0
    for i in range(256):
        if c[i] > c[common]:
            common = i
    d[0] = common
    groups = (n + 7) >> 3
    out = 1 + groups
    for g in range(groups):
        mask = 0
        base = g << 3
        end = base + 8
        if end > n:
            end = n
        for i in range(base, end):
            v = s[i]
            if v != common:
                mask |= 1 << (i - base)
                d[out] = v
                out += 1
        d[1 + g] = mask
    return out


@micropython.viper
def decode(src, n: int, dst) -> int:
    """Decode one block of n original bytes from src into dst; returns bytes consumed."""
    s = ptr8(src)
    d = ptr8(dst)
    common = s[0]
    groups = (n + 7) >> 3
    pos = 1 + groups
    for g in range(groups):
        mask = s[1 + g]
        base = g << 3
        end = base + 8
        if end > n:
            end = n
        for i in range(base, end):
            if mask & (1 << (i - base)):
                d[i] = s[pos]
                pos += 1
            else:
                d[i] = common
    return pos
