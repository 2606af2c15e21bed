# Lets the device sources run where MicroPython's compiler features are
# missing: on CPython (host tests) and on firmware built without the viper
# emitter. There, viper functions run as plain Python over pointer stand-ins
# (slow, same results).
import struct
import sys

NO_VIPER = False  # set True to take the plain-Python path even where viper exists (tests)


_SPAN = 1 << 30  # how far a MicroPython stand-in pointer's view reaches past its address (unchecked, as viper)


def _shims():
    """ptr8/ptr16/ptr32 stand-ins: unsigned loads, truncating stores, and
    addresses as viper has them (int(p), ptr8(an address)). Built on first
    use so a board with viper never holds them."""
    if sys.implementation.name == "micropython":  # no memoryview.cast: struct it is
        import uctypes

        class Ptr:
            def __init__(self, obj, fmt, size, mask):
                self.addr = obj if isinstance(obj, int) else int(obj) if isinstance(obj, Ptr) else uctypes.addressof(obj)
                self.mem, self.fmt, self.size, self.mask = uctypes.bytearray_at(self.addr, _SPAN), fmt, size, mask

            def __int__(self):
                return self.addr

            def __getitem__(self, i):
                return struct.unpack_from(self.fmt, self.mem, i * self.size)[0]

            def __setitem__(self, i, v):
                struct.pack_into(self.fmt, self.mem, i * self.size, v & self.mask)

        return {"ptr8": lambda b: Ptr(b, "<B", 1, 0xFF), "ptr16": lambda b: Ptr(b, "<H", 2, 0xFFFF),
                "ptr32": lambda b: Ptr(b, "<I", 4, 0xFFFFFFFF)}

    import ctypes

    import numpy

    # One view of the whole address space per item size: a stand-in pointer
    # is an index into it, cheap to make for every ptr8(address) in a loop.
    base = 4096  # below any heap address
    whole = memoryview((ctypes.c_uint8 * ((1 << 48) - base)).from_address(base)).cast("B")
    views = {"B": whole, "H": whole.cast("H"), "I": whole.cast("I")}

    class CPtr:
        __slots__ = ("addr", "mem", "at", "mask")

        def __init__(self, obj, code, size, mask):
            self.addr = obj if isinstance(obj, int) else obj.addr if isinstance(obj, CPtr) else \
                numpy.frombuffer(obj, numpy.uint8).ctypes.data
            if self.addr % size:
                raise ValueError("unaligned ptr%d at 0x%x (a fault on the board)" % (8 * size, self.addr))
            self.mem, self.at, self.mask = views[code], (self.addr - base) // size, mask

        def __int__(self):
            return self.addr

        def __getitem__(self, i):
            return self.mem[self.at + i]

        def __setitem__(self, i, v):
            self.mem[self.at + i] = v & self.mask

    return {"ptr8": lambda b: CPtr(b, "B", 1, 0xFF), "ptr16": lambda b: CPtr(b, "H", 2, 0xFFFF),
            "ptr32": lambda b: CPtr(b, "I", 4, 0xFFFFFFFF)}


def install_cpython_shims():
    """Make `import micropython`, `@micropython.viper` and ptrN work on CPython."""
    import builtins
    import types

    if "micropython" not in sys.modules:
        mod = types.ModuleType("micropython")
        mod.const = lambda x: x
        mod.viper = mod.native = lambda f: f
        sys.modules["micropython"] = mod
    for name, fn in _shims().items():
        if not hasattr(builtins, name):
            setattr(builtins, name, fn)


def import_module(modname):
    """Import a tinyseg_mp module, compiling its viper functions as plain
    Python when this firmware has no viper emitter (or NO_VIPER is set)."""
    if modname in sys.modules:
        return sys.modules[modname]
    if not NO_VIPER:
        try:
            __import__(modname)
            return sys.modules[modname]
        except SyntaxError:  # "invalid micropython decorator": no viper emitter
            sys.modules.pop(modname, None)
    return _load_without_viper(modname)


def _load_without_viper(modname):
    root = __file__.rsplit("/", 1)[0]  # the tinyseg_mp folder
    path = root + "/" + "/".join(modname.split(".")[1:]) + ".py"
    with open(path) as f:
        lines = f.read().split("\n")
    for line in lines:  # load what it imports from tinyseg_mp the same way first
        words = line.split()
        if len(words) >= 4 and words[0] == "from" and words[1].startswith("tinyseg_mp") and words[2] == "import":
            for name in " ".join(words[3:]).split(","):
                dep = words[1] + "." + name.strip()
                # (not the Thumb kernels: firmware without viper has no asm_thumb either)
                if dep.replace(".", "/") != "tinyseg_mp/ops" and ".thumb" not in dep and _is_module(root, dep):
                    import_module(dep)
    source = "\n".join("" if l.strip() in ("@micropython.viper", "@micropython.native") else l for l in lines)
    namespace = {"__name__": modname}
    namespace.update(_shims())
    exec(source, namespace)
    # MicroPython cannot make module objects; a class holding the names serves.
    mod = type(modname.rsplit(".", 1)[1], (), namespace)
    sys.modules[modname] = mod
    return mod


def _is_module(root, modname):
    try:
        open(root + "/" + "/".join(modname.split(".")[1:]) + ".py").close()
        return True
    except OSError:
        return False
