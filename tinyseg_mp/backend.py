# Kernel family selection.
#   numpy: array kernels on CPython
#   ulab:  the same array kernels on MicroPython firmware with ulab
#   viper: scalar @micropython.viper kernels (stock firmware, no ulab)
# Array kernels use `backend.np`; it is None on the viper backend.
import sys

NAMES = ("numpy", "ulab", "viper")
np = None
name = None
FLOAT = None  # the float dtype of the array module


def _default():
    if sys.implementation.name != "micropython":
        return "numpy"
    try:
        import ulab  # noqa: F401

        return "ulab"
    except ImportError:
        return "viper"


def select(wanted=None):
    """Choose the kernel family (None picks the fastest available); returns its name."""
    global np, name, FLOAT
    wanted = wanted or _default()
    if wanted not in NAMES:
        raise ValueError("unknown backend %r; choose one of %s" % (wanted, ", ".join(NAMES)))
    if wanted == "viper":
        np = FLOAT = None
    elif wanted == "ulab":
        try:
            from ulab import numpy as module
        except ImportError:
            raise ValueError("backend 'ulab' needs firmware with the ulab module") from None
        np, FLOAT = module, module.float
    else:
        try:
            import numpy as module
        except ImportError:
            raise ValueError("backend 'numpy' needs CPython with numpy") from None
        np, FLOAT = module, module.float64
    name = wanted
    return name
