# MAX_POOL_2D in Thumb assembly: one call computes a run of output pixels
# whose windows have the same rows and the same number of columns (all the
# interior of an output row, or one pixel at its edge), as TFLite Micro's
# reference kernel: the max over the window's cells inside the input, clamped
# to [act_min, act_max]. A viper loop per output row lists the input rows
# (ring rows in the arena) and splits the row into such runs. The check
# (check.pool_window) makes every window overlap the input, so a run has at
# least one row and one column.
import micropython
from array import array

# Parameter block of _pool_run: word index.
_DST = const(0)  # output address of the run's first pixel
_NPIX = const(1)  # pixels in the run
_C = const(2)  # channels: bytes between a window's columns
_FW = const(3)  # columns of the window inside the input
_STEP = const(4)  # s_w * c - c: from a pixel's last channel to the next pixel's first
_TAP0 = const(5)  # offset of the first pixel's first cell in each input row
_LO = const(6)
_HI = const(7)
_ROW0 = const(8)  # address of the first entry of _rows (input row addresses)
_ROW_END = const(9)  # past its last entry
_SAVE = const(10)  # r8-r12 while the kernel runs: 5 words
_WORDS = const(15)

_b = array("i", bytes(4 * _WORDS))
_rows = array("i", bytes(4 * 16))


@micropython.asm_thumb
def _pool_run(r0):
    # r0: the block _b, kept at [sp]. Registers: r1 the max, r2 a cell
    # pointer, r3 columns left, r4 the row entry, r5 the entry end, r6 the
    # output pointer, r7 the cell offset of the current byte in a row;
    # r8 c, r9 columns, r10 the pixel step, r11 channels left, r12 pixels left.
    push({r0})
    mov(r1, r8)
    str(r1, [r0, 40])
    mov(r1, r9)
    str(r1, [r0, 44])
    mov(r1, r10)
    str(r1, [r0, 48])
    mov(r1, r11)
    str(r1, [r0, 52])
    mov(r1, r12)
    str(r1, [r0, 56])
    ldr(r6, [r0, 0])
    ldr(r1, [r0, 4])
    mov(r12, r1)
    ldr(r1, [r0, 8])
    mov(r8, r1)
    ldr(r1, [r0, 12])
    mov(r9, r1)
    ldr(r1, [r0, 16])
    mov(r10, r1)
    ldr(r7, [r0, 20])
    label(pixel)
    mov(r1, r8)
    mov(r11, r1)
    label(channel)
    # The max of this output byte's cells, row by row.
    mov(r1, 0)
    sub(r1, 128)
    mov(r0, sp)
    ldr(r0, [r0, 0])
    ldr(r4, [r0, 32])
    ldr(r5, [r0, 36])
    label(row)
    ldr(r2, [r4, 0])
    add(r2, r2, r7)
    mov(r3, r9)
    label(cell)
    ldrb(r0, [r2, 0])
    data(2, 0xB240)  # sxtb r0, r0
    cmp(r0, r1)
    ble(not_more)
    mov(r1, r0)
    label(not_more)
    data(2, 0x4442)  # add r2, r8
    sub(r3, 1)
    bne(cell)
    add(r4, 4)
    cmp(r4, r5)
    bne(row)
    # Clamp, store; the next channel, then the next pixel.
    mov(r0, sp)
    ldr(r0, [r0, 0])
    ldr(r2, [r0, 24])
    cmp(r1, r2)
    bge(above_low)
    mov(r1, r2)
    label(above_low)
    ldr(r2, [r0, 28])
    cmp(r1, r2)
    ble(below_high)
    mov(r1, r2)
    label(below_high)
    strb(r1, [r6, 0])
    add(r6, 1)
    add(r7, 1)
    mov(r0, r11)
    sub(r0, 1)
    mov(r11, r0)
    bne(channel)
    data(2, 0x4457)  # add r7, r10
    mov(r0, r12)
    sub(r0, 1)
    mov(r12, r0)
    bne(pixel)
    mov(r0, sp)
    ldr(r0, [r0, 0])
    ldr(r1, [r0, 40])
    mov(r8, r1)
    ldr(r1, [r0, 44])
    mov(r9, r1)
    ldr(r1, [r0, 48])
    mov(r10, r1)
    ldr(r1, [r0, 52])
    mov(r11, r1)
    ldr(r1, [r0, 56])
    mov(r12, r1)
    pop({r0})


def run(m, p, blob):
    """One max_pool2d step (op_max_pool2d.kernel binds it on a Thumb board)."""
    global _rows
    if len(_rows) < p[7]:
        _rows = array("i", bytes(4 * p[7]))
    _pool_rows(p, m.arena)


@micropython.viper
def _pool_rows(q: ptr32, arena: ptr8):
    # q: the step's params (op_max_pool2d.PARAMS). Per output row: the input
    # rows its windows overlap to _rows, then _pool_run for the left edge
    # pixels one by one, the interior in one run, the right edge one by one.
    in_h = q[1]
    in_w = q[2]
    c = q[3]
    out_w = q[6]
    f_h = q[7]
    f_w = q[8]
    s_h = q[9]
    s_w = q[10]
    pad_t = q[11]
    pad_l = q[12]
    in_ring = q[15]
    oy = q[16]
    oy1 = oy + q[5]
    row_bytes = in_w * c
    data = int(arena) + q[0]
    out = int(arena) + q[4]
    b = ptr32(_b)
    rows = ptr32(_rows)
    b[_C] = c
    b[_STEP] = s_w * c - c
    b[_LO] = q[13]
    b[_HI] = q[14]
    b[_ROW0] = int(rows)
    # Interior pixels: window columns x0 = ox * s_w - pad_l .. x0 + f_w - 1 all inside.
    ox_a = (pad_l + s_w - 1) // s_w
    ox_b = (in_w - f_w + pad_l) // s_w + 1
    if ox_b > out_w:
        ox_b = out_w
    if ox_b < ox_a:
        ox_b = ox_a
    while oy < oy1:
        y0 = oy * s_h - pad_t
        y1 = y0 + f_h
        if y0 < 0:
            y0 = 0
        if y1 > in_h:
            y1 = in_h
        n = 0
        while y0 < y1:
            rows[n] = data + (y0 % in_ring) * row_bytes
            n += 1
            y0 += 1
        b[_ROW_END] = int(rows) + 4 * n
        ox = 0
        while ox < out_w:
            x0 = ox * s_w - pad_l
            x1 = x0 + f_w
            if x0 < 0:
                x0 = 0
            if x1 > in_w:
                x1 = in_w
            b[_DST] = out + ox * c
            b[_FW] = x1 - x0
            b[_TAP0] = x0 * c
            if ox == ox_a and ox_b > ox_a:
                b[_NPIX] = ox_b - ox_a
                ox = ox_b
            else:
                b[_NPIX] = 1
                ox += 1
            _pool_run(_b)
        out += out_w * c
        oy += 1
