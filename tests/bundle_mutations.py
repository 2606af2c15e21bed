"""Mutations of .tsb bundles for the property tests (tests/test_untrusted.py)
and the long fuzz benchmark (benchmarks/fuzz_bundles.py).

A mutation is a small tuple, so hypothesis can draw and shrink it:
  ("field", i, how, v)  integer field i of fields(data) changed: how "set"
                        (to v), "add" (v added) or "xor" (bits v flipped)
  ("byte", pos, xor)    one byte anywhere in the file
  ("cut", n)            the file truncated to n bytes
  ("dup", k)            section k's table entry written twice (count + 1)
apply(data, mutation, fix_crc) returns the mutated bytes; with fix_crc the
section CRCs and the header CRC are recomputed, so the change reaches the
validators behind them (a writer with a bug, or an edited file).

Outcomes (classify()): "same" (ran, the unmutated output), "diff" (ran, other
bytes: only possible when the CRCs were recomputed), "rejected" (the
project's own error) and anything else, which is a defect.
"""
from __future__ import annotations

import struct
import zlib

from fuzz_outcome import own_error  # the outcome rule, shared with mp_fuzz_runner.py
from tinyseg_mp import bundle

HEAD = struct.calcsize(bundle.HEADER)
ENTRY = struct.calcsize(bundle.SECTION)
STEP = struct.calcsize(bundle.STEP)

# Values a mutation sets: edges of every check, then anything.
INTERESTING = (0, 1, -1, 2, 3, 4, 7, 8, 16, 255, 256, 1023, 1024, 4095, 4096, 65535, 65536, 262164,
               2**24, 2**24 + 1, 2**30, 2**31 - 1, -(2**31), -2, -128, 127, 128)


def sections(data: bytes) -> list[tuple[bytes, int, int, int]]:
    """(kind, offset, length, table position) of each section table entry."""
    count = struct.unpack_from("<H", data, 6)[0]
    out = []
    for i in range(count):
        kind, off, length, _ = struct.unpack_from(bundle.SECTION, data, HEAD + i * ENTRY)
        out.append((kind, off, length, HEAD + i * ENTRY))
    return out


def fields(data: bytes) -> list[tuple[int, str, str]]:
    """Every integer field of a (well-formed) bundle: (byte offset, struct code, name)."""
    out = [(4, "<H", "version"), (6, "<H", "section count")]
    secs = sections(data)
    for kind, off, length, pos in secs:
        out += [(pos + 4, "<I", f"{kind.decode()} offset"), (pos + 8, "<I", f"{kind.decode()} length")]
    for kind, off, length, _ in secs:
        if kind in (b"META", b"SPIL"):
            out += [(off + 4 * i, "<i", f"{kind.decode()}[{i}]") for i in range(length // 4)]
        elif kind == b"STEP":
            pos = 0
            n = 0
            while pos + STEP <= length:
                count = struct.unpack_from("<H", data, off + pos + 2)[0]
                out += [(off + pos, "<H", f"step {n} opcode"), (off + pos + 2, "<H", f"step {n} count"),
                        (off + pos + 4, "<I", f"step {n} blob off"), (off + pos + 8, "<I", f"step {n} stored"),
                        (off + pos + 12, "<I", f"step {n} raw")]
                out += [(off + pos + STEP + 4 * i, "<i", f"step {n} p{i}") for i in range(count)]
                pos += STEP + 4 * count
                n += 1
    return out


def fix_crcs(data: bytes) -> bytes:
    """Recompute every section CRC (where the section lies inside the file) and the header CRC."""
    b = bytearray(data)
    if len(b) < HEAD:
        return bytes(b)
    count = struct.unpack_from("<H", b, 6)[0]
    for i in range(count):
        pos = HEAD + i * ENTRY
        if pos + ENTRY > len(b):
            break
        _, off, length, _ = struct.unpack_from(bundle.SECTION, b, pos)
        struct.pack_into("<I", b, pos + 12, zlib.crc32(bytes(b[off : off + length])))
    table = bytes(b[HEAD : HEAD + count * ENTRY])
    struct.pack_into("<I", b, 8, zlib.crc32(table, zlib.crc32(bytes(b[:8]))))
    return bytes(b)


def apply(data: bytes, mutation: tuple, fix_crc: bool) -> bytes:
    b = bytearray(data)
    kind = mutation[0]
    if kind == "field":
        fl = fields(data)
        off, code, _ = fl[mutation[1] % len(fl)]
        old = struct.unpack_from(code, b, off)[0]
        how, v = mutation[2], mutation[3]
        new = v if how == "set" else old + v if how == "add" else old ^ v
        signed = code[-1] in "hi"
        bits = 8 * struct.calcsize(code)
        new &= (1 << bits) - 1
        if signed and new >= 1 << (bits - 1):
            new -= 1 << bits
        struct.pack_into(code, b, off, new)
    elif kind == "byte":
        pos = mutation[1] % len(b)
        b[pos] ^= mutation[2] or 1
    elif kind == "cut":
        del b[mutation[1] % len(b):]
    elif kind == "dup":
        secs = sections(data)
        k = mutation[1] % len(secs)
        entry = bytes(b[secs[k][3] : secs[k][3] + ENTRY])
        end = HEAD + len(secs) * ENTRY
        # The extra entry shifts every section by ENTRY bytes: offsets follow.
        rest = bytearray(b[HEAD:end] + entry)
        for i in range(len(secs) + 1):
            o = struct.unpack_from("<I", rest, i * ENTRY + 4)[0]
            struct.pack_into("<I", rest, i * ENTRY + 4, o + ENTRY)
        b = bytearray(b[:HEAD]) + rest + b[end:]
        struct.pack_into("<H", b, 6, len(secs) + 1)
    else:
        raise ValueError(mutation)
    return fix_crcs(bytes(b)) if fix_crc else bytes(b)


def classify(path: str, inp: bytes, ref: bytes, backend: str, spill_path: str) -> tuple[str, str]:
    """Load and run one (mutated) bundle; returns (outcome, detail)."""
    import tinyseg_mp

    m = None
    try:
        m = tinyseg_mp.load(path, backend, spill_path)
        out = bytes(m.run(inp))
    except Exception as exc:  # noqa: BLE001 - the point: which exception
        if own_error(exc, path):
            return "rejected", f"{type(exc).__name__}: {exc}"
        import traceback

        return "foreign", "".join(traceback.format_exception(exc))[-1500:]
    finally:
        if m is not None:
            m.close()
    return ("same" if out == ref else "diff"), ""


def random_mutation(rng) -> tuple:
    """One mutation drawn with `rng` (random.Random), in the proportions of
    the property tests' strategy: mostly integer fields."""
    r = rng.random()
    i = rng.randrange(10**6)
    if r < 0.35:
        v = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randrange(-(2**31), 2**31)
        return ("field", i, "set", v)
    if r < 0.55:
        return ("field", i, "add", rng.randint(-4, 4))
    if r < 0.75:
        return ("field", i, "xor", 1 << rng.randrange(32))
    if r < 0.9:
        return ("byte", i, rng.randrange(1, 256))
    if r < 0.97:
        return ("cut", i)
    return ("dup", rng.randrange(8))
