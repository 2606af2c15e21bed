# SPILL: write rows r0.. of a tensor to the spill store (flash), compressed
# row by row: the whole tensor once its early uses are done, or in a
# band-streamed plan each band as soon as it is computed. Its arena space is
# reused until the consumer at the far end fetches it back band by band.
from tinyseg_mp import spill

PARAMS = ("src_off", "rows", "row_bytes", "slot", "tmp_off", "r0")


def run(m, p, blob):
    src_off, rows, row_bytes, slot, tmp_off, r0 = p
    arena = memoryview(m.arena)
    tmp = arena[tmp_off : tmp_off + row_bytes + row_bytes // 8 + 2]
    m.flash_write_bytes += spill.write_rows(slot, arena[src_off : src_off + rows * row_bytes], row_bytes, r0, rows,
                                             tmp)


def check(p, raw, m):
    """Load-time check (convention: tinyseg_mp/ops/__init__.py)."""
    from tinyseg_mp import check as b

    src_off, rows, row_bytes, slot, tmp_off, r0 = p
    b.least(m, p, 1, (1, 2))
    b.span(m, p, 0, rows * row_bytes)
    b.span(m, p, 4, row_bytes + row_bytes // 8 + 2)
    b.slot(m, p, 3, slot, r0, rows, row_bytes, True)
