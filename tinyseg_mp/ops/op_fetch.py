# FETCH: read rows r0..r0+rows-1 of a spilled tensor back from the spill store
# into the arena (a band of a ring in a band-streamed plan), row by row.
from tinyseg_mp import spill

PARAMS = ("dst_off", "r0", "rows", "row_bytes", "slot", "tmp_off")


def run(m, p, blob):
    dst_off, r0, rows, row_bytes, slot, tmp_off = p
    arena = memoryview(m.arena)
    tmp = arena[tmp_off : tmp_off + row_bytes + row_bytes // 8 + 2]
    for r in range(rows):
        at = dst_off + r * row_bytes
        m.flash_read_bytes += spill.read_row(slot, r0 + r, row_bytes, tmp, arena[at : at + row_bytes])


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    dst_off, r0, rows, row_bytes, slot, tmp_off = p
    b.least(m, p, 1, (2, 3))
    b.span(m, p, 0, rows * row_bytes)
    b.span(m, p, 5, row_bytes + row_bytes // 8 + 2)
    b.slot(m, p, 4, slot, r0, rows, row_bytes, False)
