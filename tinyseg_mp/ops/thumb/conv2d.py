# CONV_2D in Thumb assembly: one call computes one output row for one group
# of 8 output channels, 8 accumulators in registers, each input byte loaded
# once for the 8 weights it meets.
# Arithmetic: inputs are copied into a window of k_h padded rows as
# x' = x + 128 (uint8), weights are stored as w' = w + 128 (uint8), so both
# load with ldrb and an immediate offset. The kernel sums x' * w' and, per
# pixel, S = sum x'; then
#   sum (x - in_zp) * w = sum x'w' - 128 S - (128 + in_zp) sum w
# and the last term is folded into the bias on the host. Where there is room
# (_rows), a group's weights are first expanded into paired lanes of
# signed weights, so that one word load and one multiply give two products,
# and the products of two inputs x = x' - 128 are split into their lanes at
# once (the lanes start from 128 sum w, so they end as sum x'w' - 128 S and
# both loops share the bias and the requantisation). Requantisation is
# TFLite Micro's MultiplyByQuantizedMultiplier on 16-bit limbs (no 64-bit
# multiply on the M0+), exact.
# The window holds k_h input rows, each (pad_l + in_w + ...) pixels wide,
# padded with the input zero point; _rows (viper) fills it for each output
# row and calls _conv_row once per group.
import micropython
from array import array

# Parameter block of _conv_row: word index (byte offset = 4 * index).
_PIX = const(0)  # window address of the current pixel's first tap
_PIX_STEP = const(1)  # bytes between pixels: stride_w * in_c
_NPIX = const(2)  # pixels left in the row
_SEG0 = const(3)  # address of the segment table (offsets from _PIX)
_SEGP = const(4)  # current segment entry
_SEG_END = const(5)  # address past the last entry
_MAIN8 = const(6)  # weight bytes of a segment's whole chunks: 8 * (L & ~3), paired 16 * (L & ~7)
_TAIL8 = const(7)  # weight bytes of its remaining inputs: 8 * (L & 3), paired 16 * (L & 7)
_WBASE = const(8)  # this group's packed weights
_TBASE = const(9)  # this group's requantisation table (10 words a channel)
_OUTP = const(10)  # output address of the current pixel's first channel
_OUT_STEP = const(11)  # bytes between output pixels
_NLANES = const(12)  # channels of the group that exist (1..8)
_SUMS = const(13)  # paired lanes: the 8 accumulators' start, 128 * sum w_j (_mode)
_ACC = const(21)  # the 8 accumulators, handed to the requantisation loop
_SEG_CAP = const(29)  # entries _segs holds (Python and _rows only)
_PAIRED = const(30)  # 1: the weights are in paired lanes (_expand), 0: bytes
_WORDS = const(31)
# Paired lanes cost 4 weight bytes an input and lane pair instead of 2: for
# a group in rows of at least _PAIR_MIN_W pixels (fewer would not pay for
# _expand), _rows expands the group's weights into the weight buffer past
# the step's blob, where it has the room (no RAM of its own: the board
# demo's heap had none to spare).
_PAIR_MIN_W = const(12)

# Block of _window: word index.
_W_WIN = const(0)  # the window's first byte
_W_WIDE = const(1)  # bytes a window row
_W_LEFT = const(2)  # fill bytes before a row's input
_W_ROW = const(3)  # input bytes a row
_W_RIGHT = const(4)  # fill bytes after them
_W_FILL = const(5)  # the fill byte, four times
_W_ROWS = const(6)  # rows to write
_W_SRC = const(7)  # each row's source address (0: fill only), _SEG_CAP of them

_p = array("i", bytes(4 * _WORDS))
_segs = array("i", bytes(4 * 16))
_w = array("i", bytes(4 * (_W_SRC + 16)))
_p[_SEG_CAP] = 16
_win = bytearray(0)


@micropython.asm_thumb
def _addr(r0):
    # r0: a buffer; returns its address.
    pass


