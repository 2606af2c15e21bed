# MUL (int8, broadcasting): shares the ADD module's kernels (param kind = 1);
# see op_add.py for params and blob. Loaded through ops.load so firmware
# without the viper emitter still gets the plain-Python fallback.
from tinyseg_mp import ops

_add = ops.load(ops.NAMES.index("add"))
PARAMS = _add.PARAMS
run = _add.run
check = _add.check
