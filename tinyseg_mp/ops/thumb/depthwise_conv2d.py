# DEPTHWISE_CONV_2D in Thumb assembly: one call computes one output row,
# group after group of 8 consecutive output channels, 8 accumulators in
# registers.
# In depthwise every output channel has its own input bytes, so the window
# is laid out per group: a window row holds, for each group of 8 output
# channels, its pixels one after another, 8 bytes each (lane j of a pixel is
# the input channel (8g + j) // depth_mult). Then a tap's 8 inputs are 8
# consecutive bytes and the taps of a kernel row are d_w * 8 bytes apart;
# for depth_mult > 1 an input byte is repeated in the lanes it feeds.
# Arithmetic: window bytes are x' = x + 128 (uint8, ldrb), weights are int32
# (ldr with an immediate offset), so a lane sums x' * w, and
#   sum (x - in_zp) * w = sum x'w - (128 + in_zp) sum w
# where the last term is folded into the bias on the host: the table of
# ops/thumb/conv2d.py (host_tools/lower/op_conv2d.py requant_table) with no
# S correction. Requantisation as conv2d: TFLite Micro's
# MultiplyByQuantizedMultiplier on 16-bit limbs, exact. Its instructions are
# conv2d's _conv_row requantisation loop again: the inline assembler has no
# call between two asm functions, and a Python call per output would cost
# more than the loop; a change to one must be made to both.
# The blob's Thumb layout, after the reference tables (op_depthwise_conv2d):
# per group, taps (ky, kx) x 8 int32 weights (lanes past out_c are 0); then
# per group 8 rows of the 10-int32 requantisation table.
import micropython
from array import array

from tinyseg_mp.ops.thumb import conv2d

# Parameter block of _dw_row: word index (byte offset = 4 * index).
_PIX = const(0)  # window address of the current pixel's first tap in the group
_PIX_STEP = const(1)  # bytes between pixels: stride_w * 8
_NPIX = const(2)  # pixels left in the row
_SEG0 = const(3)  # address of the kernel rows' window offsets
_SEGP = const(4)  # current entry
_SEG_END = const(5)  # address past the last entry
_RUN = const(6)  # weight bytes of a kernel row: 32 * k_w
_TAP = const(7)  # window bytes between taps of a kernel row: 8 * dil_w
_TBASE = const(8)  # this group's requantisation table (10 words a channel)
_OUTP = const(9)  # output address of the current pixel's first channel
_OUT_STEP = const(10)  # bytes between output pixels: out_c
_NLANES = const(11)  # channels of the group that exist (1..8)
_SAVE = const(12)  # r8-r11 while the kernel runs: 4 words
_ACC = const(16)  # the 8 accumulators, for the requantisation loop
_WBASE = const(24)  # this group's weights
_PIX0 = const(25)  # this group's first pixel (window address)
_NPIX0 = const(26)  # pixels in a row: out_w
_OUT0 = const(27)  # this group's first output
_GLEFT = const(28)  # groups left, this one included
_GSTRIDE = const(29)  # window bytes between groups
_WSTEP = const(30)  # weight bytes of a group: 32 * k_h * k_w
_LAST = const(31)  # channels of the last group (1..8)
_WORDS = const(32)

# Parameter block of _planar: word index.
_DST = const(0)  # window address of the next pixel, group 0 lane 0
_SRC = const(1)  # its input bytes (NHWC)
_N = const(2)  # pixels left
_OUT_C = const(3)  # lanes to fill per pixel: out_c
_DM = const(4)  # depth multiplier: lanes per input byte
_SKIP = const(5)  # bytes from past lane 7 of a group to lane 0 of the next

_p = array("i", bytes(4 * _WORDS))
_q = array("i", bytes(4 * 6))
_segs = array("i", bytes(4 * 16))


@micropython.asm_thumb
def _planar(r0):
    # r0: the block _q. Writes _N pixels of window bytes x ^ 0x80 in group
    # layout. r1 input pointer, r2 window pointer, r3 lanes left in the
    # pixel, r4 lanes left for this input byte, r5 lanes left in the group,
    # r6 the byte, r7 0x80.
    mov(r7, 0x80)
    ldr(r1, [r0, 4])
    label(pixel)
    ldr(r2, [r0, 0])
    ldr(r3, [r0, 12])
    ldr(r4, [r0, 16])
    mov(r5, 8)
    label(lane)
    ldrb(r6, [r1, 0])
    eor(r6, r7)
    strb(r6, [r2, 0])
    add(r2, 1)
    sub(r4, 1)
    bne(same_input)
    add(r1, 1)
    ldr(r4, [r0, 16])
    label(same_input)
    sub(r5, 1)
    bne(same_group)
    ldr(r6, [r0, 20])
    add(r2, r2, r6)
    mov(r5, 8)
    label(same_group)
    sub(r3, 1)
    bne(lane)
    # Next pixel: 8 bytes on in every group.
    ldr(r2, [r0, 0])
    add(r2, 8)
    str(r2, [r0, 0])
    ldr(r2, [r0, 8])
    sub(r2, 1)
    str(r2, [r0, 8])
    bne(pixel)