@micropython.asm_thumb
def _expand(r0, r1, r2, r3):
    # r0: destination (4-aligned), r1: a group's byte weights w' = w + 128
    # (8 an input, 4-aligned), r2: segments, r3: inputs a segment (run).
    # Writes 4 words an input, word j = w_j + w_(j+4) * 65536 (the paired
    # lanes of _conv_row): of each segment's first run & ~7 inputs, two at a
    # time in the order its ldm reads (a's word 0, b's word 0, a's word 1,
    # ...), then the other run & 7 one by one (words 0-3). Returns 1 if a
    # weight is -128 (w' = 0: two of its products could overflow a lane; the
    # group then runs on bytes), else 0. [sp]: segments left, [sp, 4]: run;
    # r2 inputs left in this part; r7 the OR of every u - 0x10001 (a lane of
    # it is negative iff one of w' was 0); r8 -0x10001, r9 -0x7F007F
    # (u - 0x10001 - 0x7F007F = the word), r10 the bytes between an input's
    # words. one: r3, r4 an input's w'_0..3 and w'_4..7, r5 the pair
    # u = w'_j | w'_(j+4) << 16, then the word, r6 scratch.
    mov(r4, r8)
    mov(r5, r9)
    mov(r6, r10)
    push({r4, r5, r6})
    push({r2, r3})
    mov(r3, 1)
    lsl(r4, r3, 16)
    orr(r3, r4)
    data(2, 0x425B)  # neg r3, r3
    mov(r8, r3)
    mov(r3, 0x7F)
    lsl(r4, r3, 16)
    orr(r3, r4)
    data(2, 0x425B)  # neg r3, r3
    mov(r9, r3)
    mov(r7, 0)
    label(segment)
    data(2, 0x9A00)  # ldr r2, [sp, 0]
    cmp(r2, 0)
    beq(done)
    sub(r2, 1)
    data(2, 0x9200)  # str r2, [sp, 0]
    data(2, 0x9A01)  # ldr r2, [sp, 4]
    lsr(r2, r2, 3)
    lsl(r2, r2, 2)  # pairs: 4 per chunk of 8
    mov(r3, 8)
    mov(r10, r3)
    label(pair)
    cmp(r2, 0)
    beq(singles)
    bl(one)  # input a: words at r0, r0 + 8, ...
    sub(r0, 28)
    bl(one)  # input b: at r0 + 4, r0 + 12, ...
    sub(r0, 4)
    sub(r2, 1)
    b(pair)
    label(singles)
    data(2, 0x9A01)  # ldr r2, [sp, 4]
    mov(r3, 7)
    and_(r2, r3)
    mov(r3, 4)
    mov(r10, r3)
    label(single)
    cmp(r2, 0)
    beq(segment)
    bl(one)
    sub(r2, 1)
    b(single)
    label(one)
    # The input at r1 to 4 words r10 bytes apart from r0; r0 and r1 move past them.
    ldr(r3, [r1, 0])
    ldr(r4, [r1, 4])
    add(r1, 8)
    data(2, 0xB2DD)  # uxtb r5, r3
    data(2, 0xB2E6)  # uxtb r6, r4
    lsl(r6, r6, 16)
    orr(r5, r6)
    data(2, 0x4445)  # add r5, r8
    orr(r7, r5)
    data(2, 0x444D)  # add r5, r9
    str(r5, [r0, 0])
    data(2, 0x4450)  # add r0, r10
    lsr(r5, r3, 8)
    data(2, 0xB2ED)  # uxtb r5, r5
    lsr(r6, r4, 8)
    data(2, 0xB2F6)  # uxtb r6, r6
    lsl(r6, r6, 16)
    orr(r5, r6)
    data(2, 0x4445)  # add r5, r8
    orr(r7, r5)
    data(2, 0x444D)  # add r5, r9
    str(r5, [r0, 0])
    data(2, 0x4450)  # add r0, r10
    lsr(r5, r3, 16)
    data(2, 0xB2ED)  # uxtb r5, r5
    lsr(r6, r4, 16)
    data(2, 0xB2F6)  # uxtb r6, r6
    lsl(r6, r6, 16)
    orr(r5, r6)
    data(2, 0x4445)  # add r5, r8
    orr(r7, r5)
    data(2, 0x444D)  # add r5, r9
    str(r5, [r0, 0])
    data(2, 0x4450)  # add r0, r10
    lsr(r5, r3, 24)
    lsr(r6, r4, 24)
    lsl(r6, r6, 16)
    orr(r5, r6)
    data(2, 0x4445)  # add r5, r8
    orr(r7, r5)
    data(2, 0x444D)  # add r5, r9
    str(r5, [r0, 0])
    data(2, 0x4450)  # add r0, r10
    bx(lr)
    label(done)
    # Bit 15 or 31 of r7: some w' was 0.
    pop({r2, r3})
    lsl(r0, r7, 16)
    orr(r0, r7)
    lsr(r0, r0, 31)
    pop({r4, r5, r6})
    mov(r8, r4)
    mov(r9, r5)
    mov(r10, r6)


