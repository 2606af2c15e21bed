# The load-time checks (the convention: tinyseg_mp/ops/__init__.py): the walk
# over the step records, and the helpers every op's check() fails through.
# Imported for a load only; the loader drops it from sys.modules afterwards,
# so its code does not stay on the board's heap.
import struct
from array import array

from tinyseg_mp import bundle, ops
from tinyseg_mp.bundle import MAX_BYTES, MAX_DIM, BundleError, _fail  # noqa: F401 (MAX_BYTES: for op checks)


def steps(m, f, sections):
    """Walk the step records once at load: each record whole, its op code
    known, its parameter count its op's, its blob inside BLOB and the weight
    buffer, its params passing the op's check() (tinyseg_mp/ops/__init__.py).
    Imports the modules of the ops the bundle uses (its run needs each of
    them). Returns the step count."""
    path = m.path
    offset, length = sections[b"STEP"]
    blob_len = sections[b"BLOB"][1]
    wcap = m.meta["blob_bytes"]
    head = m._head
    size = struct.calcsize(bundle.STEP)
    params = memoryview(m._params)
    runs = m._runs
    m.at = at = [0, 0, 0, None, 0, 0, 0]
    m.at_blob = -1  # blob whose tables bundle.blob_ints() has read
    m.written = array("i", bytes(4 * len(m.slots)))  # rows each spill slot holds so far (spill/fetch checks)
    pos = 0
    n = 0
    while pos < length:
        rec = offset + pos
        if pos + size > length:
            _fail(path, rec, "step %d: record truncated (%d of %d bytes)" % (n, length - pos, size))
        f.seek(rec)
        f.readinto(head)
        opcode, count, off, stored, raw = struct.unpack(bundle.STEP, head)
        if opcode >= len(ops.NAMES):
            _fail(path, rec, "step %d: unknown op code %d: bundle is newer than this runtime" % (n, opcode))
        mod = ops.load(opcode)
        name = ops.NAMES[opcode]
        if count != len(mod.PARAMS):
            _fail(path, rec + 2, "step %d (%s): %d params; the op takes %d" % (n, name, count, len(mod.PARAMS)))
        if pos + size + 4 * count > length:
            _fail(path, rec, "step %d (%s): params truncated" % (n, name))
        p = params[:count]
        f.readinto(p)
        if raw > wcap:
            _fail(path, rec + 8, "step %d (%s): blob of %d bytes is larger than the weight buffer "
                                        "(META blob_bytes=%d)" % (n, name, raw, wcap))
        if (raw and not (0 < stored <= raw and (stored == raw or stored >= 6) and off + stored <= blob_len)) or (
                stored and not raw):
            _fail(path, rec + 4, "step %d (%s): blob at %d (%d bytes stored, %d inflated) is outside the "
                                        "BLOB section (%d bytes)" % (n, name, off, stored, raw, blob_len))
        at[0] = n
        at[1] = opcode
        at[2] = rec
        at[3] = mod
        at[4] = off
        at[5] = stored
        at[6] = raw
        check = getattr(mod, "check", None)
        if check is None:
            _fail(path, rec, "step %d (%s): op module has no check(): this runtime cannot validate it" % (
                n, name))
        check(p, raw, m)
        runs[opcode] = ops.kernel(mod)
        pos += size + 4 * count
        n += 1
    m.at = None
    return n


def load_blob(m):
    """At load, for an op's check(): the blob of the step being checked, in the weight buffer."""
    off, stored, raw = m.at[4], m.at[5], m.at[6]
    dst = memoryview(m.wbuf)[:raw]
    m.file.seek(m.blob_base + off)
    if stored == raw:
        m.file.readinto(dst)
    else:
        from tinyseg_mp.model import _inflate

        try:
            _inflate(m.file, stored, dst)
        except BundleError as exc:
            _fail(m.path, m.at[2], "step %d: %s" % (m.at[0], exc))
    return dst


# Step checks. Every op module ends with check(p, raw, m): p holds the step's
# parameters (an int32 memoryview, in the order of the module's PARAMS), raw
# the length of its blob once inflated (0: no blob), m the Model being loaded
# (m.meta has the arena, weight buffer, input and output sizes). It returns
# None when every index its kernels compute from p stays inside the buffers
# they read and write, or fails through bad() (or span(), least(), within(),
# need_blob(), which call it). The loader calls it once per step, while it
# walks the step list at load, with m.at = [step index, op code, byte offset
# of the step record, op module], so the error names all of them.
def bad(m, p, field, what):
    """Reject the step being checked: `field` is an index into the op's
    PARAMS (its name and value are reported) or a name such as "blob"."""
    step, opcode, at, mod = m.at[0], m.at[1], m.at[2], m.at[3]
    if isinstance(field, int):
        field = "%s=%d" % (mod.PARAMS[field], p[field])
    _fail(m.path, at, "step %d (%s): %s %s" % (step, ops.NAMES[opcode], field, what))


