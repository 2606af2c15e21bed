# A loaded bundle: preallocated arena and weight buffer, and run(), which
# copies the input in, walks the step list straight from the file (so a
# band-streamed plan's thousands of steps never sit in RAM) and returns the
# output.
import gc
import struct
from array import array

from tinyseg_mp import backend, bundle, ops

_REC_WORDS = 256  # the step-record buffer, in words: holds the longest record (4 + bundle.MAX_PARAMS)


def _inflate(f, stored, dst):
    """Inflate a compressed blob (a zlib stream of `stored` bytes) from the
    file into dst (exactly len(dst) bytes); checks the length and, where the
    inflater does not (MicroPython), the stream's Adler-32."""
    try:
        import deflate
    except ImportError:  # CPython: zlib checks the Adler-32 itself
        import zlib

        try:
            d = zlib.decompressobj(bundle.BLOB_WBITS)
            data = d.decompress(f.read(stored), len(dst) + 1)
            ok = d.eof and len(data) == len(dst)
        except zlib.error as exc:
            raise bundle.BundleError("compressed weights are damaged (%s)" % exc)
        if not ok:
            raise bundle.BundleError("compressed weights inflate to a length other than %d bytes" % len(dst))
        dst[:] = data
        return
    start = f.tell()
    d = deflate.DeflateIO(f, deflate.ZLIB, bundle.BLOB_WBITS)
    got = 0
    n = len(dst)
    try:
        while got < n:
            k = d.readinto(dst[got:])
            if not k:
                break
            got += k
    except (OSError, EOFError, ValueError) as exc:  # EINVAL: not a deflate stream; EOFError: it ends early
        raise bundle.BundleError("compressed weights are damaged (%s)" % exc)
    if got < n:
        raise bundle.BundleError("compressed weights end early (%d of %d bytes)" % (got, n))
    f.seek(start + stored - 4)
    tail = f.read(4)
    from tinyseg_mp._compat import import_module

    if import_module("tinyseg_mp.adler").adler32(dst, n) != (tail[0] << 24 | tail[1] << 16 | tail[2] << 8 | tail[3]):
        raise bundle.BundleError("compressed weights fail their Adler-32 check")


def _spill():
    # Imported on demand, through the loader that copes with firmware without viper.
    from tinyseg_mp._compat import import_module

    return import_module("tinyseg_mp.spill")


