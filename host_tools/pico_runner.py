# Runs bundles on the virtual Pico (real rp2 MicroPython firmware in
# ../shared/pico_emu), for `tinyseg run --runtime pico`, `tinyseg bench
# --board rp2040` and tests/test_pico.py. host_tools/pico.py compiles it to
# .mpy (armv6m) with the runtime, puts both, the bundles and the inputs on the
# board's littlefs and calls, from a one-line raw-REPL script,
#   main(JOBS, PROBE)
# JOBS: (name, bundle, input file, backend or None, the bundle's opcodes,
# time each op?). For each job: load, import the op modules the bundle uses
# (as the first inference would; timed apart), read the input (into the arena,
# or a streamed plan reads it from its file band by band), then run() once
# between two marks (a store
# to WATCHDOG SCRATCH3, recorded by the emulator with the cycle count and the
# flash operations so far), print the output hex-encoded and one line
#   TSJOB {...}
# Timing ops, each op's run() is wrapped to sum time.ticks_us per
# op (the wrapper allocates nothing per step). PROBE > 0: the lowest free heap
# during a run, to PROBE bytes, by bisection: a ballast bytearray allocated
# before load; the largest ballast with which load + run still completes is
# the heap the run never touched. Modules the run imported are dropped before
# each try, so every try imports them as the first inference does.
import gc
import sys
import time

import machine
import tinyseg_mp
from tinyseg_mp import ops
from ubinascii import hexlify

_MARK = 0x40058018
_n = 0


def mark():
    global _n
    _n += 1
    machine.mem32[_MARK] = _n
    return _n


def _timed(run, acc, k):
    def w(m, p, blob):
        t = time.ticks_us()
        run(m, p, blob)
        acc[k] += time.ticks_diff(time.ticks_us(), t)

    return w


def _attempt(bundle, inp, backend, spill, ballast, known):
    # One load + run with `ballast` bytes taken from the heap first; True if it completes.
    gc.collect()
    b = m = f = None
    try:
        b = bytearray(ballast)
        m = tinyseg_mp.load(bundle, backend, spill)
        f = open(inp, "rb")
        if m.meta["in_off"] >= 0:
            f.readinto(m.input_view())
            m.run(None)
        else:
            m.run(f)
        return True
    except MemoryError:
        return False
    finally:
        if f:
            f.close()
        if m:
            m.close()
        b = m = None
        for k in list(sys.modules):
            if k not in known:  # and its name in the package, or the package keeps it alive
                del sys.modules[k]
                pkg, _, child = k.rpartition(".")
                if pkg in sys.modules and hasattr(sys.modules[pkg], child):
                    delattr(sys.modules[pkg], child)
        gc.collect()


def main(jobs, probe=0):
    for name, bundle, inp, backend, opcodes, timed in jobs:
        gc.collect()
        free0 = gc.mem_free()
        spill = "/" + name + ".spill"
        m = tinyseg_mp.load(bundle, backend, spill)
        known = set(sys.modules)
        acc = [0] * len(opcodes) if timed else None
        t = time.ticks_us()
        for i, op in enumerate(opcodes):
            run = ops.kernel(ops.load(op))
            m._runs[op] = _timed(run, acc, i) if timed else run
        t_ops = time.ticks_diff(time.ticks_us(), t)
        streamed = m.meta["in_off"] < 0
        f = open(inp, "rb")
        if not streamed:
            f.readinto(m.input_view())
            f.close()
        gc.collect()
        free_load = gc.mem_free()
        w0 = m.flash_write_bytes
        r0 = m.flash_read_bytes
        a = mark()
        t = time.ticks_us()
        out = m.run(f if streamed else None)
        t = time.ticks_diff(time.ticks_us(), t)
        b = mark()
        if streamed:
            f.close()
        for i in range(0, len(out), 256):
            print("TSOUT", name, hexlify(out[i : i + 256]).decode())
        print('TSJOB {"name": "%s", "backend": "%s", "marks": [%d, %d], "run_us": %d, "free_before_load": %d, '
              '"free_after_load": %d, "ops_import_us": %d, "flash_write_bytes": %d, '
              '"flash_read_bytes": %d, "spill_file_bytes": %d, "op_us": %s}' % (
                  name, m.backend, a, b, t, free0, free_load, t_ops, m.flash_write_bytes - w0,
                  m.flash_read_bytes - r0, m.spill_file_bytes, acc if acc else "null"))
        m.close()
        out = m = acc = None
        if probe:
            gc.collect()
            lo, hi = 0, gc.mem_free()
            if _attempt(bundle, inp, backend, spill, 0, known):
                while hi - lo > probe:
                    mid = (lo + hi) // 2
                    if _attempt(bundle, inp, backend, spill, mid, known):
                        lo = mid
                    else:
                        hi = mid
                print('TSPROBE {"name": "%s", "lowest_free_bytes": %d, "resolution": %d}' % (name, lo, probe))
            else:
                print('TSPROBE {"name": "%s", "lowest_free_bytes": null}' % name)
