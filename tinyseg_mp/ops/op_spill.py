# SPILL: write a tensor to the spill store (flash) once its early uses are
# done, compressed row by row, so its arena space can be reused until the
# consumer at the far end of its cold range fetches it back band by band.
from tinyseg_mp import spill

PARAMS = ("src_off", "rows", "row_bytes", "slot", "tmp_off")


def run(m, p, blob):
    src_off, rows, row_bytes, slot, tmp_off = p
    arena = memoryview(m.arena)
    tmp = arena[tmp_off : tmp_off + row_bytes + row_bytes // 8 + 2]
    m.flash_write_bytes += spill.write_rows(slot, arena[src_off : src_off + rows * row_bytes], row_bytes, rows, tmp)