class Model:
    def __init__(self, path, backend_name=None, spill_path=None, spill=True, input_view=False):
        # spill=False: check the bundle only, creating no spill files (the compiler's own check).
        self.backend = backend.select(backend_name)
        self.path = path
        self.file = f = open(path, "rb")
        self.spill = None  # this model's spill store (tinyseg_mp.spill)
        self._busy = False
        try:
            sections = bundle.read_sections(f, path)
            self.meta = meta = bundle.read_meta(f, sections, path)
            self.slots = slots = bundle.read_spill_slots(f, sections, path)
            # The big buffers first, while the heap is still unfragmented.
            gc.collect()
            try:
                self.arena = bytearray(meta["arena_bytes"])
                self.wbuf = bytearray(max(meta["blob_bytes"], 4))
                # A streamed plan reads its input from, and writes its output to,
                # buffers outside the arena (feed and drain steps).
                self.output = bytearray(meta["out_bytes"]) if meta["out_off"] < 0 else None
                # input_view()'s buffer too when the caller will fill it: made
                # later, a fragmented heap may not have it in one piece.
                self._inbuf = bytearray(meta["in_bytes"]) if input_view and meta["in_off"] < 0 else None
            except MemoryError:
                raise MemoryError("%s: the model needs %d bytes of arena and %d of weight buffer in one piece each, "
                                  "more than this heap has free; compile it for this board (--board)" % (
                                      path, meta["arena_bytes"], meta["blob_bytes"]))
            self.input = None
            self.blob_base = sections[b"BLOB"][0]
            self.step_span = sections[b"STEP"]
            # A step record's head as words (bundle.STEP, little-endian): opcode | count << 16,
            # blob offset, stored and raw blob length.
            self._head = array("I", bytes(struct.calcsize(bundle.STEP)))
            self._params = array("i", bytes(4 * bundle.MAX_PARAMS))
            self._recs = array("i", bytes(4 * _REC_WORDS))  # step records, read a buffer at a time
            self._runs = [None] * len(ops.NAMES)
            # The checks' module only for the load: its code leaves the heap after it.
            from tinyseg_mp import check

            self.win = 0  # the largest Thumb window a step declares (check.window)
            try:
                self.steps = check.steps(self, f, sections)
            finally:
                import sys

                import tinyseg_mp

                sys.modules.pop("tinyseg_mp.check", None)
                if hasattr(tinyseg_mp, "check"):
                    delattr(tinyseg_mp, "check")
                del check
        except Exception:
            f.close()
            raise
        # Blobs through a second handle: the step records are then read in one
        # sequence, and littlefs does not walk the file's block list again for
        # each step (a far seek and read cost the RP2040 about 0.15 ms).
        self._blob_file = open(path, "rb")
        self.flash_read_bytes = 0
        self.flash_write_bytes = 0
        self.spill_file_bytes = 0
        if self.win and self.backend == "thumb":
            backend.thumb("conv2d").window(1, self.win, 0)  # allocated once, while the heap is whole
        if slots and spill:
            self.spill, self.spill_file_bytes = _spill().open_store(spill_path or path + ".spill", slots,
                                                                              stage=self.meta["spill_stage"])
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
        Returns a memoryview of the output bytes, valid until the next run.
        One run at a time per model: a re-entered or concurrent call is refused."""
        if self._busy:
            raise RuntimeError("%s: run() is already running on this model (re-entered, or called from another "
                               "thread); one run at a time per model" % self.path)
        if self.file is None:
            raise ValueError("%s: the model is closed" % self.path)
        self._busy = True
        try:
            self._take_input(inp)
            if self.spill:
                _spill().activate(self.spill)
            return self._steps()
        finally:
            self.input = None
            self._busy = False

    def _take_input(self, inp):
        m = self.meta
        want = "%d bytes (%dx%dx%d %s)" % (m["in_bytes"], m["in_h"], m["in_w"], m["in_c"], bundle.DTYPES[m["in_dtype"]])
        if inp is None:
            if m["in_off"] < 0:
                if self._inbuf is None:
                    raise ValueError("no input: pass one to run() or fill input_view() first")
                self.input = memoryview(self._inbuf)
            return
        if hasattr(inp, "readinto"):
            if m["in_off"] >= 0:
                raise TypeError("this bundle keeps its input in the arena: pass bytes, not a file")
            try:
                here = inp.seek(0, 1)
                size = inp.seek(0, 2)
                inp.seek(here)
            except (OSError, AttributeError, TypeError) as exc:
                raise TypeError("the input file must support seek() (%s)" % exc)
            if size is None or size < m["in_bytes"]:
                raise ValueError("the input file has %s bytes; the model reads %s from it" % (size, want))
            self.input = inp
            return
        try:
            mv = memoryview(inp)
        except TypeError:
            raise TypeError("input must be bytes-like (bytes, bytearray, memoryview, array) or a file, not %s"
                            % type(inp).__name__)
        if hasattr(mv, "cast") and (mv.format != "B" or mv.ndim != 1):  # CPython: any buffer as its bytes
            try:
                mv = mv.cast("B")
            except TypeError as exc:
                raise TypeError("input buffer is not contiguous (%s)" % exc)
        n = len(mv) * getattr(mv, "itemsize", 1)
        if n != m["in_bytes"]:
            raise ValueError("input has %d bytes; the model takes %s" % (n, want))
        if m["in_off"] >= 0:
            self.input_view()[:] = mv
        else:
            self.input = mv  # feed steps read it in place

    def _steps(self):
        m = self.meta
        f = self.file
        wbuf = memoryview(self.wbuf)
        recs = self._recs
        rv = memoryview(recs)
        cap = len(recs)
        runs = self._runs  # every op the bundle uses, imported at load
        base = self.blob_base
        pos, left = self.step_span
        blobs = self._blob_file
        loaded = -1  # blob offset now in wbuf: consecutive steps often share one
        blob = empty = wbuf[:0]  # the loaded blob's bytes, none
        need = 4 + bundle.MAX_PARAMS  # words of the longest record
        read = 0  # blob bytes read from flash
        f.seek(pos)
        at = got = 0  # the next record's word in recs; words read into it
        while at < got or left:
            if got - at < need and left:
                # Records are read a buffer at a time: a littlefs read costs the
                # RP2040 about 33 us however small, two per step read singly.
                rest = got - at
                if rest:
                    rv[:rest] = rv[at:got]
                n = min(left >> 2, cap - rest)
                f.readinto(rv[rest : rest + n])
                left -= 4 * n
                at = 0
                got = rest + n
            # The records starting before `stop` are whole in the buffer: no
            # refill test per step (it cost the chip about 300 cycles a step).
            stop = got - need + 1 if left else got
            while at < stop:
                head = recs[at]  # opcode | params << 16
                raw = recs[at + 3]
                end = at + 4 + (head >> 16)
                p = rv[at + 4 : end]
                if not raw:
                    runs[head & 0xFFFF](self, p, empty)
                    at = end
                    continue
                off = recs[at + 1]
                if off != loaded:
                    stored = recs[at + 2]
                    blobs.seek(base + off)
                    loaded = -1
                    blob = wbuf[:raw]
                    if stored == raw:
                        blobs.readinto(blob)
                    else:
                        try:
                            _inflate(blobs, stored, blob)
                        except bundle.BundleError as exc:
                            rec = pos + self.step_span[1] - left - 4 * (got - at)
                            bundle._fail(self.path, rec, "the blob of the step here (%s): %s" % (
                                ops.NAMES[head & 0xFFFF], exc))
                    read += stored
                    loaded = off
                runs[head & 0xFFFF](self, p, blob)
                at = end
        self.flash_read_bytes += read
        if self.output is not None:
            return memoryview(self.output)
        return memoryview(self.arena)[m["out_off"] : m["out_off"] + m["out_bytes"]]

    def close(self):
        """Close the bundle and remove this model's spill files (safe to call twice)."""
        if self.file is not None:
            self.file.close()
            self._blob_file.close()
            self.file = None
        if self.spill is not None:
            _spill().close(self.spill)
            self.spill = None
        if self.win and self.backend == "thumb":  # the window load allocated: the next model gets the heap whole
            backend.thumb("conv2d").release()
            self.win = 0
