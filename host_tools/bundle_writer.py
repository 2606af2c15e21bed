"""Write a .tsb bundle (format: docs/bundle_format.md, constants: tinyseg_mp.bundle)."""
from __future__ import annotations

import importlib
import json
import os
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tinyseg_mp import bundle, ops


@dataclass
class Step:
    op: str  # device op name (tinyseg_mp.ops.NAMES)
    params: dict[str, int]
    blob: bytes = b""
    source: str = ""  # what this step comes from, for reports
    extra: dict = field(default_factory=dict)


def op_params(op: str) -> tuple[str, ...]:
    return importlib.import_module(f"tinyseg_mp.ops.op_{op}").PARAMS


def compress_blob(raw: bytes) -> bytes:
    """zlib with a small window (the device inflates with 2^BLOB_WBITS bytes);
    the raw bytes when compression does not pay."""
    if len(raw) < 256:
        return raw
    c = zlib.compressobj(9, zlib.DEFLATED, bundle.BLOB_WBITS)
    packed = c.compress(raw) + c.flush()
    return packed if len(packed) < 0.9 * len(raw) else raw


def _encode_step(step: Step, blob_off: int, stored: int) -> bytes:
    names = op_params(step.op)
    missing = set(names) - step.params.keys()
    extra = step.params.keys() - set(names)
    if missing or extra:
        raise ValueError(f"step {step.op} ({step.source}): missing params {sorted(missing)}, unknown {sorted(extra)}")
    values = [int(step.params[n]) for n in names]
    for n, v in zip(names, values):
        if not -(2**31) <= v < 2**31:
            raise ValueError(f"step {step.op} ({step.source}): param {n}={v} does not fit int32")
    return struct.pack(bundle.STEP, ops.NAMES.index(step.op), len(values), blob_off, stored, len(step.blob)) + struct.pack(
        f"<{len(values)}i", *values
    )


# The littlefs of the rp2 and esp32 ports: 4096-byte blocks, reads in 32s. A
# read that starts at a multiple of 32 in its block and stays in the block
# goes straight from flash into the caller's buffer; else littlefs copies it
# through its cache, and moving to another block walks the file's block list
# again. On the virtual Pico a 2 KB blob load took 31,400 cycles unaligned,
# 17,100 aligned; crossing into the next block added about 9,500.
LFS_BLOCK = 4096
LFS_READ = 32


def lfs_block_offset(pos: int) -> tuple[int, int]:
    """(block, offset in that block) of byte `pos` of a littlefs file: its
    CTZ list puts 4 * (ctz(i) + 1) bytes of pointers at the start of block
    i > 0 (littlefs's lfs_ctz_index)."""
    b = LFS_BLOCK - 8
    i = pos // b
    if i == 0:
        return 0, pos
    i = (pos - 4 * (bin(i - 1).count("1") + 2)) // b
    return i, pos - b * i - 4 * bin(i).count("1")


def lfs_aligned(pos: int, length: int) -> int:
    """The first file position from `pos` on (in steps of 4) where `length`
    bytes start at a multiple of LFS_READ in their block and, unless they
    are more than a block's data can hold, end in it. pos: a multiple of 4."""
    assert pos % 4 == 0
    while True:
        _, off = lfs_block_offset(pos)
        if off % LFS_READ == 0 and (off + length <= LFS_BLOCK or length > LFS_BLOCK - 2 * LFS_READ):
            return pos
        pos += 4


def write_bundle(path: str | Path, meta: dict[str, int], steps: list[Step], info: dict,
                 extra: dict[bytes, bytes] | None = None) -> int:
    """Write the bundle atomically (a temporary file renamed into place); returns its size.
    Blobs are placed where littlefs reads them fastest (lfs_aligned)."""
    meta_bytes = struct.pack(f"<{len(bundle.META_FIELDS)}i", *(int(meta.get(k, 0) if k == "spill_stage" else meta[k])
                                                                  for k in bundle.META_FIELDS))
    info_bytes = json.dumps(info, separators=(",", ":")).encode()
    extra = list((extra or {}).items())
    head_size = struct.calcsize(bundle.HEADER) + (4 + len(extra)) * struct.calcsize(bundle.SECTION)
    record_bytes = sum(struct.calcsize(bundle.STEP) + 4 * len(op_params(s.op)) for s in steps)
    # JSON's trailing spaces put the BLOB section at a multiple of 4 in the
    # file (blobs are 4-aligned in it, littlefs's block offsets move in 4s).
    info_bytes += b" " * (-(head_size + len(meta_bytes) + len(info_bytes) + record_bytes) % 4)
    blob_base = head_size + len(meta_bytes) + len(info_bytes) + record_bytes  # the BLOB section's file offset
    blob = bytearray()
    records = bytearray()
    stored_at: dict[bytes, tuple[int, int]] = {}  # identical blocks are stored once
    # Inflating has a fixed cost per load (a DeflateIO and its window): a blob
    # that several steps load (every band of a streamed op) is stored raw.
    loads = Counter(step.blob for step in steps)
    for step in steps:
        if step.blob not in stored_at:
            packed = compress_blob(step.blob) if loads[step.blob] == 1 else step.blob
            if packed:
                blob += b"\0" * (lfs_aligned(blob_base + len(blob), len(packed)) - blob_base - len(blob))
            stored_at[step.blob] = (len(blob), len(packed))
            blob += packed
            blob += b"\0" * (-len(blob) % 4)
        records += _encode_step(step, *stored_at[step.blob])
    assert len(records) == record_bytes
    sections = [
        (b"META", meta_bytes),
        (b"INFO", info_bytes),
        (b"STEP", bytes(records)),
        (b"BLOB", bytes(blob)),
    ] + extra
    table = bytearray()
    offset = head_size
    for kind, data in sections:
        table += struct.pack(bundle.SECTION, kind, offset, len(data), zlib.crc32(data))
        offset += len(data)
    start = struct.pack("<4sHH", bundle.MAGIC, bundle.VERSION, len(sections))
    header = start + struct.pack("<I", zlib.crc32(bytes(table), zlib.crc32(start)))
    out = Path(path)
    tmp = out.with_name(out.name + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(header + table)
            for _, data in sections:
                f.write(data)
        check_with_device_loader(tmp, out)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never a partial bundle left behind
        raise
    return offset


def check_with_device_loader(path: Path, name: Path) -> None:
    """Load the bundle at `path` with the device's own loader (every check a
    board makes at load, no spill files made): a bundle that a board would
    refuse, or worse run out of bounds, is never written under `name`."""
    from tinyseg_mp.model import Model

    try:
        Model(str(path), "numpy", spill=False).close()
    except bundle.BundleError as exc:
        msg = str(exc).replace(str(path), str(name)).split("; recompile it with")[0]
        raise bundle.BundleError(f"{msg}; the compiler wrote a bundle the device refuses (not written): "
                                 "a compiler bug, please report it with the model") from None
