# MicroPython script for test_runtime: run a bundle as on firmware without the
# viper emitter (every viper function compiled as plain Python).
# argv: BUNDLE INPUT.bin OUTPUT.bin SPILL_PATH
import sys

from tinyseg_mp import _compat

_compat.NO_VIPER = True
import tinyseg_mp  # noqa: E402

m = tinyseg_mp.load(sys.argv[1], "viper", sys.argv[4])
with open(sys.argv[2], "rb") as f:
    f.readinto(m.input_view())
out = m.run()
with open(sys.argv[3], "wb") as f:
    f.write(out)
plain = [k for k, v in sys.modules.items() if k.startswith("tinyseg_mp.") and type(v) is type]
print("PLAIN", " ".join(sorted(plain)))
m.close()
