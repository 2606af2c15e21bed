# Reading a .tsb bundle: header, section table, CRC checks, step records.
# The format is described in docs/bundle_format.md; host_tools.bundle_writer
# writes it with the constants defined here.
import struct
from binascii import crc32

MAGIC = b"TSMP"
VERSION = 4  # 3: META spill_stage; 4: the Thumb requant tables' clamp threshold
HEADER = "<4sHHI"  # magic, version, section count, CRC32 of header + table
SECTION = "<4sIII"  # kind, offset, length, CRC32 of the section bytes
# opcode, param count, blob offset (in BLOB), stored length, length once
# inflated (equal to the stored length when the blob is not compressed)
STEP = "<HHIII"
MAX_PARAMS = 48  # the device's parameter buffer holds this many
BLOB_WBITS = 10  # zlib window of compressed blobs: a 1 KB window to inflate on the device
# META is a list of int32 in this order.
META_FIELDS = (
    "arena_bytes",  # activation arena the plan needs
    "blob_bytes",  # largest step blob (the weight buffer)
    "in_off", "in_bytes", "in_dtype",
    "out_off", "out_bytes", "out_dtype",
    "in_h", "in_w", "in_c",
    "out_h", "out_w", "out_c",
    "spill_stage",  # bytes of RAM per spill slot for its file's partial last block (0: none; tinyseg_mp/spill.py)
)
DTYPES = ("int8", "uint8", "float32", "int32")
_CHUNK = 512


class BundleError(ValueError):
    pass


MAX_BYTES = 1 << 24  # no buffer a bundle asks for may be larger (16 MB: more than any board's RAM)
MAX_DIM = 1 << 16  # bound of a step's pads and band row (its loops step through them)


def _fail(path, offset, what):
    raise BundleError(
        "%s: byte %d: %s; recompile it with `tinyseg compile MODEL.tflite -o %s`"
        % (path, offset, what, path)
    )


def _section_crc(f, offset, length, buf):
    f.seek(offset)
    crc = 0
    mv = memoryview(buf)
    while length > 0:
        n = f.readinto(mv[: min(length, len(buf))])
        if not n:
            break
        crc = crc32(mv[:n], crc)
        length -= n
    return crc, length


KINDS = (b"META", b"INFO", b"STEP", b"BLOB", b"SPIL")  # every section this runtime reads or skips
_ITEM = (1, 1, 4, 4)  # bytes per element of each DTYPES entry


def _kind(kind):
    # A section kind for a message: printable ASCII, other bytes as '?'.
    return "".join(chr(c) if 32 <= c < 127 else "?" for c in kind)


def read_sections(f, path):
    """Check header and every section CRC; return {kind: (offset, length)}."""
    head = f.read(struct.calcsize(HEADER))
    if len(head) < struct.calcsize(HEADER):
        _fail(path, 0, "file too short for a bundle header (%d bytes)" % len(head))
    magic, version, count, head_crc = struct.unpack(HEADER, head)
    if magic != MAGIC:
        _fail(path, 0, "magic is %r, not %r: not a tinyseg bundle" % (magic, MAGIC))
    if version != VERSION:
        _fail(path, 4, "bundle version %d, this runtime reads version %d" % (version, VERSION))
    if count > len(KINDS):
        _fail(path, 6, "%d sections; a bundle has at most %d" % (count, len(KINDS)))
    table = f.read(count * struct.calcsize(SECTION))
    if len(table) < count * struct.calcsize(SECTION):
        _fail(path, len(head), "section table truncated")
    if crc32(table, crc32(head[:8])) != head_crc:
        _fail(path, 8, "header CRC mismatch (damaged file)")
    sections = {}
    buf = bytearray(_CHUNK)
    for i in range(count):
        kind, offset, length, crc = struct.unpack_from(SECTION, table, i * struct.calcsize(SECTION))
        at = len(head) + i * struct.calcsize(SECTION)
        if kind not in KINDS:
            _fail(path, at, "unknown section kind %r: bundle is newer than this runtime" % _kind(kind))
        if kind in sections:
            _fail(path, at, "section %s appears twice" % _kind(kind))
        got, missing = _section_crc(f, offset, length, buf)
        if missing:
            _fail(path, offset + length - missing, "section %s truncated (%d bytes missing)" % (_kind(kind), missing))
        if got != crc:
            _fail(path, offset, "section %s CRC mismatch (damaged file)" % _kind(kind))
        sections[kind] = (offset, length)
    for kind in (b"META", b"STEP", b"BLOB"):
        if kind not in sections:
            _fail(path, 12, "section %s missing" % kind.decode())
    return sections


