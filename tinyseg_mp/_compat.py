# Lets the device sources run where MicroPython's compiler features are missing:
# on CPython (host tests) and on firmware built without the viper emitter.
# Viper functions then run as plain Python over memoryviews (slow, same results).
import sys


def _view(buf, code):
    mv = memoryview(buf)
    if mv.format != "B":
        mv = mv.cast("B")
    return mv if code == "B" else mv.cast(code)


def ptr8(buf):
    return _view(buf, "B")


def ptr16(buf):
    return _view(buf, "H")


def ptr32(buf):
    return _view(buf, "I")


SHIMS = {"ptr8": ptr8, "ptr16": ptr16, "ptr32": ptr32}


def install_cpython_shims():
    """Make `import micropython`, `@micropython.viper` and ptrN work on CPython."""
    import builtins
    import types

    if "micropython" not in sys.modules:
        mod = types.ModuleType("micropython")
        mod.const = lambda x: x
        mod.viper = mod.native = lambda f: f
        sys.modules["micropython"] = mod
    for name, fn in SHIMS.items():
        if not hasattr(builtins, name):
            setattr(builtins, name, fn)


def load_without_viper(modname, path):
    """Import a module whose viper decorators this firmware cannot compile."""
    with open(path) as f:
        source = "\n".join(
            "" if line.strip() in ("@micropython.viper", "@micropython.native") else line
            for line in f.read().split("\n")
        )
    mod = type(sys)(modname)
    mod.__dict__.update(SHIMS)
    exec(compile(source, path, "exec"), mod.__dict__)
    sys.modules[modname] = mod
    return mod
