# CONCATENATION along any axis (8-bit). TFLite Micro requires every input to
# share the output's quantisation, so this is pure data movement: the output
# is `outer` rows of `out_inner` bytes and row r of input k (inner_k bytes)
# goes to output bytes [col_k, col_k + inner_k) of row r.
# Blob: int32 (off, src, inner, col) per input; src 1 = constant bytes in the
# blob at off, 2 = a spilled tensor in spill slot `off`, fetched one image
# row at a time (outer = rows x pixels per row) through the row_off/enc_off
# scratch (fused fetching: the whole tensor never comes back), else the arena.
import struct

import micropython

from tinyseg_mp import backend

PARAMS = ("out_off", "outer", "out_inner", "n_in", "rows", "row_off", "enc_off")
_CHUNK = 512  # bytes per array block (ulab copies the right side of a slice assignment)


def kernel():
    """The Thumb module's run() on a Thumb board (ops.kernel), else run()."""
    if backend.name == "thumb":
        return backend.thumb("concatenation").run
    return run


def run(m, p, blob):
    if backend.np is None:
        if _inputs_viper(m.arena, blob, p):
            spilled(m, p, blob)
        return
    a = memoryview(m.arena)
    for k in range(p[3]):
        off, src, inner, col = struct.unpack_from("<4i", blob, 16 * k)
        if src != 2:
            _copy_runs(m, blob if src else a, off, p[0], col, p[1], inner, p[2])
    spilled(m, p, blob)


def spilled(m, p, blob):
    """The inputs of the step in spill slots, each fetched a row at a time
    into the row_off scratch and copied to its columns."""
    out_off, outer, out_inner, n_in, rows, row_off, enc_off = p
    a = memoryview(m.arena)
    for k in range(n_in):
        off, src, inner, col = struct.unpack_from("<4i", blob, 16 * k)
        if src == 2:
            from tinyseg_mp._compat import import_module

            spill = import_module("tinyseg_mp.spill")
            width = outer // rows
            row_bytes = width * inner
            for y in range(rows):
                m.flash_read_bytes += spill.read_row(off, y, row_bytes, a[enc_off:], a[row_off : row_off + row_bytes])
                _copy_runs(m, a, row_off, out_off + y * width * out_inner, col, width, inner, out_inner)


@micropython.viper
def _inputs_viper(arena, blob, q: ptr32) -> int:
    # The inputs in the arena or the blob, read from the blob's int32 records
    # as native ints (struct.unpack and a call per input cost the RP2040 more
    # than a channel concat's copy); returns how many are spilled (left to spilled()).
    b = ptr32(blob)
    spilled = 0
    k = 0
    while k < q[3]:
        src = b[4 * k + 1]
        if src == 2:
            spilled += 1
        else:
            _runs_viper(arena, blob if src else arena, b[4 * k], q[0] + b[4 * k + 3], q[1], b[4 * k + 2], q[2])
        k += 1
    return spilled


def _copy_runs(m, s, off, out_off, col, outer, inner, out_inner):
    # `outer` runs of `inner` bytes from s[off:] into columns col.. of the output rows.
    a = memoryview(m.arena)
    d = out_off + col
    if backend.np is None:
        # Viper: word copies when everything is 4-aligned. (A slice copy per
        # run cost more, on the RP2040, than the copy: two views allocated.)
        _runs_viper(m.arena, s, off, d, outer, inner, out_inner)
    elif outer < 8 or inner >= 32:
        # Few or long runs: slice copies (memcpy) beat any loop.
        for _ in range(outer):
            a[d : d + inner] = s[off : off + inner]
            d += out_inner
            off += inner
    else:
        # Many short runs (channel concat): strided 2-D views, in blocks.
        np = backend.np
        dst = np.frombuffer(a[out_off : out_off + outer * out_inner], dtype=np.uint8).reshape((outer, out_inner))
        sv = np.frombuffer(s[off : off + outer * inner], dtype=np.uint8).reshape((outer, inner))
        step = _CHUNK // inner
        for r in range(0, outer, step):
            e = min(r + step, outer)
            dst[r:e, col : col + inner] = sv[r:e, :]


@micropython.viper
def _runs_viper(arena, src, s: int, d: int, rows: int, width: int, stride: int):
    if ((s | d | width | stride) & 3) == 0:  # buffers start 4-aligned (heap blocks)
        a32 = ptr32(arena)
        b32 = ptr32(src)
        s = s >> 2
        d = d >> 2
        width = width >> 2
        stride = stride >> 2
        for _ in range(rows):
            for j in range(width):
                a32[d + j] = b32[s]
                s += 1
            d += stride
        return
    a = ptr8(arena)
    b = ptr8(src)
    for _ in range(rows):
        for j in range(width):
            a[d + j] = b[s]
            s += 1
        d += stride


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    import struct

    out_off, outer, out_inner, n_in, rows, row_off, enc_off = p
    b.least(m, p, 1, (1, 2, 3))
    b.span(m, p, 0, outer * out_inner)
    b.need_blob(m, p, raw, 16 * n_in)
    blob = b.step_blob(m)
    for k in range(n_in):
        off, src, inner, col = struct.unpack_from("<4i", blob, 16 * k)
        what = "input %d (blob bytes %d..%d)" % (k, 16 * k, 16 * k + 16)
        if inner < 0 or col < 0 or col + inner > out_inner:
            b.bad(m, p, what, "puts %d bytes at column %d of %d-byte rows" % (inner, col, out_inner))
        if src == 2:
            b.within(m, p, 4, 1, outer)
            if outer % rows:
                b.bad(m, p, 4, "does not divide outer=%d" % outer)
            row_bytes = outer // rows * inner
            b.slot(m, p, what, off, 0, rows, row_bytes, False)
            b.span(m, p, 5, row_bytes)
            b.span(m, p, 6, row_bytes + row_bytes // 8 + 2)
        elif src == 1:
            if off < 0 or off + outer * inner > raw:
                b.bad(m, p, what, "reads blob bytes %d..%d of %d" % (off, off + outer * inner, raw))
        elif src == 0:
            if off < 0 or off + outer * inner > m.meta["arena_bytes"]:
                b.bad(m, p, what, "reads arena bytes %d..%d of %d" % (off, off + outer * inner, m.meta["arena_bytes"]))
        else:
            b.bad(m, p, what, "has source kind %d (0 arena, 1 blob, 2 spill)" % src)