def read_meta(f, sections, path="bundle"):
    """META as a dict, every value checked against the others."""
    offset, length = sections[b"META"]
    if length != 4 * len(META_FIELDS):
        _fail(path, offset, "META has %d bytes, not %d" % (length, 4 * len(META_FIELDS)))
    f.seek(offset)
    values = struct.unpack("<%di" % len(META_FIELDS), f.read(length))
    meta = dict(zip(META_FIELDS, values))
    for i, name in enumerate(META_FIELDS):
        v = values[i]
        lo = -1 if name in ("in_off", "out_off") else 0 if name in ("blob_bytes", "spill_stage") else 1
        hi = len(DTYPES) - 1 if name.endswith("dtype") else MAX_BYTES
        if name.endswith("dtype"):
            lo = 0
        if not lo <= v <= hi:
            _fail(path, offset + 4 * i, "META %s=%d is outside %d..%d" % (name, v, lo, hi))
    for io in ("in", "out"):
        at = offset + 4 * META_FIELDS.index(io + "_off")
        n = meta[io + "_h"] * meta[io + "_w"] * meta[io + "_c"] * _ITEM[meta[io + "_dtype"]]
        if n != meta[io + "_bytes"]:
            _fail(path, at + 4, "META %s_bytes=%d is not %s_h x %s_w x %s_c of %s (%d)" % (
                io, meta[io + "_bytes"], io, io, io, DTYPES[meta[io + "_dtype"]], n))
        if meta[io + "_off"] >= 0 and meta[io + "_off"] + meta[io + "_bytes"] > meta["arena_bytes"]:
            _fail(path, at, "META %s_off=%d with %d bytes is outside the arena (%d bytes)" % (
                io, meta[io + "_off"], meta[io + "_bytes"], meta["arena_bytes"]))
    return meta


def read_spill_slots(f, sections, path="bundle"):
    """(rows, row_bytes) of every spill slot; none when the plan spills nothing."""
    if b"SPIL" not in sections:
        return []
    offset, length = sections[b"SPIL"]
    if length % 8 or not 8 <= length <= 8 * 256:
        _fail(path, offset, "SPIL has %d bytes: not 1 to 256 (rows, row bytes) pairs" % length)
    f.seek(offset)
    v = struct.unpack("<%di" % (length // 4), f.read(length))
    total = 0
    for i in range(0, len(v), 2):
        if not (1 <= v[i] <= MAX_DIM and 1 <= v[i + 1] <= MAX_BYTES):
            _fail(path, offset + 4 * i, "spill slot %d: %d rows of %d bytes is out of range" % (i // 2, v[i], v[i + 1]))
        total += v[i] * v[i + 1]
    if total > 16 * MAX_BYTES:
        _fail(path, offset, "the spill slots hold %d bytes; a board's flash is smaller" % total)
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)]


def read_steps(f, sections, path):
    """Step records as (opcode, params tuple, blob offset, stored length, raw length)."""
    offset, length = sections[b"STEP"]
    f.seek(offset)
    data = f.read(length)
    steps = []
    pos = 0
    size = struct.calcsize(STEP)
    while pos < length:
        opcode, count, blob_off, stored, raw = struct.unpack_from(STEP, data, pos)
        pos += size
        if pos + 4 * count > length:
            _fail(path, offset + pos, "step %d truncated" % len(steps))
        steps.append((opcode, struct.unpack_from("<%di" % count, data, pos), blob_off, stored, raw))
        pos += 4 * count
    return steps