def span(m, p, i, n, size=-1, where="arena"):
    """p[i] is the offset of n bytes inside a buffer of `size` bytes (the arena by default)."""
    if size < 0:
        size = m.meta["arena_bytes"]
    o = p[i]
    if o < 0 or n < 0 or o + n > size:
        bad(m, p, i, "with %d bytes is outside the %s (%d bytes)" % (n, where, size))


def least(m, p, lo, fields):
    """Each p[i] for i in fields is at least lo."""
    for i in fields:
        if p[i] < lo:
            bad(m, p, i, "is below %d" % lo)


def within(m, p, i, lo, hi):
    if not lo <= p[i] <= hi:
        bad(m, p, i, "is outside %d..%d" % (lo, hi))


def need_blob(m, p, raw, n):
    """The step's kernels read n bytes of its blob."""
    if raw < n:
        bad(m, p, "blob", "has %d bytes; its params need %d" % (raw, n))


def row_span(m, p, in_w, c, out_w, k_w, s_w, d_w, pad_l):
    """A windowed op's padded input row (the array kernels' common.padded_row) is bounded."""
    n = max((out_w * s_w + (k_w - 1) * d_w + 1) * c, (pad_l + in_w) * c)
    if n > 4 * m.meta["arena_bytes"] + 4096:
        bad(m, p, "window", "needs a padded row of %d bytes: stride, dilation, padding or width out of range" % n)


def step_blob(m):
    """The blob of the step being checked, read (and inflated) into the
    weight buffer: for an op whose blob holds offsets or indices."""
    return load_blob(m)


def pool_window(m, p):
    # Max and average pooling: every window overlaps the input (an empty one
    # has no max and no count), the ring and the output inside the arena.
    in_off, in_h, in_w, c, out_off, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo, hi, in_ring, oy0 = p
    least(m, p, 1, (1, 2, 3, 5, 6, 7, 8, 9, 10, 15))
    within(m, p, 11, 0, f_h - 1)
    within(m, p, 12, 0, f_w - 1)
    within(m, p, 16, 0, MAX_DIM)
    within(m, p, 13, -128, hi)
    within(m, p, 14, lo, 127)
    if (oy0 + out_h - 1) * s_h - pad_t >= in_h:
        bad(m, p, 5, "has windows below the input's %d rows" % in_h)
    if (out_w - 1) * s_w - pad_l >= in_w:
        bad(m, p, 6, "has windows right of the input's %d columns" % in_w)
    span(m, p, 0, in_ring * in_w * c)
    span(m, p, 4, out_h * out_w * c)
    row_span(m, p, in_w, c, out_w, f_w, s_w, 1, pad_l)


def slot(m, p, field, s, r0, rows, row_bytes, write):
    """Rows r0..r0+rows-1 (row_bytes each) of spill slot s: written in order
    (write), or read after they were written."""
    if not 0 <= s < len(m.slots):
        bad(m, p, field, "is not one of the bundle's %d spill slots" % len(m.slots))
    n, rb = m.slots[s]
    if row_bytes != rb:
        bad(m, p, field, "has rows of %d bytes; the slot's are %d" % (row_bytes, rb))
    if r0 < 0 or r0 + rows > n:
        bad(m, p, field, "uses rows %d..%d; the slot has %d" % (r0, r0 + rows, n))
    if write:
        if r0 and r0 != m.written[s]:
            bad(m, p, field, "writes row %d after %d rows" % (r0, m.written[s]))
        m.written[s] = r0 + rows
    elif r0 + rows > m.written[s]:
        bad(m, p, field, "reads rows %d..%d; %d are written at that point" % (r0, r0 + rows, m.written[s]))


def blob_ints(m, p, raw, at, n, lo, hi, what):
    """The n int32 at byte `at` of the step's blob are within lo..hi (a
    per-channel shift table, say: a kernel shifts by them). Read from the
    file when the blob is stored raw (16 bytes at a time, once per blob);
    a compressed blob is covered by its Adler-32 instead."""
    off, stored = m.at[4], m.at[5]
    if stored != raw or m.at_blob == off:
        return
    f = m.file
    f.seek(m.blob_base + off + at)
    buf = bytearray(16)
    k = 0
    while k < n:
        f.readinto(buf)
        for j in range(min(4, n - k)):
            v = struct.unpack_from("<i", buf, 4 * j)[0]
            if not lo <= v <= hi:
                bad(m, p, "blob", "%s[%d]=%d is outside %d..%d" % (what, k + j, v, lo, hi))
        k += 4
    m.at_blob = off


def window(m, n):
    """The step's Thumb kernel needs a window of n bytes: the model
    allocates the largest once, at load (a window grown during a run
    fragments the heap: the board demo ran out of it there)."""
    if n > m.win:
        m.win = n
