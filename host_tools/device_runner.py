# Runs a bundle once on MicroPython (the unix port is the virtual board) or on
# CPython, for `tinyseg run`: argv = BUNDLE INPUT.bin OUTPUT.bin BACKEND|auto.
# Prints one line "STATS {...}" with the measured figures.
import sys
import time

import tinyseg_mp


def main(bundle_path, in_path, out_path, backend):
    with open(in_path, "rb") as f:
        data = f.read()
    model = tinyseg_mp.load(bundle_path, None if backend == "auto" else backend)
    t0 = time.ticks_us() if hasattr(time, "ticks_us") else time.perf_counter_ns() // 1000
    out = model.run(data)
    t1 = time.ticks_us() if hasattr(time, "ticks_us") else time.perf_counter_ns() // 1000
    latency_us = time.ticks_diff(t1, t0) if hasattr(time, "ticks_diff") else t1 - t0
    with open(out_path, "wb") as f:
        f.write(out)
    print("STATS {\"latency_ms\": %.3f, \"backend\": \"%s\", \"flash_read_bytes\": %d, \"flash_write_bytes\": %d}" % (
        latency_us / 1000, model.backend, model.flash_read_bytes, model.flash_write_bytes))
    model.close()
    if sys.implementation.name == "micropython":
        import micropython

        micropython.mem_info()  # its "peak=" is the heap high-water mark of the whole run


if __name__ == "__main__":
    main(*sys.argv[1:5])