@micropython.asm_thumb
def _window(r0):
    # r0: the block _w (_W_* words), at [sp, 4]; [sp] the row index i. Row
    # i of the window (_W_WIDE bytes at _W_WIN + i * _W_WIDE) is all fill
    # when its source (_W_SRC + i) is 0, else _W_LEFT bytes of fill, the
    # source's _W_ROW bytes, each XOR 0x80 (int8 -> x + 128 as uint8), and
    # _W_RIGHT bytes of fill. The subroutines take r0 the destination (moved
    # past what they write), r1 fill: the count, r2 the fill word / copy:
    # r1 the source, r2 the count.
    push({r0})
    mov(r1, 0)
    push({r1})
    label(row)
    data(2, 0x9801)  # ldr r0, [sp, 4]
    data(2, 0x9900)  # ldr r1, [sp, 0]
    ldr(r2, [r0, 24])
    cmp(r1, r2)
    beq(done)
    lsl(r2, r1, 2)
    add(r2, r2, r0)
    ldr(r3, [r2, 28])  # the source
    ldr(r2, [r0, 4])
    mul(r2, r1)
    ldr(r4, [r0, 0])
    add(r2, r2, r4)  # the row's first byte
    add(r1, 1)
    data(2, 0x9100)  # str r1, [sp, 0]
    ldr(r4, [r0, 20])
    cmp(r3, 0)
    bne(source)
    ldr(r1, [r0, 4])
    mov(r0, r2)
    mov(r2, r4)
    bl(fill)
    b(row)
    label(source)
    ldr(r1, [r0, 8])
    mov(r0, r2)
    mov(r2, r4)
    bl(fill)
    mov(r1, r3)
    data(2, 0x9D01)  # ldr r5, [sp, 4]
    ldr(r2, [r5, 12])
    bl(copy)
    data(2, 0x9D01)  # ldr r5, [sp, 4]
    ldr(r1, [r5, 16])
    ldr(r2, [r5, 20])
    bl(fill)
    b(row)
    label(fill)
    # Bytes up to a word boundary, words, then the last bytes. r4 scratch.
    cmp(r1, 0)
    beq(filled)
    lsl(r4, r0, 30)
    beq(fill_words)
    strb(r2, [r0, 0])
    add(r0, 1)
    sub(r1, 1)
    b(fill)
    label(fill_words)
    cmp(r1, 4)
    blt(fill_tail)
    str(r2, [r0, 0])
    add(r0, 4)
    sub(r1, 4)
    b(fill_words)
    label(fill_tail)
    cmp(r1, 0)
    beq(filled)
    strb(r2, [r0, 0])
    add(r0, 1)
    sub(r1, 1)
    b(fill_tail)
    label(filled)
    bx(lr)
    label(copy)
    # 16 bytes a step (ldm/stm of r4-r7) when both addresses and the count
    # are multiples of 4, then words; else byte by byte. r3 the XOR mask.
    mov(r3, 0x80)
    mov(r4, r0)
    orr(r4, r1)
    orr(r4, r2)
    lsl(r4, r4, 30)
    bne(copy_bytes)
    lsl(r4, r3, 8)
    orr(r3, r4)
    lsl(r4, r3, 16)
    orr(r3, r4)
    label(copy_blocks)
    cmp(r2, 16)
    blt(copy_words)
    data(2, 0xC9F0)  # ldmia r1!, {r4-r7}
    eor(r4, r3)
    eor(r5, r3)
    eor(r6, r3)
    eor(r7, r3)
    data(2, 0xC0F0)  # stmia r0!, {r4-r7}
    sub(r2, 16)
    b(copy_blocks)
    label(copy_words)
    cmp(r2, 0)
    beq(copied)
    ldr(r4, [r1, 0])
    eor(r4, r3)
    str(r4, [r0, 0])
    add(r0, 4)
    add(r1, 4)
    sub(r2, 4)
    b(copy_words)
    label(copy_bytes)
    cmp(r2, 0)
    beq(copied)
    ldrb(r4, [r1, 0])
    eor(r4, r3)
    strb(r4, [r0, 0])
    add(r0, 1)
    add(r1, 1)
    sub(r2, 1)
    b(copy_bytes)
    label(copied)
    bx(lr)
    label(done)
    pop({r0, r1})


