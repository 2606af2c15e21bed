# What counts as the project's own error in a fuzz case: shared by the
# CPython side (bundle_mutations.py) and the unix-port runner
# (mp_fuzz_runner.py), so plain MicroPython-compatible code.
from tinyseg_mp import bundle


def own_error(exc, path):
    """BundleError; a MemoryError or spill OSError with the runtime's
    one-line message."""
    msg = str(exc)
    if isinstance(exc, bundle.BundleError):
        return True
    if isinstance(exc, MemoryError):
        return msg.startswith(path + ": the model needs")
    if isinstance(exc, OSError):
        return msg.startswith("spill: writing") or msg.startswith("filesystem full: the spill files") or \
            msg.startswith("spill files ")
    return False