@micropython.asm_thumb
def _dw_row(r0):
    # r0: the parameter block _p, kept at [sp]. MAC loop registers: r0 input
    # byte x', r1 weight / product, r2 window pointer (this tap, lane 0),
    # r3 weight pointer, r4-r7 and r8-r11 the 8 accumulators, r12 the
    # window step between taps, lr the end of the kernel row's weights.
    push({r0})
    mov(r1, r8)
    str(r1, [r0, 48])
    mov(r1, r9)
    str(r1, [r0, 52])
    mov(r1, r10)
    str(r1, [r0, 56])
    mov(r1, r11)
    str(r1, [r0, 60])
    label(group)
    # New group: its first pixel and output, 8 lanes or those of the last.
    ldr(r1, [r0, 100])
    str(r1, [r0, 0])
    ldr(r1, [r0, 104])
    str(r1, [r0, 8])
    ldr(r1, [r0, 108])
    str(r1, [r0, 36])
    mov(r1, 8)
    ldr(r2, [r0, 112])
    cmp(r2, 1)
    bne(lanes_set)
    ldr(r1, [r0, 124])
    label(lanes_set)
    str(r1, [r0, 44])
    label(pixel)
    # New pixel: first kernel row, the group's first weights, sums zero.
    mov(r1, sp)
    ldr(r0, [r1, 0])
    ldr(r1, [r0, 12])
    str(r1, [r0, 16])
    ldr(r2, [r1, 0])
    ldr(r3, [r0, 0])
    add(r2, r2, r3)
    ldr(r3, [r0, 96])
    ldr(r1, [r0, 24])
    add(r1, r1, r3)
    mov(lr, r1)
    ldr(r1, [r0, 28])
    mov(r12, r1)
    mov(r4, 0)
    mov(r5, 0)
    mov(r6, 0)
    mov(r7, 0)
    mov(r8, r4)
    mov(r9, r4)
    mov(r10, r4)
    mov(r11, r4)
    label(tap)
    # One tap: lane j's x' at r2[j] times its weight at r3[4j].
    ldrb(r0, [r2, 0])
    ldr(r1, [r3, 0])
    mul(r1, r0)
    add(r4, r4, r1)
    ldrb(r0, [r2, 1])
    ldr(r1, [r3, 4])
    mul(r1, r0)
    add(r5, r5, r1)
    ldrb(r0, [r2, 2])
    ldr(r1, [r3, 8])
    mul(r1, r0)
    add(r6, r6, r1)
    ldrb(r0, [r2, 3])
    ldr(r1, [r3, 12])
    mul(r1, r0)
    add(r7, r7, r1)
    ldrb(r0, [r2, 4])
    ldr(r1, [r3, 16])
    mul(r1, r0)
    data(2, 0x4488)  # add r8, r1
    ldrb(r0, [r2, 5])
    ldr(r1, [r3, 20])
    mul(r1, r0)
    data(2, 0x4489)  # add r9, r1
    ldrb(r0, [r2, 6])
    ldr(r1, [r3, 24])
    mul(r1, r0)
    data(2, 0x448A)  # add r10, r1
    ldrb(r0, [r2, 7])
    ldr(r1, [r3, 28])
    mul(r1, r0)
    data(2, 0x448B)  # add r11, r1
    data(2, 0x4462)  # add r2, r12
    add(r3, 32)
    data(2, 0x4573)  # cmp r3, lr
    bne(tap)
    # Next kernel row (r1 = block, r0 = entry), or the pixel is summed.
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
    b(tap)
    label(requant)
    # Accumulators to the block (r1); then r6 walks them, r7 the table rows,
    # r5 the outputs; r8 act_min, r9 act_max, r10 channels left.
    str(r4, [r1, 64])
    str(r5, [r1, 68])
    str(r6, [r1, 72])
    str(r7, [r1, 76])
    mov(r0, r8)
    str(r0, [r1, 80])
    mov(r0, r9)
    str(r0, [r1, 84])
    mov(r0, r10)
    str(r0, [r1, 88])
    mov(r0, r11)
    str(r0, [r1, 92])
    mov(r6, r1)
    ldr(r7, [r6, 32])
    ldr(r5, [r6, 36])
    ldr(r0, [r7, 32])
    mov(r8, r0)
    ldr(r0, [r7, 36])
    mov(r9, r0)
    ldr(r0, [r6, 44])
    mov(r10, r0)
    label(lane)
    # Below the channel's threshold (word 6, host-computed) the output is
    # act_min: most of a ReLU's outputs skip the multiply.
    ldr(r0, [r6, 64])
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
    mov(r0, r10)
    sub(r0, 1)
    mov(r10, r0)
    bne(lane)
    # Next pixel.
    mov(r1, sp)
    ldr(r1, [r1, 0])
    ldr(r0, [r1, 0])
    ldr(r2, [r1, 4])
    add(r0, r0, r2)
    str(r0, [r1, 0])
    ldr(r0, [r1, 36])
    ldr(r2, [r1, 40])
    add(r0, r0, r2)
    str(r0, [r1, 36])
    ldr(r0, [r1, 8])
    sub(r0, 1)
    str(r0, [r1, 8])
    beq(group_done)
    b(pixel)
    label(group_done)
    # Next group: window, outputs, weights and table move on.
    mov(r0, r1)
    ldr(r1, [r0, 100])
    ldr(r2, [r0, 116])
    add(r1, r1, r2)
    str(r1, [r0, 100])
    ldr(r1, [r0, 108])
    add(r1, 8)
    str(r1, [r0, 108])
    ldr(r1, [r0, 96])
    ldr(r2, [r0, 120])
    add(r1, r1, r2)
    str(r1, [r0, 96])
    ldr(r1, [r0, 32])
    add(r1, 255)
    add(r1, 65)
    str(r1, [r0, 32])
    ldr(r1, [r0, 112])
    sub(r1, 1)
    str(r1, [r0, 112])
    beq(finished)
    b(group)
    label(finished)
    ldr(r1, [r0, 48])
    mov(r8, r1)
    ldr(r1, [r0, 52])
    mov(r9, r1)
    ldr(r1, [r0, 56])
    mov(r10, r1)
    ldr(r1, [r0, 60])
    mov(r11, r1)
    pop({r0})