@micropython.asm_thumb
def _conv_row(r0):
    # r0: the parameter block _p. It stays at [sp] for the whole call; [sp, 4]
    # holds the end of the current weight run in the paired-lane loop.
    # Byte weights (_PAIRED 0), MAC loop registers: r0 input byte x', r1
    # weight / product, r2 input pointer, r3 weight pointer, r4-r7 and r8-r11
    # the 8 accumulators, r12 the pixel's S = sum x', lr the end of the
    # current weight run. Paired lanes: see pixel2 below.
    # r8-r12 are the caller's: saved on the stack below the block.
    mov(r1, r8)
    mov(r2, r9)
    mov(r3, r10)
    mov(r4, r11)
    push({r1, r2, r3, r4})
    mov(r1, r12)
    push({r1})
    push({r0, r1})
    ldr(r1, [r0, 120])
    cmp(r1, 0)
    beq(pixel)
    b(pixel2)
    label(pixel)
    # New pixel: first segment, weights from the group's start, sums zero.
    mov(r1, sp)
    ldr(r0, [r1, 0])
    ldr(r1, [r0, 12])
    str(r1, [r0, 16])
    ldr(r2, [r1, 0])
    ldr(r3, [r0, 0])
    add(r2, r2, r3)
    ldr(r3, [r0, 32])
    ldr(r1, [r0, 24])
    add(r1, r1, r3)
    mov(lr, r1)
    mov(r4, 0)
    mov(r5, 0)
    mov(r6, 0)
    mov(r7, 0)
    mov(r8, r4)
    mov(r9, r4)
    mov(r10, r4)
    mov(r11, r4)
    mov(r12, r4)
    label(segment)
    data(2, 0x4573)  # cmp r3, lr
    beq(tail_start)
    label(chunk)
    # Four inputs x' at r2[0..3], each times the 8 weights at r3[8i..8i+7].
    ldrb(r0, [r2, 0])
    data(2, 0x4484)  # add r12, r0
    ldrb(r1, [r3, 0])
    mul(r1, r0)
    add(r4, r4, r1)
    ldrb(r1, [r3, 1])
    mul(r1, r0)
    add(r5, r5, r1)
    ldrb(r1, [r3, 2])
    mul(r1, r0)
    add(r6, r6, r1)
    ldrb(r1, [r3, 3])
    mul(r1, r0)
    add(r7, r7, r1)
    ldrb(r1, [r3, 4])
    mul(r1, r0)
    data(2, 0x4488)  # add r8, r1
    ldrb(r1, [r3, 5])
    mul(r1, r0)
    data(2, 0x4489)  # add r9, r1
    ldrb(r1, [r3, 6])
    mul(r1, r0)
    data(2, 0x448A)  # add r10, r1
    ldrb(r1, [r3, 7])
    mul(r1, r0)
    data(2, 0x448B)  # add r11, r1
    ldrb(r0, [r2, 1])
    data(2, 0x4484)  # add r12, r0
    ldrb(r1, [r3, 8])
    mul(r1, r0)
    add(r4, r4, r1)
    ldrb(r1, [r3, 9])
    mul(r1, r0)
    add(r5, r5, r1)
    ldrb(r1, [r3, 10])
    mul(r1, r0)
    add(r6, r6, r1)
    ldrb(r1, [r3, 11])
    mul(r1, r0)
    add(r7, r7, r1)
    ldrb(r1, [r3, 12])
    mul(r1, r0)
    data(2, 0x4488)  # add r8, r1
    ldrb(r1, [r3, 13])
    mul(r1, r0)
    data(2, 0x4489)  # add r9, r1
    ldrb(r1, [r3, 14])
    mul(r1, r0)
    data(2, 0x448A)  # add r10, r1
    ldrb(r1, [r3, 15])
    mul(r1, r0)
    data(2, 0x448B)  # add r11, r1
    ldrb(r0, [r2, 2])
    data(2, 0x4484)  # add r12, r0
    ldrb(r1, [r3, 16])
    mul(r1, r0)
    add(r4, r4, r1)
    ldrb(r1, [r3, 17])
    mul(r1, r0)
    add(r5, r5, r1)
    ldrb(r1, [r3, 18])
    mul(r1, r0)
    add(r6, r6, r1)
    ldrb(r1, [r3, 19])
    mul(r1, r0)
    add(r7, r7, r1)
    ldrb(r1, [r3, 20])
    mul(r1, r0)
    data(2, 0x4488)  # add r8, r1
    ldrb(r1, [r3, 21])
    mul(r1, r0)
    data(2, 0x4489)  # add r9, r1
    ldrb(r1, [r3, 22])
    mul(r1, r0)
    data(2, 0x448A)  # add r10, r1
    ldrb(r1, [r3, 23])
    mul(r1, r0)
    data(2, 0x448B)  # add r11, r1
    ldrb(r0, [r2, 3])
    data(2, 0x4484)  # add r12, r0
    ldrb(r1, [r3, 24])
    mul(r1, r0)
    add(r4, r4, r1)
    ldrb(r1, [r3, 25])
    mul(r1, r0)
    add(r5, r5, r1)
    ldrb(r1, [r3, 26])
    mul(r1, r0)
    add(r6, r6, r1)
    ldrb(r1, [r3, 27])
    mul(r1, r0)
    add(r7, r7, r1)
    ldrb(r1, [r3, 28])
    mul(r1, r0)
    data(2, 0x4488)  # add r8, r1
    ldrb(r1, [r3, 29])
    mul(r1, r0)
    data(2, 0x4489)  # add r9, r1
    ldrb(r1, [r3, 30])
    mul(r1, r0)
    data(2, 0x448A)  # add r10, r1
    ldrb(r1, [r3, 31])
    mul(r1, r0)
    data(2, 0x448B)  # add r11, r1
    add(r2, 4)
    add(r3, 32)
    data(2, 0x4573)  # cmp r3, lr
    bne(chunk)
    label(tail_start)
    # The segment's last L % 4 inputs, one at a time.
    mov(r1, sp)
    ldr(r1, [r1, 0])
    ldr(r1, [r1, 28])
    add(r1, r1, r3)
    mov(lr, r1)
    data(2, 0x4573)  # cmp r3, lr
    beq(segment_done)
    label(tail)
    ldrb(r0, [r2, 0])
    data(2, 0x4484)  # add r12, r0
    ldrb(r1, [r3, 0])
    mul(r1, r0)
    add(r4, r4, r1)
    ldrb(r1, [r3, 1])
    mul(r1, r0)
    add(r5, r5, r1)
    ldrb(r1, [r3, 2])
    mul(r1, r0)
    add(r6, r6, r1)
    ldrb(r1, [r3, 3])
    mul(r1, r0)
    add(r7, r7, r1)
    ldrb(r1, [r3, 4])
    mul(r1, r0)
    data(2, 0x4488)  # add r8, r1
    ldrb(r1, [r3, 5])
    mul(r1, r0)
    data(2, 0x4489)  # add r9, r1
    ldrb(r1, [r3, 6])
    mul(r1, r0)
    data(2, 0x448A)  # add r10, r1
    ldrb(r1, [r3, 7])
    mul(r1, r0)
    data(2, 0x448B)  # add r11, r1
    add(r2, 1)
    add(r3, 8)
    data(2, 0x4573)  # cmp r3, lr
    bne(tail)
    label(segment_done)
    # Next segment (r1 = block, r0 = entry), or the pixel is summed.
    mov(r1, sp)
    ldr(r1, [r1, 0])
    ldr(r0, [r1, 16])
    add(r0, 4)
    str(r0, [r1, 16])
    ldr(r2, [r1, 20])
    cmp(r0, r2)
    beq(requant)
    ldr(r2, [r0, 0])
    ldr(r0, [r1, 0])
    add(r2, r2, r0)
    ldr(r0, [r1, 24])
    add(r0, r0, r3)
    mov(lr, r0)
    b(segment)
    label(requant)
    # a' = acc - 128 S of each lane to the block (r1); then r6 walks the
    # a' words, r7 the table rows, r5 the outputs; r8 act_min, r9 act_max,
    # r10 the end of the pixel's outputs.
    mov(r0, r12)
    lsl(r0, r0, 7)
    sub(r4, r4, r0)
    str(r4, [r1, 84])
    sub(r5, r5, r0)
    str(r5, [r1, 88])
    sub(r6, r6, r0)
    str(r6, [r1, 92])
    sub(r7, r7, r0)
    str(r7, [r1, 96])
    mov(r2, r8)
    sub(r2, r2, r0)
    str(r2, [r1, 100])
    mov(r2, r9)
    sub(r2, r2, r0)
    str(r2, [r1, 104])
    mov(r2, r10)
    sub(r2, r2, r0)
    str(r2, [r1, 108])
    mov(r2, r11)
    sub(r2, r2, r0)
    str(r2, [r1, 112])
    label(lanes)
    mov(r6, r1)
    ldr(r7, [r6, 36])
    ldr(r5, [r6, 40])
    ldr(r0, [r7, 32])
    mov(r8, r0)
    ldr(r0, [r7, 36])
    mov(r9, r0)
    ldr(r0, [r6, 48])
    add(r0, r0, r5)
    mov(r10, r0)
    label(lane)
    # Below the channel's threshold (word 6, host-computed) the output is
    # act_min: most of a ReLU's outputs skip the multiply.
    ldr(r0, [r6, 84])
    add(r6, 4)
    ldr(r1, [r7, 24])
    cmp(r0, r1)
    blt(low)
    # a = (a' + folded bias) << left shift.
    ldr(r1, [r7, 0])
    add(r0, r0, r1)
    ldr(r1, [r7, 12])
    lsl(r0, r1)
    # a * M as 64 bits: a = ah:al (r1:r0), M = mh:ml (r3:r2); lo r4, hi r1.
    asr(r1, r0, 16)
    data(2, 0xB280)  # uxth r0, r0
    ldr(r2, [r7, 4])
    ldr(r3, [r7, 8])
    mov(r4, r0)
    mul(r4, r2)
    mul(r0, r3)
    mul(r2, r1)
    mul(r1, r3)
    lsl(r3, r2, 16)
    asr(r2, r2, 16)
    add(r4, r4, r3)
    adc(r1, r2)
    lsl(r3, r0, 16)
    lsr(r0, r0, 16)
    add(r4, r4, r3)
    adc(r1, r0)
    # v = (a * M + 2^30) >> 31 = 2 hi + bit 31 of lo + bit 30 of lo (r1).
    lsr(r2, r4, 30)
    lsr(r3, r2, 1)
    sub(r2, r2, r3)
    lsl(r1, r1, 1)
    add(r1, r1, r2)
    # Rounding right shift: (v >> e) + ((v & mask) > (mask >> 1) + (v < 0)).
    ldr(r2, [r7, 20])
    lsr(r3, r2, 1)
    and_(r2, r1)
    lsr(r4, r1, 31)
    add(r3, r3, r4)
    ldr(r4, [r7, 16])
    asr(r1, r4)
    cmp(r2, r3)
    ble(rounded)
    add(r1, 1)
    label(rounded)
    # + output zero point, clamp to [r8, r9], store; next channel.
    ldr(r2, [r7, 28])
    add(r1, r1, r2)
    data(2, 0x4541)  # cmp r1, r8
    bge(above_low)
    mov(r1, r8)
    label(above_low)
    data(2, 0x4549)  # cmp r1, r9
    ble(below_high)
    mov(r1, r9)
    b(below_high)
    label(low)
    mov(r1, r8)
    label(below_high)
    strb(r1, [r5, 0])
    add(r5, 1)
    add(r7, 40)
    data(2, 0x4555)  # cmp r5, r10
    bne(lane)
    # Next pixel.
    mov(r1, sp)
    ldr(r1, [r1, 0])
    ldr(r0, [r1, 0])
    ldr(r2, [r1, 4])
    add(r0, r0, r2)
    str(r0, [r1, 0])
    ldr(r0, [r1, 40])
    ldr(r2, [r1, 44])
    add(r0, r0, r2)
    str(r0, [r1, 40])
    ldr(r0, [r1, 8])
    sub(r0, 1)
    str(r0, [r1, 8])
    beq(finished)
    ldr(r0, [r1, 120])
    cmp(r0, 0)
    beq(next_bytes)
    b(pixel2)
    label(next_bytes)
    b(pixel)
    label(finished)
    pop({r0, r1})
    pop({r1})
    mov(r12, r1)
    pop({r1, r2, r3, r4})
    mov(r8, r1)
    mov(r9, r2)
    mov(r10, r3)
    mov(r11, r4)
    b(exit)
    label(pixel2)
    # Paired lanes (_PAIRED 1): per input 4 weight words, word j = w_j +
    # w_(j+4) * 65536 (signed w, _expand; two inputs' words interleaved in a
    # chunk, for ldm), times x = x' - 128: the products of
    # two inputs, each at most 16,256 in size (no weight is -128), sum to a
    # signed 16-bit low half, split once per two inputs with sxth. Registers:
    # r0 and r1 the two inputs' x, r2 the sum of products, r3 its low half,
    # r4 weight pointer, r5 input pointer, lanes 0-3 in r6 r7 r8 r9, lanes 4-7
    # in r10 r11 r12 lr, starting from _SUMS (so that they end as the byte
    # loop's sum x'w' - 128 S).
    data(2, 0x9800)  # ldr r0, [sp, 0]
    ldr(r1, [r0, 12])
    str(r1, [r0, 16])
    ldr(r5, [r1, 0])
    ldr(r2, [r0, 0])
    add(r5, r5, r2)
    ldr(r4, [r0, 32])
    ldr(r6, [r0, 52])
    ldr(r7, [r0, 56])
    ldr(r1, [r0, 60])
    mov(r8, r1)
    ldr(r1, [r0, 64])
    mov(r9, r1)
    ldr(r1, [r0, 68])
    mov(r10, r1)
    ldr(r1, [r0, 72])
    mov(r11, r1)
    ldr(r1, [r0, 76])
    mov(r12, r1)
    ldr(r1, [r0, 80])
    mov(lr, r1)
    label(segment2)
    data(2, 0x9800)  # ldr r0, [sp, 0]
    ldr(r2, [r0, 24])
    add(r2, r2, r4)
    data(2, 0x9201)  # str r2, [sp, 4]: the end of the 8-input chunks
    cmp(r4, r2)
    bne(chunk2)
    b(tail2_start)
    label(chunk2)
    # Inputs r5[0..7] in four pairs; each pair's 8 words in ldm order (a's
    # word j, b's word j), r4 moving past them.
    ldrb(r0, [r5, 0])
    sub(r0, 128)
    ldrb(r1, [r5, 1])
    sub(r1, 128)
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r6, r6, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4492)  # add r10, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r7, r7, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4493)  # add r11, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4498)  # add r8, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4494)  # add r12, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4499)  # add r9, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4496)  # add lr, r2
    ldrb(r0, [r5, 2])
    sub(r0, 128)
    ldrb(r1, [r5, 3])
    sub(r1, 128)
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r6, r6, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4492)  # add r10, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r7, r7, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4493)  # add r11, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4498)  # add r8, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4494)  # add r12, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4499)  # add r9, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4496)  # add lr, r2
    ldrb(r0, [r5, 4])
    sub(r0, 128)
    ldrb(r1, [r5, 5])
    sub(r1, 128)
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r6, r6, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4492)  # add r10, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r7, r7, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4493)  # add r11, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4498)  # add r8, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4494)  # add r12, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4499)  # add r9, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4496)  # add lr, r2
    ldrb(r0, [r5, 6])
    sub(r0, 128)
    ldrb(r1, [r5, 7])
    sub(r1, 128)
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r6, r6, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4492)  # add r10, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    add(r7, r7, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4493)  # add r11, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4498)  # add r8, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4494)  # add r12, r2
    data(2, 0xCC0C)  # ldmia r4!, {r2, r3}
    mul(r2, r0)
    mul(r3, r1)
    add(r2, r2, r3)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4499)  # add r9, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4496)  # add lr, r2
    add(r5, 8)
    data(2, 0x9A01)  # ldr r2, [sp, 4]
    cmp(r4, r2)
    beq(tail2_start)
    b(chunk2)  # out of a conditional branch's reach
    label(tail2_start)
    # The segment's last L % 8 inputs, one at a time.
    data(2, 0x9800)  # ldr r0, [sp, 0]
    ldr(r2, [r0, 28])
    add(r2, r2, r4)
    data(2, 0x9201)  # str r2, [sp, 4]
    cmp(r4, r2)
    beq(segment2_done)
    label(tail2)
    ldrb(r0, [r5, 0])
    sub(r0, 128)
    ldr(r2, [r4, 0])
    mul(r2, r0)
    data(2, 0xB213)  # sxth r3, r2
    add(r6, r6, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4492)  # add r10, r2
    ldr(r2, [r4, 4])
    mul(r2, r0)
    data(2, 0xB213)  # sxth r3, r2
    add(r7, r7, r3)
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4493)  # add r11, r2
    ldr(r2, [r4, 8])
    mul(r2, r0)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4498)  # add r8, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4494)  # add r12, r2
    ldr(r2, [r4, 12])
    mul(r2, r0)
    data(2, 0xB213)  # sxth r3, r2
    data(2, 0x4499)  # add r9, r3
    sub(r2, r2, r3)
    asr(r2, r2, 16)
    data(2, 0x4496)  # add lr, r2
    add(r5, 1)
    add(r4, 16)
    data(2, 0x9A01)  # ldr r2, [sp, 4]
    cmp(r4, r2)
    bne(tail2)
    label(segment2_done)
    # Next segment (r1 = block, r0 = entry), or the pixel is summed.
    data(2, 0x9900)  # ldr r1, [sp, 0]
    ldr(r0, [r1, 16])
    add(r0, 4)
    str(r0, [r1, 16])
    ldr(r2, [r1, 20])
    cmp(r0, r2)
    beq(requant2)
    ldr(r5, [r0, 0])
    ldr(r0, [r1, 0])
    add(r5, r5, r0)
    b(segment2)
    label(requant2)
    # The lanes, in order, to the block (r1), then the lane loop.
    str(r6, [r1, 84])
    str(r7, [r1, 88])
    mov(r2, r8)
    str(r2, [r1, 92])
    mov(r2, r9)
    str(r2, [r1, 96])
    mov(r2, r10)
    str(r2, [r1, 100])
    mov(r2, r11)
    str(r2, [r1, 104])
    mov(r2, r12)
    str(r2, [r1, 108])
    mov(r2, lr)
    str(r2, [r1, 112])
    b(lanes)
    label(exit)


