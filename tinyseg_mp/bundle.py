# Reading a .tsb bundle: header, section table, CRC checks, step records.
# The format is described in docs/bundle_format.md; host_tools.bundle_writer
# writes it with the constants defined here.
import struct
from binascii import crc32

MAGIC = b"TSMP"
VERSION = 2
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
)
DTYPES = ("int8", "uint8", "float32", "int32")
_CHUNK = 512


class BundleError(ValueError):
    pass


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
    table = f.read(count * struct.calcsize(SECTION))
    if len(table) < count * struct.calcsize(SECTION):
        _fail(path, len(head), "section table truncated")
    if crc32(table, crc32(head[:8])) != head_crc:
        _fail(path, 8, "header CRC mismatch (damaged file)")
    sections = {}
    buf = bytearray(_CHUNK)
    for i in range(count):
        kind, offset, length, crc = struct.unpack_from(SECTION, table, i * struct.calcsize(SECTION))
        got, missing = _section_crc(f, offset, length, buf)
        if missing:
            _fail(path, offset + length - missing, "section %s truncated (%d bytes missing)" % (kind.decode(), missing))
        if got != crc:
            _fail(path, offset, "section %s CRC mismatch (damaged file)" % kind.decode())
        sections[kind] = (offset, length)
    for kind in (b"META", b"STEP", b"BLOB"):
        if kind not in sections:
            _fail(path, 12, "section %s missing" % kind.decode())
    return sections


def read_meta(f, sections):
    offset, length = sections[b"META"]
    f.seek(offset)
    values = struct.unpack("<%di" % (length // 4), f.read(length))
    return dict(zip(META_FIELDS, values))


def read_spill_slots(f, sections):
    """(rows, row_bytes) of every spill slot; none when the plan spills nothing."""
    if b"SPIL" not in sections:
        return []
    offset, length = sections[b"SPIL"]
    f.seek(offset)
    v = struct.unpack("<%di" % (length // 4), f.read(length))
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)]


def check_steps(f, sections, path):
    """Walk the step records once, so a damaged list fails at load, not mid-run."""
    offset, length = sections[b"STEP"]
    head = bytearray(struct.calcsize(STEP))
    pos = 0
    n = 0
    while pos < length:
        f.seek(offset + pos)
        f.readinto(head)
        count = struct.unpack(STEP, head)[1]
        pos += len(head)
        if count > MAX_PARAMS or pos + 4 * count > length:
            _fail(path, offset + pos, "step %d truncated or has %d params" % (n, count))
        pos += 4 * count
        n += 1
    return n


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