def run(arena, blob, p):
    """Output rows oy0..oy0+out_h-1 of a depthwise step (op_depthwise_conv2d
    PARAMS), from the blob's Thumb layout."""
    global _segs
    (in_off, in_h, in_w, in_c, out_off, out_h, out_w, out_c, k_h, k_w,
     s_h, s_w, d_h, d_w, pad_t, pad_l, dm, in_zp, _, _, _, w_bytes, in_ring, oy0) = p
    groups = (out_c + 7) >> 3
    wide = max((out_w - 1) * s_w + (k_w - 1) * d_w + 1, pad_l + in_w)  # window pixels
    gstride = wide * 8  # bytes of one group in a window row
    row_win = groups * gstride
    fill = (in_zp ^ 0x80) & 0xFF
    win = conv2d.window(k_h, row_win, fill)
    if len(_segs) < k_h:
        _segs = array("i", bytes(4 * k_h))
    segs = _segs
    held = [None] * k_h  # the input row each window row holds
    b = _p
    b[_PIX_STEP] = s_w * 8
    b[_SEG0] = conv2d._addr(segs)
    b[_SEG_END] = b[_SEG0] + 4 * k_h
    b[_RUN] = 32 * k_w
    b[_TAP] = 8 * d_w
    b[_OUT_STEP] = out_c
    b[_NPIX0] = out_w
    b[_GSTRIDE] = gstride
    b[_WSTEP] = 32 * k_h * k_w
    b[_LAST] = out_c - 8 * (groups - 1)
    q = _q
    q[_OUT_C] = out_c
    q[_DM] = dm
    q[_SKIP] = gstride - 8
    row_bytes = in_w * in_c
    data = conv2d._addr(arena) + in_off
    wts = conv2d._addr(blob) + w_bytes + 12 * out_c
    tabs = wts + groups * k_h * k_w * 32
    out_row = conv2d._addr(arena) + out_off
    for oy in range(oy0, oy0 + out_h):
        iy = oy * s_h - pad_t
        for ky in range(k_h):
            slot = iy % k_h if d_h == 1 else ky
            if held[slot] != iy:
                held[slot] = iy
                if 0 <= iy < in_h:
                    q[_DST] = win + slot * row_win + pad_l * 8
                    q[_SRC] = data + (iy % in_ring) * row_bytes
                    q[_N] = in_w
                    _planar(q)
                else:  # outside the input: the zero point, which adds nothing
                    conv2d._span(win + slot * row_win, row_win, 0, fill)
            segs[ky] = slot * row_win
            iy += d_h
        b[_PIX0] = win
        b[_OUT0] = out_row
        b[_WBASE] = wts
        b[_TBASE] = tabs
        b[_GLEFT] = groups
        _dw_row(b)
        out_row += out_w * out_c