def window(rows, wide, fill):
    """The address of a window of `rows` rows of `wide` bytes, all `fill`."""
    global _win
    if len(_win) < rows * wide:
        _win = None
        _win = bytearray(rows * wide)
    at = _addr(_win)
    _span(at, rows * wide, 0, fill)
    return at


@micropython.viper
def _span(at: int, n: int, src: int, fill: int):
    # n bytes at address `at`: from address src, each XOR 0x80 (int8 -> x +
    # 128 as uint8), or (src 0) all `fill`.
    w = ptr32(_w)
    w[_W_WIN] = at
    w[_W_WIDE] = n
    w[_W_LEFT] = 0
    w[_W_ROW] = n
    w[_W_RIGHT] = 0
    w[_W_FILL] = (fill & 0xFF) * 0x01010101
    w[_W_ROWS] = 1
    w[_W_SRC] = src
    _window(_w)


def release():
    """Free the window (Model.close)."""
    global _win
    _win = bytearray(0)


def _grow(nseg):
    # _segs and _w's sources hold at least nseg entries.
    global _segs, _w
    if _p[_SEG_CAP] < nseg:
        _segs = array("i", bytes(4 * nseg))
        _w = array("i", bytes(4 * (_W_SRC + nseg)))
        _p[_SEG_CAP] = nseg


