# Kernels in ARMv6-M Thumb assembly (@micropython.asm_thumb), for firmware
# whose native arch is ARM (RP2040, RP2350 in ARM mode): the "thumb" backend.
# Imported only there; each module mirrors the reference op of the same name.
