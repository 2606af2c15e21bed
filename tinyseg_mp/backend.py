# Kernel family selection.
#   numpy: array kernels on CPython
#   ulab:  the same array kernels on MicroPython firmware with ulab
#   viper: scalar @micropython.viper kernels (stock firmware, no ulab)
#   thumb: the viper kernels, with Thumb assembly ones (ops/thumb/) for the
#          ops that hold the multiply-accumulates; ARM firmware only
# Where a family has kernels of its own for an op (ops/thumb/, ops/viper/),
# thumb() and viper() import that module on first use, and only there.
# Array kernels use `backend.np`; it is None on the viper and thumb backends.
import sys

NAMES = ("numpy", "ulab", "viper", "thumb")
np = None
name = None
FLOAT = None  # the float dtype of the array module
_thumb = {}  # op name -> its module of ops/thumb/, once imported
_viper = {}  # and of ops/viper/


def _has_thumb():
    # The native arch in sys.implementation._mpy: 3..8 are ARM (armv6 to
    # armv7emdp), where the firmware has the inline Thumb assembler.
    return 3 <= getattr(sys.implementation, "_mpy", 0) >> 10 <= 8


def _default():
    if sys.implementation.name != "micropython":
        return "numpy"
    if _has_thumb():  # faster than viper, and than ulab where float is emulated (RP2040)
        return "thumb"
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
    if wanted == "thumb" and not _has_thumb():
        raise ValueError("backend 'thumb' needs ARM firmware (RP2040, RP2350); use 'viper' here")
    if wanted in ("viper", "thumb"):
        np = FLOAT = None
    elif wanted == "ulab":
        if getattr(sys.implementation, "_mpy", 0) >> 10 == 4:  # armv6m: the RP2040's Cortex-M0+
            # Refused at load, not a MemoryError mid-run: measured on the RP2040,
            # ulab is several times slower than thumb (float emulated, 264 cycles
            # per MAC in dot) and its per-op arrays ran out of heap on the
            # board bundles that thumb runs.
            raise ValueError("backend 'ulab' refused on this chip (Cortex-M0+: float is emulated, slower than the "
                             "default 'thumb' and its per-op arrays do not fit the planned heap); use 'thumb'")
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


def thumb(op):
    """The Thumb kernels of `op` (the module tinyseg_mp/ops/thumb/<op>.py),
    imported on first use: an import statement on every step cost the chip
    a lookup of each name in the dotted path (0.28 s of a 6.2 s inference
    of a 2,110-step plan)."""
    return _thumb.get(op) or _load(_thumb, "thumb", op)


def viper(op):
    """The viper kernels of `op` (tinyseg_mp/ops/viper/<op>.py), as thumb();
    plain Python on firmware without the viper emitter."""
    return _viper.get(op) or _load(_viper, "viper", op)


def _load(loaded, family, op):
    from tinyseg_mp._compat import import_module

    mod = loaded[op] = import_module("tinyseg_mp.ops." + family + "." + op)
    return mod