@micropython.viper
def _mode(p: ptr32, paired: int, run: int, folded: ptr32, table: ptr32, g: int, out_c: int):
    # _conv_row's loop for group g, with segments of `run` inputs: bytes (4
    # inputs a chunk, 8 weight bytes an input) or paired lanes (8 a chunk, 16
    # bytes an input, the lanes starting from 128 * sum w_j: the difference
    # of the two folded biases, as the paired loop sums x w where the byte
    # loop sums x'w' - 128 S = x w + 128 w).
    p[_PAIRED] = paired
    if not paired:
        p[_MAIN8] = 8 * (run - (run & 3))
        p[_TAIL8] = 8 * (run & 3)
        return
    p[_MAIN8] = 16 * (run - (run & 7))
    p[_TAIL8] = 16 * (run & 7)
    j = 0
    while j < 8:
        c = g + j
        p[_SUMS + j] = folded[c] - table[10 * c] if c < out_c else 0
        j += 1


# conv_rows' rows for _rows, at the indices of the step params that give
# them in a whole step (op_conv2d.PARAMS): in_off, out_off, out_h, in_ring, oy0.
_call = array("i", bytes(4 * 25))


@micropython.viper
def _rows(q: ptr32, c: ptr32, src: ptr8, arena: ptr8, blob: ptr8, wb: ptr8, wb_len: int, used: int):
    # q: the step's params (op_conv2d.PARAMS); c: which rows, as words 0, 4,
    # 5, 23, 24 of q (q itself for a whole step, else _call); wb: the weight
    # buffer (wb_len bytes), whose first `used` bytes hold the step's blob
    # (a later step with the same blob uses them again).
    # For each output row:
    # the window's k_h rows from the input (x + 128, padded with the zero
    # point), the segment table, then one _conv_row call per group of 8
    # output channels. Native ints throughout: a Python loop here cost the
    # chip about 80,000 cycles a step, a fifth of a 3x3 8 -> 8 conv row.
    in_h = q[1]
    in_w = q[2]
    in_c = q[3]
    out_w = q[6]
    out_c = q[7]
    k_h = q[8]
    k_w = q[9]
    s_h = q[10]
    s_w = q[11]
    d_h = q[12]
    d_w = q[13]
    pad_t = q[14]
    fill = (q[16] ^ 0x80) & 0xFF
    out_stride = q[22]
    ring = c[23]
    oy = c[24]
    oy1 = oy + c[5]
    win = int(ptr8(_win))
    if d_w == 1:  # a window row's k_w taps are one run of k_w * in_c bytes
        nseg = k_h
        run = k_w * in_c
    else:
        nseg = k_h * k_w
        run = in_c
    if nseg > int(_p[_SEG_CAP]):
        _grow(nseg)
    k = nseg * run
    row_bytes = in_w * in_c
    left = q[15] * in_c
    wide = (out_w - 1) * s_w + (k_w - 1) * d_w + 1
    if wide < q[15] + in_w:
        wide = q[15] + in_w
    wide *= in_c
    data = int(src) + c[0]
    blob_at = int(blob)
    tables = blob_at + q[20] + 16 * out_c
    out_row = int(arena) + c[4] + q[21]
    p = ptr32(_p)
    segs = ptr32(_segs)
    p[_PIX_STEP] = s_w * in_c
    p[_SEG0] = int(segs)
    p[_SEG_END] = int(segs) + 4 * nseg
    scratch = (int(wb) + used + 3) & (0 - 4)  # past the blob
    paired = 0
    if out_w >= _PAIR_MIN_W and scratch + 16 * k <= int(wb) + wb_len:
        paired = 1
    folded = ptr32(blob_at + q[20])  # bias - in_zp * sum w, a word a channel
    table = ptr32(tables)  # word 0 of a channel's 10: bias - (128 + in_zp) * sum w
    p[_OUT_STEP] = out_stride
    if paired and out_c <= 8 and _expand(scratch, blob_at, nseg, run):  # one group: expanded once for every row
        paired = 0  # a -128 weight: on bytes
    _mode(p, paired, run, folded, table, 0, out_c)
    w = ptr32(_w)
    w[_W_WIN] = win
    w[_W_WIDE] = wide
    w[_W_LEFT] = left
    w[_W_ROW] = row_bytes
    w[_W_RIGHT] = wide - left - row_bytes
    w[_W_FILL] = fill * 0x01010101
    w[_W_ROWS] = k_h
    while oy < oy1:
        ky = 0
        while ky < k_h:
            # The window's rows in one _window call: a call costs the chip about 500 cycles.
            iy = oy * s_h + ky * d_h - pad_t
            at = ky * wide
            if iy < 0 or iy >= in_h:
                w[_W_SRC + ky] = 0
            else:
                r = iy
                while r >= ring:
                    r -= ring
                w[_W_SRC + ky] = data + r * row_bytes
            if d_w == 1:
                segs[ky] = at
            else:
                kx = 0
                while kx < k_w:
                    segs[ky * k_w + kx] = at + kx * d_w * in_c
                    kx += 1
            ky += 1
        _window(_w)
        g = 0
        while g < out_c:
            p[_PIX] = win
            p[_NPIX] = out_w
            p[_WBASE] = blob_at + g * k
            if paired and out_c > 8:  # a -128 weight: this group on bytes
                _mode(p, 0 if _expand(scratch, blob_at + g * k, nseg, run) else 1, run, folded, table, g, out_c)
            if p[_PAIRED]:
                p[_WBASE] = scratch
            p[_TBASE] = tables + g * 40
            p[_OUTP] = out_row + g
            lanes = out_c - g
            if lanes > 8:
                lanes = 8
            p[_NLANES] = lanes
            _conv_row(_p)
            g += 8
        out_row += out_w * out_stride
        oy += 1


def run(m, p, blob):
    """One conv2d step (op_conv2d.kernel binds it on a Thumb board)."""
    w = m.wbuf
    _rows(p, p, m.arena, m.arena, blob, w, len(w), len(blob))


def conv_rows(arena, src, blob, row_base, ring, oy0, oy1, out_at, p, m):
    """Output rows oy0..oy1-1 of a conv2d step of model m, as op_conv2d.conv_rows."""
    c = _call
    c[0] = row_base
    c[4] = out_at
    c[5] = oy1 - oy0
    c[23] = ring
    c[24] = oy0
    w = m.wbuf
    _rows(p, c, src, arena, blob, w, len(w), len(blob))
