# Kernels in viper (@micropython.viper) for the ops whose reference module
# would otherwise carry them: the "viper" backend (stock firmware without
# asm_thumb, the ESP32), imported only there, so that a Thumb board never
# holds their code. Each module mirrors the reference op of the same name.
