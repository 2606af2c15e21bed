# A loaded bundle: preallocated arena and weight buffer, the step list, and
# run(), which copies the input in, executes the steps and returns the output.
import gc
from array import array

from tinyseg_mp import backend, bundle, ops


def _inflate(f, stored, dst):
    """Inflate a compressed blob from the file into dst (exactly len(dst) bytes)."""
    try:
        import deflate
    except ImportError:  # CPython
        import zlib

        dst[:] = zlib.decompress(f.read(stored), bundle.BLOB_WBITS)
        return
    d = deflate.DeflateIO(f, deflate.ZLIB, bundle.BLOB_WBITS)
    got = 0
    n = len(dst)
    while got < n:
        k = d.readinto(dst[got:])
        if not k:
            raise ValueError("compressed weights end early: damaged bundle")
        got += k


def _spill():
    # Imported on demand, through the loader that copes with firmware without viper.
    from tinyseg_mp._compat import import_module

    return import_module("tinyseg_mp.spill")


class Model:
    def __init__(self, path, backend_name=None, spill_path=None):
        self.backend = backend.select(backend_name)
        self.path = path
        self.file = f = open(path, "rb")
        try:
            sections = bundle.read_sections(f, path)
            self.meta = meta = bundle.read_meta(f, sections)
            # The big buffers first, while the heap is still unfragmented.
            gc.collect()
            self.arena = bytearray(meta["arena_bytes"])
            self.wbuf = bytearray(max(meta["blob_bytes"], 4))
            records = bundle.read_steps(f, sections, path)
            slots = bundle.read_spill_slots(f, sections)
            self.blob_base = sections[b"BLOB"][0]
            self.steps = [(ops.load(op).run, array("i", p), off, stored, raw) for op, p, off, stored, raw in records]
        except Exception:
            f.close()
            raise
        self.flash_read_bytes = 0
        self.flash_write_bytes = 0
        self.spill_file_bytes = 0
        if slots:
            self.spill_file_bytes = _spill().open_store(spill_path or path + ".spill", slots)
        gc.collect()

    def input_view(self):
        """The model input's bytes inside the arena: write an input here to avoid a copy."""
        m = self.meta
        return memoryview(self.arena)[m["in_off"] : m["in_off"] + m["in_bytes"]]

    def run(self, inp=None):
        """Run one inference. `inp`: bytes-like input in the model's layout
        (HxWxC, its dtype), or None when input_view() was filled in place.
        Returns a memoryview of the output bytes, valid until the next run."""
        m = self.meta
        if inp is not None:
            if len(inp) != m["in_bytes"]:
                raise ValueError("input has %d bytes; the model takes %d (%dx%dx%d %s)" % (
                    len(inp), m["in_bytes"], m["in_h"], m["in_w"], m["in_c"], bundle.DTYPES[m["in_dtype"]]))
            self.input_view()[:] = inp
        f = self.file
        wbuf = memoryview(self.wbuf)
        base = self.blob_base
        for run, p, off, stored, raw in self.steps:
            if raw:
                f.seek(base + off)
                if stored == raw:
                    f.readinto(wbuf[:raw])
                else:
                    _inflate(f, stored, wbuf[:raw])
                self.flash_read_bytes += stored
            run(self, p, wbuf[:raw])
        return memoryview(self.arena)[m["out_off"] : m["out_off"] + m["out_bytes"]]

    def close(self):
        """Close the bundle and remove the spill file."""
        self.file.close()
        if self.spill_file_bytes:
            _spill().close()
