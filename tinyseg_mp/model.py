# A loaded bundle: preallocated arena and weight buffer, and run(), which
# copies the input in, walks the step list straight from the file (so a
# band-streamed plan's thousands of steps never sit in RAM) and returns the
# output.
import gc
import struct
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
            # A streamed plan reads its input from, and writes its output to,
            # buffers outside the arena (feed and drain steps).
            self.input = None
            self._inbuf = None  # input_view() of a streamed plan
            self.output = bytearray(meta["out_bytes"]) if meta["out_off"] < 0 else None
            bundle.check_steps(f, sections, path)
            slots = bundle.read_spill_slots(f, sections)
            self.blob_base = sections[b"BLOB"][0]
            self.step_span = sections[b"STEP"]
            self._head = bytearray(struct.calcsize(bundle.STEP))
            self._params = array("i", bytes(4 * bundle.MAX_PARAMS))
            self._runs = [None] * len(ops.NAMES)
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
        """Where the model input goes: write an input here to avoid a copy
        (its bytes in the arena, or for a streamed plan a buffer of its own)."""
        m = self.meta
        if m["in_off"] >= 0:
            return memoryview(self.arena)[m["in_off"] : m["in_off"] + m["in_bytes"]]
        if self._inbuf is None:
            self._inbuf = bytearray(m["in_bytes"])
        return memoryview(self._inbuf)

    def run(self, inp=None):
        """Run one inference. `inp`: bytes-like input in the model's layout
        (HxWxC, its dtype), or None when input_view() was filled in place;
        a band-streamed plan also takes an open file of those bytes.
        Returns a memoryview of the output bytes, valid until the next run."""
        m = self.meta
        if inp is not None and not hasattr(inp, "readinto"):
            if len(inp) != m["in_bytes"]:
                raise ValueError("input has %d bytes; the model takes %d (%dx%dx%d %s)" % (
                    len(inp), m["in_bytes"], m["in_h"], m["in_w"], m["in_c"], bundle.DTYPES[m["in_dtype"]]))
            if m["in_off"] >= 0:
                self.input_view()[:] = inp
            else:
                self.input = inp  # feed steps read it in place
        elif inp is not None:
            if m["in_off"] >= 0:
                raise ValueError("this bundle keeps its input in the arena: pass bytes, not a file")
            self.input = inp
        elif m["in_off"] < 0:
            if self._inbuf is None:
                raise ValueError("no input: pass one to run() or fill input_view() first")
            self.input = self._inbuf
        f = self.file
        wbuf = memoryview(self.wbuf)
        head = self._head
        params = memoryview(self._params)
        runs = self._runs
        base = self.blob_base
        pos, end = self.step_span
        end += pos
        loaded = -1  # blob offset now in wbuf: consecutive steps often share one
        while pos < end:
            f.seek(pos)
            f.readinto(head)
            opcode, count, off, stored, raw = struct.unpack(bundle.STEP, head)
            p = params[:count]
            f.readinto(p)
            pos += len(head) + 4 * count
            if raw and off != loaded:
                f.seek(base + off)
                if stored == raw:
                    f.readinto(wbuf[:raw])
                else:
                    _inflate(f, stored, wbuf[:raw])
                self.flash_read_bytes += stored
                loaded = off
            run = runs[opcode]
            if run is None:
                run = runs[opcode] = ops.load(opcode).run
            run(self, p, wbuf[:raw])
        if self.output is not None:
            return memoryview(self.output)
        return memoryview(self.arena)[m["out_off"] : m["out_off"] + m["out_bytes"]]

    def close(self):
        """Close the bundle and remove the spill file."""
        self.file.close()
        if self.spill_file_bytes:
            _spill().close()
